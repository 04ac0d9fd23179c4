"""Run frames from a source through a quantizer into sinks: threads, drop policy, stats.

A reader thread pulls frames from the source into a `Mailbox`. A live source
(a camera, a live test pattern) hands over only its newest frame: frames that
arrive while the previous one is being quantized are dropped and counted, so
the output never lags; its palette refits land when they are ready
(`Quantizer` with ``background=True``). A file source is never dropped from,
and its palette track is computed ahead: a planner thread runs
`Quantizer.plan` on the frames in order while the frame loop maps earlier
ones with `Quantizer.apply`, so the output is exactly the synchronous
`Quantizer`'s, whatever the timing, and fits overlap mapping.

File sinks are written by a writer thread, so encoding overlaps quantizing
too. Interactive sinks (``interactive = True``, such as
`~livequant.sinks.Preview`) are written from the calling thread instead,
because window toolkits and `~livequant.quantizer.Quantizer.configure` want
the frame loop's thread.

Ctrl-C and SIGTERM stop the frame loop between two frames: while `run`
runs in the main thread, their handlers only note them, and the first is
raised (a ``KeyboardInterrupt``) once every thread has stopped. Raised where
it lands, it could leave a lock held and the other threads waiting forever.
"""

from __future__ import annotations

import collections
import contextlib
import signal
import statistics
import threading
import time
from dataclasses import dataclass, field

from livequant.frames import FpsCounter, check_count, check_opaque

from livequant.mailbox import END, Mailbox

__all__ = ["Stats", "end_at", "run"]

_WINDOW = 2048  # frames over which the per-stage medians are taken
_AHEAD = 8  # frames the palette track may run ahead of the frame loop
_POLL = 0.1  # seconds the frame loop waits for a frame before it looks for a signal again
#: A live frame waits for its refit up to half its interval less this, what showing and mapping it may take:
#: at 25 fps and faster, never; a slide shown for a second, up to 0.48 s (it was shown in the slide before's
#: palette, the fit landing 1 ms after).
SHOW_MARGIN = 0.02


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
    damaged : int
        Frames the source decoded with errors and kept as the decoder patched them.
    seconds : float
        Wall time from the first frame read to the last frame written.
    read_ms, quantize_ms, write_ms : float
        Median milliseconds per frame of each stage (over the last 2048 frames);
        reading a live source includes waiting for its next frame.
    latency_ms : float
        Median milliseconds from a frame's arrival from the source to its
        quantized result.
    refits : int
        Palettes that landed during the run (fresh starts included).
    palette_lag, palette_lag_max : float
        Median and largest number of frames from the frame a palette was
        fitted on to the first frame it was used for, over the palettes that
        landed. Always 0 for files (their palettes are computed ahead); for
        a live source, how far the palette trails the picture.
    recent_fps : float
        Frames per second over the last 30 frames (for a HUD or progress bar).
    """

    frames: int = 0
    dropped: int = 0
    undecodable: int = 0
    damaged: int = 0
    seconds: float = 0.0
    read_ms: float = 0.0
    quantize_ms: float = 0.0
    write_ms: float = 0.0
    latency_ms: float = 0.0
    refits: int = 0
    palette_lag: float = 0.0
    palette_lag_max: float = 0.0
    recent_fps: float = 0.0
    _samples: dict = field(default_factory=dict, repr=False, compare=False)
    _fps: FpsCounter = field(default_factory=FpsCounter, repr=False, compare=False)

    @property
    def fps(self) -> float:
        """Frames per second over the whole run."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def _add(self, stage: str, value: float) -> None:
        """Record one frame's ``value`` for ``stage``: seconds for ``read``, ``quantize``, ``write`` and
        ``latency``; frames for ``palette_lag``."""
        scale = 1 if stage == "palette_lag" else 1000
        self._samples.setdefault(stage, collections.deque(maxlen=_WINDOW)).append(value * scale)

    def _tick(self, now: float) -> None:
        self.recent_fps = self._fps.tick(now)

    def _summarize(self) -> None:
        for stage, samples in list(self._samples.items()):
            name = stage if stage == "palette_lag" else f"{stage}_ms"
            setattr(self, name, statistics.median(samples) if samples else 0.0)
        self.palette_lag_max = max(self._samples.get("palette_lag", [0.0]))


def _start(name: str, target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, name=f"livequant-{name}", daemon=True)
    thread.start()
    return thread


