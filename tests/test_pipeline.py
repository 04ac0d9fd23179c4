"""The pipeline runs real sources into real sinks: clips written with PyAV, the live test pattern."""

import os
import signal
import threading
import time

import av
import cv2
import numpy as np
import pytest

from conftest import Broken, Collect, Frames, Window
from livequant.adapters import adapt, enlarge
from livequant.errors import SinkError, SourceError
from livequant.pipeline import Stats, run
from livequant.quantizer import Quantizer
from livequant.sinks import VideoWriter
from livequant.sources import TestPattern, VideoFile


class Failing(Collect):
    def write(self, qframe) -> None:
        if len(self.qframes) == 2:
            raise SinkError("cannot write 'out.mp4': disk full")
        super().write(qframe)


@pytest.fixture
def no_new_threads():
    """Fails the test if it leaves a thread behind (the quantizers are closed by then)."""
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) - before == set()


@pytest.mark.usefixtures("no_new_threads")
def test_a_file_source_never_drops_and_keeps_times(clip):
    sink = Collect(delay=0.01)  # slower than decoding: the reader waits, it does not drop
    with VideoFile(clip.path) as source, Quantizer(8, background=True) as quantizer:
        stats = run(source, quantizer, [sink])
    assert stats.frames == len(sink.qframes) == clip.frames and stats.dropped == 0
    np.testing.assert_allclose([q.time for q in sink.qframes], np.arange(clip.frames) / clip.fps, atol=1e-3)
    assert sink.threads == {"livequant-writer"}
    assert all(len(np.unique(q.rgb.reshape(-1, 3), axis=0)) <= 8 for q in sink.qframes)


@pytest.mark.usefixtures("no_new_threads")
def test_a_live_source_drops_stale_frames_for_a_slow_sink():
    sink = Collect(delay=0.04)
    with Quantizer(4, background=True) as quantizer:
        stats = run(TestPattern((64, 48), fps=100, frames=40, live=True), quantizer, [sink])
    assert stats.dropped > 5
    assert stats.frames + stats.dropped == 40  # each frame was either shown or replaced by a newer one
    times = [q.time for q in sink.qframes]
    assert times == sorted(times) and times[-1] == pytest.approx(0.39)  # the newest frame is never lost


@pytest.mark.usefixtures("no_new_threads")
def test_stats_are_filled(clip):
    seen = []
    with VideoFile(clip.path) as source, Quantizer(8, background=True) as quantizer:
        stats = run(source, quantizer, [Collect()], on_frame=lambda qframe, stats: seen.append(stats.frames))
    assert isinstance(stats, Stats) and seen == list(range(1, clip.frames + 1))
    assert stats.seconds > 0 and stats.fps == pytest.approx(stats.frames / stats.seconds)
    assert min(stats.read_ms, stats.quantize_ms, stats.write_ms, stats.latency_ms, stats.recent_fps) > 0
    assert stats.refits >= 1 and stats.undecodable == 0


@pytest.mark.usefixtures("no_new_threads")
def test_an_interactive_sink_runs_in_the_calling_thread_and_can_quit():
    window = Window(quit_after=5)
    with Quantizer(4) as quantizer:  # run() works without a background worker too
        stats = run(TestPattern((64, 48), frames=50), quantizer, [window])
    assert stats.frames == 5 and window.threads == {threading.current_thread().name}


def test_max_frames_stops_early():
    with Quantizer(palette="gameboy") as quantizer:
        stats = run(TestPattern((32, 32)), quantizer, [Collect()], max_frames=7)  # an endless source
    assert stats.frames == 7


@pytest.mark.usefixtures("no_new_threads")
@pytest.mark.parametrize(("source", "sink", "error"), [
    (Broken(), Collect(), "stopped delivering frames"),
    (TestPattern((32, 32), frames=10), Failing(), "disk full"),
])
def test_errors_of_the_source_or_a_sink_reach_the_caller(source, sink, error):
    with Quantizer(palette="cga1") as quantizer, pytest.raises((SourceError, SinkError), match=error):
        run(source, quantizer, [sink])


