"""Run frames from a source through a quantizer into sinks: threads, drop policy, stats.

A reader thread pulls frames from the source. A live source (a camera, a live
test pattern) hands over only its newest frame: frames that arrive while the
previous one is being quantized are dropped and counted, so the output never
lags. A file source is read into a small bounded queue instead, so decoding
overlaps quantizing and no frame is dropped.

File sinks are written by a writer thread through another bounded queue, so
encoding overlaps quantizing too, and a Ctrl-C (which Python delivers to the
main thread) never lands halfway through a write. Interactive sinks (those with
a ``quit_requested`` attribute, such as `~livequant.sinks.Preview`) are written
from the calling thread instead, because window toolkits and
`~livequant.quantizer.Quantizer.configure` want the frame loop's thread.
"""

from __future__ import annotations

import collections
import statistics
import threading
import time
from dataclasses import dataclass, field

from livequant.frames import FpsCounter

__all__ = ["Stats", "run"]

_WINDOW = 2048  # frames over which the per-stage medians are taken


@dataclass
class Stats:
    """What `run` measured; updated while it runs, final when it returns.

    Attributes
    ----------
    frames : int
        Frames quantized and handed to the sinks.
    dropped : int
        Frames of a live source replaced by a newer one before being quantized
        (a camera's own drops included).
    undecodable : int
        Frames the source could not decode and skipped.
    seconds : float
        Wall time from the first frame read to the last frame written.
    read_ms, quantize_ms, write_ms : float
        Median milliseconds per frame of each stage (over the last 2048 frames);
        reading a live source includes waiting for its next frame.
    latency_ms : float
        Median milliseconds from a frame's arrival from the source to its
        quantized result.
    refits : int
        Palette refits that landed during the run.
    recent_fps : float
        Frames per second over the last 30 frames (for a HUD or progress bar).
    """

    frames: int = 0
    dropped: int = 0
    undecodable: int = 0
    seconds: float = 0.0
    read_ms: float = 0.0
    quantize_ms: float = 0.0
    write_ms: float = 0.0
    latency_ms: float = 0.0
    refits: int = 0
    recent_fps: float = 0.0
    _samples: dict = field(default_factory=dict, repr=False, compare=False)
    _fps: FpsCounter = field(default_factory=FpsCounter, repr=False, compare=False)

    @property
    def fps(self) -> float:
        """Frames per second over the whole run."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def _add(self, stage: str, seconds: float) -> None:
        """Record one frame's time in ``stage`` (``read``, ``quantize``, ``write`` or ``latency``)."""
        self._samples.setdefault(stage, collections.deque(maxlen=_WINDOW)).append(seconds * 1000)

    def _tick(self, now: float) -> None:
        self.recent_fps = self._fps.tick(now)

    def _summarize(self) -> None:
        for stage, samples in list(self._samples.items()):
            setattr(self, f"{stage}_ms", statistics.median(samples) if samples else 0.0)


class _Reader(threading.Thread):
    """Iterates a source in a thread. ``keep_newest``: a one-frame mailbox that counts replaced frames;
    otherwise a queue of ``capacity`` frames that makes the reader wait."""

    def __init__(self, source, stats: Stats, *, keep_newest: bool, capacity: int = 4):
        super().__init__(name="livequant-reader", daemon=True)
        self._source = source
        self._stats = stats
        self._keep_newest = keep_newest
        self._capacity = capacity
        self._items: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._ended = False
        self._error: BaseException | None = None
        self.dropped = 0

    def run(self) -> None:
        frames = iter(self._source)
        try:
            while True:
                start = time.perf_counter()
                item = next(frames, None)
                arrival = time.perf_counter()
                if item is None:
                    return
                self._stats._add("read", arrival - start)
                with self._cond:
                    if self._keep_newest and self._items:
                        self._items.popleft()
                        self.dropped += 1
                    self._cond.wait_for(lambda: len(self._items) < self._capacity or self._stopping)
                    if self._stopping:
                        return
                    self._items.append((*item, arrival))
                    self._cond.notify_all()
        except BaseException as error:  # handed to the frame loop, which raises it
            self._error = error
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def get(self):
        """The next ``(frame, time, arrival)``, or None at the end; raises what the source raised."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._ended)
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
        if self._error is not None:
            raise self._error
        return None

    def stop(self) -> None:
        """Ask the reader to stop after the frame it is reading; `_join` waits for it."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()


