"""Start-up: what a command costs before and around its work, as users run it (``python -m livequant`` in a
fresh process each time).

Commands: ``--help``; a missing input (the one-line error); realshort (36 frames, 320x240) to a GIF with a
preset palette (no fit); the same fitted at K = 16, 64 and 256. Each the median of 5 runs, the commands taken
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

from _common import REPO, data_file, parse_args, print_load, print_machine, print_table


def commands(out: Path) -> dict[str, list[str]]:
    """Name -> argv after ``python``."""
    clip = str(data_file("realshort.mp4"))
    gif = [sys.executable, "-m", "livequant", "transcode", clip, str(out), "-y", "-q"]
    return {
        "python -m livequant --help": [sys.executable, "-m", "livequant", "--help"],
        "a missing input (error)": [sys.executable, "-m", "livequant", "transcode", str(out.with_suffix(".mp4")),
                                    str(out)],
        "realshort -> GIF, --palette gameboy": [*gif, "--palette", "gameboy"],
        "realshort -> GIF, -k 16": [*gif, "-k", "16"],
        "realshort -> GIF, -k 64": [*gif, "-k", "64"],
        "realshort -> GIF, -k 256": [*gif, "-k", "256"],
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