@pytest.mark.usefixtures("no_new_threads")
def test_keyboard_interrupt_leaves_a_decodable_file(tmp_path, clip):
    path = tmp_path / "interrupted.mp4"

    def interrupt(qframe, stats):
        if stats.frames == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), VideoFile(clip.path) as source, \
            Quantizer(8, background=True) as quantizer, VideoWriter(path, clip.fps, audio_from=clip.path) as sink:
        run(source, quantizer, [sink], on_frame=interrupt)
    with av.open(str(path)) as container:
        assert len(list(container.decode(video=0))) == sink.frames == 5
    assert not list(tmp_path.glob(".*"))  # no partial file left



class _Stopped(Exception):
    """What the SIGTERM handler of `test_a_signal_stops_run_between_frames` raises (the command line's does too)."""


def _raise_stopped(signum, frame):
    raise _Stopped


@pytest.mark.usefixtures("no_new_threads")
@pytest.mark.parametrize(("signum", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, _Stopped)])
def test_a_signal_stops_run_between_frames(clip, signum, raised):
    # raised wherever the frame loop was, it could leave a lock held and the threads waiting on it forever
    sink = Collect()
    callbacks_finished = []

    def signal_self(qframe, stats):
        if stats.frames == 3:
            os.kill(os.getpid(), signum)
            time.sleep(0.05)  # Python runs the handler here at the latest
        callbacks_finished.append(stats.frames)

    # as the command line has them (SIGINT may come ignored from the shell that started the tests)
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
                signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_stopped)}
    try:
        with pytest.raises(raised), VideoFile(clip.path) as source, Quantizer(8) as quantizer:
            run(source, quantizer, [sink], on_frame=signal_self)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers are back
        assert signal.getsignal(signal.SIGTERM) is _raise_stopped
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    assert callbacks_finished == [1, 2, 3] and len(sink.qframes) == 3  # the third frame whole, then no more


class _Dawdling(Frames):
    """A file source whose frames are 30 s apart and which says where it ends, paced to real time by `adapt`."""

    end_time = 90.0

    def __init__(self):
        super().__init__([0.0, 30.0, 60.0])


class _WaitingWindow(Window):
    """An interactive sink that asks to quit on its third ``idle()`` call, as a window whose q key is pressed
    while no frame comes."""

    def __init__(self):
        super().__init__(quit_after=100)
        self.idle_threads = set()
        self.idles = 0
        self.end = None

    def idle(self) -> None:
        self.idle_threads.add(threading.current_thread().name)
        self.idles += 1
        self.quit_requested = self.idles >= 3

    def end_at(self, time: float) -> None:
        self.end = time


@pytest.mark.usefixtures("no_new_threads")
@pytest.mark.parametrize("slow_source", [lambda: TestPattern((64, 48), fps=1 / 30, live=True),
                                         lambda: adapt(_Dawdling(), paced=True)], ids=["live pattern", "paced file"])
def test_a_quit_while_a_slow_source_waits_stops_at_once(slow_source):
    window = _WaitingWindow()
    with Quantizer(4, background=True) as quantizer:
        started = time.monotonic()
        stats = run(slow_source(), quantizer, [window], max_frames=2)
    assert time.monotonic() - started < 10  # the next frame was 30 s away
    assert stats.frames == 1 and window.idles == 3 and window.idle_threads == {threading.current_thread().name}
    assert window.end is None  # stopped early: the last frame does not last to the source's end


@pytest.mark.usefixtures("no_new_threads")
def test_a_signal_while_a_slow_source_waits_stops_at_once():
    timers = []

    def signal_soon(qframe, stats):
        timers.append(threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)))
        timers[-1].start()

    sink = _WaitingWindow()
    sink.interactive = False  # written by the writer thread: never idle
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), Quantizer(4, background=True) as quantizer:
            started = time.monotonic()
            run(adapt(_Dawdling(), paced=True), quantizer, [sink], on_frame=signal_soon)
    finally:
        signal.signal(signal.SIGINT, previous)
        for timer in timers:
            timer.join()
    assert time.monotonic() - started < 10
    assert len(sink.qframes) == 1 and sink.idles == 0 and sink.end is None


# adapters


