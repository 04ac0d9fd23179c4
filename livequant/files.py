"""Output files written whole or not at all: a new, uniquely named partial file beside the target, renamed
into place when complete. Used by every file sink and by the quality report."""

from __future__ import annotations

import errno
import itertools
import os
import tempfile
from pathlib import Path

__all__ = ["move_beside", "move_into_place", "partial_file"]


def partial_file(path: Path) -> Path:
    """A new empty hidden file beside ``path``, to write first; keeps the suffix (FFmpeg and matplotlib pick the
    format by it).

    `tempfile.mkstemp` makes it with a unique name and ``O_EXCL``, so it is never an existing file (an input).

    Raises
    ------
    OSError
        If the folder cannot take a new file.
    """
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:64]}.", suffix=f".partial{path.suffix[:16]}")
    os.close(fd)
    return Path(name)


def move_into_place(tmp: Path, path: Path, *, replace: bool = True) -> None:
    """Rename the finished ``tmp`` to ``path``, readable by others as a plainly created file would be.

    Unless ``replace``, a file that appeared at ``path`` meanwhile (another program wrote it) stays and
    `FileExistsError` is raised: ``tmp`` is linked to ``path``, which never replaces a name (where the file
    system has no hard links, ``path`` is looked for first).
    """
    os.chmod(tmp, 0o644)
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    except OSError:  # no hard links here: look, then rename
        if not os.path.lexists(path):
            os.replace(tmp, path)
            return
    else:
        os.unlink(tmp)
        return
    raise FileExistsError(errno.EEXIST, "it appeared while this was being written", str(path))


def move_beside(tmp: Path, path: Path, tag: str) -> Path:
    """Rename the finished ``tmp`` beside ``path`` without replacing any file: ``out.TAG.mp4``, else
    ``out.TAG-2.mp4``, ``out.TAG-3.mp4`` ...; returns the name it took."""
    for n in itertools.count(1):
        beside = path.with_name(f"{path.stem}.{tag}{'' if n == 1 else f'-{n}'}{path.suffix}")
        try:
            move_into_place(tmp, beside, replace=False)
        except FileExistsError:
            continue
        return beside