class _Writer(threading.Thread):
    """Writes quantized frames to sinks in a thread, through a queue of ``capacity`` frames."""

    def __init__(self, sinks, stats: Stats, capacity: int):
        super().__init__(name="livequant-writer", daemon=True)
        self._sinks = sinks
        self._stats = stats
        self._capacity = capacity
        self._items: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._error: BaseException | None = None

    def run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._items or self._closing)
                if not self._items:
                    return
                qframe = self._items[0]
            try:
                _write(self._sinks, qframe, self._stats)
            except BaseException as error:  # handed to the frame loop, which raises it
                with self._cond:
                    self._error = error
                    self._items.clear()
                    self._cond.notify_all()
                return
            with self._cond:
                self._items.popleft()
                self._cond.notify_all()

    def put(self, qframe) -> None:
        """Queue a frame, waiting while the queue is full; raises what a sink raised."""
        with self._cond:
            self._cond.wait_for(lambda: len(self._items) < self._capacity or self._error is not None)
            if self._error is None:
                self._items.append(qframe)
                self._cond.notify_all()
        self._raise()

    def close(self) -> None:
        """Ask the writer to stop once the queue is written; `_join` waits for it."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def _join(*threads) -> None:
    """Wait for ``threads`` even through Ctrl-C or SIGTERM (raised again after), so no thread outlives
    `run` and none still reads the source or writes a sink while the caller closes it."""
    interrupt = None
    for thread in threads:
        while thread is not None and thread.is_alive():
            try:
                thread.join()
            except KeyboardInterrupt as e:
                interrupt = e
    if interrupt is not None:
        raise interrupt


def _write(sinks, qframe, stats: Stats) -> None:
    start = time.perf_counter()
    for sink in sinks:
        sink.write(qframe)
    stats._add("write", time.perf_counter() - start)


def run(source, quantizer, sinks, *, max_frames: int | None = None, on_frame=None) -> Stats:
    """Quantize every frame of ``source`` and write it to each of ``sinks``.

    Stops when the source ends, after ``max_frames``, or when a sink sets
    ``quit_requested``. All threads are joined before it returns or raises.
    Opening and closing the source and sinks is the caller's job (use them as
    context managers, so a ``KeyboardInterrupt`` raised here still finishes
    the files, as the sinks do for it).

    Parameters
    ----------
    source : iterable of ((H, W, 3) uint8 ndarray, float)
        An open source from `livequant.sources`, or anything yielding
        ``(frame, time)`` pairs; a true ``source.live`` drops stale frames.
    quantizer : livequant.quantizer.Quantizer
        Create it with ``background=True`` so palette refits never hold up a frame.
    sinks : sequence of sinks
        Objects with ``write(qframe)``; see `livequant.sinks`. A writer thread
        writes them, unless one has ``quit_requested`` (a window): then all are
        written from the calling thread.
    max_frames : int, optional
        Stop after this many frames.
    on_frame : callable, optional
        ``on_frame(qframe, stats)``, called in the calling thread after each
        frame has been handed to the sinks (a progress bar, a contact sheet).

    Returns
    -------
    Stats
    """
    if max_frames is not None and max_frames < 0:
        raise ValueError(f"max_frames must be >= 0 or None, got {max_frames}")
    sinks = list(sinks)
    live = bool(getattr(source, "live", False))
    stats = Stats()
    refits_before = quantizer.stats["refits"]
    reader = _Reader(source, stats, keep_newest=live, capacity=1 if live else 4)
    interactive = any(hasattr(sink, "quit_requested") for sink in sinks)
    writer = None if interactive else _Writer(sinks, stats, capacity=1 if live else 4)
    start = time.perf_counter()
    reader.start()
    if writer is not None:
        writer.start()
    try:
        while max_frames is None or stats.frames < max_frames:
            item = reader.get()
            if item is None:
                break
            frame, t, arrival = item
            begin = time.perf_counter()
            qframe = quantizer.process(frame, t)
            done = time.perf_counter()
            stats._add("quantize", done - begin)
            stats._add("latency", done - arrival)
            if writer is None:
                _write(sinks, qframe, stats)
            else:
                writer.put(qframe)
            stats.frames += 1
            stats._tick(time.perf_counter())
            stats.dropped = reader.dropped + getattr(source, "dropped", 0)
            if on_frame is not None:
                on_frame(qframe, stats)
            if any(getattr(sink, "quit_requested", False) for sink in sinks):
                break
    finally:
        reader.stop()
        if writer is not None:
            writer.close()
        _join(reader, writer)
        stats.seconds = time.perf_counter() - start
        stats.dropped = reader.dropped + getattr(source, "dropped", 0)
        stats.undecodable = getattr(source, "undecodable", 0)
        stats.refits = quantizer.stats["refits"] - refits_before
        stats._summarize()
    if writer is not None:
        writer._raise()  # a sink's error on the last frames
    return stats