@pytest.mark.parametrize(("times", "fps", "shown"), [
    ([0.0, 0.1, 0.2, 0.3], 20, [0, 0, 1, 1, 2, 2, 3, 3]),  # doubled
    ([0.0, 0.05, 0.1, 0.15, 0.2, 0.25], 10, [0, 2, 4]),  # halved
    ([1.0, 1.1, 1.5, 1.6], 10, [0, 1, 1, 1, 1, 2, 3]),  # variable rate: the gap is filled, times stay on the clock
])
def test_adapt_retimes_to_a_constant_rate(times, fps, shown):
    with adapt(Frames(times), fps=fps) as source:
        out = list(source)
    assert [int(frame[0, 0, 0]) for frame, _ in out] == shown
    np.testing.assert_allclose([t for _, t in out], times[0] + np.arange(len(shown)) / fps)


def test_adapt_places_frames_without_times_by_the_source_rate():
    """A source may yield None for a time (as `Quantizer.process` takes one): re-timing and pacing failed."""
    untimed = Frames([None] * 4)
    untimed.fps = 10.0
    with adapt(untimed, fps=20) as source:
        out = list(source)
    assert [int(frame[0, 0, 0]) for frame, _ in out] == [0, 0, 1, 1, 2, 2, 3, 3]
    np.testing.assert_allclose([t for _, t in out], np.arange(8) / 20)
    with adapt(Frames([0.0, None, None]), paced=True) as source, pytest.raises(
            ValueError, match="frame 2 of the source has no time, and re-timing or pacing goes by frame times; "
                              r"yield \(frame, seconds\) pairs, or give the source an fps attribute"):
        list(source)


def test_adapt_resizes_paces_and_keeps_the_source_attributes():
    frames = Frames([0.0, 0.05, 0.1], size=(64, 48))
    with adapt(frames, size=(16, 12), paced=True) as source:
        assert source.live and source.size == (16, 12)  # the size it produces; live is new
        start = time.monotonic()
        shapes = [frame.shape for frame, _ in source]
        assert time.monotonic() - start >= 0.09  # the last frame came no earlier than its time
    assert shapes == [(12, 16, 3)] * 3 and frames.closed


@pytest.mark.parametrize("rotation", [0, 90])
def test_adapt_resizes_a_video_in_its_decoder(make_clip, rotation):
    clip = make_clip("r.mp4", size=(64, 48), frames=6, rotation=rotation)
    with VideoFile(clip.path) as full:
        upright = full.size
        expected = [cv2.resize(frame, (upright[0] // 2, upright[1] // 2), interpolation=cv2.INTER_AREA)
                    for frame, _ in full]
    video = VideoFile(clip.path)
    with adapt(video, size=(upright[0] // 2, upright[1] // 2)) as source:
        assert source.size == video.size == (upright[0] // 2, upright[1] // 2)  # the decoder makes that size
        frames = [frame for frame, _ in source]
    assert [frame.shape for frame in frames] == [e.shape for e in expected]
    assert all(frame.flags.c_contiguous for frame in frames)
    assert max(np.abs(f.astype(int) - e).mean() for f, e in zip(frames, expected)) < 4  # swscale ~ OpenCV's area


def test_enlarge_repeats_pixels(make_qframe):
    sink = Collect()
    enlarge(sink, 3).write(make_qframe(np.array([[0, 1], [2, 3]]), time=0.5))
    qframe = sink.qframes[0]
    assert qframe.indices.tolist() == np.repeat(np.repeat([[0, 1], [2, 3]], 3, 0), 3, 1).tolist()
    np.testing.assert_array_equal(qframe.rgb, qframe.palette.colors[qframe.indices])
    assert qframe.time == 0.5 and enlarge(sink, 1) is sink


def test_a_time_that_is_no_number_is_refused_in_one_line():
    """A file source's times went to the writers unchecked: "cannot convert float NaN to integer"."""
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="time must be a finite number of seconds or None"):
            run(Frames([0.0, bad]), Quantizer(8), [Collect()])


def test_a_paced_file_is_paced_from_when_its_first_frame_shows(clip):
    """A window that takes 0.5 s to show the first frame (a fresh process: the window, the first kernels' calls)
    made a paced 12 fps file drop the 6 frames paced meanwhile; the second now waits for the first to show."""

    class SlowToOpen(Window):
        def write(self, qframe) -> None:
            if not self.qframes:
                time.sleep(0.5)
            super().write(qframe)

    window = SlowToOpen(quit_after=clip.frames)
    with adapt(VideoFile(clip.path), paced=True) as source, Quantizer(4, background=True) as quantizer:
        stats = run(source, quantizer, [window])
    assert stats.dropped <= 3, stats  # 16 of 24 before
