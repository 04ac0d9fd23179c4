"""The one frame format inside livequant, its checks, and conversions at the edges.

A frame is an ``np.ndarray`` of shape ``(H, W, 3)``, dtype ``uint8``, RGB,
C-contiguous. Sources convert whatever they read into that once; sinks take it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["QuantizedFrame", "check_frame", "flatten_alpha", "to_rgb8"]


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
        raise TypeError(f"{name} must be a numpy uint8 array (H, W, 3), got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise TypeError(
            f"{name} must be uint8 RGB (H, W, 3), got dtype {frame.dtype}; "
            "convert with to_rgb8() or (x * 255).astype(np.uint8)"
        )
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"{name} must be uint8 RGB of shape (H, W, 3), got shape {frame.shape}")
    return np.ascontiguousarray(frame)


def flatten_alpha(rgba: np.ndarray, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Composite an ``(H, W, 4) uint8`` RGBA image over a solid background.

    Returns
    -------
    (H, W, 3) uint8 ndarray
    """
    alpha = rgba[..., 3:4].astype(np.uint16)
    bg = np.asarray(background, dtype=np.uint16)
    out = (rgba[..., :3].astype(np.uint16) * alpha + bg * (255 - alpha) + 127) // 255
    return np.ascontiguousarray(out.astype(np.uint8))


def to_rgb8(image: np.ndarray, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
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
    time : float
        Presentation time in seconds from the start of the source.
    source : (H, W, 3) uint8 ndarray or None
        The input frame, for before/after views.
    event : str
        ``""`` when the palette is the previous frame's; ``"refit"`` when a
        refit landed (slots kept); ``"fresh"`` when the palette starts afresh
        (first frame, scene cut, new size; the temporal hold starts again).
    palette_lag : int
        Frames from the one the palette was fitted on to this one: 0 when
        fitted on this very frame (files), more for live sources.
    """

    rgb: np.ndarray
    indices: np.ndarray
    palette: object
    time: float = 0.0
    source: np.ndarray | None = None
    event: str = ""
    palette_lag: int = 0
