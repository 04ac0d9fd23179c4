"""Start-up: what a command costs before and around its work, as users run it (``python -m livequant`` in a
fresh process each time).

Commands: ``--help``; a missing input (the one-line error); realshort (36 frames, 320x240) to a GIF with a
preset palette (no fit); the same fitted at K = 16, 64 and 256; a clip of flat colours made here (`flat_clip`,
some 600 colours a frame, as screen captures and cartoons have) to a GIF at K = 256, whose fresh
fits are of few colours (`livequant.fit.FEW_COLORS`). Each the median of 5 runs, the commands taken
in turn round after round; then the interpreter alone (``python -c pass``) and the imports alone (``python
-c "import livequant.cli"``, and scikit-learn's ``sklearn.cluster``, which the first fit of 32 colours or
fewer loads). Compare the fitted GIFs with bench_streams' in-process figures, which leave start-up out.

Run: python benchmarks/bench_startup.py [--quick]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from _common import REPO, data_file, parse_args, print_load, print_machine, print_table


def flat_clip(path: Path, frames: int = 36, size=(320, 240)) -> Path:
    """A lossless clip (FFV1) of ``frames`` frames: flat rectangles in 8 colours, blended where they overlap,
    sliding over a background ramped in red (some 600 colours a frame: more than K = 256, fewer than
    `livequant.fit.FEW_COLORS`)."""
    w, h = size
    rng = np.random.default_rng(3)
    colors = rng.integers(0, 256, (8, 3)).astype(np.float32)
    boxes = [(rng.integers(0, w - 80), rng.integers(0, h - 60), rng.integers(40, 80), rng.integers(30, 60))
             for _ in colors]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=12)
        stream.width, stream.height, stream.pix_fmt = w, h, "bgr0"
        for t in range(frames):
            image = np.full((h, w, 3), 40, np.float32)
            image[..., 0] = np.linspace(20, 220, w)[None, :]  # a ramp: more colours than the palette holds
            for (x, y, bw, bh), color in zip(boxes, colors):
                x = (x + 4 * t) % (w - bw)
                image[y : y + bh, x : x + bw] = 0.5 * image[y : y + bh, x : x + bw] + 0.5 * color
            picture = av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")
            out.mux(stream.encode(picture))
        out.mux(stream.encode())
    return path


def commands(out: Path) -> dict[str, list[str]]:
    """Name -> argv after ``python``."""
    clip = str(data_file("realshort.mp4"))
    gif = [sys.executable, "-m", "livequant", "transcode", clip, str(out), "-y", "-q"]
    flat = str(flat_clip(out.with_name("flat.mkv")))
    return {
        "python -m livequant --help": [sys.executable, "-m", "livequant", "--help"],
        "a missing input (error)": [sys.executable, "-m", "livequant", "transcode", str(out.with_suffix(".mp4")),
                                    str(out)],
        "realshort -> GIF, --palette gameboy": [*gif, "--palette", "gameboy"],
        "realshort -> GIF, -k 16": [*gif, "-k", "16"],
        "realshort -> GIF, -k 64": [*gif, "-k", "64"],
        "realshort -> GIF, -k 256": [*gif, "-k", "256"],
        "flat colours (made here) -> GIF, -k 256": [sys.executable, "-m", "livequant", "transcode", flat, str(out),
                                                      "-k", "256", "-y", "-q"],
        "python -c pass": [sys.executable, "-c", "pass"],
        "import livequant.cli": [sys.executable, "-c", "import livequant.cli"],
        "import sklearn.cluster": [sys.executable, "-c", "import sklearn.cluster"],
    }


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=REPO, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    print_machine()
    repeat = 3 if args.quick else 5
    with tempfile.TemporaryDirectory() as folder:
        todo = commands(Path(folder) / "out.gif")
        for argv in todo.values():  # warm-up: numba's cache, the page cache
            wall(argv)
        times = {name: [] for name in todo}
        for _ in range(repeat):
            for name, argv in todo.items():
                times[name].append(wall(argv))
    print_load("after the runs")
    print_table(["command", f"median of {repeat} (s)", "min (s)"],
                [[name, f"{statistics.median(t):.2f}", f"{min(t):.2f}"] for name, t in times.items()])


if __name__ == "__main__":
    main()
