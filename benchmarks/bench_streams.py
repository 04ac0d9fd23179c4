"""Streams: transcoding to MP4 and GIF, the live preview pipeline and peak memory, each next to a reference
measured in the same run.

1. MP4: ``livequant transcode cockatoo.mp4 out.mp4 -k 64 --no-audio`` through ``livequant.cli.main`` (the
   real path: VideoFile -> run() -> VideoWriter, refits in the background) against a plain PyAV
   decode -> rgb24 -> encode of the same clip with the encoder settings read from
   `livequant.sinks.VideoWriter` (and checked equal afterwards in the settings libx264 writes into both
   files). Also ``--refit-every`` 10 and 30 and a fixed 64-colour palette (no refits), so the extra
   CPU time splits into mapping and refits. Runs alternate, after a warm-up run of each; medians.
2. GIF: livequant (K=64, no dither) against FFmpeg palettegen + paletteuse (``dither=none``) through PyAV
   filter graphs, encoded with the same PyAV gif encoder: two-pass (palettegen over every frame, then
   paletteuse; the input decoded twice, as the two ffmpeg commands do) with FFmpeg's default
   ``reserve_transparent=1`` (63 colours + a transparent slot, which GIF frame differencing uses) and with
   ``reserve_transparent=0`` (64 colours), and one-pass per frame (``stats_mode=single``). Quality of the
   decoded GIFs against the source frames with ../shared/quality/metrics.py.
3. Preview: ``run(TestPattern 1080p, live at 60 fps, Quantizer(64, background=True), [a null sink])``:
   fps processed, frames dropped, latency from frame arrival to quantized frame; the same with
   ``refit_every=30`` and with a fixed palette (no refits); then unpaced (``live=False``): the pipeline's
   top speed. References: the test pattern alone, a frame copy.
4. Memory: peak RSS of ``python -m livequant transcode IN OUT -k 64`` (a subprocess each, its own figures
   from ``os.wait4`` in a small launcher) on 1080p clips of 10 s and 60 s made here (TestPattern, 30 fps,
   x264 ultrafast); references: importing livequant, importing it and quantizing one small frame (the
   start-up cost), and a plain PyAV transcode of the short clip.

5. Animated outputs: GIF without dither at K=256 and K=64 on cockatoo (its first 5 s: the machine is
   shared), realshort.mp4 and a clip made here with two scene cuts: livequant (``--gif-palette track``, the
   default, and ``global``; at K=256 also ``--gif-lossy 8``, checked against gifski) against FFmpeg two-pass
   (palettegen + paletteuse, as in part 2) and gifski
   ``-Q 90`` (its own 256-colour palettes; fed the source frames as PNG files, its wall time alone; the
   binary from ``npm install gifski`` in /tmp, or $GIFSKI; a benchmark peer only, never a dependency).
   Quality of each decoded GIF against the source frame shown at the same time (gifski merges identical
   frames): mean PSNR, CIEDE2000, static-region flicker; file size, wall time. Animated WebP (lossless) and
   APNG of the same quantized frames next to the GIF; the cost of ``--report``.
6. Dithered GIFs: ``--dither floyd-steinberg`` and ``sierra-lite`` at K=256 and 64 on cockatoo's first 5 s
   and realshort, against FFmpeg two-pass with the same dither and ``diff_mode=rectangle`` (FFmpeg's own
   answer to dither crawl: only the box around what changed is dithered again). Quality as in part 5, plus
   PSNR of both frames blurred (Gaussian, sigma 1.2 px: the colour a dither pattern shows from a little way
   off); file size, wall time.
7. Transparency: a sticker made here (an APNG of RGBA frames: a spinning rainbow star with anti-aliased
   edges and a soft-edged ball, over a clear canvas) to a GIF at K=64: livequant against FFmpeg two-pass
   (palettegen over the RGBA frames, ``reserve_transparent=1``; paletteuse ``alpha_threshold=128``) and
   gifski ``-Q 90`` (fed the RGBA frames as PNG files). Each decoded frame and the source, both cut at alpha
   128 (all a GIF can show) and put on mid-grey, compared as in part 5; and the share of pixels that show or
   not as the source's alpha says.

Wall and CPU times are of this process (all its threads); the machine is shared, so the load average is
printed before and after each part. ``--quick`` uses the first 3 s of the clip, one round, shorter clips.
$BENCH_PARTS picks parts by name (default: all): ``BENCH_PARTS=outputs`` runs part 5 alone, ``dither`` part 6,
``alpha`` part 7.

Run: python benchmarks/bench_streams.py [--quick]
"""

from __future__ import annotations

import contextlib
import inspect
import io
import itertools
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import cv2
import numba
import numpy as np
from PIL import Image
from _common import (
    DITHERS_COMPARED,
    REPO,
    PaletteGenUse,
    Targets,
    av,
    bgra_frame,
    blurred_psnr,
    data_file,
    load_metrics,
    parse_args,
    print_load,
    print_machine,
    print_table,
)

import livequant.cli
import livequant.cli.transcode
from livequant import Quantizer
from livequant.pipeline import run
from livequant.sinks import VideoWriter
from livequant.sources import TestPattern

K = 64
#: Wall time of livequant's MP4 transcode over the plain one, at most (the target).
MP4_RATIO = 1.25
#: The MP4 runs compared.
PLAIN, DEFAULTS = "plain PyAV decode -> rgb24 -> encode", "livequant (defaults: --refit-every 3)"
FIXED = "livequant, fixed 64-colour palette (no refits)"
DEFAULTS_1T, FIXED_1T = f"{DEFAULTS}, 1 numba thread", f"{FIXED}, 1 numba thread"
#: Frames held in memory to split the CPU time (full, quick).
PROFILE_FRAMES = {False: 60, True: 30}
#: Seconds of the clip a quick run uses.
QUICK_SECONDS = 3.0
HD, PREVIEW_FPS = (1920, 1080), 60.0
#: Live frames, unpaced frames (full, quick).
PREVIEW_FRAMES = {False: (600, 300), True: (180, 90)}
#: Lengths in seconds of the 1080p clips whose transcodes' peak memory is compared (full, quick).
MEMORY_SECONDS = {False: (10, 60), True: (2, 6)}
MEMORY_FPS = 30
#: Peak RSS of the long clip may exceed the short one's by this share or this many MB (the target: flat).
MEMORY_SLACK = (0.10, 30.0)
#: Pixels per frame used for CIEDE2000 (a fixed subsample, as metrics.lab_sample takes it).
DE_PIXELS = 20_000


# ------------------------------------------------------------------ timing


class Run(NamedTuple):
    """One timed run: wall and CPU seconds (all threads of this process) and per-stage figures."""

    wall: float
    cpu: float
    stages: dict


#: Seconds since the start and the 1-minute load average at each `load` call.
LOADS: list[tuple[float, float]] = []
_START = time.perf_counter()


def load(when: str) -> None:
    """Print the load average (the machine is shared) and the time since the start; keep both."""
    elapsed = time.perf_counter() - _START
    LOADS.append((elapsed, os.getloadavg()[0]))
    print_load(f"{when} (at {elapsed:.0f} s)")


@contextlib.contextmanager
def numba_threads(n: int | None):
    """Run the block with ``n`` numba threads for the parallel kernels this thread calls (the frame loop's
    mapping; the refit worker keeps its own setting); None leaves it as it is."""
    before = numba.get_num_threads()
    if n is not None:
        numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


#: The `Stats` of each `run` the transcode command makes in this process: ``livequant.cli.transcode.run`` is
#: wrapped to keep them.
STATS: list = []


def _recording_run(*args, **kwargs):
    stats = run(*args, **kwargs)
    STATS.append(stats)
    return stats


livequant.cli.transcode.run = _recording_run


