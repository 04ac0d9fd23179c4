"""The palette track: file outputs equal the synchronous Quantizer whatever the timing; cuts start afresh;
live runs record how far the palette trails."""

from __future__ import annotations

import time

import av
import numpy as np
import pytest

from livequant.cli import main
from livequant.fit import PaletteFitter
from livequant.pipeline import run
from livequant.quantizer import Quantizer
from livequant.sinks import GifWriter, VideoWriter
from livequant.sources import TestPattern, VideoFile
from livequant.track import PaletteTrack, is_scene_cut, scene_cuts

CUT = 14  # the first frame of the second shot


def shot_frame(i: int, width: int = 96, height: int = 64) -> np.ndarray:
    """Frame ``i`` of a two-shot clip: a drifting warm gradient with a moving disc, then a cold, noisy scene."""
    y, x = np.mgrid[:height, :width].astype(np.float32)
    if i < CUT:
        frame = np.stack([180 + 60 * np.sin(x / 17 + i / 5), 90 + 50 * np.cos(y / 13), 40 + 2 * x / width * 30], -1)
        frame[(x - 10 - 4 * i) ** 2 + (y - 32) ** 2 < 80] = (250, 240, 60)
    else:
        noise = np.random.default_rng(i).normal(0, 3, (height, width, 1))
        frame = np.stack([30 + 40 * np.sin(y / 9 - i / 4), 80 + 60 * np.sin(x / 11), 200 - y], -1) + noise
        frame[20:40, 3 * (i - CUT) : 3 * (i - CUT) + 12] = (255, 255, 255)
    return np.clip(frame, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def two_shots(tmp_path_factory):
    """A lossless FFV1 clip of `shot_frame` pictures (28 frames, 12 fps): what is decoded is what was drawn."""
    path = tmp_path_factory.mktemp("track") / "two-shots.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=12)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "bgr0"
        for i in range(28):
            frame = av.VideoFrame.from_ndarray(shot_frame(i), format="rgb24").reformat(format="bgr0")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def decode(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


class Slow:
    """A source or sink that takes ``delay`` seconds per frame, to shift the threads' timing."""

    def __init__(self, inner, delay: float):
        self.inner, self.delay = inner, delay

    def __iter__(self):
        for item in self.inner:
            time.sleep(self.delay)
            yield item

    def write(self, qframe) -> None:
        time.sleep(self.delay)
        self.inner.write(qframe)


@pytest.mark.parametrize("suffix", [".gif", ".mkv"])
def test_file_output_is_the_synchronous_quantizers_whatever_the_timing(two_shots, tmp_path, suffix):
    source = decode(two_shots)
    synchronous = Quantizer(16)
    expected = [synchronous.quantize(frame) for frame in source]
    assert len({tuple(map(tuple, np.unique(e.reshape(-1, 3), axis=0))) for e in expected}) > 2  # palettes change

    cli_out = tmp_path / f"cli{suffix}"
    assert main(["transcode", str(two_shots), str(cli_out), "-q", *(["--lossless"] if suffix == ".mkv" else [])]) == 0

    slow_out = tmp_path / f"slow{suffix}"
    for delay_reader, delay_writer in [(0.03, 0.0), (0.0, 0.03)]:
        slow_out.unlink(missing_ok=True)
        sink = GifWriter(slow_out) if suffix == ".gif" else VideoWriter(slow_out, 12, lossless=True)
        with VideoFile(two_shots) as video, Quantizer(16, background=True) as quantizer, sink:
            run(Slow(video, delay_reader), quantizer, [Slow(sink, delay_writer)])
        for got in (decode(cli_out), decode(slow_out)):
            assert len(got) == len(expected)
            for i, (g, e) in enumerate(zip(got, expected)):
                assert np.array_equal(g, e), f"frame {i} differs"


@pytest.mark.parametrize("k, dither", [(16, "none"), (64, "none"), (256, "none"), (64, "bluenoise"),
                                      (64, "floyd-steinberg")])
def test_a_chunk_starting_at_a_cut_reproduces_the_sequential_frames(k, dither):
    """Nothing from before the cut reaches the frames after it: not the refit policy's last error (a refit
    counted as paying against it was chased on the next frame), nor the hold's measured noise."""
    frames = [shot_frame(i) for i in range(28)]
    assert scene_cuts(frames) == [CUT]
    sequential = Quantizer(k, dither=dither)
    whole = [sequential.process(f) for f in frames]
    assert whole[CUT].event == "fresh" and sequential.stats["cuts"] >= 1
    chunk = Quantizer(k, dither=dither)
    for i in range(CUT, 28):
        part = chunk.process(frames[i])
        assert np.array_equal(part.indices, whole[i].indices) and part.palette == whole[i].palette


def test_a_chunk_starting_at_a_cut_measures_the_noise_of_its_own_shot():
    """A clean photograph, then a cut to a noisy one: the hold's noise measured on the first shot (which sets
    how far a still pixel may move) is forgotten at the cut, so a chunk starting there gives the same frames."""
    import cv2
    import skimage.data

    rng = np.random.default_rng(0)

    def shot(name, sigma):
        picture = cv2.resize(getattr(skimage.data, name)(), (160, 96), interpolation=cv2.INTER_AREA)
        return [np.clip(np.rint(picture + rng.normal(0, sigma, picture.shape)), 0, 255).astype(np.uint8)
                for _ in range(6)]

    frames = shot("astronaut", 0.5) + shot("chelsea", 2.0)
    assert scene_cuts(frames) == [6]
    sequential, chunk = Quantizer(64), Quantizer(64)
    whole = [sequential.indices(f) for f in frames]
    assert all(np.array_equal(chunk.indices(f), w) for f, w in zip(frames[6:], whole[6:]))


def test_scene_cut_test_ignores_motion_noise_and_fades(rng):
    base = shot_frame(0).reshape(-1, 3)
    assert not is_scene_cut(base, np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8))
    assert not is_scene_cut(base, shot_frame(5).reshape(-1, 3))  # the disc moved
    assert not is_scene_cut(base, (base * 0.97).astype(np.uint8))  # a step of a fade
    assert is_scene_cut(base, shot_frame(CUT).reshape(-1, 3))
    # a slide on a #E0E0E0 backdrop (224, a bin's edge) that an encoder made a level darker: the same scene
    slide = np.full((96, 128, 3), 224, np.uint8)
    slide[10:40, 10:110] = rng.integers(0, 256, (30, 100, 3))
    darker = slide.copy()
    darker[slide == 224] = 223
    assert not is_scene_cut(slide.reshape(-1, 3), darker.reshape(-1, 3))
    assert is_scene_cut(slide.reshape(-1, 3), (255 - slide).reshape(-1, 3))


def test_events_mark_new_palettes():
    q = Quantizer(8, refit_every=1)
    shown = [q.process(shot_frame(i)) for i in range(20)]
    events = [frame.event for frame in shown]
    assert events[0] == "fresh" and events[CUT] == "fresh"
    changed = [not np.array_equal(a.palette.colors, b.palette.colors) for a, b in zip(shown, shown[1:CUT])]
    assert [event == "refit" for event in events[1:CUT]] == changed
    assert sum(changed) >= CUT - 3  # the picture moves on every frame: nearly every refit changes the palette
    assert q.process(shot_frame(19)).event == ""  # the same picture again: nothing new to fit


class SlowFits:
    """A real fitter whose fits take at least ``delay`` seconds."""

    def __init__(self, fitter, delay: float):
        self.inner, self.delay = fitter, delay

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def fit(self, *args, **kwargs):
        time.sleep(self.delay)
        return self.inner.fit(*args, **kwargs)


def test_live_runs_record_the_palette_lag_and_files_have_none(two_shots):
    Quantizer(8).quantize(shot_frame(0))  # the compiled kernels loaded: the first frame does not stall the run
    with Quantizer(8, refit_every=1, background=True) as quantizer:
        quantizer.track.fitter = SlowFits(quantizer.track.fitter, 0.05)
        stats = run(TestPattern((64, 48), fps=100, frames=200, live=True), quantizer, [])
    assert stats.refits >= 2 and stats.palette_lag_max >= 2 and stats.palette_lag >= 1  # 50 ms is 5 frames

    with VideoFile(two_shots) as video, Quantizer(8, refit_every=1) as quantizer:
        stats = run(video, quantizer, [])
    assert stats.refits >= 2 and stats.palette_lag == stats.palette_lag_max == 0


def test_a_live_source_first_frame_does_not_wait_for_the_fit():
    """A rough palette is shown until the first fit, slowed here to 0.3 s, lands on a later frame."""
    frame = shot_frame(0)
    with Quantizer(8, background=True) as quantizer:
        quantizer.track.fitter = SlowFits(quantizer.track.fitter, 0.3)
        first = quantizer.process(frame)
        rough = quantizer.palette
        assert quantizer.stats["refits"] == 0 and first.event == "fresh" and len(rough) == 8
        assert {tuple(c) for c in first.rgb.reshape(-1, 3)} <= {tuple(c) for c in rough.colors}
        for _ in range(100):
            time.sleep(0.02)
            later = quantizer.process(frame)
            if quantizer.stats["refits"]:
                break
    assert quantizer.stats["refits"] == 1 and quantizer.stats["cuts"] == 0  # the first fit, not a cut
    assert later.event == "fresh" and quantizer.palette != rough
    assert np.abs(later.rgb.astype(int) - frame).mean() < np.abs(first.rgb.astype(int) - frame).mean()


def test_a_live_palette_follows_the_picture_until_its_first_fit_lands():
    """The first fit waits for the warm-up (1-2 s in a fresh process; each fit slowed to 0.2 s here) and lands
    long after the frame it was made from: meanwhile the rough palette is made again as the picture moves, and
    that fit, older than the rough palette in force and fitting the newest frame worse, is dropped for one of a
    newer frame (which trails by its own 0.2 s)."""
    y, x = np.mgrid[:48, :64]
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[..., 0], frame[..., 1] = np.where(x < 32, 200, 0), np.where(x < 32, 0, 150) + y
    roughs, deadline = set(), time.monotonic() + 30
    with Quantizer(8, background=True) as quantizer:
        quantizer.track.fitter = SlowFits(quantizer.track.fitter, 0.2)
        for i in range(256):
            frame[..., 2] = i  # the blue of the whole picture climbs a level a frame
            shown = quantizer.quantize(frame)
            assert np.abs(shown.astype(int) - frame).mean() < 15, f"frame {i} shown with a stale palette"
            if quantizer.track.current.fit is None:
                roughs.add(quantizer.track.current.fitted_on)
            elif i >= 60 or time.monotonic() > deadline:
                break
            time.sleep(0.01)
    assert quantizer.stats["refits"] >= 1 and len(roughs) >= 3


def test_a_live_frame_waits_for_its_refit_as_long_as_it_is_told():
    """Slides: with no time to wait, each is shown in the palette of the one before (its refit lands for the next
    frame); a slow source's frame may wait (`run` gives it half its interval) and shows its own."""
    slides = [np.full((40, 60, 3), colour, np.uint8) for colour in [(255, 0, 0), (0, 255, 0), (0, 0, 255), (9, 9, 9)]]
    for wait, expected in ((0.0, [0, 1, 2]), (5.0, [1, 2, 3])):
        with Quantizer(16, background=True) as quantizer:
            deadline = time.monotonic() + 60
            while not quantizer.stats["refits"] and time.monotonic() < deadline:  # the first fit, after the warm-up
                quantizer.process(slides[0])
                time.sleep(0.05)
            shown = []
            for slide in slides[1:]:
                shown.append(quantizer.process(slide, wait=wait).rgb[0, 0].tolist())
                time.sleep(0.3)  # a slide's time: its refit lands
        assert shown == [slides[i][0, 0].tolist() for i in expected]


def test_a_live_track_needs_its_worker():
    track = Quantizer(4).track
    assert isinstance(track, PaletteTrack)
    with pytest.raises(RuntimeError, match="background=True"):
        track.step_live(shot_frame(0), 0)



def dark_field(i: int) -> np.ndarray:
    """A dark gradient with four bright squares sliding over it: a few hundred colours, each reproduced closely."""
    y, x = np.mgrid[:120, :200].astype(np.float32)
    frame = np.stack([15 + 20 * y / 120, 10 + 0 * x, 25 + 30 * x / 200], -1)
    for k in range(4):
        left = (20 + 40 * k + 5 * i) % 180
        frame[10 + 25 * k : 30 + 25 * k, left : left + 20] = (255, 200 - 40 * k, 60 * k)
    return frame.astype(np.uint8)


@pytest.mark.parametrize("picture, checked", [(dark_field, False), (shot_frame, True)])
def test_only_a_palette_whose_error_shows_checks_whether_a_fresh_fit_would_beat_it(monkeypatch, picture, checked):
    calls = []
    check = PaletteFitter.beaten_afresh
    monkeypatch.setattr(PaletteFitter, "beaten_afresh", lambda self, *args: calls.append(1) or check(self, *args))
    q = Quantizer(256)
    for i in range(CUT):
        q.quantize(picture(i))
    # On the dark field (error under a 2-level change) a check took 5 fresh k-means fits for nothing.
    assert bool(calls) == checked
