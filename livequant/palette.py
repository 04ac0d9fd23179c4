"""Palettes: K fixed RGB colours, and the palette file formats.

A `Palette` is immutable: its ``colors`` are a read-only ``(K, 3) uint8``
array with ``1 <= K <= 256``. Palettes are read and written as GIMP ``.gpl``,
Adobe ``.act``, ``.json`` (a list of ``"#rrggbb"``), ``.hex`` / ``.txt`` (one
colour per line, as Lospec exports) and ``.png`` swatches (indexed PNG).
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from livequant.errors import SinkError, SourceError, appeared_meanwhile, write_hint
from livequant.files import move_into_place, partial_file
from livequant.png import SIGNATURE, indexed_png

__all__ = ["MAX_COLORS", "Palette", "SUFFIXES", "file_format"]

MAX_COLORS = 256
_HEX = re.compile(r"#?([0-9a-f]{6})", re.IGNORECASE)
_ARGB = re.compile(r"[0-9a-f]{8}", re.IGNORECASE)  # Paint.NET .txt: AARRGGBB
_GPL_ROW = re.compile(r"\s*(\d{1,3})\s+(\d{1,3})\s+(\d{1,3})(?:\s.*)?", re.ASCII)
_SWATCH = 16  # side of one swatch square in pixels, and squares per row


@dataclass(frozen=True, eq=False, repr=False)
class Palette:
    """An immutable, ordered list of K RGB colours.

    Parameters
    ----------
    colors : array_like of int, shape (K, 3)
        One row of 0..255 integers per colour, ``1 <= K <= 256``.
    name : str
        A label such as the preset or file name; not part of equality.

    Attributes
    ----------
    colors : (K, 3) uint8 ndarray
        A read-only copy of the colours.
    name : str
    """

    colors: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"palette name must be a str, got {type(self.name).__name__}")
        if isinstance(self.colors, (str, bytes)):
            raise TypeError("palette colors must be a (K, 3) array of 0..255 integers, got a string; "
                            "use Palette.from_hex for hex codes")
        try:
            a = np.array(self.colors)
            shape = a.shape
        except ValueError:  # a ragged nested sequence
            a, shape = None, "a ragged sequence"
        if a is None or a.ndim != 2 or a.shape[1] != 3 or not 1 <= len(a) <= MAX_COLORS:
            raise ValueError(f"palette colors must be (K, 3) with K in 1..{MAX_COLORS}, got {shape}")
        if a.dtype.kind not in "iu":
            raise TypeError(f"palette colors must be integers 0..255, got dtype {a.dtype}; "
                            "round floats and cast with .astype(np.uint8)")
        if a.min() < 0 or a.max() > 255:
            raise ValueError(f"palette colors must be in 0..255, got values {a.min()}..{a.max()}")
        a = a.astype(np.uint8)
        a.flags.writeable = False
        object.__setattr__(self, "colors", a)

    @classmethod
    def from_hex(cls, codes, name: str = "") -> Palette:
        """Make a palette from ``"#rrggbb"`` codes (``#`` optional; one str is split on commas/spaces)."""
        if isinstance(codes, str):
            codes = codes.replace(",", " ").split()
        return cls([_parse_hex(code, f"hex colour {i}") for i, code in enumerate(codes)], name)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Palette:
        """Read a palette file; the format follows the suffix.

        Raises
        ------
        SourceError
            If the file is missing or cannot be read.
        ValueError
            If the suffix is unknown or the contents are not a valid palette.
        """
        path = Path(path)
        fmt = file_format(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SourceError(f"palette file {path} does not exist; check the path, "
                              "or name a preset (see `livequant --help`)") from None
        except OSError as e:
            raise SourceError(f"cannot read palette file {path}: {e.strerror or e}; "
                              "check that it is a readable file") from None
        try:
            colors, name = fmt.read(data)
            if colors is None:  # a PNG that is a picture rather than a swatch
                colors = _picture_colors(path)
            if not 1 <= len(colors) <= MAX_COLORS:
                raise ValueError(f"it holds {len(colors)} colours, not 1..{MAX_COLORS}")
        except ValueError as e:
            raise ValueError(f"{path} is not a valid {fmt.title}: {e}; {fmt.hint}") from None
        return cls(colors, name or path.stem)

    def save(self, path: str | os.PathLike, *, overwrite: bool = True) -> None:
        """Write the palette; the format follows the suffix.

        The file is written beside the target and renamed into place, so a
        failed write never leaves half a file.

        Raises
        ------
        ValueError
            If the suffix is not a palette format.
        SinkError
            If the file exists and ``overwrite`` is false, or cannot be written.
        """
        path = Path(path)
        data = file_format(path).write(self, self.name or path.stem)
        if not overwrite and os.path.lexists(path):
            raise SinkError(f"{path} exists; use -y to overwrite")
        try:
            tmp = partial_file(path)
            try:
                tmp.write_bytes(data)
                move_into_place(tmp, path, replace=overwrite)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        except FileExistsError:
            raise appeared_meanwhile(path, "palette file") from None
        except OSError as e:
            hint = "check that the folder exists" if isinstance(e, FileNotFoundError) else write_hint(e)
            raise SinkError(f"cannot write palette file {path}: {e.strerror or e}; {hint}") from None

    def to_hex(self) -> list[str]:
        """Return the colours as ``"#rrggbb"`` strings, in order."""
        return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in self.colors.tolist()]

    def __len__(self) -> int:
        return len(self.colors)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Palette):
            return NotImplemented
        return np.array_equal(self.colors, other.colors)

    def __hash__(self) -> int:
        return hash(self.colors.tobytes())

    def __repr__(self) -> str:
        codes = self.to_hex()
        shown = " ".join(codes[:8]) + (" ..." if len(codes) > 8 else "")
        return f"<Palette {self.name!r}: {len(codes)} colours {shown}>"