def livequant_cli(*argv: str) -> Run:
    """Run ``livequant ARGV`` in this process (its printing swallowed); stages from the pipeline's `Stats`
    (medians, ms per frame), when it ran one."""
    runs = len(STATS)
    start_cpu, start = cpu_seconds(), time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as errors:
        status = livequant.cli.main(list(argv))
    wall, cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
    if status:
        raise SystemExit(f"`livequant {' '.join(argv)}` failed with exit status {status}: {errors.getvalue()}")
    stages = {}
    if len(STATS) > runs:
        s = STATS[-1]
        stages = {"read": s.read_ms, "quantize": s.quantize_ms, "write": s.write_ms, "refits": s.refits,
                  "frames": s.frames}
    return Run(wall, cpu, stages)


def rounds(functions: dict, repeat: int) -> dict[str, list[Run]]:
    """``repeat`` rounds of one call of each function, the order rotated each round, after one warm-up
    call each (a burst of load from elsewhere lands on all of them alike)."""
    for fn in functions.values():
        fn(warmup=True)
    names = list(functions)
    runs: dict[str, list[Run]] = {name: [] for name in names}
    for r in range(repeat):
        for name in names[r % len(names):] + names[: r % len(names)]:
            runs[name].append(functions[name]())
    return runs


def median_run(runs: list[Run]) -> Run:
    """Median wall and CPU; stages of the run with the median wall time."""
    middle = sorted(runs, key=lambda r: r.wall)[(len(runs) - 1) // 2]
    return Run(statistics.median(r.wall for r in runs), statistics.median(r.cpu for r in runs), middle.stages)


#: A small launcher that runs ``argv`` and prints its peak RSS (KB), CPU s, wall s and exit status. A child
#: forked straight from this (large) process would report at least this process's RSS as its own peak:
#: Linux keeps the pre-exec high-water mark.
_PEAK = """import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss, usage.ru_utime + usage.ru_stime, time.perf_counter() - start, os.waitstatus_to_exitcode(status))
"""


def child_peak(argv: list[str]) -> tuple[float, float, float]:
    """``(peak RSS MB, wall s, CPU s)`` of ``argv`` run in a subprocess."""
    done = subprocess.run([sys.executable, "-c", _PEAK, *argv], cwd=REPO, capture_output=True, text=True, check=True)
    rss, cpu, wall, status = done.stdout.split()[-4:]
    if int(status):
        raise SystemExit(f"{' '.join(map(str, argv))} failed with exit status {status}: {done.stderr}")
    return int(rss) / 1024, float(wall), float(cpu)


# ------------------------------------------------------------------ media


def decoded(path: Path, seconds: float | None = None):
    """Yield ``(rgb, time)`` of a video or GIF as livequant reads one (PyAV, threaded, rgb24), up to ``seconds``."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if seconds is not None and frame.time >= seconds - 1e-6:
                return
            yield frame.to_ndarray(format="rgb24"), frame.time


def encoder_settings() -> tuple[str, str, dict]:
    """``(codec, pix_fmt, options)`` that `VideoWriter` uses for ``.mp4``, read off an unopened writer."""
    with tempfile.TemporaryDirectory() as tmp:
        writer = VideoWriter(Path(tmp) / "settings.mp4", 30.0)
        writer.abort()
    return writer.codec, writer.pix_fmt, dict(writer._options)


def x264_settings(path: Path) -> str:
    """The settings libx264 records in the first frame of ``path`` (threads included)."""
    found = re.search(rb"options: ([ -~]+)", path.read_bytes()[:1_000_000])
    return found[1].decode() if found else "none found"


class H264Out:
    """A video file encoded as `VideoWriter` encodes ``.mp4``: its codec, pixel format and options, frames
    converted to BT.709 limited range and tagged so, timestamps in 1/90000 s."""

    def __init__(self, path: Path, size: tuple[int, int], rate):
        codec, self.pix_fmt, options = encoder_settings()
        self.out = av.open(str(path), "w")
        self.stream = self.out.add_stream(codec, rate=Fraction(rate).limit_denominator(1001), options=options)
        self.stream.width, self.stream.height, self.stream.pix_fmt = *size, self.pix_fmt
        context = self.stream.codec_context
        context.time_base = Fraction(1, 90000)
        context.colorspace = context.color_primaries = context.color_trc = 1  # BT.709
        context.color_range = 1  # limited

    def convert(self, rgb: np.ndarray, t: float) -> av.VideoFrame:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame = frame.reformat(format=self.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG")
        frame.time_base = self.stream.codec_context.time_base
        frame.pts = round(t / frame.time_base)
        return frame

    def encode(self, frame: av.VideoFrame | None) -> None:
        """Encode and mux ``frame``; None flushes the encoder."""
        for packet in self.stream.encode(frame):
            self.out.mux(packet)

    def close(self) -> None:
        self.encode(None)
        self.out.close()


def plain_transcode(src: Path, dst: Path, seconds: float | None = None) -> Run:
    """Decode -> rgb24 -> ``from_ndarray`` -> encode as `H264Out`, timestamps kept; stages are mean ms per frame."""
    spent = {"read": 0.0, "convert": 0.0, "encode": 0.0}
    frames = 0
    start_cpu, start = cpu_seconds(), time.perf_counter()
    with av.open(str(src)) as probe:
        stream = probe.streams.video[0]
        out = H264Out(dst, (stream.width, stream.height), stream.average_rate)
    clock = time.perf_counter()
    for rgb, t in decoded(src, seconds):
        t1 = time.perf_counter()
        frame = out.convert(rgb, t)
        t2 = time.perf_counter()
        out.encode(frame)
        spent["read"] += t1 - clock
        spent["convert"] += t2 - t1
        clock = time.perf_counter()
        spent["encode"] += clock - t2
        frames += 1
    out.close()
    spent["encode"] += time.perf_counter() - clock
    stages = {name: 1000 * s / max(frames, 1) for name, s in spent.items()}
    return Run(time.perf_counter() - start, cpu_seconds() - start_cpu, {**stages, "frames": frames})


def cpu_ms_per_frame(fn, frames: list, repeat: int) -> float:
    """Median over ``repeat`` calls (after one warm-up) of the CPU ms per frame of ``fn(frames)``."""
    fn(frames)
    spent = []
    for _ in range(repeat):
        start = cpu_seconds()
        fn(frames)
        spent.append(1000 * (cpu_seconds() - start) / len(frames))
    return statistics.median(spent)


class GifOut:
    """An animated GIF from ``pal8`` frames through PyAV's gif encoder, as `GifWriter` writes one
    (loop forever, frame times in 1/100 s)."""

    def __init__(self, path: Path, size: tuple[int, int]):
        self.out = av.open(str(path), "w", format="gif", options={"loop": "0"})
        self.stream = self.out.add_stream("gif")
        self.stream.width, self.stream.height, self.stream.pix_fmt = *size, "pal8"
        self.stream.codec_context.time_base = self.stream.time_base = Fraction(1, 100)
        self.frames = 0

    def write(self, frame: av.VideoFrame, t: float) -> None:
        frame.time_base, frame.pts = Fraction(1, 100), round(t * 100)
        for packet in self.stream.encode(frame):
            self.out.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self.out.mux(packet)
        self.out.close()


def palettegen(frames, fmt: str, size: tuple[int, int], **options) -> av.VideoFrame:
    """FFmpeg's first pass: ``palettegen`` (``options``) over ``frames`` (arrays in ``fmt``, ``size`` (W, H)):
    its 16 x 16 ``bgra`` palette, the transparent slot (if reserved) with alpha 0."""
    graph = av.filter.Graph()
    source = graph.add_buffer(width=size[0], height=size[1], format=fmt, time_base=Fraction(1, 30))
    gen = graph.add("palettegen", **options)
    sink = graph.add("buffersink")
    source.link_to(gen)
    gen.link_to(sink)
    graph.configure()
    for pts, array in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(array, format=fmt)
        frame.pts = pts
        graph.vpush(frame)
    graph.vpush(None)
    return graph.vpull()


def paletteuse(size: tuple[int, int], palette: av.VideoFrame, **options) -> av.filter.Graph:
    """FFmpeg's second pass: a ``paletteuse`` (``options``) graph of ``palette``; push ``bgra`` frames of ``size``
    (W, H) at 0, pull ``pal8`` ones."""
    graph = av.filter.Graph()
    source = graph.add_buffer(width=size[0], height=size[1], format="bgra", time_base=Fraction(1, 30))
    palette_in = graph.add_buffer(width=16, height=16, format="bgra", time_base=Fraction(1, 30))
    use = graph.add("paletteuse", **options)
    sink = graph.add("buffersink")
    source.link_to(use, 0, 0)
    palette_in.link_to(use, 0, 1)
    use.link_to(sink)
    graph.configure()
    palette.pts = 0
    graph.vpush(palette, at=1)
    graph.vpush(None, at=1)
    return graph


def ffmpeg_two_pass(src: Path, dst: Path, seconds: float | None, reserve_transparent: int, colors: int = K,
                    dither: str = "none", diff_mode: str = "none") -> Run:
    """``palettegen`` over every frame, then ``paletteuse`` (``dither``, ``diff_mode``) on every frame, into a
    GIF."""
    start_cpu, start = cpu_seconds(), time.perf_counter()
    frames = decoded(src, seconds)
    first, _ = next(frames)
    size = (first.shape[1], first.shape[0])
    palette = palettegen(itertools.chain([first], (rgb for rgb, _ in frames)), "rgb24", size,
                         max_colors=str(colors), reserve_transparent=str(reserve_transparent))
    use = paletteuse(size, palette, dither=dither, diff_mode=diff_mode)
    gif = GifOut(dst, size)
    for pts, (rgb, t) in enumerate(decoded(src, seconds)):
        frame = bgra_frame(rgb)
        frame.pts = pts
        use.vpush(frame, at=0)
        gif.write(use.vpull(), t)
    gif.close()
    return Run(time.perf_counter() - start, cpu_seconds() - start_cpu, {"frames": gif.frames})


def ffmpeg_one_pass(src: Path, dst: Path, seconds: float | None) -> Run:
    """``palettegen`` + ``paletteuse`` on each frame alone (``stats_mode=single``, ``new=1``), into a GIF."""
    start_cpu, start = cpu_seconds(), time.perf_counter()
    gif = quantize = None
    for rgb, t in decoded(src, seconds):
        if quantize is None:
            size = (rgb.shape[1], rgb.shape[0])
            quantize, gif = PaletteGenUse(size, K), GifOut(dst, size)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts, quantize.pts = quantize.pts, quantize.pts + 1
        quantize.graph.vpush(frame)
        gif.write(quantize.graph.vpull(), t)  # pal8 with this frame's palette
    gif.close()
    return Run(time.perf_counter() - start, cpu_seconds() - start_cpu, {"frames": gif.frames})


def gif_quality(metrics, src: Path, gif: Path, seconds: float | None) -> dict:
    """metrics.VideoMetrics of the decoded GIF against the source frames (CIEDE2000 on a subsample)."""
    video = metrics.VideoMetrics(de_max_pixels=DE_PIXELS)
    for (ref, _), (out, _) in zip(decoded(src, seconds), decoded(gif)):
        video.update(ref, out)
    return video.summary()


def make_clip(path: Path, seconds: int, fps: int = MEMORY_FPS) -> float:
    """Write a 1080p TestPattern clip (H.264, x264 ultrafast); returns the seconds it took."""
    start = time.perf_counter()
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = *HD, "yuv420p"
        for i, (rgb, _) in enumerate(TestPattern(HD, fps=fps, frames=seconds * fps)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    return time.perf_counter() - start


class NullSink:
    """A sink that only counts frames: the pipeline without a window or an encoder."""

    def __init__(self):
        self.frames = 0

    def write(self, qframe) -> None:
        self.frames += 1


# ------------------------------------------------------------------ the parts


def bench_mp4(clip: Path, tmp: Path, quick: bool, targets: Targets) -> None:
    seconds = QUICK_SECONDS if quick else None
    limit = ["--duration", f"{QUICK_SECONDS:g}"] if quick else []
    codec, pix_fmt, encoder_options = encoder_settings()
    print(f"## 1. MP4: {clip.name}{f' (first {QUICK_SECONDS:g} s)' if quick else ''} -> H.264, K={K}")
    print(f"encoder settings from VideoWriter: {codec}, {pix_fmt}, {encoder_options}, threads: FFmpeg's default")
    load("before MP4")
    palette = tmp / "k64.gpl"
    livequant_cli("palette", str(clip), "-o", str(palette), "-k", str(K), "-y")
    assert inspect.signature(Quantizer).parameters["refit_every"].default == 3, "the defaults changed: rename the rows"
    options = {  # name: CLI options, numba threads of the frame loop (None: as it is)
        DEFAULTS: ((), None),
        "livequant --refit-every 10": (("--refit-every", "10"), None),
        "livequant --refit-every 30": (("--refit-every", "30"), None),
        FIXED: (("--palette", str(palette)), None),
        DEFAULTS_1T: ((), 1),
        FIXED_1T: (("--palette", str(palette)), 1),
    }
    outputs = {name: tmp / f"mp4-{i}.mp4" for i, name in enumerate([PLAIN, *options])}

    def lq(name):
        cli_options, threads = options[name]

        colours = () if "--palette" in cli_options else ("-k", str(K))  # -k with --palette is refused

        def call(warmup=False):
            with numba_threads(threads):
                return livequant_cli("transcode", str(clip), str(outputs[name]), *colours, "-y", "-q",
                                     "--no-audio", *cli_options, *(["--duration", "1"] if warmup else limit))
        return call

    def plain(warmup=False):
        return plain_transcode(clip, outputs[PLAIN], 1.0 if warmup else seconds)

    repeat = 1 if quick else 3
    runs = {name: median_run(r) for name, r in rounds({PLAIN: plain, **{n: lq(n) for n in options}}, repeat).items()}
    same = x264_settings(outputs[DEFAULTS]) == x264_settings(outputs[PLAIN])
    threads = re.search(r"\bthreads=(\d+)", x264_settings(outputs[PLAIN]))
    print(f"x264 settings recorded in both files identical: {same} (threads={threads[1] if threads else '?'})")
    load("after MP4")
    base = runs[PLAIN]
    frames = base.stages["frames"]
    rows = []
    for name, r in runs.items():
        s = r.stages
        write = s["write"] if "write" in s else s["convert"] + s["encode"]
        rows.append([name, r.wall, 1000 * r.wall / frames, r.wall / base.wall, r.cpu, r.cpu / base.cpu,
                     r.cpu / r.wall, s["read"], s.get("quantize"), write, s.get("refits"),
                     outputs[name].stat().st_size / 1e6])
    print(f"{frames} frames, median of {repeat} alternating run{'s' if repeat > 1 else ''}; cores = CPU / wall; "
          "stage ms: livequant's are medians per frame in its reader / frame-loop / writer threads, "
          "the plain path's means of its one loop (read = decode + rgb24, write = convert to "
          f"{pix_fmt} + encode + mux)")
    print_table(["method", "wall s", "ms/frame", "x plain", "CPU s", "CPU x plain", "cores", "read ms",
                 "quantize ms", "write ms", "refits", "MB"], rows)
    mp4_profile(clip, tmp, palette, runs, repeat, PROFILE_FRAMES[quick])
    ratio = runs[DEFAULTS].wall / base.wall
    targets.check(f"MP4 transcode wall <= {MP4_RATIO}x plain PyAV", ratio <= MP4_RATIO,
                  f"{runs[DEFAULTS].wall:.2f} s vs {base.wall:.2f} s = {ratio:.2f}x "
                  f"(CPU {runs[DEFAULTS].cpu:.1f} s vs {base.cpu:.1f} s = {runs[DEFAULTS].cpu / base.cpu:.2f}x; "
                  f"--refit-every 10: {runs['livequant --refit-every 10'].wall / base.wall:.2f}x, "
                  f"30: {runs['livequant --refit-every 30'].wall / base.wall:.2f}x; "
                  f"fixed palette: {runs[FIXED].wall / base.wall:.2f}x; frame loop on 1 numba thread: "
                  f"{runs[DEFAULTS_1T].wall / base.wall:.2f}x, fixed palette {runs[FIXED_1T].wall / base.wall:.2f}x)")


def mp4_profile(clip: Path, tmp: Path, palette: Path, runs: dict[str, Run], repeat: int, n: int) -> None:
    """Split livequant's extra CPU time over the plain path: x264 on quantized frames (costlier than on the
    source), mapping, the rest of the pipeline, refits. The first ``n`` frames in memory, one stage at a time."""
    sample = [rgb for rgb, _ in itertools.islice(decoded(clip), n)]
    quantizer = Quantizer(palette=str(palette))
    quantized = [quantizer.process(rgb).rgb for rgb in sample]
    with av.open(str(clip)) as container:
        rate = container.streams.video[0].average_rate

    def encode(frames):
        out = H264Out(tmp / "profile.mp4", (frames[0].shape[1], frames[0].shape[0]), rate)
        for i, rgb in enumerate(frames):
            out.encode(out.convert(rgb, float(i / rate)))
        out.close()

    def mapping(frames):
        q = Quantizer(palette=str(palette))
        for rgb in frames:
            q.process(rgb)

    encode_source = cpu_ms_per_frame(encode, sample, repeat)
    encode_quantized = cpu_ms_per_frame(encode, quantized, repeat)
    map_ms = cpu_ms_per_frame(mapping, sample, repeat)
    with numba_threads(1):
        map_1t = cpu_ms_per_frame(mapping, sample, repeat)
    load("after MP4 profile")
    frames = runs[PLAIN].stages["frames"]
    cpu = {name: 1000 * r.cpu / frames for name, r in runs.items()}
    rest = cpu[FIXED_1T] - cpu[PLAIN] - (encode_quantized - encode_source) - map_1t
    refits = runs[DEFAULTS].stages["refits"]
    print(f"where the CPU time goes (ms per frame, all threads; 'in memory': the first {n} frames, one stage at a time)")
    print_table(["part", "CPU ms/frame"], [
        ["plain decode -> rgb24 -> encode (runs above)", cpu[PLAIN]],
        [f"+ x264 on quantized frames instead of the source (in memory: {encode_quantized:.1f} vs "
         f"{encode_source:.1f})", encode_quantized - encode_source],
        [f"+ mapping to the fixed palette on 1 numba thread (in memory, Quantizer.process; on 2: {map_ms:.1f})",
         map_1t],
        ["+ the rest of the pipeline: threads, queues, copies", rest],
        ["+ 2 numba threads in the frame loop instead of 1 (fixed-palette runs)", cpu[FIXED] - cpu[FIXED_1T]],
        ["= livequant, fixed palette (runs above)", cpu[FIXED]],
        [f"+ refits: {refits} at --refit-every 3, "
         f"{(cpu[DEFAULTS] - cpu[FIXED]) * frames / max(refits, 1):.0f} ms CPU each", cpu[DEFAULTS] - cpu[FIXED]],
        ["= livequant defaults (runs above)", cpu[DEFAULTS]],
        [f"budget: plain x {MP4_RATIO}", MP4_RATIO * cpu[PLAIN]],
    ])


def bench_gif(clip: Path, tmp: Path, quick: bool, targets: Targets, metrics) -> None:
    seconds = QUICK_SECONDS if quick else None
    limit = ["--duration", f"{QUICK_SECONDS:g}"] if quick else []
    print(f"## 2. GIF: {clip.name}{f' (first {QUICK_SECONDS:g} s)' if quick else ''} -> GIF, K={K}, no dither")
    load("before GIF")
    lq_name, default_name, equal_name, single_name = (
        "livequant", "FFmpeg two-pass (63 colours + transparent: default)", "FFmpeg two-pass (64 colours)",
        "FFmpeg one-pass per frame (stats_mode=single)")
    outputs = {lq_name: tmp / "lq.gif", default_name: tmp / "ffmpeg2.gif", equal_name: tmp / "ffmpeg2-64.gif",
               single_name: tmp / "ffmpeg1.gif"}

    def lq(warmup=False):
        extra = ["--duration", "1"] if warmup else limit
        return livequant_cli("transcode", str(clip), str(outputs[lq_name]), "-k", str(K), "-y", "-q", *extra)

    def two_pass(reserve, name):
        return lambda warmup=False: ffmpeg_two_pass(clip, outputs[name], 1.0 if warmup else seconds, reserve)

    def one_pass(warmup=False):
        return ffmpeg_one_pass(clip, outputs[single_name], 1.0 if warmup else seconds)

    variants = {lq_name: lq, default_name: two_pass(1, default_name), equal_name: two_pass(0, equal_name),
                single_name: one_pass}
    repeat = 1 if quick else 2
    runs = {name: median_run(r) for name, r in rounds(variants, repeat).items()}
    load("after GIF timing")
    quality = {name: gif_quality(metrics, clip, path, seconds) for name, path in outputs.items()}
    load("after GIF quality")
    frames = runs[lq_name].stages["frames"]
    size = {name: path.stat().st_size for name, path in outputs.items()}
    base = runs[default_name]
    rows = [[name, r.wall, 1000 * r.wall / frames, r.wall / base.wall, r.cpu, size[name] / 1e6,
             size[name] / size[default_name], quality[name]["colors"], quality[name]["psnr"],
             quality[name]["de2000"], quality[name]["flicker"], int(quality[name]["frames"])]
            for name, r in runs.items()]
    print(f"{frames} frames, median of {repeat} alternating run{'s' if repeat > 1 else ''}; quality of the decoded "
          f"GIF against the source frames: mean PSNR, mean CIEDE2000 ({DE_PIXELS} pixels a frame), "
          "static-region flicker (0-255, lower is steadier)")
    print_table(["method", "wall s", "ms/frame", "x FFmpeg 2-pass", "CPU s", "MB", "size x FFmpeg 2-pass",
                 "colours/frame", "PSNR dB", "dE2000", "flicker", "frames"], rows)
    s = runs[lq_name].stages
    print(f"livequant stages (median ms per frame): read {s['read']:.1f}, quantize {s['quantize']:.1f}, "
          f"write (pal8 + gif encode) {s['write']:.1f}; {s['refits']} refits")
    print()
    lq_run = runs[lq_name]
    two_pass_names = (default_name, equal_name)
    faster = all(lq_run.wall < runs[n].wall for n in two_pass_names)
    smaller = all(size[lq_name] <= size[n] for n in two_pass_names)
    targets.check("GIF faster than FFmpeg palettegen+paletteuse (two-pass, both)", faster,
                  f"{lq_run.wall:.2f} s vs " + ", ".join(f"{runs[n].wall:.2f} s" for n in two_pass_names)
                  + f" (one-pass per frame {runs[single_name].wall:.2f} s)")
    targets.check("GIF no larger than FFmpeg two-pass at K=64", smaller,
                  f"{size[lq_name] / 1e6:.2f} MB vs " + ", ".join(f"{size[n] / 1e6:.2f} MB" for n in two_pass_names)
                  + f"; PSNR {quality[lq_name]['psnr']:.2f} vs "
                  + ", ".join(f"{quality[n]['psnr']:.2f}" for n in two_pass_names) + " dB; flicker "
                  + f"{quality[lq_name]['flicker']:.2f} vs "
                  + ", ".join(f"{quality[n]['flicker']:.2f}" for n in two_pass_names))


#: Colour counts of the animated-output comparison.
OUTPUT_KS = (256, 64)
#: ``--gif-lossy`` of part 5's lossy row (at the larger K): a pixel up to 8 levels from its colour, for size.
LOSSY_LEVELS = 8.0
#: Seconds of cockatoo used by part 5 (full, quick): the machine is shared by several agents.
OUTPUT_SECONDS = {False: 5.0, True: 2.0}
#: The scene-cut clip of part 5: size, frame rate, seconds per scene.
CUTS_SIZE, CUTS_FPS, CUTS_SCENE_SECONDS = (480, 270), 15, 2


def gifski_binary() -> Path | None:
    for candidate in (os.environ.get("GIFSKI"), "/tmp/node_modules/gifski/bin/debian/gifski"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def cuts_frame(i: int) -> np.ndarray:
    """Frame ``i`` of the scene-cut clip: three scenes (a warm gradient with a moving disc, cool stripes with
    a sliding bar, a dark field with bright squares), each ``CUTS_SCENE_SECONDS`` long."""
    w, h = CUTS_SIZE
    y, x = np.mgrid[:h, :w].astype(np.float32)
    scene, t = divmod(i, CUTS_SCENE_SECONDS * CUTS_FPS)
    if scene == 0:
        frame = np.stack([200 + 55 * x / w, 80 + 120 * y / h, 40 + 0 * x], -1)
        disc = (x - 40 - 12 * t) ** 2 + (y - h / 2) ** 2 < 40**2
        frame[disc] = (30, 60, 160)
    elif scene == 1:
        frame = np.stack([20 + 0 * x, 90 + 60 * np.sin(x / 9), 150 + 90 * y / h], -1)
        frame[:, 10 * t % w : 10 * t % w + 30] = (240, 240, 250)
    else:
        frame = np.stack([15 + 20 * y / h, 10 + 0 * x, 25 + 30 * x / w], -1)
        for k in range(4):
            cx, cy = (60 + 100 * k + 5 * t) % w, 60 + 40 * k
            frame[cy : cy + 24, cx : cx + 24] = (255, 200 - 40 * k, 60 * k)
    return np.clip(frame, 0, 255).astype(np.uint8)


def make_cuts_clip(path: Path) -> None:
    """The scene-cut clip, H.264 crf 16 (near-lossless)."""
    frames = (cuts_frame(i) for i in range(3 * CUTS_SCENE_SECONDS * CUTS_FPS))
    encode(path, frames, "libx264", CUTS_FPS, "yuv420p", options={"crf": "16", "preset": "veryfast"})


def encode(path: Path, frames, codec: str, fps: int, pix_fmt: str, options: dict | None = None,
           container: str | None = None) -> None:
    """``frames`` (RGB, or RGBA for an RGBA ``pix_fmt``) encoded with ``codec`` at ``fps`` into ``path``."""
    fmt = "rgba" if pix_fmt == "rgba" else "rgb24"
    with av.open(str(path), "w", format=container) as out:
        video = None
        for i, array in enumerate(frames):
            if video is None:
                video = out.add_stream(codec, rate=fps, options=options or {})
                video.width, video.height, video.pix_fmt = array.shape[1], array.shape[0], pix_fmt
            frame = av.VideoFrame.from_ndarray(array, format=fmt)
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)


def gifski_run(binary: Path, src: Path, dst: Path, seconds: float | None, tmp: Path) -> tuple[Run, float]:
    """gifski ``-Q 90`` on the source frames written as PNG files: its run, and the seconds writing the PNGs took."""
    start = time.perf_counter()
    times = []

    def frames():
        for rgb, t in decoded(src, seconds):
            times.append(t)
            yield cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)

    pictures = png_files(frames(), tmp / "gifski-frames")
    png_seconds = time.perf_counter() - start
    fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 10.0
    h, w = cv2.imread(str(pictures[0])).shape[:2]
    return gifski(binary, pictures, dst, fps, "-W", str(w), "-H", str(h)), png_seconds


def png_files(frames, folder: Path) -> list[Path]:
    """``frames`` (BGR or BGRA arrays) written as numbered PNG files into ``folder``, emptied first."""
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    paths = []
    for i, frame in enumerate(frames):
        paths.append(folder / f"{i:05d}.png")
        cv2.imwrite(str(paths[-1]), frame)
    return paths


def gifski(binary: Path, pictures: list[Path], dst: Path, fps: float, *options: str) -> Run:
    """gifski ``-Q 90`` on ``pictures`` at ``fps``: its wall and CPU time."""
    argv = [str(binary), "-Q", "90", "-r", f"{fps:.4f}", *options, "-q", "-o", str(dst), *map(str, pictures)]
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime - usage_before.ru_utime - usage_before.ru_stime
    return Run(wall, cpu, {"frames": len(pictures)})


def shown_quality(metrics, src: Path, animation: Path, seconds: float | None, blurred: bool = False) -> dict:
    """metrics.VideoMetrics of each source frame against the animation's frame shown at its time (GIF delays
    are in 1/100 s; gifski merges identical frames), decoded with PyAV, or Pillow for WebP; ``decoded``, its
    frame count; with ``blurred``, ``blurred``: the mean `blurred_psnr`."""
    shown = animated_frames(animation)
    video = metrics.VideoMetrics(de_max_pixels=DE_PIXELS)
    blurs, k, first = [], 0, None
    for ref, t in decoded(src, seconds):
        first = t if first is None else first
        while k + 1 < len(shown) and shown[k + 1][1] - shown[0][1] <= t - first + 0.006:
            k += 1
        video.update(ref, shown[k][0])
        if blurred:
            blurs.append(blurred_psnr(metrics, ref, shown[k][0]))
    summary = video.summary()
    summary["decoded"] = len(shown)
    if blurred:
        summary["blurred"] = float(np.mean(blurs))
    return summary


def bench_dithered_gifs(tmp: Path, quick: bool, targets: Targets, metrics) -> None:
    seconds = OUTPUT_SECONDS[quick]
    print("## 6. Dithered GIFs: livequant (its temporal hold keeps still pixels' indices under error diffusion) "
          "against FFmpeg two-pass with the same dither and diff_mode=rectangle")
    clips = {f"cockatoo.mp4 (first {seconds:g} s)": (data_file("cockatoo.mp4"), seconds),
             "realshort.mp4": (data_file("realshort.mp4"), None)}
    for clip_name, (clip, limit) in clips.items():
        timing = ["--duration", f"{limit:g}"] if limit else []
        for k in OUTPUT_KS:
            load(f"before {clip_name}, K={k}, dithered")
            runs = {}
            for dither, ffmpeg_name in DITHERS_COMPARED.items():
                out = tmp / f"lq-{dither}-{k}.gif"
                runs[f"livequant --dither {dither}"] = (livequant_cli(
                    "transcode", str(clip), str(out), "-k", str(k), "-y", "-q", "--dither", dither, *timing), out)
                out = tmp / f"ffmpeg-{ffmpeg_name}-{k}.gif"
                runs[f"FFmpeg two-pass {ffmpeg_name}, rectangle"] = (ffmpeg_two_pass(
                    clip, out, limit, 1, colors=k, dither=ffmpeg_name, diff_mode="rectangle"), out)
            load(f"after {clip_name}, K={k}, dithered")
            quality = {name: shown_quality(metrics, clip, path, limit, blurred=True)
                       for name, (_, path) in runs.items()}
            blurred = {name: q["blurred"] for name, q in quality.items()}
            size = {name: path.stat().st_size for name, (_, path) in runs.items()}
            print(f"{clip_name}, K={k}, dithered (FFmpeg: {k - 1} colours + transparent): quality against the "
                  "source frames, blurred = PSNR of both blurred; one run each")
            print_table(["output", "wall s", "CPU s", "MB", "PSNR dB", "blurred dB", "dE2000", "flicker", "frames"],
                        [[n, r.wall, r.cpu, size[n] / 1e6, quality[n]["psnr"], blurred[n], quality[n]["de2000"],
                          quality[n]["flicker"], int(quality[n]["decoded"])] for n, (r, _) in runs.items()])
            for dither, ffmpeg_name in DITHERS_COMPARED.items():
                ours, theirs = f"livequant --dither {dither}", f"FFmpeg two-pass {ffmpeg_name}, rectangle"
                targets.check(f"GIF --dither {dither}, {clip_name}, K={k}: blurred PSNR >= FFmpeg's, lower flicker, "
                              "file no larger",
                              blurred[ours] >= blurred[theirs] and quality[ours]["flicker"] < quality[theirs]["flicker"]
                              and size[ours] <= size[theirs],
                              f"blurred {blurred[ours]:.2f} vs {blurred[theirs]:.2f} dB, flicker "
                              f"{quality[ours]['flicker']:.3f} vs {quality[theirs]['flicker']:.3f}, "
                              f"{size[ours] / 1e6:.2f} vs {size[theirs] / 1e6:.2f} MB")


def animated_frames(path: Path) -> list[tuple[np.ndarray, float]]:
    """``(rgb, time)`` of every frame of a GIF, APNG or animated WebP (FFmpeg cannot decode the last)."""
    if path.suffix != ".webp":
        return list(decoded(path))
    frames, t = [], 0.0
    with Image.open(path) as image:
        for i in range(image.n_frames):
            image.seek(i)
            frames.append((np.asarray(image.convert("RGB")), t))
            t += image.info["duration"] / 1000
    return frames


def bench_outputs(tmp: Path, quick: bool, targets: Targets, metrics) -> None:
    seconds = OUTPUT_SECONDS[quick]
    print(f"## 5. Animated outputs: GIF without dither, K={' and '.join(map(str, OUTPUT_KS))}; WebP, APNG; "
          "the report")
    cuts = tmp / "cuts.mp4"
    make_cuts_clip(cuts)
    clips = {f"cockatoo.mp4 (first {seconds:g} s)": (data_file("cockatoo.mp4"), seconds),
             "realshort.mp4": (data_file("realshort.mp4"), None),
             f"scene cuts (made here, {CUTS_SIZE[0]}x{CUTS_SIZE[1]}, 2 cuts)": (cuts, None)}
    gifski = gifski_binary()
    print(f"gifski: {gifski or 'not found (npm install gifski in /tmp, or set $GIFSKI): left out'}")
    livequant_cli("transcode", str(cuts), str(tmp / "warm.gif"), "-k", "16", "-y", "-q")  # compiled kernels
    for clip_name, (clip, limit) in clips.items():
        timing = ["--duration", f"{limit:g}"] if limit else []
        peer = {}
        if gifski is not None:
            load(f"before gifski, {clip_name}")
            run_, png_seconds = gifski_run(gifski, clip, tmp / "gifski.gif", limit, tmp)
            peer = {"gifski -Q 90 (own 256-colour palettes)": (run_, tmp / "gifski.gif")}
            print(f"gifski read {run_.stages['frames']} PNG frames, written in {png_seconds:.1f} s (not counted)")
        for k in OUTPUT_KS:
            load(f"before {clip_name}, K={k}")
            runs = {}
            for mode in ("track", "global"):
                out = tmp / f"lq-{mode}-{k}.gif"
                runs[f"livequant --gif-palette {mode}"] = (livequant_cli(
                    "transcode", str(clip), str(out), "-k", str(k), "-y", "-q", "--gif-palette", mode, *timing), out)
            lossy = f"livequant --gif-lossy {LOSSY_LEVELS:g}"
            if k == max(OUTPUT_KS):
                out = tmp / f"lq-lossy-{k}.gif"
                runs[lossy] = (livequant_cli("transcode", str(clip), str(out), "-k", str(k), "-y", "-q", "--gif-lossy",
                                             f"{LOSSY_LEVELS:g}", *timing), out)
            out = tmp / f"ffmpeg-{k}.gif"
            name = f"FFmpeg two-pass ({k - 1} colours + transparent)"
            runs[name] = (ffmpeg_two_pass(clip, out, limit, 1, colors=k), out)
            runs.update(peer)
            for suffix in (".webp", ".apng"):
                out = tmp / f"lq-{k}{suffix}"
                runs[f"livequant {suffix} lossless (track)"] = (livequant_cli(
                    "transcode", str(clip), str(out), "-k", str(k), "-y", "-q", *timing), out)
            load(f"after {clip_name}, K={k} encoding")
            quality = {name: shown_quality(metrics, clip, path, limit) for name, (_, path) in runs.items()}
            load(f"after {clip_name}, K={k} quality")
            size = {name: path.stat().st_size for name, (_, path) in runs.items()}
            ffmpeg_size = size[name]
            rows = [[n, r.wall, r.cpu, size[n] / 1e6, size[n] / ffmpeg_size, quality[n]["psnr"], quality[n]["de2000"],
                     quality[n]["flicker"], int(quality[n]["decoded"])] for n, (r, _) in runs.items()]
            print(f"{clip_name}, K={k}: quality against the source frames (mean PSNR, CIEDE2000 on {DE_PIXELS} "
                  "pixels a frame, static-region flicker 0-255); one run each")
            print_table(["output", "wall s", "CPU s", "MB", "size x FFmpeg", "PSNR dB", "dE2000", "flicker",
                         "frames"], rows)
            ff = quality[name]
            checked = [(mode, f"livequant --gif-palette {mode}", True) for mode in ("track", "global")]
            checked.append((f"track --gif-lossy {LOSSY_LEVELS:g}", lossy, False))  # against gifski only
            for mode, ours_name, against_ffmpeg in checked:
                if ours_name not in runs:
                    continue
                ours, ours_size = quality[ours_name], size[ours_name]
                if against_ffmpeg:
                    targets.check(f"GIF {mode}, {clip_name}, K={k}: PSNR and dE >= FFmpeg two-pass, file no larger",
                                  ours["psnr"] >= ff["psnr"] and ours["de2000"] <= ff["de2000"]
                                  and ours_size <= ffmpeg_size,
                                  f"PSNR {ours['psnr']:.2f} vs {ff['psnr']:.2f} dB, dE {ours['de2000']:.2f} vs "
                                  f"{ff['de2000']:.2f}, {ours_size / 1e6:.2f} vs {ffmpeg_size / 1e6:.2f} MB")
                if peer:
                    (gname, _), = peer.items()
                    g = quality[gname]
                    targets.check(f"GIF {mode}, {clip_name}, K={k} vs gifski -Q 90 (goal): better dE or PSNR, "
                                  "lower flicker, <= 0.7x its size",
                                  (ours["de2000"] < g["de2000"] or ours["psnr"] > g["psnr"])
                                  and ours["flicker"] < g["flicker"] and ours_size <= 0.7 * size[gname],
                                  f"PSNR {ours['psnr']:.2f} vs {g['psnr']:.2f}, dE {ours['de2000']:.2f} vs "
                                  f"{g['de2000']:.2f}, flicker {ours['flicker']:.3f} vs {g['flicker']:.3f}, "
                                  f"{ours_size / size[gname]:.2f}x its size")
    bench_report_cost(clips, tmp, targets)


#: Part 7's sticker: size, frames, rate; the palette size; the grey the frames are put on to be compared.
STICKER_SIZE, STICKER_FRAMES, STICKER_FPS, STICKER_K, GREY = (320, 320), 48, 24, 64, 128


def sticker_frame(i: int) -> np.ndarray:
    """Frame ``i`` of the sticker, ``(H, W, 4)`` RGBA: a spinning rainbow star with a 1-pixel anti-aliased
    edge, and a ball with a 6-pixel soft edge bouncing along the bottom, over a clear canvas."""
    w, h = STICKER_SIZE
    y, x = np.mgrid[:h, :w].astype(np.float32)
    turn = 2 * np.pi * i / STICKER_FRAMES
    r, theta = np.hypot(x - w / 2, y - h * 0.4), np.arctan2(y - h * 0.4, x - w / 2)
    star = np.clip(90 + 30 * np.cos(5 * (theta - turn)) - r + 0.5, 0, 1)
    hsv = np.dstack([((theta - turn) / (2 * np.pi) * 180) % 180, 160 + 95 * np.clip(r / 120, 0, 1),
                     255 - 100 * np.clip(r / 120, 0, 1)]).astype(np.uint8)
    colour = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)
    bx, by = 40 + 240 * i / STICKER_FRAMES, h - 40 - 60 * abs(np.sin(3 * turn))
    d = np.hypot(x - bx, y - by)
    ball = np.clip((28 - d) / 6, 0, 1)
    ball_colour = np.dstack([60 + 0 * d, 120 + 100 * np.clip(1 - d / 28, 0, 1), 230 + 0 * d])
    colour = np.where(ball[..., None] > star[..., None], ball_colour, colour)
    alpha = np.maximum(star, ball) * 255
    return np.dstack([colour, alpha]).round().clip(0, 255).astype(np.uint8)


def make_sticker(path: Path) -> None:
    """The sticker as a lossless APNG of RGBA frames."""
    encode(path, (sticker_frame(i) for i in range(STICKER_FRAMES)), "apng", STICKER_FPS, "rgba", container="apng")


def ffmpeg_two_pass_alpha(frames: list[np.ndarray], dst: Path) -> Run:
    """FFmpeg's transparent GIF: ``palettegen`` (``reserve_transparent=1``) over every RGBA frame, then
    ``paletteuse`` (no dither, ``alpha_threshold=128``) on each, through PyAV's gif encoder."""
    start_cpu, start = cpu_seconds(), time.perf_counter()
    size = (frames[0].shape[1], frames[0].shape[0])
    palette = palettegen(frames, "rgba", size, max_colors=str(STICKER_K), reserve_transparent="1")
    use = paletteuse(size, palette, dither="none", alpha_threshold="128")
    gif = GifOut(dst, size)
    for pts, rgba in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA), format="bgra")
        frame.pts = pts
        use.vpush(frame, at=0)
        gif.write(use.vpull(), pts / STICKER_FPS)
    gif.close()
    return Run(time.perf_counter() - start, cpu_seconds() - start_cpu, {"frames": gif.frames})


