"""A batch's inputs and the names of their outputs (folders, globs, name clashes refused), and the manifest of
the outputs done.
"""

from __future__ import annotations

import glob
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from livequant import __version__
from livequant.errors import LivequantError
from livequant.sinks import VIDEO_SUFFIXES as VIDEO_OUTPUTS
from livequant.sources import is_animated

__all__ = ["ANIMATION_SUFFIXES", "BatchError", "Item", "MANIFEST", "OUTPUT_SUFFIXES", "VIDEO_SUFFIXES", "find_inputs",
           "input_fingerprint", "read_manifest", "settings_hash"]

#: Suffixes of the files taken from a folder.
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif", ".mpg", ".mpeg", ".ts",
                            ".flv", ".wmv", ".ogv"})
#: Suffixes of picture files taken from a folder when they are animated (`is_animated`); stills are left out.
ANIMATION_SUFFIXES = frozenset({".webp", ".png", ".apng"})
#: Output suffixes batch writes: --to's, else each input's own.
OUTPUT_SUFFIXES = frozenset({*VIDEO_OUTPUTS, ".gif", ".webp", ".apng"})
MANIFEST = "livequant-manifest.jsonl"


class BatchError(LivequantError):
    """The inputs or outputs of a batch cannot be used as given."""


@dataclass(frozen=True)
class Item:
    """One input and where its output goes: ``outdir / name``."""

    input: Path
    name: str  # the output's path relative to OUTDIR


def find_inputs(specs, *, to: str | None = None, outdir=None) -> list[Item]:
    """Expand files, folders and globs into `Item` s whose output names keep the relative names.

    A file keeps its name; a folder's files (any depth) keep their path under
    the folder; a glob's matches keep their path under the glob's fixed part.
    ``to`` (a suffix such as ``"gif"``) replaces each suffix. Files that folders
    and globs find under ``outdir`` (the outputs of an earlier run) are left out,
    as are those a folder holds under another batch's output folder (one with
    its `MANIFEST`); a file named under ``outdir`` is refused.

    Raises
    ------
    BatchError
        A spec that matches nothing, two inputs that would write the same output, a file named under
        ``outdir``, or no input outside it.
    """
    items, seen = [], {}
    skipped = Path(outdir).resolve() if outdir is not None else None
    for spec in specs:
        for path, name in _expand(str(spec)):
            if skipped is not None and path.resolve().is_relative_to(skipped):
                if Path(spec).is_file():  # named, not found in a folder: not an earlier output to pass over
                    raise BatchError(f"input '{spec}' is inside the output folder '{outdir}'; move it out, or give "
                                     "another output folder")
                continue
            name = Path(name).with_suffix(f".{to.lstrip('.').lower()}") if to else Path(name)
            item = Item(path, name.as_posix())
            if item.name in seen and seen[item.name].input.resolve() != path.resolve():
                raise BatchError(f"'{seen[item.name].input}' and '{path}' would both write '{item.name}'; "
                                 "rename one, or give them in separate runs with different output folders")
            if item.name not in seen:
                seen[item.name] = item
                items.append(item)
    if not items:
        raise BatchError(f"every input is under the output folder '{outdir}'; give another output folder")
    return items


def _expand(spec: str):
    """``(path, relative name)`` pairs of one command-line input."""
    if "://" in spec:
        raise BatchError(f"input '{spec}' is a URL, and batch quantizes files (its workers read them in chunks); "
                         "use `livequant transcode URL OUTPUT` for a URL")
    path = Path(spec)
    if path.is_dir():
        outputs = {manifest.parent for manifest in path.rglob(MANIFEST)} - {path}  # earlier batches' folders
        found = sorted(p for p in path.rglob("*")
                       if p.is_file() and _taken_from_folder(p) and not outputs.intersection(p.parents))
        if not found:
            raise BatchError(f"folder '{spec}' holds no video files ({' '.join(sorted(VIDEO_SUFFIXES))}) and no "
                             f"animated {' '.join(sorted(ANIMATION_SUFFIXES))} pictures")
        return [(p, p.relative_to(path)) for p in found]
    if path.is_file():
        return [(path, path.name)]
    if glob.has_magic(spec):
        parts = Path(spec).parts
        fixed = Path(*[p for p in parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))]] or ["."])
        found = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        if not found:
            raise BatchError(f"no files match '{spec}'")
        return [(p, p.relative_to(fixed) if fixed != Path(".") else p) for p in found]
    raise BatchError(f"input '{spec}' is not a file, a folder or a glob that matches files; check the path")


def _taken_from_folder(path: Path) -> bool:
    """Whether a folder's file is taken: a video by its suffix, or an animated picture."""
    suffix = path.suffix.lower()
    return suffix in VIDEO_SUFFIXES or (suffix in ANIMATION_SUFFIXES and is_animated(path))


def settings_hash(settings: dict) -> str:
    """A short hash of the settings that decide the output bytes (and of the livequant version)."""
    text = json.dumps({**settings, "livequant": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def input_fingerprint(path: Path) -> list[int]:
    status = path.stat()
    return [status.st_size, status.st_mtime_ns]


def read_manifest(outdir: Path) -> dict[str, dict]:
    """The last manifest record of each output name; unreadable lines (a crash mid-write) are skipped."""
    records = {}
    path = outdir / MANIFEST
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
                records[record["output"]] = record
            except (ValueError, KeyError, TypeError):
                continue
    return records