def _timed(source, stats: Stats):
    """``(frame, time, opaque, arrival)`` from ``source``, timing each read (``opaque`` None from pairs)."""
    frames = iter(source)
    try:
        while True:
            start = time.perf_counter()
            item = next(frames, None)
            arrival = time.perf_counter()
            if item is None:
                return
            stats._add("read", arrival - start)
            if not (isinstance(item, tuple) and len(item) in (2, 3)):
                raise TypeError(f"a source must yield (frame, time) pairs, got {type(item).__name__}; pair each "
                                "frame with its time in seconds")
            frame, t, *opaque = item
            opaque = check_opaque(opaque[0] if opaque else None, frame, "a source's third item, opaque,")
            yield frame, t, opaque, arrival
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


def _after_the_first_shown(items, shown: threading.Event, source):
    """``items``, holding back the second until the first is ``shown``; a paced source (`resync`) then paces the
    rest from there. A file previewed from a fresh process lost its first 0.6-0.8 s: paced while the window
    opened and the first frame was quantized, those frames were dropped as stale."""
    items = iter(items)
    for item in items:
        yield item
        break
    shown.wait()
    resync = getattr(source, "resync", None)
    if resync is not None:
        resync()
    yield from items


def _planned(inbox: Mailbox, quantizer):
    """``(frame, time, opaque, arrival, step)``: each frame with the palette the track gives it, in order."""
    for frame, t, opaque, arrival in inbox:
        yield frame, t, opaque, arrival, quantizer.plan(frame)


def _write_all(inbox: Mailbox, sinks, stats: Stats) -> None:
    """Write every frame of ``inbox`` to the sinks; on a sink's error, cancel with it."""
    try:
        for qframe in inbox:
            _write(sinks, qframe, stats)
    except BaseException as error:  # raised in the frame loop by its next put, or after the run
        inbox.cancel(error)


def _join(*threads) -> None:
    """Wait for ``threads``, so none outlives `run` and none still reads the source or writes a sink while the
    caller closes it."""
    for thread in threads:
        thread.join()


@contextlib.contextmanager
def _signals_held():
    """Within, Ctrl-C and SIGTERM are noted in the list yielded instead of raised; the first is raised on leaving.

    Only in the main thread (where Python runs signal handlers), and only for signals that Python handles (a
    SIGTERM left to the operating system still ends the process at once).
    """
    caught: list = []
    held = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            if callable(signal.getsignal(signum)):
                held[signum] = signal.signal(signum, lambda signum, frame: caught.append((signum, frame)))
    try:
        yield caught
    finally:
        for signum, handler in held.items():
            signal.signal(signum, handler)
        if caught:
            signum, frame = caught[0]
            held[signum](signum, frame)  # raises, as it would have when the signal came


def _next(inbox: Mailbox, caught: list, waiting_sinks: list):
    """The next item of ``inbox`` (`END` once it ran out), or None once a signal is ``caught`` or a sink asks
    to quit. Looked for every `_POLL` s of waiting, in which each of ``waiting_sinks`` that can is kept
    responsive with ``idle()`` (a window reads its keys)."""
    while not caught and not _quit_requested(waiting_sinks):
        try:
            return inbox.get(timeout=_POLL)
        except TimeoutError:
            for sink in waiting_sinks:
                if hasattr(sink, "idle"):
                    sink.idle()
    return None


def _quit_requested(sinks) -> bool:
    return any(getattr(sink, "quit_requested", False) for sink in sinks)


def _write(sinks, qframe, stats: Stats) -> None:
    start = time.perf_counter()
    for sink in sinks:
        sink.write(qframe)
    stats._add("write", time.perf_counter() - start)


def run(source, quantizer, sinks, *, max_frames: int | None = None, on_frame=None) -> Stats:
    """Quantize every frame of ``source`` and write it to each of ``sinks``.

    Stops when the source ends, after ``max_frames``, or when a sink sets
    ``quit_requested``; then a source's ``stop()``, where it has one, ends a
    wait for its next frame at once (a paced file, a live test pattern). All
    threads are joined before it returns or raises.
    Opening and closing the source and sinks is the caller's job (use them as
    context managers, so a ``KeyboardInterrupt`` raised here still finishes
    the files, as the sinks do for it).

    Parameters
    ----------
    source : iterable of ((H, W, 3) uint8 ndarray, float)
        An open source from `livequant.sources`, or anything yielding
        ``(frame, time)`` pairs, or ``(frame, time, opaque)`` triples whose
        mask (`livequant.frames.split_alpha`) goes on to the sinks. A true
        ``source.live`` drops stale frames and calls `Quantizer.process`
        (create the quantizer with ``background=True`` so a frame never waits
        for a fit); otherwise the palette track runs ahead and the output
        equals the synchronous one.
    quantizer : livequant.quantizer.Quantizer
    sinks : sequence of sinks
        Objects with ``write(qframe)``; see `livequant.sinks`. A writer thread
        writes them, unless one is ``interactive`` (a window): then all are
        written from the calling thread, and while it waits for a frame, those
        with an ``idle()`` method have it called every 0.1 s (a window takes
        its keys).
    max_frames : int, optional
        Stop after this many frames.
    on_frame : callable, optional
        ``on_frame(qframe, stats)``, called in the calling thread after each
        frame has been handed to the sinks (a progress bar, a contact sheet).

    Returns
    -------
    Stats
    """
    check_count(max_frames, "max_frames")
    if not callable(getattr(quantizer, "process", None)):
        raise TypeError(f"quantizer must be a Quantizer, got {type(quantizer).__name__}")
    if callable(getattr(sinks, "write", None)):
        raise TypeError(f"sinks must be a list of sinks, got one {type(sinks).__name__}; give [sink]")
    with _signals_held() as caught:
        return _run(source, quantizer, list(sinks), max_frames, on_frame, caught)