def gifski_rgba(binary: Path, frames: list[np.ndarray], dst: Path, tmp: Path) -> Run:
    """gifski ``-Q 90`` on RGBA frames written as PNG files (not counted in its time)."""
    pictures = png_files((cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA) for rgba in frames), tmp / "gifski-rgba")
    return gifski(binary, pictures, dst, STICKER_FPS)


def on_grey(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb, shows)``: an RGBA frame cut at alpha 128 and put on mid-grey, and which pixels show."""
    shows = rgba[..., 3] >= 128
    return np.where(shows[..., None], rgba[..., :3], np.uint8(GREY)), shows


def bench_transparency(tmp: Path, targets: Targets, metrics) -> None:
    print(f"## 7. Transparency: a sticker made here ({STICKER_SIZE[0]}x{STICKER_SIZE[1]}, {STICKER_FRAMES} "
          f"frames at {STICKER_FPS} fps, RGBA APNG) to a GIF at K={STICKER_K}")
    sticker = tmp / "sticker.apng"
    make_sticker(sticker)
    frames = [sticker_frame(i) for i in range(STICKER_FRAMES)]
    livequant_cli("transcode", str(sticker), str(tmp / "warm.gif"), "-k", "16", "-y", "-q")  # compiled kernels
    load("before part 7")
    runs = {"livequant": (livequant_cli("transcode", str(sticker), str(tmp / "lq-alpha.gif"), "-k", str(STICKER_K),
                                        "-y", "-q"), tmp / "lq-alpha.gif"),
            f"FFmpeg two-pass ({STICKER_K - 1} colours + transparent)": (
                ffmpeg_two_pass_alpha(frames, tmp / "ffmpeg-alpha.gif"), tmp / "ffmpeg-alpha.gif")}
    gifski = gifski_binary()
    if gifski is not None:
        runs["gifski -Q 90 (own 256-colour palettes)"] = (gifski_rgba(gifski, frames, tmp / "gifski-alpha.gif", tmp),
                                                          tmp / "gifski-alpha.gif")
    load("after part 7's encoding")
    rows, agreement = [], {}
    for name, (run_, path) in runs.items():
        with Image.open(path) as image:
            decoded = []
            for i in range(image.n_frames):
                image.seek(i)
                decoded.append(np.array(image.convert("RGBA")))
        video = metrics.VideoMetrics(de_max_pixels=DE_PIXELS)
        same = []
        for source, out in zip(frames, decoded):
            (ref, ref_shows), (shown, shows) = on_grey(source), on_grey(out)
            video.update(ref, shown)
            same.append(float((ref_shows == shows).mean()))
        quality = video.summary()
        agreement[name] = min(same) if len(decoded) == len(frames) else 0.0
        rows.append([name, run_.wall, run_.cpu, path.stat().st_size / 1e6, quality["psnr"], quality["de2000"],
                     quality["flicker"], len(decoded), agreement[name]])
    print("quality of each decoded frame against the source's, both cut at alpha 128 and put on grey; 'shows as "
          "the source' is the lowest share of a frame's pixels that show or not as the source's alpha says")
    print_table(["output", "wall s", "CPU s", "MB", "PSNR dB", "dE2000", "flicker", "frames", "shows as the source"],
                rows)
    targets.check("transparency: every pixel of every GIF frame shows or not as the source's alpha >= 128 says",
                  agreement["livequant"] == 1.0, f"lowest share of a frame {agreement['livequant']:.4f}")


def bench_report_cost(clips: dict, tmp: Path, targets: Targets) -> None:
    """``--report`` (JSON) against the same transcode without: wall and CPU times, alternating, and the
    report's own CPU time (its thread's) over the run's wall time (steadier on a shared machine)."""
    clip_name, (clip, limit) = next(iter(clips.items()))
    timing = ["--duration", f"{limit:g}"] if limit else []
    load("before report cost")
    report = tmp / "report.json"
    variants = {
        "without --report": lambda warmup=False: livequant_cli(
            "transcode", str(clip), str(tmp / "r.gif"), "-k", "64", "-y", "-q", *timing),
        "with --report report.json": lambda warmup=False: livequant_cli(
            "transcode", str(clip), str(tmp / "r.gif"), "-k", "64", "-y", "-q", "--report", str(report), *timing),
    }
    runs = {name: median_run(r) for name, r in rounds(variants, 2).items()}
    own = json.loads(report.read_text())["totals"]["report_cpu_seconds"]
    load("after report cost")
    without, with_ = runs["without --report"], runs["with --report report.json"]
    print(f"--report cost on {clip_name}, GIF K=64 (median of 2 alternating runs; the report measures every "
          "frame at 8192 fixed pixel positions, CIEDE2000 at 1024 of them)")
    print_table(["run", "wall s", "CPU s"], [[n, r.wall, r.cpu] for n, r in runs.items()])
    share = own / without.wall
    targets.check("--report costs <= 15% of the transcode's wall time", share <= 0.15,
                  f"the report's own CPU time {own:.2f} s = {100 * share:.1f}% of {without.wall:.2f} s; wall with it "
                  f"{with_.wall:.2f} s ({100 * (with_.wall / without.wall - 1):+.1f}%, CPU "
                  f"{100 * (with_.cpu / without.cpu - 1):+.1f}%)")


