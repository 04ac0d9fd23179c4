"""The palette track: what a transcode costs with palettes computed ahead, on a quiet machine and with one
core kept busy, and what a live source's palette lag costs in quality.

1. MP4: ``livequant transcode cockatoo.mp4 out.mp4 -k 64 --no-audio`` (through ``livequant.cli.main``)
   against a plain PyAV decode -> rgb24 -> encode with the same encoder settings (from bench_streams), as
   alternating rounds, medians; then the same with another process spinning on one core
   (``python -c "while 1: pass"``).
2. Live preview pipeline: ``run(TestPattern 1080p live at 60 fps, Quantizer(64, background=True), [a null
   sink])``: frames dropped, palette lag (frames from the frame a palette was fitted on to its first use),
   quiet and with one core busy.
3. The lag's cost: cockatoo (720p, first frames) played live at 20, 30 and 60 fps through ``run()`` with
   ``Quantizer(64, background=True)``; the frames that were quantized are quantized again by the
   synchronous ``Quantizer(64)`` (what a file gets), and both are scored against their sources with
   ../shared/quality/metrics.py (PSNR, static-region flicker).

Run: python benchmarks/bench_track.py [--quick]
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import Targets, data_file, load_metrics, parse_args, print_machine, print_table, read_frames
from bench_streams import NullSink, livequant_cli, load, median_run, plain_transcode, rounds

from livequant import Quantizer, TestPattern, run

K = 64
MP4_RATIO = 1.25
HD = (1920, 1080)
PREVIEW_FPS = 60.0
LIVE_RATES = (20.0, 30.0, 60.0)


@contextlib.contextmanager
def busy_core():
    """Another process spinning on one core for the duration of the block."""
    spinner = subprocess.Popen([sys.executable, "-c", "while 1: pass"])
    time.sleep(0.5)
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def bench_mp4(clip: Path, tmp: Path, quick: bool, targets: Targets) -> None:
    limit = ["--duration", "3"] if quick else []
    out, plain_out = tmp / "lq.mp4", tmp / "plain.mp4"

    def livequant(warmup=False):
        return livequant_cli("transcode", str(clip), str(out), "-k", str(K), "-y", "-q", "--no-audio",
                             *(["--duration", "1"] if warmup else limit))

    def plain(warmup=False):
        return plain_transcode(clip, plain_out, 1.0 if warmup else 3.0 if quick else None)

    repeat = 1 if quick else 3
    print(f"## 1. MP4: {clip.name} -> H.264, K={K}, defaults; median of {repeat} alternating rounds")
    rows = []
    for name, context in [("quiet", contextlib.nullcontext), ("one core busy", busy_core)]:
        load(f"before MP4, {name}")
        with context():
            runs = {n: median_run(r) for n, r in rounds({"plain": plain, "livequant": livequant}, repeat).items()}
        load(f"after MP4, {name}")
        ratio = runs["livequant"].wall / runs["plain"].wall
        rows.append([name, runs["plain"].wall, runs["livequant"].wall, ratio, runs["livequant"].stages.get("refits")])
        targets.check(f"MP4 transcode wall <= {MP4_RATIO}x plain PyAV, {name}", ratio <= MP4_RATIO,
                      f"{runs['livequant'].wall:.2f} s vs {runs['plain'].wall:.2f} s = {ratio:.2f}x")
    print_table(["machine", "plain PyAV s", "livequant s", "x plain", "refits"], rows)


def bench_preview(quick: bool, targets: Targets) -> None:
    frames = 180 if quick else 600
    print(f"## 2. Live preview pipeline: TestPattern {HD[0]}x{HD[1]} live at {PREVIEW_FPS:g} fps, K={K}, "
          f"Quantizer(background=True), null sink, {frames} frames offered")
    with Quantizer(K, background=True) as quantizer:  # warm-up: compiled kernels loaded
        run(TestPattern(HD, fps=PREVIEW_FPS, frames=30), quantizer, [NullSink()])
    rows = []
    for name, context in [("quiet", contextlib.nullcontext), ("one core busy", busy_core)]:
        load(f"before preview, {name}")
        with context(), Quantizer(K, background=True) as quantizer:
            stats = run(TestPattern(HD, fps=PREVIEW_FPS, frames=frames, live=True), quantizer, [NullSink()])
        load(f"after preview, {name}")
        rows.append([name, stats.frames, stats.dropped, stats.fps, stats.quantize_ms, stats.refits,
                     stats.palette_lag, stats.palette_lag_max])
        if name == "quiet":
            targets.check("live 1080p60 preview with refits: no drops on a quiet machine", stats.dropped == 0,
                          f"{stats.dropped} of {frames} dropped, {stats.fps:.1f} fps, lag median "
                          f"{stats.palette_lag:g} / max {stats.palette_lag_max:g} frames")
    print_table(["machine", "processed", "dropped", "fps", "quantize ms", "refits", "lag median", "lag max"], rows)


class PlayedLive:
    """Frames in memory delivered at ``fps`` like a camera: a slow consumer makes `run` drop frames."""

    live = True

    def __init__(self, frames: list[np.ndarray], fps: float):
        self.frames, self.fps = frames, fps

    def __iter__(self):
        start = time.perf_counter()
        for i, frame in enumerate(self.frames):
            time.sleep(max(0.0, start + i / self.fps - time.perf_counter()))
            yield frame, i / self.fps


class Keep:
    """A sink keeping every quantized frame."""

    def __init__(self):
        self.qframes = []

    def write(self, qframe) -> None:
        self.qframes.append(qframe)


def score(metrics, sources: list[np.ndarray], outputs: list[np.ndarray]) -> dict:
    """PSNR, CIEDE2000 (5,000 pixels a frame) and static-region flicker of ``outputs`` against ``sources``."""
    video = metrics.VideoMetrics(de_max_pixels=5000)
    for source, output in zip(sources, outputs):
        video.update(source, output)
    return video.summary()


def bench_lag(clip: Path, quick: bool, metrics) -> None:
    frames = read_frames(clip, 60 if quick else 150)
    print(f"## 3. What the live palette lag costs: {clip.name}, first {len(frames)} frames played live, K={K}")
    Quantizer(K).quantize(frames[0])  # warm-up: compiled kernels loaded
    rows = []
    for fps in LIVE_RATES:
        load(f"before live at {fps:g} fps")
        sink = Keep()
        with Quantizer(K, background=True) as quantizer:
            stats = run(PlayedLive(frames, fps), quantizer, [sink])
        shown = [q.source for q in sink.qframes]
        synchronous = Quantizer(K)
        reference = [synchronous.quantize(f) for f in shown]
        live = score(metrics, shown, [q.rgb for q in sink.qframes])
        sync = score(metrics, shown, reference)
        rows.append([f"{fps:g} fps", len(shown), stats.dropped, stats.palette_lag, stats.palette_lag_max,
                     live["psnr"], sync["psnr"], live["psnr"] - sync["psnr"], live["flicker"], sync["flicker"]])
    load("after live runs")
    print("PSNR dB and flicker of the frames that were quantized; 'sync' is the synchronous Quantizer on the "
          "same frames (what a file gets)")
    print_table(["played at", "quantized", "dropped", "lag median", "lag max", "PSNR live", "PSNR sync", "dPSNR",
                 "flicker live", "flicker sync"], rows)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    print_machine()
    targets = Targets()
    clip = data_file("cockatoo.mp4")
    metrics = load_metrics()
    with tempfile.TemporaryDirectory() as tmp:
        bench_mp4(clip, Path(tmp), args.quick, targets)
    bench_preview(args.quick, targets)
    bench_lag(clip, args.quick, metrics)
    targets.print()


if __name__ == "__main__":
    main()
