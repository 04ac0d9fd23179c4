"""Frames and their masks resized as the decoder resizes them: swscale's area averaging when shrinking, bilinear
when enlarging; RGBA weighed by its alpha.
"""

from __future__ import annotations

import cv2  # before av: PyAV's bundled libxcb loaded first makes OpenCV windows hang (PyAV#978)
import av  # isort: skip
import numpy as np

from livequant.frames import ALPHA_CUT

__all__ = ["resize", "resize_opaque", "resize_rgba", "scale_options"]


def scale_options(old: tuple[int, int], new: tuple[int, int]) -> dict:
    """swscale options for `av.VideoFrame.reformat` from size ``old`` to ``new`` (each ``(W, H)``): area
    averaging when shrinking, bilinear when enlarging, nothing when the size stays."""
    if tuple(old) == tuple(new):
        return {}
    shrink = new[0] * new[1] < old[0] * old[1]
    return {"width": new[0], "height": new[1], "interpolation": "AREA" if shrink else "BILINEAR"}


def resize(frame: np.ndarray, size) -> np.ndarray:
    """``frame`` resized to ``size`` ``(W, H)`` with swscale (area averaging when shrinking, else bilinear).

    Returns
    -------
    (H, W, 3) uint8 ndarray
        ``frame`` itself when it already has that size.
    """
    options = scale_options((frame.shape[1], frame.shape[0]), size)
    if not options:
        return frame
    return np.ascontiguousarray(av.VideoFrame.from_ndarray(frame, format="rgb24").to_ndarray(**options))


def resize_rgba(rgba: np.ndarray, size) -> np.ndarray:
    """An ``(H, W, 4) uint8`` RGBA image resized to ``size`` ``(W, H)`` as `resize` does, with its colours
    weighed by their alpha (premultiplied), so that a transparent pixel's colour never bleeds into an edge."""
    old = (rgba.shape[1], rgba.shape[0])
    if tuple(old) == tuple(size):
        return rgba
    shrink = size[0] * size[1] < old[0] * old[1]
    alpha = rgba[..., 3:].astype(np.float32)
    weighed = np.concatenate([rgba[..., :3] * alpha, alpha], axis=2)
    scaled = cv2.resize(weighed, tuple(size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    coverage = scaled[..., 3:]
    colours = scaled[..., :3] / np.maximum(coverage, 1e-6)
    return np.ascontiguousarray(np.dstack([colours, coverage]).round().clip(0, 255).astype(np.uint8))


def resize_opaque(opaque: np.ndarray | None, size) -> np.ndarray | None:
    """A frame's ``opaque`` mask (`livequant.frames.split_alpha`) resized to ``size`` ``(W, H)`` as `resize`
    resizes the frame: a pixel shows where at least `ALPHA_CUT` of it did."""
    if opaque is None:
        return None
    options = scale_options((opaque.shape[1], opaque.shape[0]), size)
    if not options:
        return opaque
    coverage = av.VideoFrame.from_ndarray(opaque.view(np.uint8) * np.uint8(255), format="gray").to_ndarray(**options)
    shown = coverage >= ALPHA_CUT
    return None if shown.all() else np.ascontiguousarray(shown)
