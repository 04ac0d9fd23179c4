"""Adapters between the stages: a source resized, re-timed or paced; a sink fed enlarged frames.

>>> with adapt(VideoFile("in.mp4"), size=(320, 180), fps=10) as source:  # doctest: +SKIP
...     stats = run(source, quantizer, [enlarge(GifWriter("out.gif"), 4)])
"""

from __future__ import annotations

import cv2  # before av (through sources): PyAV's bundled libxcb loaded first makes OpenCV windows hang (PyAV#978)

from livequant.frames import QuantizedFrame, check_fps
from livequant.sources import AnimatedWebP, Images, Pacer, VideoFile, resize, resize_opaque

__all__ = ["adapt", "enlarge"]


def adapt(source, *, size=None, fps=None, paced: bool = False):
    """``source`` with its frames resized, re-timed to a constant rate, or paced to real time.

    Parameters
    ----------
    source : source
        An open source (see `livequant.sources`); the result has its attributes
        and closes it on ``__exit__``.
    size : (int, int), optional
        ``(W, H)`` to resize to with swscale (area averaging when shrinking); a
        `~livequant.sources.VideoFile` resizes in its decoder, so no full-size
        RGB frame is made, and `~livequant.sources.Images` as it reads (both
        with their transparency, where they keep it). The result's ``size`` is
        this size.
    fps : float, optional
        Constant output rate: tick ``n`` at ``t0 + n / fps`` shows the newest
        frame at or before it, so frames are dropped or repeated.
    paced : bool
        Deliver frames no faster than their timestamps, like a camera; the
        result is then ``live`` (a slow consumer makes `run` drop frames).

    Both go by the frames' times: a frame without one (None) comes ``1 / source.fps`` after the frame before
    (the first at 0), and without a ``source.fps`` it is a `ValueError`. A source's ``(frame, time, opaque)``
    triples (transparency kept) stay triples, the mask resized with the frame.

    Returns
    -------
    source
    """
    if fps is not None:
        check_fps(fps)
    return _Adapted(source, size, fps, paced)


class _Adapted:
    def __init__(self, source, size, fps, paced):
        self._source, self._fps, self._paced = source, fps, paced
        self._size = None  # resized here, for sources without a decoder that can
        if size is not None:
            self.size = (int(size[0]), int(size[1]))
            if isinstance(source, (VideoFile, Images, AnimatedWebP)):
                source.scale(self.size)
            else:
                self._size = self.size
        self.live = paced or bool(getattr(source, "live", False))
        self._pacer = Pacer()

    def __getattr__(self, name):
        return getattr(self._source, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self._source.close()

    def __iter__(self):
        frames = iter(self._source)
        if self._fps or self._paced:
            frames = _timed(frames, getattr(self._source, "fps", None))
        if self._size is not None:
            frames = ((resize(frame, self._size), t, *(resize_opaque(o, self._size) for o in opaque))
                      for frame, t, *opaque in frames)
        if self._fps:
            frames = _retime(frames, self._fps, lambda: getattr(self._source, "end_time", None))
        pacer = self._pacer = Pacer()
        for item in frames:
            if self._paced and not pacer.wait(item[1]):
                return
            yield item

    def resync(self) -> None:
        """Pace the frames after the one last given from now (`livequant.pipeline.run` calls this, from the
        reader's thread, once the first frame is shown)."""
        self._pacer.resync()

    def stop(self) -> None:
        """End the frames now, from another thread: a paced wait ends at once (`livequant.pipeline.run` calls
        this when it stops)."""
        self._pacer.stop()
        stop = getattr(self._source, "stop", None)
        if stop is not None:
            stop()


def _timed(frames, fps: float | None):
    """``frames`` with each missing time (None) set ``1 / fps`` after the time before, the first at 0."""
    last = None
    for n, (frame, t, *opaque) in enumerate(frames, 1):
        if t is None:
            if not fps or fps <= 0:
                raise ValueError(f"frame {n} of the source has no time, and re-timing or pacing goes by frame "
                                 "times; yield (frame, seconds) pairs, or give the source an fps attribute")
            t = 0.0 if last is None else last + 1 / fps
        last = t
        yield frame, t, *opaque


def _retime(frames, fps: float, end_time):
    """Yield ``(frame, t0 + n / fps)`` for n = 0, 1, ... (with the frame's ``opaque`` after it, for triples):
    each tick shows the newest frame at or before it; the last frame lasts until ``end_time()`` (asked once the
    frames ran out), or when that is None as long as the interval before it."""
    n, previous, t0, last, interval = 0, None, None, None, 1 / fps
    for frame, t, *opaque in frames:
        t0 = t if t0 is None else t0
        while previous is not None and t0 + n / fps < t - 1e-6:
            yield previous[0], t0 + n / fps, *previous[1]
            n += 1
        interval = t - last if last is not None else interval
        previous, last = (frame, opaque), t
    if previous is None:
        return
    end = end_time()
    end = last + interval if end is None or end <= last else end
    while t0 + n / fps < end - 1e-6:
        yield previous[0], t0 + n / fps, *previous[1]
        n += 1


def enlarge(sink, factor: int, size: tuple[int, int] | None = None):
    """``sink`` receiving each quantized frame enlarged ``factor`` times with hard pixel edges.

    With frames quantized at a reduced size, this gives the pixel-art look.
    ``size`` ``(width, height)``, at most the enlarged size, cuts each enlarged frame to it (its right and
    bottom blocks then show in part). ``factor`` 1 returns ``sink`` itself.
    """
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be an integer >= 1, got {factor!r}")
    return sink if factor == 1 else _Enlarged(sink, factor, size)


class _Enlarged:
    def __init__(self, sink, factor: int, size: tuple[int, int] | None):
        self._sink, self._factor, self._size = sink, factor, size
        self.interactive = sink.interactive

    def end_at(self, time: float) -> None:
        """Pass the last frame's end on (see `livequant.frames.Sink`)."""
        if hasattr(self._sink, "end_at"):
            self._sink.end_at(time)

    @property
    def quit_requested(self) -> bool:
        """Whether the sink asks to stop (a preview window closed, see `livequant.pipeline.run`)."""
        return getattr(self._sink, "quit_requested", False)

    def idle(self) -> None:
        """Keep the sink responsive while no frame comes (a window reads its keys)."""
        if hasattr(self._sink, "idle"):
            self._sink.idle()

    def write(self, qframe: QuantizedFrame) -> None:
        h, w = qframe.indices.shape
        size = (w * self._factor, h * self._factor)
        # 13x faster than colors[indices]
        planes = [cv2.resize(plane, size, interpolation=cv2.INTER_NEAREST_EXACT)
                  for plane in (qframe.indices, qframe.rgb, qframe.opaque) if plane is not None]
        if self._size is not None:
            width, height = self._size
            planes = [plane[:height, :width].copy() for plane in planes]  # C-contiguous
        indices, rgb, *opaque = planes
        self._sink.write(QuantizedFrame(rgb, indices, qframe.palette, qframe.time,
                                        opaque=opaque[0].view(bool) if opaque else None))
