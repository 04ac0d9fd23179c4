"""Refit cost: palette fit + lookup-table rebuild, warm and fresh, on consecutive 720p frames.

A refit is done as the Quantizer does one: the fitter samples the frame at its
fixed positions, fits (warm: from the previous frame's palette, with the
still-sample mask; fresh: k-means++ from scratch; palettes of more than 32
colours to the frame's histogram, its gathering timed with the fit), then the
table is rebuilt.
The Quantizer skips the rebuild when a warm refit moved no colour; here it is
always timed, and since cells are filled on first use, "table" is the build plus
the filling of the cells the frame touches (its first mapping minus a second). Each frame is timed once per step and configuration, all
interleaved frame by frame; the figures are medians over frames. References in the same run: mapping one
720p frame with a fixed palette, and scikit-learn's MiniBatchKMeans with
default settings on the same samples (what a naive per-frame refit costs).

Run: python benchmarks/bench_refit.py [--quick]
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from _common import (
    Targets,
    data_file,
    parse_args,
    print_load,
    print_machine,
    print_table,
    quantizer_default,
    read_frames,
)
from sklearn.cluster import MiniBatchKMeans

from livequant import Palette, Quantizer
from livequant.colorspace import to_space
from livequant.fit import Fit, PaletteFitter
from livequant.hold import default_hold
from livequant.lookup import build_table, lookup_pixels

#: The Quantizer's default weight of flicker against error in a warm refit.
STABILITY = quantizer_default("stability")
#: K -> fit + table budget in ms (the targets).
BUDGET = {16: 30.0, 256: 150.0}


def timed(fn, *args, **kwargs):
    """``(result, ms)`` of one call."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, (time.perf_counter() - start) * 1000


def table_ms(colors: np.ndarray, space: str, frame: np.ndarray) -> float:
    """What a new table costs a frame: building it, plus filling the cells ``frame`` touches (cells are
    filled on first use), that is the first mapping of the frame minus a second one on the filled table."""
    pixels = frame.reshape(-1, 3)
    table, build = timed(build_table, colors, space)
    first = timed(lookup_pixels, pixels, table)[1]
    again = timed(lookup_pixels, pixels, table)[1]
    return build + first - again


