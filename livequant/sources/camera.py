"""Cameras, through OpenCV: `Webcam` (a reader thread keeps the newest frame) and `list_cameras`."""

from __future__ import annotations

import os
import threading
import time

import cv2
import numpy as np

from livequant.errors import SourceError
from livequant.mailbox import END, Mailbox
from livequant.sources.base import BaseSource, quiet_opencv

__all__ = ["Webcam", "list_cameras"]


def list_cameras(max_index: int = 10) -> list[int]:
    """Return the camera indices in ``0 .. max_index - 1`` that can be opened."""
    found = []
    for index in range(max_index):
        with quiet_opencv():
            cap = cv2.VideoCapture(index)
            if cap.isOpened():
                found.append(index)
            cap.release()
    return found


class Webcam(BaseSource):
    """Frames from a camera (or anything ``cv2.VideoCapture`` opens), newest first.

    A reader thread grabs frames as fast as the device delivers them into a
    keep-newest `~livequant.mailbox.Mailbox` of one, so a slow consumer never
    sees stale frames; ``dropped`` counts the frames replaced before anyone
    read them.

    Parameters
    ----------
    index_or_path : int or str
        Camera index, or a device path, URL or file for ``cv2.VideoCapture``.
    size : (int, int), optional
        Requested ``(W, H)``; the device may pick another, see ``.size``.
    fps : float, optional
        Requested frame rate.
    timeout : float
        Seconds without a new frame after which iteration raises `SourceError`.
    """

    live = True

    def __init__(self, index_or_path=0, size=None, fps=None, *, timeout: float = 2.0):
        if isinstance(index_or_path, os.PathLike):
            index_or_path = os.fspath(index_or_path)
        if isinstance(index_or_path, bool) or not isinstance(index_or_path, (int, np.integer, str)):
            raise TypeError(f"index_or_path must be a camera index (an int) or a device path or URL, got "
                            f"{index_or_path!r}")
        if not isinstance(index_or_path, str) and index_or_path < 0:  # OpenCV crashes on some
            raise ValueError(f"camera index must be 0 or more, got {index_or_path}")
        self.path = index_or_path
        self._name = f"camera {index_or_path}" if not isinstance(index_or_path, str) else f"camera '{index_or_path}'"
        with quiet_opencv():
            cap = cv2.VideoCapture(index_or_path)
        if not cap.isOpened():
            raise SourceError(
                f"cannot open {self._name}: no such device; list cameras with `livequant preview --list-cameras`, "
                "or play the built-in test pattern with `livequant preview test`"
            )
        if size is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if fps is not None:
            cap.set(cv2.CAP_PROP_FPS, fps)
        self.size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.fps = cap.get(cv2.CAP_PROP_FPS) or None
        self._cap = cap
        self._timeout = timeout
        self._frames = Mailbox(1, keep_newest=True)
        self._thread = None

    @property
    def dropped(self) -> int:
        """Frames replaced by a newer one before they were read."""
        return self._frames.dropped

    def _stalled(self) -> SourceError:
        return SourceError(
            f"{self._name} stopped delivering frames (nothing for {self._timeout:g} s); "
            "check that it is connected and not used by another program"
        )

    def _read(self, t0: float):
        """``(frame, time)`` as the device delivers them, until `close` or a stall of ``timeout`` seconds."""
        last_ok = time.monotonic()
        while not self._frames.cancelled:
            ok, bgr = self._cap.read()
            now = time.monotonic()
            if ok:
                last_ok = now
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), now - t0
            elif now - last_ok > self._timeout:
                raise self._stalled()
            else:
                time.sleep(0.01)

    def __iter__(self):
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._frames.fill, args=(self._read(time.monotonic()),), name="livequant-webcam", daemon=True
            )
            self._thread.start()
        while True:
            try:
                item = self._frames.get(self._timeout)
            except TimeoutError:  # the device blocks in read()
                raise self._stalled() from None
            if item is END:  # closed
                return
            yield item

    def close(self) -> None:
        """Stop the reader thread (joining it) and release the device."""
        self._frames.cancel()
        if self._thread is not None:
            self._thread.join(self._timeout + 1.0)
        if self._thread is None or not self._thread.is_alive():
            self._cap.release()
