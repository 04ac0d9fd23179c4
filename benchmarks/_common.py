"""Helpers shared by the benchmarks: machine facts, timing, frames, reference quantizers.

The benchmarks import the livequant of this checkout (the repository root goes
first on ``sys.path``), read real footage from ``../shared/data`` (relative to
the repository; a benchmark exits with a message when it is missing) and time
references in the same run, so the ratios hold on a busy machine.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import inspect
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import av  # noqa: E402
import cv2  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import livequant  # noqa: E402

#: Frame sizes (width, height) by name.
SIZES = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080), "2160p": (3840, 2160)}


def parse_args(description: str, flags: dict[str, str] | None = None,
               options: dict[str, dict] | None = None) -> argparse.Namespace:
    """The benchmarks' command line: ``--quick`` for a short run, ``--threads`` to cap the threads,
    a benchmark's own on/off ``flags`` (name -> help) and valued ``options`` (name -> `add_argument` keywords)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a short run: fewer sizes, frames and repeats")
    for name, text in (flags or {}).items():
        parser.add_argument(f"--{name}", action="store_true", help=text)
    for name, keywords in (options or {}).items():
        parser.add_argument(f"--{name}", **keywords)
    parser.add_argument("--threads", type=int, help="threads for numba and OpenMP/BLAS (default: one per core); "
                        "1 gives steadier timings on a busy machine")
    args = parser.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
        threadpool_limits(args.threads)  # stays in force for the process
    return args


def print_machine() -> None:
    """Print the date, machine, load and library versions (what the numbers depend on)."""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown"
    git = partial(subprocess.run, capture_output=True, text=True, check=False)
    commit = git(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]).stdout.strip() or "no git"
    if git(["git", "-C", str(REPO), "status", "--porcelain", "livequant"]).stdout.strip():
        commit += " + uncommitted changes in livequant/"
    libraries = ("numpy", "numba", "scikit-learn", "pillow", "imagequant")
    versions = {name: importlib.metadata.version(name) for name in libraries}
    ffmpeg = ".".join(map(str, av.library_versions["libavfilter"]))
    print(f"date       {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"machine    {cpu}; {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable); {platform.platform()}")
    print_load("at start")
    threads = numba.get_num_threads()
    print(f"python     {platform.python_version()}; numba threads {threads} (--threads caps OpenMP too)")
    print(f"versions   livequant {livequant.__version__} ({commit}); "
          + "; ".join(f"{k} {v}" for k, v in versions.items())
          + f"; av {av.__version__} (libavfilter {ffmpeg}); opencv {cv2.__version__}")
    print()


def print_load(when: str) -> None:
    """Print the load average (the machine is shared: it says how far to trust the timings)."""
    print(f"load avg   {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min) {when}")


def data_file(name: str) -> Path:
    """Path of ``../shared/data/name``; exits cleanly with a message when it is missing."""
    path = DATA / name
    if not path.is_file():
        print(f"skipped: {path} is missing (the benchmarks read real footage from ../shared/data beside the repo)")
        raise SystemExit(0)
    return path


def load_metrics():
    """The shared quality metrics, ``../shared/quality/metrics.py``, as a module; exits cleanly when missing."""
    path = REPO.parent / "shared" / "quality" / "metrics.py"
    if not path.is_file():
        print(f"skipped: {path} is missing (the shared quality metrics live beside the repo)")
        raise SystemExit(0)
    spec = importlib.util.spec_from_file_location("metrics", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def quantizer_default(option: str):
    """The default value of a `livequant.Quantizer` option."""
    return inspect.signature(livequant.Quantizer).parameters[option].default


def read_frames(path: Path, limit: int | None = None) -> list[np.ndarray]:
    """Decode up to ``limit`` frames of a video or animated GIF as ``(H, W, 3) uint8`` RGB."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if limit is not None and len(frames) >= limit:
                break
            frames.append(frame.to_ndarray(format="rgb24"))
    return frames


def resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``frame`` resized to ``size = (width, height)`` with area interpolation."""
    if (frame.shape[1], frame.shape[0]) == size:
        return frame.copy()
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def median_ms(functions: dict[str, Callable[[], object]], repeat: int, warmup: int = 2) -> dict[str, float]:
    """Median wall time in ms of each function, after ``warmup`` untimed calls.

    The repeats are interleaved (one call of each function per round), so a
    burst of load from elsewhere lands on all of them alike.
    """
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeat):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def print_table(header: list[str], rows: list[list]) -> None:
    """Print rows as aligned columns: text left, numbers right (floats with 2 decimals)."""

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.2f}" if abs(value) < 1000 else f"{value:.0f}"
        return "" if value is None else str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) if text else len(h) for i, h in enumerate(header)]
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) for i in range(len(header))]
    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric))

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in text:
        print(line(row))
    print()


