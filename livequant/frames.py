"""The one frame format inside livequant, its checks, conversions at the edges, and what sources and sinks are.

A frame is an ``np.ndarray`` of shape ``(H, W, 3)``, dtype ``uint8``, RGB,
C-contiguous. Sources convert whatever they read into that once; sinks take it.
"""

from __future__ import annotations

import collections
import math
import numbers
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from livequant.palette import Palette

__all__ = ["ALPHA_CUT", "CHECKER_GREYS", "FpsCounter", "QuantizedFrame", "Sink", "Source", "WHITE", "check_fps",
           "check_frame", "check_opaque", "flatten_alpha", "join_alpha", "on_background", "on_checkerboard",
           "split_alpha", "to_rgb8"]

#: A pixel of at least this alpha shows, with its own colour; one under it is transparent. GIF's transparency is
#: all or nothing; FFmpeg's ``paletteuse`` cuts at 128 too.
ALPHA_CUT = 128
#: Where transparent pixels are flattened, unless told otherwise.
WHITE = (255, 255, 255)
#: The light and dark squares behind transparent pixels on screen (`on_checkerboard`), as image editors show them.
CHECKER_GREYS = ((204, 204, 204), (153, 153, 153))


def check_fps(fps) -> None:
    """Raise ValueError (TypeError for a non-number) unless ``fps`` is a finite number of frames per second
    above 0."""
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real):
        raise TypeError(f"fps must be a number, got {fps!r}")
    if not 0 < fps < math.inf:
        raise ValueError(f"fps must be a finite number > 0, got {fps}")


def check_count(count, name: str) -> None:
    """Raise ValueError unless ``count`` (a number of frames, ``name``) is None or a whole number >= 0."""
    if count is not None and (isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0):
        raise ValueError(f"{name} must be a whole number >= 0 or None, got {count!r}")


def check_frame(frame: object, name: str = "frame") -> np.ndarray:
    """Return ``frame`` if it is a ``(H, W, 3) uint8`` array, else raise.

    Parameters
    ----------
    frame : object
        The value to check.
    name : str
        The argument name used in the error message.

    Returns
    -------
    (H, W, 3) uint8 ndarray
        The same frame, made C-contiguous if it was not.

    Raises
    ------
    TypeError
        If ``frame`` is not a numpy array or not ``uint8``.
    ValueError
        If the shape is not ``(H, W, 3)`` with ``H, W >= 1``.
    """
    if not isinstance(frame, np.ndarray):
        pillow = "; a Pillow image: numpy.asarray(image.convert('RGB'))" if hasattr(frame, "getbands") else ""
        raise TypeError(f"{name} must be a numpy uint8 array (H, W, 3), got {type(frame).__name__}{pillow}")
    if frame.dtype != np.uint8:
        raise TypeError(
            f"{name} must be uint8 RGB (H, W, 3), got dtype {frame.dtype}; "
            "convert with livequant.frames.to_rgb8() (floats in 0..1, 16-bit, bool, gray, RGBA)"
        )
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        convertible = frame.size and (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (1, 4)))
        fix = "; convert gray or RGBA with livequant.frames.to_rgb8()" if convertible else ""
        raise ValueError(f"{name} must be uint8 RGB of shape (H, W, 3), got shape {frame.shape}{fix}")
    return np.ascontiguousarray(frame)


def check_opaque(opaque: object, frame: np.ndarray, name: str = "opaque") -> np.ndarray | None:
    """Return ``opaque`` if it is None or an ``(H, W) bool`` array as large as ``frame``, else raise `ValueError`.

    Returns
    -------
    (H, W) bool ndarray or None
        The same mask, made C-contiguous if it was not.
    """
    if opaque is None:
        return None
    if not isinstance(opaque, np.ndarray) or opaque.dtype != bool or opaque.shape != frame.shape[:2]:
        got = f"{opaque.dtype} {opaque.shape}" if isinstance(opaque, np.ndarray) else type(opaque).__name__
        raise ValueError(f"{name} must be None or an (H, W) bool array as large as its frame, got {got}; "
                         "see livequant.frames.split_alpha")
    return np.ascontiguousarray(opaque)