# --- file formats: read(bytes) -> (colours, name or None); write(palette, name) -> bytes ---
# (a PNG picture rather than a swatch reads as colours None: `Palette.from_file` decodes it)

def _quote(value: object) -> str:
    """``repr(value)``, shortened to keep error messages on one short line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _parse_hex(code: object, where: str) -> tuple[int, int, int]:
    match = _HEX.fullmatch(code.strip()) if isinstance(code, str) else None
    if match is None:
        raise ValueError(f"{where} {_quote(code)} is not a '#rrggbb' colour")
    return tuple(bytes.fromhex(match.group(1)))


def _text(data: bytes) -> str:
    return data.decode("utf-8-sig", errors="replace")


def _read_gpl(data: bytes):
    lines = _text(data).splitlines()
    if not lines or lines[0].strip() != "GIMP Palette":
        raise ValueError("the first line is not 'GIMP Palette'")
    name, colors = None, []
    for number, line in enumerate(lines[1:], start=2):
        if line.startswith("Name:"):
            name = line[5:].strip()
        elif line.strip() and not line.lstrip().startswith("#") and not line.startswith("Columns:"):
            match = _GPL_ROW.fullmatch(line)
            rgb = tuple(int(v) for v in match.groups()) if match else ()
            if not rgb or max(rgb) > 255:
                raise ValueError(f"line {number} {_quote(line)} is not 'R G B name' with R, G, B in 0..255")
            colors.append(rgb)
    return colors, name


def _write_gpl(palette: Palette, name: str) -> bytes:
    codes = zip(palette.colors.tolist(), palette.to_hex())
    rows = [f"{r:3d} {g:3d} {b:3d}\t{code}" for (r, g, b), code in codes]
    header = ["GIMP Palette", f"Name: {' '.join(name.splitlines())}", f"Columns: {min(len(palette), 16)}", "#"]
    return "\n".join([*header, *rows, ""]).encode()


def _read_act(data: bytes):
    if len(data) not in (768, 772):
        raise ValueError(f"it is {len(data)} bytes long")
    count = int.from_bytes(data[768:770], "big") if len(data) == 772 else 256
    if not 1 <= count <= 256:
        raise ValueError(f"its colour count is {count}")
    colors = np.frombuffer(data, np.uint8, count * 3).reshape(count, 3)
    if len(data) == 768:  # no count: black to the end is padding, or black once (the same nearest colours)
        coloured = np.flatnonzero(colors.any(axis=1))
        colors = colors[: min(coloured[-1] + 2 if len(coloured) else 1, 256)]
    return colors, None


def _write_act(palette: Palette, name: str) -> bytes:
    return palette.colors.tobytes().ljust(768, b"\0") + struct.pack(">HH", len(palette), 0xFFFF)


def _read_json(data: bytes):
    try:
        doc = json.loads(_text(data))
    except RecursionError:
        raise ValueError("it is nested too deeply") from None
    name = None
    if isinstance(doc, dict):
        name, doc = doc.get("name"), doc.get("colors")
    if not isinstance(doc, list) or not (name is None or isinstance(name, str)):
        raise ValueError('it is not a list of "#rrggbb" strings nor {"name": str, "colors": [...]}')
    return [_parse_hex(code, f"entry {i}") for i, code in enumerate(doc)], name


def _write_json(palette: Palette, name: str) -> bytes:
    return (json.dumps(palette.to_hex()) + "\n").encode()


def _read_hex(data: bytes):
    colors = []
    for number, line in enumerate(_text(data).splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith(";"):  # ';' starts a Paint.NET comment
            colors.append(_parse_hex(line[2:] if _ARGB.fullmatch(line) else line, f"line {number}"))
    return colors, None


def _write_hex(palette: Palette, name: str) -> bytes:
    return "".join(code[1:] + "\n" for code in palette.to_hex()).encode()


def _write_png(palette: Palette, name: str) -> bytes:
    k = len(palette)
    columns = min(k, _SWATCH)
    cells = np.full(-(-k // columns) * columns, k - 1, np.uint8)  # spare cells repeat the last colour
    cells[:k] = np.arange(k)
    return indexed_png(np.kron(cells.reshape(-1, columns), np.ones((_SWATCH, _SWATCH), np.uint8)), palette.colors)


def _read_png(data: bytes):
    if not data.startswith(SIGNATURE):
        raise ValueError("it does not start with the PNG signature")
    chunks, pos = {}, len(SIGNATURE)
    while pos < len(data) and b"IEND" not in chunks:
        length, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        body, crc = data[pos + 8:pos + 8 + length], data[pos + 8 + length:pos + 12 + length]
        if len(crc) < 4 or crc != zlib.crc32(kind + body).to_bytes(4, "big"):
            raise ValueError(f"its {kind.decode('latin-1')!r} chunk is truncated or corrupt")
        chunks.setdefault(kind, body)
        pos += 12 + length
    header = chunks.get(b"IHDR", b"")
    if len(header) != 13:
        raise ValueError("it has no valid IHDR chunk")
    if header[9] != 3:  # not an indexed PNG: `Palette.from_file` takes the colours of the picture
        return None, None
    table = chunks.get(b"PLTE", b"")
    if not table or len(table) % 3:
        raise ValueError("its PLTE chunk is missing or not whole RGB triples")
    return np.frombuffer(table, np.uint8).reshape(-1, 3), None


def _picture_colors(path: Path) -> np.ndarray:
    """Distinct colours of the picture in ``path`` (but its wholly transparent pixels), in order of first
    appearance."""
    # Decoding pictures, with the pixel limit, is the sources' job. Imported here, when a picture is read, so
    # `livequant.Palette` loads neither OpenCV nor FFmpeg: compute's one reach into I/O (see tests/test_layout.py).
    from livequant.sources import read_image

    pixels = read_image(str(path), opaque=True, managed=False)  # the values, as an indexed PNG's table
    unique, first = np.unique(pixels, axis=0, return_index=True)
    if len(unique) > MAX_COLORS:
        raise ValueError(f"it has {len(unique)} distinct colours, more than {MAX_COLORS}")
    return pixels[np.sort(first)]


class _Format(NamedTuple):
    title: str
    hint: str
    read: Callable[[bytes], tuple]
    write: Callable[[Palette, str], bytes]


_HEX_FORMAT = _Format("hex palette", "expected one rrggbb colour per line", _read_hex, _write_hex)
_FORMATS = {
    ".gpl": _Format("GIMP palette", "expected a 'GIMP Palette' line, then one 'R G B name' line per colour",
                    _read_gpl, _write_gpl),
    ".act": _Format("Adobe colour table", "expected 768 bytes (256 RGB triples), optionally followed by "
                    "a 2-byte colour count and a 2-byte transparent index", _read_act, _write_act),
    ".json": _Format("JSON palette", 'expected a list of "#rrggbb" strings or {"colors": [...]}',
                     _read_json, _write_json),
    ".hex": _HEX_FORMAT,
    ".txt": _HEX_FORMAT,
    ".png": _Format("PNG swatch", "use an indexed PNG or an image of at most 256 colours, or extract "
                    "a palette with `livequant palette IMAGE -o FILE`", _read_png, _write_png),
}


SUFFIXES = tuple(_FORMATS)
"""The suffixes of the palette file formats."""


def file_format(path: Path) -> _Format:
    """The palette file format of ``path``, by its suffix; `ValueError` naming the known ones if none."""
    try:
        return _FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: unknown palette file type {path.suffix!r}; "
                         f"use one of {', '.join(_FORMATS)}") from None