def bench_preview(quick: bool, targets: Targets) -> None:
    live_frames, unpaced_frames = PREVIEW_FRAMES[quick]
    w, h = HD
    interval_ms = 1000 / PREVIEW_FPS
    print(f"## 3. Preview pipeline: TestPattern {w}x{h}, K={K}, Quantizer(background=True), a null sink")
    load("before preview")
    first = next(iter(TestPattern(HD, fps=PREVIEW_FPS, frames=1)))[0]
    fixed = Quantizer(K).process(first).palette  # fitted to the first frame
    with Quantizer(K, background=True) as quantizer:  # warm-up: compiled kernels loaded
        run(TestPattern(HD, fps=PREVIEW_FPS, frames=30), quantizer, [NullSink()])
    paced = f"live, paced at {PREVIEW_FPS:g} fps"
    configurations = {  # name: live, frames, Quantizer options
        paced: (True, live_frames, {}),
        f"{paced}, refit_every=30": (True, live_frames, {"refit_every": 30}),
        f"{paced}, fixed palette (no refits)": (True, live_frames, {"palette": fixed}),
        "unpaced (live=False)": (False, unpaced_frames, {}),
    }
    results, rows = {}, []
    for name, (live, frames, options) in configurations.items():
        with TestPattern(HD, fps=PREVIEW_FPS, live=live, frames=frames) as source, \
                Quantizer(K, **options, background=True) as quantizer:
            stats = results[name] = run(source, quantizer, [NullSink()])
        rows.append([name, frames, stats.frames, stats.dropped, stats.fps, stats.quantize_ms,
                     stats.latency_ms if live else None, stats.refits])
    start = time.perf_counter()
    for frame, _ in TestPattern(HD, fps=PREVIEW_FPS, frames=unpaced_frames):
        pass
    rows.append(["reference: the test pattern alone, unpaced", unpaced_frames, unpaced_frames, 0,
                 unpaced_frames / (time.perf_counter() - start), None, None, None])
    copy_ms = statistics.median(_timed_copy(frame) for _ in range(50))
    load("after preview")
    print("quantize, latency: medians, ms per frame; latency from a frame's arrival from the source to its "
          "quantized result (live runs only: unpaced, frames wait in the reader's queue by design)")
    print_table(["run", "frames offered", "processed", "dropped", "fps", "quantize ms", "latency ms", "refits"],
                rows)
    print(f"reference: copying one {w}x{h} frame takes {copy_ms:.2f} ms; a frame interval at {PREVIEW_FPS:g} fps is "
          f"{interval_ms:.1f} ms")
    print()
    live, unpaced = results[paced], results["unpaced (live=False)"]
    targets.check(f"preview {h}p processes >= {PREVIEW_FPS:g} fps", live.fps >= 0.99 * PREVIEW_FPS,
                  f"paced at {PREVIEW_FPS:g} fps: {live.fps:.1f} fps, {live.dropped} of {live_frames} dropped; "
                  f"unpaced top speed {unpaced.fps:.1f} fps")
    targets.check(f"preview latency <= 2 frame intervals ({2 * interval_ms:.1f} ms)",
                  live.latency_ms <= 2 * interval_ms, f"median {live.latency_ms:.1f} ms "
                  f"(quantize {live.quantize_ms:.1f} ms a frame)")