def _run(source, quantizer, sinks: list, max_frames: int | None, on_frame, caught: list) -> Stats:
    """`run`'s threads and frame loop; stops at the next frame once a signal is ``caught``."""
    live = bool(getattr(source, "live", False))
    stats = Stats()
    refits_before = quantizer.stats["refits"]
    frames = Mailbox(1 if live else 4, keep_newest=live)
    first_shown = threading.Event()
    items = _after_the_first_shown(_timed(source, stats), first_shown, source) if live else _timed(source, stats)
    threads = [_start("reader", frames.fill, items)]
    planned = None
    if not live:
        planned = Mailbox(_AHEAD)
        threads.append(_start("planner", planned.fill, _planned(frames, quantizer)))
    interactive = any(getattr(sink, "interactive", False) for sink in sinks)
    written = None
    if not interactive:
        written = Mailbox(1 if live else 4)
        threads.append(_start("writer", _write_all, written, sinks, stats))
    inbox = frames if planned is None else planned
    start = time.perf_counter()
    shown_at = None  # the time of the live frame before
    ran_out = False  # the source ended (not max_frames, a quit or a signal)
    try:
        while max_frames is None or stats.frames < max_frames:
            item = _next(inbox, caught, sinks if written is None else [])
            if item is END or item is None:
                ran_out = item is END
                break
            begin = time.perf_counter()
            if live:
                frame, t, opaque, arrival = item
                qframe = quantizer.process(frame, t, opaque, wait=_fit_wait(t, shown_at))
                shown_at = t
            else:
                frame, t, opaque, arrival, step = item
                qframe = quantizer.apply(frame, step, t, opaque)
            done = time.perf_counter()
            stats._add("quantize", done - begin)
            stats._add("latency", done - arrival)
            if qframe.event:
                stats._add("palette_lag", qframe.palette_lag)
            if written is None:
                _write(sinks, qframe, stats)
            else:
                written.put(qframe)
            first_shown.set()
            stats.frames += 1
            stats._tick(time.perf_counter())
            stats.dropped = frames.dropped + getattr(source, "dropped", 0)
            if on_frame is not None:
                on_frame(qframe, stats)
            if _quit_requested(sinks):
                break
    finally:
        first_shown.set()  # the reader may be holding the second frame back
        frames.cancel()
        if hasattr(source, "stop"):
            source.stop()  # a paced source's wait for its next frame ends now
        if planned is not None:
            planned.cancel()
        if written is not None:
            written.close()
        _join(*threads)
        stats.seconds = time.perf_counter() - start
        stats.dropped = frames.dropped + getattr(source, "dropped", 0)
        stats.undecodable = getattr(source, "undecodable", 0)
        stats.damaged = getattr(source, "damaged", 0)
        stats.refits = quantizer.stats["refits"] - refits_before
        stats._summarize()
    if written is not None and written.error is not None:
        raise written.error  # a sink's error on the last frames
    end = getattr(source, "end_time", None) if ran_out and stats.frames else None
    if end is not None:
        end_at(sinks, end)
    return stats


def _fit_wait(t: float | None, before: float | None) -> float:
    """How long a live frame at ``t`` may wait for its refit: half the time since the frame ``before``, less
    `SHOW_MARGIN` (none at 25 fps and faster, or where either time is not known)."""
    if t is None or before is None:
        return 0.0
    return max(0.0, (t - before) / 2 - SHOW_MARGIN)


def end_at(sinks, time: float) -> None:
    """Tell the sinks that have an ``end_at`` method that the last frame shows until ``time`` (seconds):
    where the source ends, once it ran out."""
    for sink in sinks:
        if hasattr(sink, "end_at"):
            sink.end_at(time)