class Refits:
    """One (K, colour space) configuration: its fitter and Quantizers, and the ms of each step per frame."""

    STEPS = ("fresh fit", "fresh table", "warm fit", "warm table", "MBK default", "lookup",
             "Quantizer refit", "Quantizer frame")

    def __init__(self, first: np.ndarray, k: int, space: str):
        self.k, self.space = k, space
        self.still_levels = default_hold(k)  # a sample that changed by at most this much counts as still
        self.fitter = PaletteFitter(k, color_space=space, sample_size=max(8192, 64 * k), seed=0, stability=STABILITY)
        self.samples = self.fitter.sample(first)
        self.previous = self.fit(self.samples, first)
        self.lookup = Quantizer(palette=Palette(self.previous.colors), color_space=space, hold=0)
        self.lookup.process(first)  # compiled kernels warm
        self.quantizer = Quantizer(k, color_space=space, refit_every=1)
        self.quantizer.process(first)
        self.times: dict[str, list[float]] = {step: [] for step in self.STEPS}
        self.moved = 0

    def fit(self, samples: np.ndarray, frame: np.ndarray, **warm) -> Fit:
        """Fit as the palette track does: palettes of more than 32 colours to the whole frame's histogram."""
        return self.fitter.fit(samples, histogram=self.fitter.histogram(frame), **warm)

    def step(self, frame: np.ndarray) -> None:
        """Time each way of refitting on the next frame."""
        times, fitter, space = self.times, self.fitter, self.space
        last, samples = self.samples, fitter.sample(frame)
        still = np.abs(samples.astype(np.int16) - last).max(axis=1) <= self.still_levels
        fresh, ms = timed(self.fit, samples, frame)
        times["fresh fit"].append(ms)
        times["fresh table"].append(table_ms(fresh.colors, space, frame))
        warm, ms = timed(self.fit, samples, frame, previous=self.previous, still=still)
        times["warm fit"].append(ms)
        times["warm table"].append(table_ms(warm.colors, space, frame))
        self.moved += not np.array_equal(warm.colors, self.previous.colors)
        self.samples, self.previous = samples, warm
        kmeans = MiniBatchKMeans(n_clusters=self.k, random_state=0)
        times["MBK default"].append(timed(kmeans.fit, to_space(samples, space))[1])
        times["lookup"].append(timed(self.lookup.process, frame)[1])
        self.quantizer.stats["fit_ms"] = np.nan  # the Quantizer sets it when it refits
        times["Quantizer frame"].append(timed(self.quantizer.process, frame)[1])
        if not np.isnan(self.quantizer.stats["fit_ms"]):
            times["Quantizer refit"].append(self.quantizer.stats["fit_ms"])

    def summary(self) -> dict[str, float]:
        """Median ms of each step over the frames, fit+table per kind, and counts."""
        r = {step: statistics.median(t) if t else np.nan for step, t in self.times.items()}
        for kind in ("fresh", "warm"):
            r[kind] = statistics.median(np.add(self.times[f"{kind} fit"], self.times[f"{kind} table"]))
        r["moved"] = self.moved
        r["Quantizer refits"] = len(self.times["Quantizer refit"])
        return r


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    print_machine()
    frames = read_frames(data_file("cockatoo.mp4"), limit=7 if args.quick else 31)
    ks = (16, 256) if args.quick else (16, 64, 256)
    configs = [Refits(frames[0], k, space) for k in ks for space in ("rgb", "oklab")]
    for frame in frames[1:]:  # configurations interleaved frame by frame, so bursts of load hit all alike
        for config in configs:
            config.step(frame)
    results = {(c.k, c.space): c.summary() for c in configs}
    n = len(frames) - 1
    print(f"refit cost on {n} consecutive cockatoo frames, 1280x720; ms = median over frames")
    print("fit+table: what a refit costs the Quantizer; moved: warm refits that changed a colour (else no rebuild)")
    print("MBK default: MiniBatchKMeans(K, random_state=0).fit on the same samples; lookup: one frame, fixed palette")
    rows = []
    for (k, space), r in results.items():
        rows.append([k, space, "warm", r["warm fit"], r["warm table"], r["warm"], r["warm"] / r["lookup"],
                     r["MBK default"] / r["warm"], f"{r['moved']}/{n}"])
        rows.append([k, space, "fresh", r["fresh fit"], r["fresh table"], r["fresh"], r["fresh"] / r["lookup"],
                     r["MBK default"] / r["fresh"], None])
    print_table(["K", "space", "refit", "fit ms", "table ms", "fit+table", "x lookup", "MBK/ours", "moved"], rows)
    print("through the Quantizer (refit_every=1): its own fit_ms stat on the frames it refitted (no table")
    print("when no colour moved; it skips frames whose samples did not move), and the whole process() of a frame")
    print_table(["K", "space", "lookup ms", "MBK default ms", "Quantizer refit ms", "refits", "frame ms"],
                [[k, space, r["lookup"], r["MBK default"], r["Quantizer refit"], f"{r['Quantizer refits']}/{n}",
                  r["Quantizer frame"]] for (k, space), r in results.items()])

    targets = Targets()
    for (k, space), r in results.items():
        if k in BUDGET:
            for kind in ("warm", "fresh"):
                targets.check(f"K={k} {space} {kind} fit+table < {BUDGET[k]:.0f} ms", r[kind] < BUDGET[k],
                              f"{r[kind]:.1f} ms ({r[f'{kind} fit']:.1f} fit + {r[f'{kind} table']:.1f} table)")
    targets.print()
    print_load("at end")


if __name__ == "__main__":
    main()
