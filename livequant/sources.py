"""Where frames come from: cameras, video files, still images and a test pattern.

Every source is a context manager and an iterable of ``(frame, time)`` pairs:
``frame`` is an ``(H, W, 3) uint8`` RGB C-contiguous array and ``time`` its
presentation time in seconds. Sources share the attributes ``fps``, ``size``
(``(W, H)``), ``live``, ``frame_count``, ``undecodable`` and ``path``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import threading
import time
from pathlib import Path

import cv2  # before av: PyAV's bundled libxcb loaded first makes OpenCV windows hang (PyAV#978)
import av  # isort: skip
import numpy as np

from livequant.errors import SourceError
from livequant.frames import to_rgb8

__all__ = ["Images", "TestPattern", "VideoFile", "Webcam", "list_cameras", "open_source"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


class _Source:
    """Defaults shared by the sources; ``close`` releases what the source holds."""

    fps: float | None = None
    size: tuple[int, int] | None = None
    live = False
    frame_count: int | None = None
    undecodable = 0
    path: object = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Release the device or file; iteration ends."""


@contextlib.contextmanager
def _quiet_opencv():
    """Silence OpenCV's log lines while probing devices that may not exist."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def list_cameras(max_index: int = 10) -> list[int]:
    """Return the camera indices in ``0 .. max_index - 1`` that can be opened."""
    found = []
    for index in range(max_index):
        with _quiet_opencv():
            cap = cv2.VideoCapture(index)
            if cap.isOpened():
                found.append(index)
            cap.release()
    return found


class Webcam(_Source):
    """Frames from a camera (or anything ``cv2.VideoCapture`` opens), newest first.

    A reader thread grabs frames as fast as the device delivers them and keeps
    only the newest, so a slow consumer never sees stale frames; ``dropped``
    counts the frames replaced before anyone read them.

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
        self.path = index_or_path
        self._name = f"camera {index_or_path}" if isinstance(index_or_path, int) else f"camera '{index_or_path}'"
        with _quiet_opencv():
            cap = cv2.VideoCapture(index_or_path)
        if not cap.isOpened():
            raise SourceError(
                f"cannot open {self._name}: no such device; list cameras with `livequant preview --list-cameras`"
            )
        if size is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if fps is not None:
            cap.set(cv2.CAP_PROP_FPS, fps)
        self.size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.fps = cap.get(cv2.CAP_PROP_FPS) or None
        self.dropped = 0
        self._cap = cap
        self._timeout = timeout
        self._cond = threading.Condition()
        self._latest = None
        self._ended = False
        self._stop = threading.Event()
        self._thread = None

    def _read_loop(self, t0: float) -> None:
        last_ok = time.monotonic()
        while not self._stop.is_set():
            ok, bgr = self._cap.read()
            now = time.monotonic()
            if ok:
                last_ok = now
                item = (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), now - t0)
            elif now - last_ok > self._timeout:
                break
            else:
                time.sleep(0.01)
                continue
            with self._cond:
                self.dropped += self._latest is not None
                self._latest = item
                self._cond.notify_all()
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def __iter__(self):
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._read_loop, args=(time.monotonic(),), name="livequant-webcam", daemon=True
            )
            self._thread.start()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._latest is not None or self._ended, self._timeout)
                item, self._latest = self._latest, None
            if item is not None:
                yield item
            elif self._stop.is_set():
                return
            else:
                raise SourceError(
                    f"{self._name} stopped delivering frames (nothing for {self._timeout:g} s); "
                    "check that it is connected and not used by another program"
                )

    def close(self) -> None:
        """Stop the reader thread (joining it) and release the device."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._timeout + 1.0)
        if self._thread is None or not self._thread.is_alive():
            self._cap.release()


class VideoFile(_Source):
    """Frames of a video file or URL, decoded with PyAV.

    Every frame is kept (none dropped) with its true timestamp, so variable
    frame rate survives; rotation metadata is applied. Packets that fail to
    decode are skipped and counted in ``undecodable``.

    Parameters
    ----------
    path_or_url : str or os.PathLike
        Anything FFmpeg opens.
    start : float, optional
        Seconds on the file's timeline to start at.
    duration : float, optional
        Seconds to read from ``start`` (or from the first frame).

    Attributes
    ----------
    has_audio : bool
        Whether the file has an audio stream.
    """

    def __init__(self, path_or_url, start: float | None = None, duration: float | None = None):
        if start is not None and start < 0:
            raise ValueError(f"start must be >= 0 seconds, got {start}")
        if duration is not None and duration <= 0:
            raise ValueError(f"duration must be > 0 seconds, got {duration}")
        self.path = os.fspath(path_or_url)
        try:
            self._container = av.open(self.path)
        except av.error.FFmpegError as e:
            hint = "check the path" if isinstance(e, FileNotFoundError) else "is it a video file?"
            raise SourceError(f"cannot open video '{self.path}': {e.strerror}; {hint}") from e
        if not self._container.streams.video:
            self._container.close()
            raise SourceError(f"'{self.path}' has no video stream; give a video file")
        self._stream = stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else None
        if start is None and duration is None:
            self.frame_count = stream.frames or None
        self.has_audio = bool(self._container.streams.audio)
        if start:
            self._container.seek(int(start / stream.time_base), stream=stream)
        self._frames = self._decode(start, duration)
        self._first = next(self._frames, None)
        if self._first is None:
            self.close()
            cause = "no frame could be decoded" if self.undecodable else "no frames"
            where = f" from {start:g} s on" if start else ""
            raise SourceError(f"cannot read video '{self.path}': {cause}{where}; is the file complete?")
        self.size = (self._first[0].shape[1], self._first[0].shape[0])

    def _decoded(self):
        for packet in self._container.demux(self._stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                self.undecodable += 1
                continue
            yield from frames

    def _decode(self, start, duration):
        end = None if duration is None or start is None else start + duration
        for index, frame in enumerate(self._decoded()):
            t = frame.time if frame.time is not None else index / (self.fps or 1.0)
            if start is not None and t < start - 1e-6:
                continue
            if end is None and duration is not None:
                end = t + duration
            if end is not None and t >= end - 1e-6:
                return
            rgb = frame.to_ndarray(format="rgb24")  # may be a padded, strided view
            if frame.rotation:
                rgb = np.rot90(rgb, round(frame.rotation / 90))
            yield np.ascontiguousarray(rgb), t

    def __iter__(self):
        if self._first is not None:
            first, self._first = self._first, None
            yield first
            yield from self._frames

    def close(self) -> None:
        """Close the file."""
        self._frames.close()
        self._container.close()


def _read_image(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise SourceError(f"cannot read image '{path}': no such file")
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SourceError(f"cannot read image '{path}': not an image, or a format OpenCV cannot read")
    if image.ndim == 3 and image.shape[2] in (3, 4):
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    return to_rgb8(image)


class Images(_Source):
    """One still image or a sequence of them, shown at ``fps``.

    Parameters
    ----------
    paths_or_glob : str, os.PathLike or sequence of them
        A file, a glob pattern (``"frames/*.png"``, sorted by name) or a list of files.
        Alpha is flattened over white and 16-bit images are scaled to 8 bits.
    fps : float
        Rate at which the sequence plays: frame ``i`` has time ``i / fps``.
    """

    def __init__(self, paths_or_glob, fps: float = 10.0):
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if isinstance(paths_or_glob, (str, os.PathLike)):
            self.path = os.fspath(paths_or_glob)
            paths = sorted(glob.glob(self.path)) if any(c in self.path for c in "*?[") else [self.path]
            if not paths:
                raise SourceError(f"no images match '{self.path}'; check the pattern")
        else:
            paths = [os.fspath(p) for p in paths_or_glob]
            if not paths:
                raise ValueError("paths_or_glob is an empty sequence; give at least one image")
            self.path = paths[0]
        self._paths = paths
        self.fps = float(fps)
        self.frame_count = len(paths)
        self._first = _read_image(paths[0])
        self.size = (self._first.shape[1], self._first.shape[0])

    def __iter__(self):
        for i, path in enumerate(self._paths):
            yield (self._first if i == 0 else _read_image(path)), i / self.fps


class TestPattern(_Source):
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
        Pace the frames to ``fps`` in real time, like a camera.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, size=(1280, 720), fps: float = 30.0, frames: int | None = None, live: bool = False):
        w, h = size
        if w < 16 or h < 16:
            raise ValueError(f"size must be at least (16, 16), got {size}")
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if frames is not None and frames < 0:
            raise ValueError(f"frames must be >= 0 or None, got {frames}")
        self.path = "test"
        self.size = (int(w), int(h))
        self.fps = float(fps)
        self.frame_count = frames
        self.live = live
        self._background = _background(int(w), int(h))
        self._sprites = _sprites(max(4, h // 8))

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
        t0 = time.monotonic()
        index = 0
        while self.frame_count is None or index < self.frame_count:
            t = index / self.fps
            if self.live:
                time.sleep(max(0.0, t0 + t - time.monotonic()))
            yield self._frame(t, index), t
            index += 1


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


def open_source(spec, **kw) -> _Source:
    """Open a source from a command-line style ``spec``.

    ``"test"`` gives a `TestPattern`, an int or digit string a `Webcam`, a path
    with an image suffix or a glob pattern `Images`, anything else a `VideoFile`.
    Keyword arguments go to the source's constructor.
    """
    if isinstance(spec, int) and not isinstance(spec, bool):
        return Webcam(spec, **kw)
    text = os.fspath(spec)
    if text.isdigit():
        return Webcam(int(text), **kw)
    if text == "test":
        return TestPattern(**kw)
    if Path(text).suffix.lower() in IMAGE_SUFFIXES:
        return Images(text, **kw)
    return VideoFile(text, **kw)
