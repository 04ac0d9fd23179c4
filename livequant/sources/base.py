"""What every source shares: the pixel limit, standard input, a base class, and OpenCV's and C libraries' output
kept off the terminal.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import stat
import sys
import tempfile

import cv2
import numpy as np

from livequant.errors import SourceError

__all__ = ["BaseSource", "IMAGE_SUFFIXES", "MAX_PIXELS", "PIPED_ANIMATIONS", "SEQUENCE_NUMBER", "STDIN", "c_stderr",
           "check_limit", "check_max_pixels", "damage_note", "is_pipe", "megapixels", "quiet_opencv"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
#: The frame number in the name of a picture sequence FFmpeg reads as a video (its image2 demuxer).
SEQUENCE_NUMBER = re.compile(r"%0?\d*d")
MAX_PIXELS = 100_000_000
"""Default limit on the pixels of one picture (100 megapixels, 10000 x 10000): a file claiming more is
refused before it is decoded, so a small malicious file (a decompression bomb) cannot exhaust memory."""


def megapixels(pixels: float) -> str:
    """``pixels`` in megapixels as a person reads them: 0.00307, 4.2, 1,600, 3.2e+21."""
    if not math.isfinite(pixels) or pixels >= 1e15:
        return f"{pixels / 1e6:.2g}"
    return f"{pixels / 1e6:,.0f}" if pixels >= 10_000_000 else f"{pixels / 1e6:.3g}"


def check_limit(kind: str, path, width: int, height: int, max_pixels: int) -> None:
    """Refuse (`SourceError`) a ``kind`` ("video", "image") of ``width`` x ``height`` pixels over ``max_pixels``."""
    if width * height > max_pixels:
        raise SourceError(
            f"cannot read {kind} '{path}': it is {width}x{height} pixels ({megapixels(width * height)} megapixels), "
            f"over the limit of {megapixels(max_pixels)} megapixels; if you trust the file, raise the limit with "
            "--max-pixels"
        )


def check_max_pixels(max_pixels: int) -> None:
    """Refuse (ValueError) a ``max_pixels`` argument that is not a positive integer."""
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
#: Standard input, as FFmpeg names it (the command line's ``-``).
STDIN = "pipe:0"
#: What the errors for standard input say of animations, which FFmpeg here cannot read from a pipe.
PIPED_ANIMATIONS = "an animated PNG or WebP cannot come through a pipe: give the file"


def is_pipe(path) -> bool:
    """Whether FFmpeg reads ``path`` from a pipe, which can be read once and not seeked: ``pipe:0`` (standard
    input), a named pipe, or a shell's process substitution (``<(...)``, ``/dev/fd/N``)."""
    path = os.fspath(path)
    if path.startswith("pipe:"):
        return True
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def damage_note(undecodable: int, damaged: int) -> str:
    """What a user is told of a source's ``undecodable`` and ``damaged`` frames ("" when there are none)."""
    said = []
    if undecodable:
        said.append("1 frame could not be decoded and was skipped" if undecodable == 1 else
                    f"{undecodable} frames could not be decoded and were skipped")
    if damaged:
        said.append("1 frame had decoding errors and is shown as the decoder patched it" if damaged == 1 else
                    f"{damaged} frames had decoding errors and are shown as the decoder patched them")
    return f"{' and '.join(said)}; the input may be damaged" if said else ""


class BaseSource:
    """Defaults shared by the sources; ``close`` releases what the source holds."""

    fps: float | None = None
    size: tuple[int, int] | None = None
    live = False
    frame_count: int | None = None
    undecodable = 0
    damaged = 0
    path: object = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Release the device or file; iteration ends."""


@contextlib.contextmanager
def quiet_opencv():
    """Silence OpenCV's log lines while probing devices that may not exist, or formats it may not encode."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


@contextlib.contextmanager
def c_stderr():
    """Collect what C libraries (libpng, libjpeg, libxcb) print on file descriptor 2 meanwhile.

    Yields a list that receives the text once the block ends; nothing is collected where fd 2 is closed.
    """
    said: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:
        yield said
        return
    if sys.stderr is not None:
        sys.stderr.flush()
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            said.append(caught.read().decode(errors="replace"))