def flatten_alpha(rgba: np.ndarray, background: tuple[int, int, int] = WHITE) -> np.ndarray:
    """Composite an ``(H, W, 4) uint8`` RGBA image over a solid background.

    Returns
    -------
    (H, W, 3) uint8 ndarray
    """
    alpha = rgba[..., 3:4].astype(np.uint16)
    bg = np.asarray(background, dtype=np.uint16)
    out = (rgba[..., :3].astype(np.uint16) * alpha + bg * (255 - alpha) + 127) // 255
    return np.ascontiguousarray(out.astype(np.uint8))


def split_alpha(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Split an ``(H, W, 4) uint8`` RGBA image into a frame and the pixels that show: ``(rgb, opaque)``.

    A pixel of alpha at least `ALPHA_CUT` shows, with its own colour (not
    blended with a background). The others take the colours of those that
    show, in turn in scan order, so a palette fitted to the frame sees the
    colours that show in the same proportions, and spends no entry on
    transparency; with none that shows, they are white.

    Returns
    -------
    rgb : (H, W, 3) uint8 ndarray
    opaque : (H, W) bool ndarray or None
        True where the pixel shows; None when every pixel does.
    """
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"split_alpha takes an (H, W, 4) uint8 RGBA image, got {rgba.dtype} of shape {rgba.shape}")
    opaque = rgba[..., 3] >= ALPHA_CUT
    rgb = np.ascontiguousarray(rgba[..., :3])
    if opaque.all():
        return rgb, None
    shown = rgb[opaque]
    hidden = ~opaque
    rgb[hidden] = shown[np.arange(hidden.sum()) % len(shown)] if len(shown) else 255
    return rgb, opaque


def join_alpha(rgb: np.ndarray, opaque: np.ndarray) -> np.ndarray:
    """The ``(H, W, 4) uint8`` RGBA image of a frame and the pixels that show (`split_alpha` the other way):
    alpha 255 where ``opaque``, else 0."""
    return np.dstack([rgb, opaque.view(np.uint8) * np.uint8(255)])


def on_background(rgb: np.ndarray, opaque: np.ndarray | None, background: tuple[int, int, int] = WHITE) -> np.ndarray:
    """``rgb`` with the pixels ``opaque`` leaves out (`split_alpha`) in ``background``: what a frame shows where
    its transparency cannot be kept; ``rgb`` itself where ``opaque`` is None."""
    if opaque is None:
        return rgb
    shown = rgb.copy()
    shown[~opaque] = background
    return shown


def on_checkerboard(rgb: np.ndarray, opaque: np.ndarray | None, square: int = 8) -> np.ndarray:
    """``rgb`` with the pixels ``opaque`` leaves out on a checkerboard of `CHECKER_GREYS`, squares of ``square``
    pixels from the top left: how a window shows transparency. ``rgb`` itself where ``opaque`` is None."""
    if opaque is None:
        return rgb
    h, w = opaque.shape
    dark = (np.arange(h)[:, None] // square + np.arange(w)[None, :] // square) % 2  # 0 light, 1 dark
    return np.where(opaque[..., None], rgb, np.asarray(CHECKER_GREYS, np.uint8)[dark])


def to_rgb8(image: np.ndarray, background: tuple[int, int, int] = WHITE) -> np.ndarray:
    """Convert a decoded image of common layouts to the frame format.

    Accepts gray ``(H, W)``, ``(H, W, 1)``, RGB ``(H, W, 3)`` and RGBA
    ``(H, W, 4)`` (alpha flattened over ``background``), in ``uint8`` or
    ``uint16`` (scaled to 8 bits) or float in ``[0, 1]``.

    Returns
    -------
    (H, W, 3) uint8 ndarray
    """
    a = np.asarray(image)
    if a.dtype == np.uint16:
        a = ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif a.dtype.kind == "f":
        a = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        raise TypeError(f"image dtype {a.dtype} is not supported; use uint8, uint16 or float in [0, 1]")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = flatten_alpha(a, background)
    elif not (a.ndim == 3 and a.shape[2] == 3):
        raise ValueError(f"image must be gray, RGB or RGBA, got shape {a.shape}")
    return np.ascontiguousarray(a)


@dataclass(frozen=True)
class QuantizedFrame:
    """One quantized frame as the sinks receive it.

    Attributes
    ----------
    rgb : (H, W, 3) uint8 ndarray
        The quantized picture.
    indices : (H, W) uint8 ndarray
        Index of each pixel into ``palette`` (``rgb == palette.colors[indices]``).
    palette : Palette
        The palette in force for this frame.
    time : float or None
        Presentation time in seconds from the start of the source; None: not
        known, and the file writers show the frame one frame interval
        (``1 / fps``) after the one before.
    source : (H, W, 3) uint8 ndarray or None
        The input frame, for before/after views.
    event : str
        ``""`` when the palette is the previous frame's; ``"refit"`` when a
        refit landed (slots kept); ``"fresh"`` when the palette starts afresh
        (first frame, scene cut, new size; the temporal hold starts again).
    palette_lag : int
        Frames from the one the palette was fitted on to this one: 0 when
        fitted on this very frame (files), more for live sources.
    opaque : (H, W) bool ndarray or None
        Which pixels show (True) and which are transparent (`split_alpha`);
        None: all show. Sinks that hold transparency (GIF, animated WebP and
        PNG, PNG, WebP and TIFF pictures) keep it; the others show it on white
        (`on_background`), the preview window on a checkerboard (`on_checkerboard`).
    """

    rgb: np.ndarray
    indices: np.ndarray
    palette: Palette
    time: float | None = None
    source: np.ndarray | None = None
    event: str = ""
    palette_lag: int = 0
    opaque: np.ndarray | None = None


class Source(Protocol):
    """What `livequant.pipeline.run` reads frames from (`livequant.sources` has cameras, files, images).

    Attributes
    ----------
    fps : float or None
        The nominal frame rate, if known.
    end_time : float or None, optional
        Once iteration has ended, when the last frame stops showing, if known.
    size : (int, int) or None
        ``(W, H)`` of the frames it yields, if known.
    live : bool
        True for a source that does not wait for its reader (a camera): `run`
        then keeps only its newest frame and drops the rest.
    """

    fps: float | None
    size: tuple[int, int] | None
    live: bool

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        """Yield ``(frame, time)``: an ``(H, W, 3) uint8`` RGB frame and its time in seconds; a source that
        keeps transparency yields ``(frame, time, opaque)``, ``opaque`` as `split_alpha` gives it."""

    def close(self) -> None:
        """Release the device or file; iteration ends."""


class Sink(Protocol):
    """What `livequant.pipeline.run` writes quantized frames to (`livequant.sinks` has files and a window).

    Attributes
    ----------
    interactive : bool
        True for a window: `run` writes it from the calling thread (where window
        toolkits want it) and stops once its ``quit_requested`` is true. File
        sinks are false and are written from a writer thread.

    A sink may also have ``end_at(time)``: once the source has run out, `run`
    calls it with when the last frame stops showing (the source's
    ``end_time``, where it has one), before the caller closes the sink.
    """

    interactive: bool

    def write(self, qframe: QuantizedFrame) -> None:
        """Take one quantized frame."""


class FpsCounter:
    """Frames per second as a moving average over the last ``window`` frames (for a HUD or progress line).

    Parameters
    ----------
    window : int
        Frames the rate is averaged over.
    """

    def __init__(self, window: int = 30):
        self._ticks: collections.deque[float] = collections.deque(maxlen=window)

    def tick(self, now: float | None = None) -> float:
        """Count a frame at ``now`` (default: `time.monotonic`) and return the rate over the window."""
        self._ticks.append(time.monotonic() if now is None else now)
        span = self._ticks[-1] - self._ticks[0]
        return (len(self._ticks) - 1) / span if span > 0 else 0.0
