"""Pictures: `ImageWriter`, one file or one a frame: an indexed PNG of the palette's colours, else what OpenCV
encodes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from livequant.errors import SinkError, appeared_meanwhile, write_failed
from livequant.files import move_into_place
from livequant.frames import QuantizedFrame, join_alpha, on_background
from livequant.png import indexed_png
from livequant.sinks.base import NUMBERED, FileSink, check_target, partial_output
from livequant.sources.base import quiet_opencv

__all__ = ["ALPHA_PICTURES", "ImageWriter", "write_still"]

log = logging.getLogger("livequant")

#: Picture suffixes whose files keep transparency (`write_still`).
ALPHA_PICTURES = (".png", ".webp", ".tif", ".tiff")


def _encoded(suffix: str, bgr: np.ndarray) -> bytes | None:
    """``bgr`` encoded by OpenCV as a ``suffix`` image, or None where OpenCV cannot (in memory: OpenCV never
    sees a file name, which it mishandles when the name is not UTF-8)."""
    if not suffix.isascii():
        return None
    params = []
    if suffix == ".avif":  # quality 100 keeps every pixel; OpenCV's default, 95, made 1,486 colours of 8
        quality = getattr(cv2, "IMWRITE_AVIF_QUALITY", None)
        if quality is None:
            return None
        params = [quality, 100]
    if suffix == ".jp2":  # 1000 keeps every pixel; OpenCV's default made 31,602 colours of 16 at 512x512
        params = [cv2.IMWRITE_JPEG2000_COMPRESSION_X1000, 1000]
    try:
        with quiet_opencv():
            ok, data = cv2.imencode(suffix, bgr, params)
    except cv2.error:
        return None
    return data.tobytes() if ok else None


def write_still(path: Path, qframe: QuantizedFrame, name: Path | None = None) -> None:
    """Write one frame to ``path`` (errors name ``name``, the output the user asked for): an indexed PNG of
    the palette's colours for ``.png`` (`livequant.png`), else whatever OpenCV encodes for the suffix; with
    its transparency (`QuantizedFrame.opaque`) where the format holds it (PNG, WebP, TIFF; a PNG of 256
    colours and transparent pixels is RGBA)."""
    suffix = path.suffix.lower()
    data = indexed_png(qframe.indices, qframe.palette.colors, qframe.opaque) if suffix == ".png" else None
    if data is None:
        if qframe.opaque is not None and suffix in ALPHA_PICTURES:
            bgr = cv2.cvtColor(join_alpha(qframe.rgb, qframe.opaque), cv2.COLOR_RGBA2BGRA)
        else:
            bgr = cv2.cvtColor(on_background(qframe.rgb, qframe.opaque), cv2.COLOR_RGB2BGR)
        data = _encoded(suffix, bgr)
    if data is None:
        raise SinkError(f"cannot write image '{name or path}': OpenCV cannot encode this picture as {suffix}; "
                        "write .png instead")
    path.write_bytes(data)


class ImageWriter(FileSink):
    """Write frames as images: PNG with a palette (exact colours, small) or any format OpenCV writes.

    A path with a ``{}``/``{:04d}`` or ``%d``/``%04d`` pattern receives a
    sequence numbered from 1, one file per frame (if writing fails, or is
    aborted, the files it made are removed; an interrupt keeps the frames so
    far); a plain path receives the last frame written, or with
    ``one_frame`` refuses a second frame.

    Parameters
    ----------
    path : str or os.PathLike
        Output file or pattern; the suffix picks the format.
    overwrite : bool
        Replace existing files.
    inputs : sequence of str or os.PathLike
        Files no output may be (compared by device and inode).
    one_frame : bool
        Raise `SinkError` when a second frame arrives for a plain path, rather than keep the last.

    Raises
    ------
    ValueError
        If OpenCV cannot encode a colour picture as the suffix's type, or the pattern cannot number files.
    """

    timed = False  # pictures: no frame times

    def __init__(self, path, overwrite: bool = False, inputs=(), *, one_frame: bool = False):
        text = os.fspath(path)
        suffix = Path(text).suffix.lower()
        if suffix != ".png" and _encoded(suffix, np.zeros((64, 64, 3), np.uint8)) is None:  # .jp2 needs 32x32
            raise ValueError(f"cannot write '{text}': OpenCV here cannot write colour pictures as "
                             f"'{suffix or 'no suffix'}'; use .png, .jpg, .bmp, .tif, .webp or .ppm")
        self._pattern = text if NUMBERED.search(text) else None
        self._one_frame = one_frame
        self._last = None
        self._created: list[Path] = []  # the sequence's files this writer made new (removed if it fails)
        if self._pattern:
            try:
                first = self._name(1)
            except (KeyError, IndexError, ValueError, TypeError):
                raise ValueError(f"cannot number files with the pattern '{text}'; use one {{}} or %04d, such as "
                                 "frame-%04d.png") from None
        super().__init__(first if self._pattern else text, overwrite, inputs)

    @property
    def written(self) -> str:
        """The output's name, or for a sequence of several files the first and the last: 'f-0001.png .. f-0036.png'."""
        if self._pattern is None or self.frames < 2:
            return str(self.path)
        return f"{self.path} .. {self._name(self.frames)}"

    def _name(self, number: int) -> Path:
        return Path(self._pattern.format(number) if "%" not in self._pattern else self._pattern % number)

    def _write(self, qframe: QuantizedFrame) -> None:
        if self._pattern is None:
            if self._one_frame and self._last is not None:
                stem, suffix = self.path.with_suffix(""), self.path.suffix
                raise SinkError(f"'{self.path}' holds one picture but the input has more frames; write "
                                f"{stem}.apng, .webp or .gif for an animation, or {stem}-%04d{suffix} for one "
                                "file per frame")
            self._last = qframe
            return
        target = self._name(self.frames + 1)
        if self.frames:
            check_target(target, self._overwrite, self._inputs)
        new = not target.exists()
        tmp = partial_output(target)
        try:
            write_still(tmp, qframe, target)
            move_into_place(tmp, target, replace=self._overwrite)
        except BaseException as e:
            tmp.unlink(missing_ok=True)
            if isinstance(e, FileExistsError):
                raise appeared_meanwhile(target) from None
            if isinstance(e, OSError) and not isinstance(e, SinkError):
                raise write_failed("write", target, e) from e  # the file that failed, not the first
            raise
        if new:
            self._created.append(target)

    def _finish(self) -> None:
        if self._pattern is None:
            write_still(self._tmp, self._last, self.path)
        elif self._name(self.frames + 1).exists():
            log.warning(f"'{self._name(self.frames + 1)}' and any after it are from an earlier run, not this "
                        f"one's {self.frames} frames; remove them before using the sequence")

    def _release(self) -> None:
        """A sequence that fails midway leaves none of the files it made (those it replaced with
        ``overwrite`` are gone either way)."""
        for path in self._created:
            path.unlink(missing_ok=True)
