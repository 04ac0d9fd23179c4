"""The built-in test pattern, made in code, and `Pacer`, which plays frames in real time."""

from __future__ import annotations

import numbers
import threading
import time

import cv2
import numpy as np

from livequant.frames import check_count, check_fps
from livequant.sources.base import BaseSource

__all__ = ["Pacer", "TestPattern"]


class Pacer:
    """Waits until each frame's time comes in real time; `stop` ends a wait at once.

    The first frame's time is now; a later time ``t`` comes ``t`` minus the
    first's seconds after it.
    """

    def __init__(self):
        self._stopped = threading.Event()
        self._clock = None
        self._last: float | None = None  # the time last waited for

    def wait(self, t: float) -> bool:
        """Sleep until time ``t`` of the stream comes; False if `stop` was called (at once, not at ``t``)."""
        now = time.monotonic()
        self._clock = now - t if self._clock is None else self._clock
        self._last = t
        return not self._stopped.wait(max(0.0, self._clock + t - now))

    def resync(self) -> None:
        """The time last waited for comes now: later ones count from here."""
        if self._last is not None:
            self._clock = time.monotonic() - self._last

    def stop(self) -> None:
        """End the wait under way, and every later one, at once."""
        self._stopped.set()


class TestPattern(BaseSource):
    """A moving synthetic scene, generated in code and cheap to make.

    A precomputed background (hue and brightness gradients, colour bars, fine
    stripes, text) with a few coloured shapes moving over it and a frame counter.

    Parameters
    ----------
    size : (int, int)
        ``(W, H)`` of the frames.
    fps : float
        Frame rate: frame ``i`` has time ``i / fps``.
    frames : int, optional
        Number of frames; endless if None.
    live : bool
        Pace the frames to ``fps`` in real time, like a camera (`stop` ends
        the frames from another thread).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, size=(1280, 720), fps: float = 30.0, frames: int | None = None, live: bool = False):
        if not (isinstance(size, (tuple, list)) and len(size) == 2
                and all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in size)):
            raise TypeError(f"size must be (width, height) in whole pixels, got {size!r}")
        w, h = size
        if w < 16 or h < 16:
            raise ValueError(f"size must be at least (16, 16), got {size}")
        check_fps(fps)
        check_count(frames, "frames")
        self.path = "test"
        self.size = (int(w), int(h))
        self.fps = float(fps)
        self.frame_count = frames
        self.live = live
        self._background = _background(int(w), int(h))
        self._sprites = _sprites(max(4, h // 8))
        self._pacer = Pacer()

    def _frame(self, t: float, index: int) -> np.ndarray:
        frame = self._background.copy()
        h, w = frame.shape[:2]
        for k, (patch, mask) in enumerate(self._sprites):
            ph, pw = mask.shape
            x = int((w - pw) * (0.5 + 0.45 * np.sin(t * (0.7 + 0.3 * k) + 2.0 * k)))
            y = int((h - ph) * (0.5 + 0.45 * np.cos(t * (0.5 + 0.2 * k) + k)))
            np.copyto(frame[y : y + ph, x : x + pw], patch, where=mask[..., None])
        scale = h / 720
        cv2.putText(frame, f"{index:06d}  {t:7.2f} s", (int(20 * scale), int(60 * scale)),
                    cv2.FONT_HERSHEY_SIMPLEX, 1.2 * scale, (255, 255, 255), max(1, round(2 * scale)), cv2.LINE_AA)
        return frame

    def __iter__(self):
        pacer = self._pacer = Pacer()
        index = 0
        while self.frame_count is None or index < self.frame_count:
            t = index / self.fps
            if self.live and not pacer.wait(t):
                return
            yield self._frame(t, index), t
            index += 1

    def stop(self) -> None:
        """End a live pattern's frames now, from another thread (`livequant.pipeline.run` does when it stops)."""
        self._pacer.stop()


def _background(w: int, h: int) -> np.ndarray:
    """Gradients, colour bars, fine stripes, a gray ramp and text, as an RGB frame."""
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    hsv = np.empty((h, w, 3), np.float32)
    hsv[..., 0] = 300.0 * x
    hsv[..., 1] = 0.25 + 0.6 * y
    hsv[..., 2] = 0.95 - 0.55 * y
    frame = (cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0 + 0.5).astype(np.uint8)
    bars = np.array([[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0],
                     [255, 0, 255], [255, 0, 0], [0, 0, 255], [0, 0, 0]], np.uint8)
    bx0, by0, by1 = w // 20, h * 3 // 4, h * 7 // 8
    frame[by0:by1, bx0 : w // 2] = bars[np.arange(w // 2 - bx0) * 8 // (w // 2 - bx0)]
    frame[by1:, :] = (np.arange(w) * 256 // w).astype(np.uint8)[:, None]
    stripes = ((np.arange(w // 4)[None, :] + np.arange(by1 - by0)[:, None]) // 2 % 2 * 255).astype(np.uint8)
    frame[by0:by1, w * 5 // 8 : w * 5 // 8 + w // 4] = stripes[..., None]
    scale = h / 720
    for i, line in enumerate(("livequant test pattern", "The quick brown fox jumps over the lazy dog 0123456789")):
        cv2.putText(frame, line, (int(20 * scale), int((140 + 40 * i) * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                    (1.0 - 0.3 * i) * scale, (20, 20, 20), max(1, round(2 * scale)), cv2.LINE_AA)
    return frame


def _sprites(d: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Small ``(patch, mask)`` pairs: a disc, a square and a triangle in saturated colours."""
    yy, xx = np.mgrid[:d, :d]
    shapes = [
        ((yy - d / 2 + 0.5) ** 2 + (xx - d / 2 + 0.5) ** 2 < (d / 2) ** 2, (230, 40, 40)),
        (np.ones((d, d), bool), (40, 200, 60)),
        (np.abs(xx - d / 2) < yy / 2, (40, 80, 230)),
    ]
    return [(np.broadcast_to(np.array(c, np.uint8), (d, d, 3)), mask) for mask, c in shapes]