class Targets:
    """Collects target checks and prints them as a block: met / NOT MET with the numbers."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, bool, str]] = []

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.rows.append((name, bool(ok), detail))

    def print(self) -> None:
        print("targets")
        for name, ok, detail in self.rows:
            print(f"  {'met    ' if ok else 'NOT MET'}  {name}: {detail}")
        print()


# ------------------------------------------------------------------ FFmpeg palettegen and paletteuse, Pillow


def palette_frame(colors: np.ndarray) -> av.VideoFrame:
    """A 16 x 16 ``bgra`` palette image as paletteuse reads it (unused entries repeat the last colour)."""
    entries = np.empty((256, 4), np.uint8)
    entries[:, :3] = colors[-1, ::-1]
    entries[: len(colors), :3] = colors[:, ::-1]
    entries[:, 3] = 255
    frame = av.VideoFrame.from_ndarray(entries.reshape(16, 16, 4), format="bgra")
    frame.pts = 0
    return frame


def bgra_frame(frame: np.ndarray) -> av.VideoFrame:
    """An RGB ndarray as the ``bgra`` VideoFrame paletteuse takes (its native input: no conversion inside)."""
    bgra = cv2.cvtColor(frame, cv2.COLOR_RGB2BGRA)
    return av.VideoFrame.from_ndarray(bgra, format="bgra")


#: livequant's error-diffusion dithers -> FFmpeg paletteuse's names (Sierra Lite is Sierra-2-4A, its default).
DITHERS_COMPARED = {"floyd-steinberg": "floyd_steinberg", "sierra-lite": "sierra2_4a"}
#: Gaussian sigma, in pixels, of the blur both frames get for `blurred_psnr`.
BLUR_SIGMA = 1.2


def blurred_psnr(metrics, ref: np.ndarray, out: np.ndarray) -> float:
    """PSNR of ``ref`` and ``out`` both blurred (`BLUR_SIGMA`): the colour a dither pattern shows from a little
    way off."""
    return metrics.psnr(*(cv2.GaussianBlur(x, (0, 0), BLUR_SIGMA) for x in (ref, out)))


class PaletteUse:
    """FFmpeg's ``paletteuse`` through a PyAV filter graph, against a fixed palette.

    Two buffer sources (the frames and the 16 x 16 palette image) feed
    paletteuse, then a buffersink; the palette input is closed after its one
    frame, so each pushed frame comes straight back as ``pal8``.

    Parameters
    ----------
    size : (width, height)
    colors : (K, 3) uint8 ndarray
    dither : str
        paletteuse's ``dither`` option: ``"none"``, ``"bayer"``, ``"floyd_steinberg"``...
    diff_mode : str
        paletteuse's ``diff_mode``: ``"none"``, or ``"rectangle"`` (only the box around what changed
        since the previous frame is dithered again).
    """

    def __init__(self, size: tuple[int, int], colors: np.ndarray, dither: str, diff_mode: str = "none"):
        self.graph = av.filter.Graph()
        frames = self.graph.add_buffer(width=size[0], height=size[1], format="bgra", time_base=Fraction(1, 30))
        palette = self.graph.add_buffer(width=16, height=16, format="bgra", time_base=Fraction(1, 30))
        use = self.graph.add("paletteuse", dither=dither, diff_mode=diff_mode)
        sink = self.graph.add("buffersink")
        frames.link_to(use, 0, 0)
        palette.link_to(use, 0, 1)
        use.link_to(sink)
        self.graph.configure()
        self.graph.vpush(palette_frame(colors), at=1)
        self.graph.vpush(None, at=1)
        self.pts = 0

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        """Push one ``bgra`` frame and pull its ``pal8`` result."""
        frame.pts = self.pts
        self.pts += 1
        self.graph.vpush(frame, at=0)
        return self.graph.vpull()

    @staticmethod
    def rgb(out: av.VideoFrame) -> np.ndarray:
        """The colours of a ``pal8`` result (through its own palette, which paletteuse may reorder)."""
        return out.to_ndarray(format="rgb24")


class PaletteGenUse:
    """FFmpeg ``palettegen`` + ``paletteuse`` on each frame, streamed through one graph.

    ``split`` feeds each frame to ``palettegen`` (``stats_mode=single``, no
    reserved transparent entry) and to ``paletteuse`` (``new=1``), so every
    frame gets its own palette and comes out before the next goes in.
    """

    def __init__(self, size: tuple[int, int], n_colors: int, dither: str = "none"):
        self.graph = av.filter.Graph()
        source = self.graph.add_buffer(width=size[0], height=size[1], format="rgb24", time_base=Fraction(1, 30))
        split = self.graph.add("split")
        gen = self.graph.add("palettegen", max_colors=str(n_colors), reserve_transparent="0", stats_mode="single")
        use = self.graph.add("paletteuse", dither=dither, new="1")
        sink = self.graph.add("buffersink")
        source.link_to(split)
        split.link_to(use, 0, 0)
        split.link_to(gen, 1, 0)
        gen.link_to(use, 0, 1)
        use.link_to(sink)
        self.graph.configure()
        self.pts = 0

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Quantize one RGB frame, returning RGB."""
        vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
        vf.pts = self.pts
        self.pts += 1
        self.graph.vpush(vf)
        return self.graph.vpull().to_ndarray(format="rgb24")


def ffmpeg_global_palette(frames: list[np.ndarray], n_colors: int) -> np.ndarray:
    """FFmpeg's first pass: one ``palettegen`` palette (``stats_mode=full``) over all ``frames``, ``(K, 3) uint8``."""
    h, w = frames[0].shape[:2]
    graph = av.filter.Graph()
    source = graph.add_buffer(width=w, height=h, format="rgb24", time_base=Fraction(1, 30))
    gen = graph.add("palettegen", max_colors=str(n_colors), reserve_transparent="0", stats_mode="full")
    sink = graph.add("buffersink")
    source.link_to(gen)
    gen.link_to(sink)
    graph.configure()
    for i, frame in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
        vf.pts = i
        graph.vpush(vf)
    graph.vpush(None)
    return graph.vpull().to_ndarray(format="rgb24").reshape(-1, 3)[:n_colors].copy()


def pillow_palette(colors: np.ndarray) -> Image.Image:
    """A ``P`` image holding exactly ``colors``, for ``Image.quantize(palette=...)``."""
    image = Image.new("P", (1, 1))
    image.putpalette(colors.ravel().tolist())
    return image
