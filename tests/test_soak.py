"""Endurance: 20,000 live 480p frames through the pipeline with background refits; memory stays flat and
no thread is left behind. Slow (about 3 minutes): run with ``pytest -m slow``."""

import gc
import threading
import time

import numpy as np
import pytest

from livequant.pipeline import run
from livequant.quantizer import Quantizer
from livequant.sources import TestPattern

FRAMES = 20_000
RATE = 120.0  # frames a second the stand-in camera delivers; the pipeline drops what it cannot take
SAMPLE_EVERY_S = 20.0  # memory and fits sampled this often: 8 points over the run
MAX_STALL_S = 10.0  # the longest the pipeline may go without quantizing a frame


def rss_mb() -> float:
    """This process's resident memory, in MB, from /proc/self/status."""
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kb / 1024


class _Camera:
    """A live source: ``pictures`` cycled at ``rate`` frames a second, ``count`` frames in all."""

    live = True

    def __init__(self, pictures: list, count: int, rate: float):
        self._frames, self._count, self._rate = pictures, count, rate

    def __iter__(self):
        start = time.monotonic()
        for i in range(self._count):
            time.sleep(max(0.0, start + i / self._rate - time.monotonic()))
            yield self._frames[i % len(self._frames)], i / self._rate


class _Null:
    """A sink that drops what it gets (the frames are checked elsewhere)."""

    interactive = False

    def write(self, qframe) -> None:
        pass


@pytest.mark.slow
def test_20000_live_frames_keep_memory_flat_and_leave_no_thread():
    """How many of the frames are quantized is the machine's speed (a benchmark's business); that the pipeline
    keeps quantizing, fitting and holding its memory for the whole run is this test's."""
    threads_before = set(threading.enumerate())
    curve, quantized_at = [], []

    def sample(qframe, stats) -> None:
        quantized_at.append(time.monotonic())
        if not curve or quantized_at[-1] - curve[-1][0] >= SAMPLE_EVERY_S:
            curve.append((quantized_at[-1], stats.frames, round(rss_mb(), 1), quantizer.stats["fits"]))

    pictures = [frame for frame, _ in TestPattern((854, 480), fps=RATE, frames=120)]  # 1 s of motion, made once
    with Quantizer(16, background=True, dither="bayer") as quantizer:
        run(_Camera(pictures, 600, RATE), quantizer, [_Null()])  # warm-up: kernels compiled, buffers sized
        gc.collect()
        start = rss_mb()
        fits_before = quantizer.stats["fits"]
        began = time.monotonic()
        stats = run(_Camera(pictures, FRAMES, RATE), quantizer, [_Null()], on_frame=sample)
        ended = time.monotonic()
        fits = quantizer.stats["fits"] - fits_before
        gc.collect()
        end = rss_mb()
    print(f"\nsoak: {FRAMES} frames offered at 854x480, {stats.frames} quantized, {stats.dropped} dropped, "
          f"{fits} fits in the worker, {stats.refits} of them landed, {stats.fps:.0f} fps over {stats.seconds:.0f} s; "
          f"RSS {start:.1f} MB after warm-up, {end:.1f} MB at the end ({end - start:+.1f} MB); "
          f"(frames, RSS, fits so far) every {SAMPLE_EVERY_S:.0f} s: {[point[1:] for point in curve]}")
    assert stats.frames + stats.dropped == FRAMES
    # Quantized all along: no stall anywhere between the first frame offered and the last.
    assert max(np.diff([began, *quantized_at, ended])) < MAX_STALL_S
    # The worker kept fitting all along. How many of its fits change a colour is the stability trade-off's call:
    # on a background that stays still and sprites that loop every second, that can be none for minutes.
    assert fits > len(curve) and curve[-1][3] > curve[-2][3]
    assert end - start < 50
    assert set(threading.enumerate()) <= threads_before