def _timed_copy(frame: np.ndarray) -> float:
    start = time.perf_counter()
    frame.copy()
    return (time.perf_counter() - start) * 1000


def bench_memory(tmp: Path, quick: bool, targets: Targets) -> None:
    short, long = MEMORY_SECONDS[quick]
    w, h = HD
    print(f"## 4. Peak memory of `python -m livequant transcode IN OUT -k {K}` on {w}x{h} clips, {MEMORY_FPS} fps")
    clips = {}
    for seconds in (short, long):
        clips[seconds] = tmp / f"in-{seconds}s.mp4"
        took = make_clip(clips[seconds], seconds)
        print(f"made {clips[seconds].name}: {seconds * MEMORY_FPS} frames, "
              f"{clips[seconds].stat().st_size / 1e6:.1f} MB, in {took:.1f} s")
    load("before memory")
    python = sys.executable
    rows = []
    peak = {}
    rss, wall, cpu = child_peak([python, "-c", "import livequant.cli"])
    rows.append(["reference: import livequant.cli", None, rss, wall, cpu, None])
    first = ("import numpy, livequant.cli; frame = numpy.random.default_rng(0).integers(0, 256, (64, 64, 3), "
             "dtype=numpy.uint8); livequant.Quantizer(64).process(frame)")
    rss, wall, cpu = child_peak([python, "-c", first])
    rows.append(["reference: import + one Quantizer(64) on a 64x64 frame", None, rss, wall, cpu, None])
    plain = (f"import sys; sys.path.insert(0, 'benchmarks'); from pathlib import Path; import bench_streams; "
             f"bench_streams.plain_transcode(Path('{clips[short]}'), Path('{tmp / 'plain-1080p.mp4'}'))")
    rss, wall, cpu = child_peak([python, "-c", plain])
    rows.append([f"reference: plain PyAV transcode (this script's), {short} s", short * MEMORY_FPS, rss, wall, cpu,
                 1000 * cpu / (short * MEMORY_FPS)])
    for seconds in (short, long):
        argv = [python, "-m", "livequant", "transcode", str(clips[seconds]), str(tmp / "out-1080p.mp4"),
                "-k", str(K), "-y", "-q"]
        peak[seconds], wall, cpu = child_peak(argv)
        rows.append([f"livequant transcode, {seconds} s", seconds * MEMORY_FPS, peak[seconds], wall, cpu,
                     1000 * cpu / (seconds * MEMORY_FPS)])
    load("after memory")
    print_table(["process", "frames", "peak RSS MB", "wall s", "CPU s", "CPU ms/frame"], rows)
    growth = peak[long] - peak[short]
    share, mb = MEMORY_SLACK
    targets.check("peak memory flat as the input grows", growth <= max(share * peak[short], mb),
                  f"{peak[short]:.0f} MB for {short} s, {peak[long]:.0f} MB for {long} s ({growth:+.0f} MB)")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    clip = data_file("cockatoo.mp4")
    metrics = load_metrics()
    print_machine()
    targets = Targets()
    parts = os.environ.get("BENCH_PARTS", "mp4,gif,preview,memory,outputs,dither,alpha").split(",")
    with tempfile.TemporaryDirectory(prefix="livequant-bench-") as folder:
        tmp = Path(folder)
        if "mp4" in parts:
            bench_mp4(clip, tmp, args.quick, targets)
        if "gif" in parts:
            bench_gif(clip, tmp, args.quick, targets, metrics)
        if "preview" in parts:
            bench_preview(args.quick, targets)
        if "memory" in parts:
            bench_memory(tmp, args.quick, targets)
        if "outputs" in parts:
            bench_outputs(tmp, args.quick, targets, metrics)
        if "dither" in parts:
            bench_dithered_gifs(tmp, args.quick, targets, metrics)
        if "alpha" in parts:
            bench_transparency(tmp, targets, metrics)
    values = [x for _, x in LOADS]
    print(f"1-min load average over the run: {min(values):.2f} to {max(values):.2f} (median "
          f"{statistics.median(values):.2f}) on {len(os.sched_getaffinity(0))} cores; "
          f"took {time.perf_counter() - _START:.0f} s")
    print()
    targets.print()


if __name__ == "__main__":
    main()
