"""Palette fitting: spread samples, warm MiniBatchKMeans, slot matching, settling.

A palette for moving pictures must be good on each frame and stable across
frames. The fitter samples the same spatially spread pixel positions each time
(palettes of more than `HISTOGRAM_COLORS` colours cluster the whole frame,
gathered in the lookup table's cells, seeding fresh fits by k-means++ on
weighted draws from them, and decide on the samples), starts every
refit from the current centres (no random re-seeding while the picture is
steady) and matches the new centres to the old slots so slot ``i`` keeps its
colour. When the whole picture drifts (a fade), each slot first
follows the drift of its pixels (`follow_drift`). Each slot then adopts its
new colour only if the error that saves outweighs the flicker it causes on
still pixels (`settle`). When to refit is the palette track's decision
(`livequant.track`).

scikit-learn and scipy are imported inside the functions that use them:
together they take 1.3-1.5 s to import, which a command that fits no
palette (a preset palette, ``--help``, an error) should not wait for.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

from livequant.colorspace import from_space, largest_channel, pack_rgb, squared_norms, to_space, unique_rgb
from livequant.kernels import LEVELS, cell_histogram, count_colors, distinct_colors, kmeans_plusplus, lloyd_sums
from livequant.lookup import nearest

__all__ = ["Fit", "PaletteFitter", "drifts_one_way", "sample_positions"]

#: At most this many distinct colours get a fresh fit by full k-means from `FEW_COLOR_STARTS` starts (at most
#: `FEW_COLOR_STEPS` Lloyd steps each), ours: scikit-learn's KMeans did the same, and importing it took 0.5-1 s
#: on the first such frame, a stall in the output of a small GIF of flat colours. 16 starts rather than 8 took
#: newtonscradle's K=16 CIEDE2000 (issue 11's panel) from +0.006 / +0.000 / -0.042 / -0.053 over the best peer to
#: -0.007 / -0.014 / -0.042 / -0.048 (seeds 0-3), nothing else on the panel (K=16, 64) or the hold-out moving, for
#: 4-5 ms more a fresh fit of such a frame (9 -> 13 ms at K=16).
FEW_COLORS = 1024
FEW_COLOR_STARTS = 16
FEW_COLOR_STEPS = 100
#: A fresh fit to a frame's histogram (palettes of more than `HISTOGRAM_COLORS`) of at most this many colours or
#: cells is full k-means too, from `FULL_FIT_STARTS` starts above `FEW_COLORS` points; larger histograms are seeded
#: on draws by pixel count (`DRAWN_STEPS`), and no slot is relocated after. A picture of few colours loses most to
#: that: anti-aliased text on a 720p screen recording (1,181 colours at every other pixel) at K=256 scored 51.6 dB
#: (oklab) fitted on draws, 55.5 with the relocations, 56.6 on 2 starts; the hold-out's flat art 55.1 -> 56.6,
#: overcast sky 55.1 -> 55.2, others within 0.1 dB either way. 2 starts scored within 0.1 dB of 16 in 13-65 ms a
#: fit (the draws 10-26 ms; 16 starts 90-400).
FULL_FIT_POINTS = 8192
FULL_FIT_STARTS = 2
#: A fresh fit to the samples then moves, at most this many times, the slot whose loss costs least into the
#: cluster with the largest error, split along its widest axis, while each move saves `RELOCATION_GAIN` of the
#: error (`_relocate`: Patane and Russo's ELBG). K-means stops in local minima where a large mass of like colours
#: holds many slots and small bright features few: on a star field (issue 11's hold-out) the samples' error fell by
#: a third and PSNR rose 0.5 dB at 16 colours and 1.0 at 64 (palettes of 64 are now fitted to the whole frame, whose
#: seeding on draws by pixel count did better still). Elsewhere moves save 1-3% each: taking all of them raised the
#: panel's mean PSNR margin by 0.1 dB but sent the zoom at 16 colours past its flicker floor (0.84x -> 1.06x).
RELOCATIONS = 8
RELOCATION_GAIN = 0.03
#: Lloyd iterations after each relocation.
RELOCATION_STEPS = 4
#: A warm refit to the sample then moves, at most this many times, a slot that no still sample is nearest to into
#: the cluster with the largest error (`PaletteFitter._relocate_free`): in a zoom the colours that leave the
#: picture hold slots that k-means started warm never gives up (issue 11's zoom at 16 colours: 1.5 dB under
#: per-frame MiniBatchKMeans in oklab, 0.6 dB less with the moves). A move that takes still samples into the slot
#: must save `FREE_MOVE_FLICKER` times what `PaletteFitter.settle` asks of a slot's move for that flicker: at 1x
#: the zoom's flicker in rgb went past its floor (0.79x -> 1.10x), at 4x it stayed under it (0.98x), at 8x the same.
FREE_RELOCATIONS = 2
FREE_MOVE_FLICKER = 4.0
#: The same moves in warm refits to a frame's histogram (palettes of more than `HISTOGRAM_COLORS`), each kept when
#: it saves this share of the error and this multiple of the flicker weight (`FREE_MOVE_LARGE_FLICKER` above
#: `FREE_MOVE_HISTOGRAM_COLORS`). On issue 11's panel at 64 colours (both modes) they met 2 more goals (the zoom's
#: rgb gap to per-frame MiniBatchKMeans -0.63 -> -0.12 dB, oklab CIEDE2000 against the best peer +0.053 -> -0.009),
#: lowered flicker on the pan and zoom (0.87-0.92x) and cost no floor check; with the sample fits' 3% and 4x no move
#: passed, one slot of 64 holding about 1/64 of the error.
FREE_MOVE_HISTOGRAM_GAIN = 0.003
FREE_MOVE_HISTOGRAM_FLICKER = 0.25
FREE_MOVE_HISTOGRAM_COLORS = 64
#: Above 64 colours a free move must save 4 times as much for the flicker it shows. Without the moves a warm
#: palette of 256 stays short of a fresh one on a texture sliding past (the hold-out's wood pan: 0.28 dB under
#: FFmpeg per frame, a fresh fit every frame 0.33 dB over); with them that floor was met at K=256 on seeds 0-2 and
#: K=128 on 1-2 (+0.03 to +0.31 dB), pans and zooms gained up to 0.74 dB, and no check of panel or hold-out was lost.
#: At the weight of 64 colours (0.25) the GIF of cockatoo at 256 colours came out 3.2% larger (0.999x FFmpeg's
#: two-pass one, a must: no larger); at 1.0 1.9% larger (0.987x), 0.2 dB better, in the same time. Planning at
#: 720p costs some 15% more. 1.0 at 64 colours cost the zoom 0.29 dB.
FREE_MOVE_LARGE_FLICKER = 1.0
#: Passes of mini-batches over the samples in a warm refit, before the Lloyd steps (a fresh fit makes up to 50).
#: Started from the palette in force, one is enough: the 20 used before scored issue 11's panel within 0.05 dB
#: of it and took 66 ms instead of 32 for a K=256 oklab refit on 720p.
WARM_PASSES = 1
#: `PaletteFitter.follow_drift`: the largest change since the last fit, in levels, of a sample it counts; the
#: share by which changes one way must outnumber the other; and the standard errors a channel of a slot's drift
#: must clear. Each channel on its own, with the fraction of a level that rounding leaves carried to the next
#: refit (`Fit.drift`): before, a slot followed only when all three channels cleared (a saturated colour's dark
#: channel seldom does) and a drift under half a level a refit was rounded away every time, so on issue 11's
#: fade palettes of 256 colours lagged it (rgb 0.72 dB under per-frame MiniBatchKMeans, now 0.31; 64 colours
#: 0.31 -> 0.12; every other clip of panel and hold-out bit for bit as before).
DRIFT_LEVELS, DRIFT_AGREE, DRIFT_Z = 4, 0.6, 3.0
#: `PaletteFitter.fit_around` keeps a slot when this share of an even share of the samples is still in it.
PIN_SHARE = 0.5
#: Palettes of more colours than this are fitted to the whole frame (`PaletteFitter.histogram`), not to the
#: sample: 64 pixels per colour left 256-colour palettes 0.05-0.4 dB short on issue 11's panel. At 64 colours,
#: over panel and hold-out (21 clips, both modes), the whole frame gave +0.2 dB, 18-25% less flicker (geometric
#: mean), CIEDE2000 as good, the floor on 79 instead of 77 of 84 checks (the star field and the wood pan) and
#: the goals on 70 instead of 65; at 48 colours +0.14 dB, 9-10% less flicker, the floor 78 instead of 77, the
#: goals 71 instead of 67; at 32 colours +0.12 dB, 7-11% less flicker, the floor 77 instead of 78 (the
#: flash and a zoom over their flicker bounds, the star field under it), goals 66 instead of 64; at 16 colours
#: -0.05 dB and goals 63 instead of 69. It costs planning time at 720p (cockatoo at K=64 6 -> 10 ms a frame).
HISTOGRAM_COLORS = 32
#: `PaletteFitter.histogram` gathers at most about this many pixels of a frame (640x360 whole, 720p every other).
HISTOGRAM_PIXELS = 1 << 18
#: A frame whose colours fill fewer than `EXACT_CELLS_PER_SLOT` of the table's cells a slot is clustered colour by
#: colour, if it has at most `EXACT_HISTOGRAM_COLORS`. The cells merge colours 1 level apart (a 362-colour screen
#: recording made 204), and where a slot holds a cell or two a cell's own spread is most of the error: a fresh
#: palette of 256 on issue 11's hold-out lost to full k-means on the pixels 2.1 dB on the overcast sky (465 cells),
#: 6.4 dB on the slides (524), 0.75 on the flat art (883), 0.5 on the sunset (1,008). In the stream (`--tune --ks
#: 64,256`, with `FULL_FIT_POINTS`, against neither, K=256, oklab / rgb): the overcast sky +1.05 / +1.15 dB, flat
#: art +0.77 / +0.35, sunset +0.39 / +0.32, slides +0.65 / +0.42, sky +0.19 / +0.04; K=64 as before. 8 cells a
#: slot put the slides at K=64 (512-550 cells a frame as they breathe) on both sides of the line from frame to
#: frame, 1 dB lost on seeds 1 and 2. 0-4 ms more a frame on such pictures at 720p (9-20 ms).
EXACT_HISTOGRAM_COLORS = 8192
EXACT_CELLS_PER_SLOT = 4
#: Most Lloyd iterations of a fresh fit to a frame's histogram, after those on draws from it (`DRAWN_STEPS`; they
#: stop once converged).
HISTOGRAM_STEPS = 8
#: Lloyd iterations of a warm refit to a frame's histogram before it settles: such palettes refit again on the
#: next frame while refits pay (`livequant.track.CHASE_GAIN`). On issue 11's panel 2 steps scored within 0.1 dB
#: of 8 (pan -0.04 to -0.1, zoom -0.07), and kept the GIF of cockatoo at K=256 faster than FFmpeg's (4 did not).
WARM_HISTOGRAM_STEPS = 2
#: A fresh fit to a frame's histogram of more than `FULL_FIT_POINTS` starts on this many draws per colour from it,
#: each pixel equally likely (`PaletteFitter._drawn_centres`): k-means++ seeds, then `DRAWN_STEPS` Lloyd steps,
#: then `HISTOGRAM_STEPS` on every point. MiniBatchKMeans there (its seeds drawn from the histogram's colours, rare
#: or not) left K=256 0.1-0.4 dB short on issue 11's panel (pan, cockatoo) and took 1.6x as long as seeding on the
#: draws; 24 + 8 steps scored as 32 on every point (within 0.06 dB) in 0.6x the time (80 ms at 720p).
SEED_DRAWS = 32
DRAWN_STEPS = 24
#: A warm palette can stay in a poor local minimum (one born on a near-black frame of a fade in ended 3-5 dB under
#: a fresh fit): now and then (see `track.FRESH_CHECK_EVERY`) a rough fresh fit on this many draws per colour,
#: `CHECK_STEPS` Lloyd steps, is compared with it (`PaletteFitter.beaten_afresh`), and when it has at most
#: `CHECK_GAIN` of the error (0.5 dB), a full one too. A gain of 1 dB recovered less of a fade in. On 4 draws a
#: colour the rough fit at K=256 scored 0.9-1.7x the warm palette's error while a full fit scored 0.7-0.9x
#: (a picture brightening by 3% a frame), so it missed palettes left 1.5-2 dB under a fresh fit; 16 draws
#: found them (0.73-0.93x). 13 ms a check at K=256 and 720p (6.6 ms on 4 draws), 3 ms at K=64: planning
#: cockatoo +4.5% and +1%.
CHECK_DRAWS = 16
CHECK_STEPS = 8
CHECK_GAIN = 10 ** -0.05
#: After a warm refit to a frame's histogram, the slots no pixel is nearest to move where the error is largest once
#: they are this share of the palette (`PaletteFitter._fill_empty`): every one, every refit, used all 256 colours
#: of the GIF of cockatoo and made it as large as FFmpeg's; a sixteenth left it 2% smaller.
EMPTY_SHARE = 1 / 16
#: The same for palettes fitted to the sample, once no sample is nearest to this share of them. A fade to black
#: empties most of such a palette (16 colours: 14 empty slots, frames 8-11 dB under a fresh fit); refilling from
#: a sixteenth or an eighth (one or two of 16 slots) put twice the flicker on the hold-out's city clip (still
#: pixels take up the new colour), from a quarter no clip of issue 11's panel or hold-out changed.
SAMPLE_EMPTY_SHARE = 1 / 4
#: Lloyd iterations on a frame's histogram after a warm refit settled (around the slots that kept their colour):
#: as good as 8 on issue 11's panel (within 0.01 dB), 12 ms less a K=256 refit at 720p.
SETTLED_STEPS = 2
#: In ``"oklab"`` (palettes of up to `colorspace.LARGE_PALETTE` colours) each Lloyd step moves a centre towards
#: its cluster's geometric median, not its mean: the mean distance, which CIEDE2000 averages, rather than the
#: mean squared distance. Weiszfeld's weights, one over each point's distance to its centre, are capped at
#: one over this distance (about four levels), so that points near a centre pull it as a mean would. On issue
#: 11's panel (`--tune`) the oklab CIEDE2000 margins to the best peer summed -0.140 -> -0.412 at K=16 and
#: -0.373 -> -0.458 at K=64, one more goal met (the pan at K=64), the floor on one more check of the
#: hold-out at K=16 (a zoom's flicker) and at K=64 and 256 on the same; at K=32 and 8 (not tuned on) the
#: floor as before but the flash's flicker at K=8 (0.84x -> 1.08x its bound). A cap of 1e-3 (a third of a
#: level) snapped centres onto the exact colours of a frame of few (newtonscradle at K=32: 0.45 dB under
#: FFmpeg per frame, a floor check lost) and lost another on the hold-out's bricks at K=64, for -0.584 and
#: -0.535; weights of one over the distance's square root gained half as much. ``"oklab-large"`` and
#: ``"rgb"`` (PSNR, squared error) keep the mean.
MEDIAN_FLOOR = 0.01


@functools.cache
def _threadpools() -> ThreadpoolController:
    """The process's OpenMP/BLAS pools (found once: the scan reads /proc and takes ms)."""
    return ThreadpoolController()


@functools.lru_cache(maxsize=8)
def sample_positions(height: int, width: int, size: int, seed: int) -> np.ndarray:
    """Flat pixel indices of a jittered grid: spread over the frame, the same every call.

    Returns
    -------
    (N,) int64 ndarray
        ``N = min(size, height * width)`` distinct indices.
    """
    n = height * width
    if size >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    step = np.sqrt(n / size)
    ys = np.arange(0, height, step)
    xs = np.arange(0, width, step)
    yy = (ys[:, None] + rng.uniform(0, step, (len(ys), len(xs)))).astype(np.int64).clip(0, height - 1)
    xx = (xs[None, :] + rng.uniform(0, step, (len(ys), len(xs)))).astype(np.int64).clip(0, width - 1)
    flat = np.unique((yy * width + xx).ravel())
    return np.sort(rng.choice(flat, size, replace=False)) if len(flat) > size else flat


@dataclass(frozen=True, eq=False)
class Fit:
    """A fitted palette.

    Attributes
    ----------
    colors : (K, 3) uint8 ndarray
        Palette colours; locked colours first.
    centres : (K, 3) float32 ndarray
        The same colours in the working colour space.
    error : float
        Mean squared distance of the samples to their nearest centre.
    drift : (K, 3) float64 ndarray or None
        The part of each slot's drift (`PaletteFitter.follow_drift`) not yet
        shown, under half a level a channel: the next refit adds it, so a
        slot follows a drift of a fraction of a level a refit. None: none.
    """

    colors: np.ndarray
    centres: np.ndarray
    error: float
    drift: np.ndarray | None = None


class PaletteFitter:
    """Fits palettes of ``n_colors`` entries to frames.

    Parameters
    ----------
    n_colors : int
        Palette size K, 1..256, locked colours included.
    color_space : {"oklab", "oklab-large", "rgb"}
        Space the clustering runs in.
    sample_size : int
        Pixels sampled per fit.
    seed : int
        Seed for sample positions and k-means++.
    locked : (L, 3) uint8 ndarray, optional
        Colours always in the palette.
    refine_steps : int
        Most full Lloyd iterations on the sample after MiniBatchKMeans
        (they stop early once converged); fits to a histogram take
        `HISTOGRAM_STEPS` fresh, `WARM_HISTOGRAM_STEPS` warm.
    stability : float
        Weight of flicker against error in `settle`; 0 adopts every change.
    unseen_levels : int
        A warm refit does not move a slot by this many levels a channel or
        less: too little to see, while every palette that lands makes the
        temporal hold weigh the still pixels again (some switch colour).
    still_levels : int
        A still sample pins its slot in `settle` and `_relocate_free` only
        while it stays within this many levels a channel of its value at the
        last fit: one that creeps a level a frame (a zoom, a slow pan) is
        moving content, which the palette should follow.
    """

    def __init__(
        self,
        n_colors: int,
        *,
        color_space: str,
        sample_size: int,
        seed: int,
        locked: np.ndarray | None = None,
        refine_steps: int = 8,
        stability: float = 10.0,
        unseen_levels: int = 2,
        still_levels: int = 3,
    ):
        self.color_space = color_space
        self.sample_size = sample_size
        self.seed = seed
        self.locked = np.zeros((0, 3), np.uint8) if locked is None else np.asarray(locked, np.uint8)
        self.n_adaptive = n_colors - len(self.locked)
        self.refine_steps = refine_steps
        self.stability = stability
        self.unseen_levels = unseen_levels
        self.still_levels = still_levels
        self._cell_rows: np.ndarray | None = None  # `histogram`'s row of each table cell, all -1 between calls
        self._measured: tuple[np.ndarray, ...] | None = None  # `_error`'s last samples, centres, points, labels

    def sample(self, frame: np.ndarray) -> np.ndarray:
        """Pixels to fit ``frame`` on, ``(N, 3) uint8``.

        The pixels at the fixed sample positions; or, when the whole frame has
        no more distinct colours than the palette has adaptive slots, exactly
        those colours, so such a frame is reproduced exactly.
        """
        h, w = frame.shape[:2]
        pixels = frame.reshape(-1, 3)
        samples = pixels[sample_positions(h, w, self.sample_size, self.seed)]
        limit = max(self.n_adaptive, 0)
        if distinct_colors(samples, limit) is None:  # the sample alone has too many: so has the frame
            return samples
        few = distinct_colors(pixels, limit)
        return samples if few is None else few

    @property
    def whole_frame(self) -> bool:
        """Whether fits cluster the whole frame (`histogram`): palettes of more than `HISTOGRAM_COLORS` colours."""
        return self.n_adaptive + len(self.locked) > HISTOGRAM_COLORS

    def histogram(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The pixels of ``frame``, gathered in the lookup table's cells, for the fit to cluster.

        Every pixel up to `HISTOGRAM_PIXELS`; above, every ``step``-th pixel
        of every ``step``-th row, the smallest step that keeps within it.
        Where fewer cells than `EXACT_CELLS_PER_SLOT` per adaptive slot are met,
        and the pixels have at most `EXACT_HISTOGRAM_COLORS` colours, each colour.
        None for palettes of at most `HISTOGRAM_COLORS` colours: they are
        fitted to the sample.

        Returns
        -------
        colors : (M, 3) float32 ndarray
            Mean RGB colour of the pixels in each cell met (or each colour).
        counts : (M,) float64 ndarray
            Pixels in each.
        """
        if not self.whole_frame:
            return None
        h, w = frame.shape[:2]
        step = int(np.ceil(np.sqrt(h * w / HISTOGRAM_PIXELS)))
        size = min(-(-h // step) * -(-w // step), LEVELS**3)
        if self._cell_rows is None:
            self._cell_rows = np.full(LEVELS**3, -1, np.int32)
        cells, counts = np.empty(size, np.int32), np.zeros(size, np.uint32)
        sums = np.zeros((size, 3), np.uint32)
        n = cell_histogram(frame, step, self._cell_rows, cells, counts, sums)
        if n < EXACT_CELLS_PER_SLOT * self.n_adaptive:  # too few cells for the palette: its colours, if few enough
            found, exact_counts = np.empty((EXACT_HISTOGRAM_COLORS, 3), np.uint8), np.zeros(EXACT_HISTOGRAM_COLORS,
                                                                                             np.int64)
            distinct = count_colors(frame[::step, ::step].reshape(-1, 3), EXACT_HISTOGRAM_COLORS, found, exact_counts)
            if distinct > n:
                return found[:distinct].astype(np.float32), exact_counts[:distinct].astype(np.float64)
        order = np.argsort(cells[:n])
        counts = counts[order].astype(np.float64)
        return (sums[order] / counts[:, None]).astype(np.float32), counts

    def exact(self, samples: np.ndarray) -> bool:
        """Whether ``samples`` (from `sample`) can all be in the palette: the frame is reproduced exactly."""
        return len(samples) <= self.n_adaptive and not len(self.locked)

    def error(self, samples: np.ndarray, fit: Fit) -> float:
        """Mean squared working-space distance of ``samples`` to ``fit``'s nearest centres."""
        return self._error(samples, fit.centres)

    def _error(self, samples: np.ndarray, centres: np.ndarray) -> float:
        """Mean squared working-space distance of ``samples`` to their nearest of ``centres``."""
        points, labels = self._nearest_to_samples(samples, centres)
        return float(squared_norms(points - centres[labels]).mean())

    def _nearest_to_samples(self, samples: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``samples`` in the working space, and the `nearest` of ``centres`` to each.

        The last answer is kept: a warm refit on the next frame asks again
        what `_error` measured (`settle`: that frame's samples against the
        palette it gave), and a fit measures the palette its free-slot moves
        started from and left unchanged; the same samples and centres, bit
        for bit, give the same answer.
        """
        if self._measured is not None:
            known_samples, known_centres, points, labels = self._measured
            if _same_bits(samples, known_samples) and _same_bits(centres, known_centres):
                return points, labels
        points = to_space(samples, self.color_space)
        labels = nearest(points, centres)
        self._measured = (samples.copy(), centres.copy(), points, labels)
        return points, labels

    def fit(self, samples: np.ndarray, previous: Fit | None = None, still: np.ndarray | None = None,
            since: np.ndarray | None = None, before: np.ndarray | None = None,
            histogram: tuple[np.ndarray, np.ndarray] | None = None) -> Fit:
        """Fit a palette to ``samples``; warm from ``previous`` when given.

        Parameters
        ----------
        samples : (N, 3) uint8 ndarray
        previous : Fit, optional
            The palette in force. Its centres seed the fit, the new colours
            are matched to its slots, and each slot settles (see `settle`).
        still : (N,) bool ndarray, optional
            Which samples did not change since the previous frame.
        since : (N, 3) uint8 ndarray, optional
            The same positions' pixels when ``previous`` was fitted (see `settle` and `follow_drift`).
        before : (N, 3) uint8 ndarray, optional
            The same positions' pixels on the previous frame (see `settle`).
        histogram : tuple of ndarray, optional
            The whole frame's colours and counts (`histogram`): clustered
            instead of the samples, unless those are all the frame's colours.

        Returns
        -------
        Fit
        """
        few = distinct_colors(samples, self.n_adaptive)  # counted without sorting: a histogram fit needs no more
        exact = few is not None and self.exact(few)
        steps, from_histogram = self.refine_steps, histogram is not None and not exact
        if from_histogram:
            unique, counts = histogram
            steps = HISTOGRAM_STEPS if previous is None else WARM_HISTOGRAM_STEPS
        else:
            unique, _, counts = unique_rgb(samples)
        if previous is not None and exact:
            colors = _keep_slots(previous.colors, unique, self.color_space)
            return Fit(colors=colors, centres=to_space(colors, self.color_space), error=0.0)
        points, weights = to_space(unique, self.color_space), counts.astype(np.float64)
        locked = to_space(self.locked, self.color_space)
        if len(locked):  # leave what the locked colours already cover to them
            near = ((points[:, None, :] - locked[None, :, :]) ** 2).sum(axis=2).min(axis=1)
            keep = near > np.quantile(near, 0.05) if len(near) > 1 else near >= 0
            points, weights = points[keep], weights[keep]
        adaptive = self._cluster(points, weights, previous, steps, mini_batches=not from_histogram)
        centres = np.concatenate([locked, adaptive]).astype(np.float32)
        colors, drift = from_space(centres, self.color_space), None
        if previous is not None and len(previous.colors) == len(colors):
            colors = self._match(previous, colors, centres)
            if still is not None:
                base, drift = previous.colors, previous.drift
                pinning = still
                if since is not None:  # a fade: the colours follow it, and settling weighs what goes beyond
                    pinning = still & (largest_channel(np.abs(samples.astype(np.int16) - since)) <= self.still_levels)
                    drifted = self.follow_drift(previous.colors, samples, still, since, drift)
                    if drifted is not None:
                        (base, drift), since = drifted, None
                adopt = self.settle(base, colors, samples, pinning, since, before)
                adopt[: len(self.locked)] = False
                centres = to_space(np.where(adopt[:, None], colors, base), self.color_space)
                steps = SETTLED_STEPS if from_histogram else self.refine_steps
                centres = _lloyd(points, weights, centres, steps, self.color_space, fixed=~adopt)
                colors = np.where(adopt[:, None], from_space(centres, self.color_space), base)
                unseen = np.abs(colors.astype(np.int16) - base).max(axis=1) <= self.unseen_levels
                colors = np.where(unseen[:, None], base, colors)
                gain, flicker = RELOCATION_GAIN, FREE_MOVE_FLICKER
                if from_histogram:
                    gain = FREE_MOVE_HISTOGRAM_GAIN
                    large = len(colors) > FREE_MOVE_HISTOGRAM_COLORS
                    flicker = FREE_MOVE_LARGE_FLICKER if large else FREE_MOVE_HISTOGRAM_FLICKER
                with _threadpools().limit(limits=1, user_api="blas"):  # BLAS threads spinning after its small
                    # products slow the numba kernels that follow 3x on two cores
                    colors = self._relocate_free(points, weights, colors, samples, pinning, gain, flicker)
            colors = self._fill_empty(points, weights, colors, EMPTY_SHARE if from_histogram else SAMPLE_EMPTY_SHARE)
            if drift is not None:  # what is left of the drift, for the slots that kept it
                drift = np.where((colors == base).all(axis=1)[:, None], drift, 0.0)
        centres = to_space(colors, self.color_space)  # exactly the colours shown
        return Fit(colors=colors, centres=centres, error=self._error(samples, centres), drift=drift)

    def rough(self, samples: np.ndarray) -> np.ndarray:
        """Palette colours in a few milliseconds, to show while the real fit runs: ``(<= K, 3) uint8``.

        The distinct sampled colours in order of lightness, cut into one run
        of equal sample count per adaptive slot; each slot starts at its run's
        middle colour, then one Lloyd step. Locked colours come first.
        """
        unique, _, counts = unique_rgb(samples)
        points, weights = to_space(unique, self.color_space), counts.astype(np.float64)
        k = min(self.n_adaptive, len(points))
        order = np.argsort(to_space(unique, "oklab")[:, 0], kind="stable")
        cumulative = np.cumsum(weights[order])
        middles = np.searchsorted(cumulative, (np.arange(k) + 0.5) * cumulative[-1] / k)
        centres = _lloyd(points, weights, points[order[middles]].astype(np.float32), 1, self.color_space)
        return np.concatenate([self.locked, from_space(centres, self.color_space)])

    def follow_drift(self, old: np.ndarray, samples: np.ndarray, still: np.ndarray, since: np.ndarray,
                     carried: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """``old`` with each slot moved by the drift of its still samples, when the picture drifts as a whole.

        A fade or a lighting change moves every still pixel a little the same
        way; each channel of a slot then follows the mean change of its
        samples since the last fit (``since``), where that mean is clear of
        their scatter (`DRIFT_Z` standard errors, at least 8 samples), plus
        the fraction of a level ``carried`` from earlier refits (`Fit.drift`).
        Only samples still since the previous frame and within `DRIFT_LEVELS`
        of ``since`` count; locked colours stay.

        Returns
        -------
        colors : (K, 3) uint8 ndarray
        carried : (K, 3) float64 ndarray
            What rounding to whole levels left of each slot's drift.

        None when there is no common drift: at least a quarter of them
        changed, `DRIFT_AGREE` more of them one way than the other.
        """
        moved = samples.astype(np.float64) - since
        steady = still & (largest_channel(np.abs(moved)) <= DRIFT_LEVELS)
        if not drifts_one_way(moved[steady]):
            return None
        space = self.color_space
        now = nearest(to_space(samples, space), to_space(old, space))
        moved *= steady[:, None]
        count = np.bincount(now, weights=steady.astype(np.float64), minlength=len(old))
        n = np.maximum(count, 1)[:, None]
        mean = _slot_sums(now, moved, len(old)) / n
        square = _slot_sums(now, moved**2, len(old)) / n
        scatter = np.sqrt(np.maximum(square - mean**2, 0) / n)
        clear = (np.abs(mean) > DRIFT_Z * scatter) & (count >= 8)[:, None]
        clear[: len(self.locked)] = False
        carried = np.zeros(old.shape) if carried is None else carried
        target = old + (mean + carried) * clear
        colors = np.clip(np.rint(target), 0, 255)
        return colors.astype(np.uint8), np.where(clear, np.clip(target - colors, -0.5, 0.5), carried)

    def keep_close(self, fit: Fit, colors: np.ndarray, allowance: float, samples: np.ndarray) -> Fit:
        """``fit`` with some centres replaced by nearby ones of ``colors``, adding at most ``allowance``
        times its error.

        Moving a centre by ``d`` adds at most ``d**2`` times the share of the
        samples it serves to the mean squared error (less where they move to
        another centre). The cheapest replacements are made first, each of
        ``colors`` used once, while the total stays within the allowance; the
        error is then measured on ``samples``.
        """
        space = self.color_space
        labels = self._nearest_to_samples(samples, fit.centres)[1]
        share = np.bincount(labels, minlength=len(fit.centres)) / len(samples)
        cost = ((fit.centres[:, None, :] - to_space(colors, space)[None, :, :]) ** 2).sum(axis=2) * share[:, None]
        kept = fit.colors.copy()
        budget = allowance * fit.error
        used, taken = np.zeros(len(fit.colors), bool), np.zeros(len(colors), bool)
        for flat in np.argsort(cost, axis=None, kind="stable"):
            i, j = divmod(int(flat), len(colors))
            if cost[i, j] > budget:
                break
            if not used[i] and not taken[j]:
                kept[i], used[i], taken[j] = colors[j], True, True
                budget -= cost[i, j]
        centres = to_space(kept, space)
        return Fit(colors=kept, centres=centres, error=self._error(samples, centres))

    def fit_around(self, samples: np.ndarray, previous: Fit, still: np.ndarray,
                   histogram: tuple[np.ndarray, np.ndarray] | None = None) -> Fit | None:
        """``previous`` with the slots under still content kept, and the others fitted to the rest.

        A slot is kept when at least `PIN_SHARE` of an even share of the
        samples are ``still`` and nearest to it (and locked colours always).
        The others are seeded farthest first from the kept ones, weighted by
        sample count, then refined by Lloyd steps around the kept slots. Slot
        ``i`` keeps its meaning, so pixels that stayed still keep their colour
        (the temporal hold carries on). None when no slot is kept. ``histogram``
        as for `fit`.
        """
        space = self.color_space
        n_slots = len(previous.colors)
        usage = np.bincount(nearest(to_space(samples[still], space), previous.centres), minlength=n_slots)
        kept = usage >= PIN_SHARE * len(samples) / n_slots
        kept[: len(self.locked)] = True
        if not kept.any():
            return None
        if histogram is None:
            colors, _, counts = unique_rgb(samples)
        else:
            colors, counts = histogram
        points, weights = to_space(colors, space), counts.astype(np.float64)
        centres = _refit_slots(points, weights, previous.centres, ~kept, 4 * self.refine_steps, space)
        colors = np.where(kept[:, None], previous.colors, from_space(centres, space))
        centres = to_space(colors, space)
        return Fit(colors=colors, centres=centres, error=self._error(samples, centres))

    def _relocate_free(self, points: np.ndarray, weights: np.ndarray, colors: np.ndarray, samples: np.ndarray,
                       still: np.ndarray, gain: float, flicker_weight: float) -> np.ndarray:
        """``colors`` after at most `FREE_RELOCATIONS` moves of a slot no ``still`` sample is nearest to.

        As `_relocate`, the slot whose loss costs least (of those free) goes
        to the far side of the cluster of largest error, then Lloyd steps move
        it alone; a move is kept when it saves ``gain`` of the error on
        ``points`` and, in squared RGB error on ``samples``, more than
        ``flicker_weight`` times ``stability`` times the flicker it puts on
        the still samples it takes (their mean per-channel change).
        """
        space = self.color_space
        centres = to_space(colors, space)
        sample_points, now = self._nearest_to_samples(samples, centres)
        free = np.bincount(now[still], minlength=len(centres)) == 0
        free[: len(self.locked)] = False
        if not free.any():
            return colors
        labels = nearest(points, centres)
        distance = squared_norms(points - centres[labels])
        error = float(weights @ distance)
        shown, pixels = colors.copy(), samples.astype(np.int32)
        for _ in range(FREE_RELOCATIONS):
            k = len(centres)
            mass = np.bincount(labels, weights=weights, minlength=k)
            spread = np.bincount(labels, weights=weights * distance, minlength=k)
            # what losing a slot costs, as if its points all went to the centre nearest it (ELBG's estimate)
            apart = _squared_distances(centres, squared_norms(centres), centres)
            np.fill_diagonal(apart, np.inf)
            low = int(np.argmin(np.where(free, mass * apart.min(axis=1), np.inf)))
            spread[low] = -1
            high = int(np.argmax(spread))
            if spread[high] <= 0:
                break
            mean, half = _widest_split(points[labels == high], weights[labels == high])
            centre = max(mean - half, mean + half, key=lambda side: float(((side - centres[high]) ** 2).sum()))
            others, other_labels = _served_without(points, labels, distance, centres, low)
            centre, to_centre = _move_alone(points, weights, others, centre.astype(np.float32), RELOCATION_STEPS)
            trial_error = float(weights @ np.minimum(others, to_centre))
            if trial_error > (1 - gain) * error:
                break
            trial = centres.copy()
            trial[low] = centre
            moved = shown.copy()
            moved[low] = from_space(trial[low : low + 1], space)[0]
            sample_distance = squared_norms(sample_points - centres[now])
            sample_others, then = _served_without(sample_points, now, sample_distance, centres, low)
            then[squared_norms(sample_points - centre) < sample_others] = low
            taken = still & (then == low)
            flicker = np.abs(moved[low].astype(np.float64) - shown[now[taken]]).mean(axis=1).sum()
            saved = float(squared_norms(pixels - shown[now]).sum() - squared_norms(pixels - moved[then]).sum())
            if saved <= flicker_weight * self.stability * flicker:
                break
            nearer = to_centre < others
            labels = np.where(nearer, low, other_labels)
            distance = np.where(nearer, to_centre, others)
            centres, error, shown, now = trial, trial_error, moved, then
            free[low] = False
            if not free.any():
                break
        return shown

    def _fill_empty(self, points: np.ndarray, weights: np.ndarray, colors: np.ndarray, share: float) -> np.ndarray:
        """``colors`` with the adaptive slots that none of the frame's ``points`` is nearest to moved to where
        the error is largest, once they are at least ``share`` of the palette (`EMPTY_SHARE` for a frame's
        histogram, `SAMPLE_EMPTY_SHARE` for the sample).

        No pixel shows such a slot, so moving it shows nothing (a zoom leaves
        a fifth of a 256-colour palette so on issue 11's panel). They are
        refitted as `fit_around` refits the slots it does not keep
        (`_refit_slots`).
        """
        space = self.color_space
        centres = to_space(colors, space)
        empty = np.bincount(nearest(points, centres), minlength=len(centres)) == 0
        empty[: len(self.locked)] = False
        if empty.sum() < share * self.n_adaptive:
            return colors
        centres = _refit_slots(points, weights, centres, empty, SETTLED_STEPS, space)
        return np.where(empty[:, None], from_space(centres, space), colors)

    def _drawn_centres(self, points: np.ndarray, weights: np.ndarray, draws: int = SEED_DRAWS,
                       steps: int = DRAWN_STEPS) -> np.ndarray:
        """Centres for a fresh fit to a frame's histogram ``points``, ``(K, 3) float32``, fitted to draws from it.

        ``draws`` per colour, each point drawn in proportion to its pixel
        count: k-means++ seeds on them follow the pixels rather than the
        histogram's many rare colours, and ``steps`` Lloyd steps on them cost
        a third of steps on every point (all points are used when the draws
        meet fewer than K of them).
        """
        k = self.n_adaptive
        rng = np.random.default_rng(self.seed)
        drawn, times = np.unique(rng.choice(len(points), draws * k, p=weights / weights.sum()), return_counts=True)
        if len(drawn) >= k:
            points, weights = points[drawn], times.astype(np.float64)
        return _lloyd(points, weights, _kmeans_plusplus(points, weights, k, rng), steps, self.color_space)

    def _best_of_starts(self, points: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Full k-means of a few distinct colours, ``(K, 3) float32``: the best of `FEW_COLOR_STARTS` k-means++
        starts (`FULL_FIT_STARTS` above `FEW_COLORS` points), each run to convergence (at most `FEW_COLOR_STEPS`
        Lloyd steps).

        One start can seed the same cluster several times (three near-identical
        greens, red and black merged); restarts are cheap on so few points.
        """
        rng = np.random.default_rng(self.seed)
        norms = squared_norms(points)
        best, best_error = None, np.inf
        for _ in range(FEW_COLOR_STARTS if len(points) <= FEW_COLORS else FULL_FIT_STARTS):
            centres = _lloyd(points, weights, _kmeans_plusplus(points, weights, self.n_adaptive, rng),
                             FEW_COLOR_STEPS, self.color_space)
            error = float(weights @ _squared_distances(points, norms, centres).min(axis=1))
            if error < best_error:
                best, best_error = centres, error
        return best

    def beaten_afresh(self, samples: np.ndarray, fit: Fit, histogram: tuple[np.ndarray, np.ndarray]) -> bool:
        """Whether a fresh fit to the frame would clearly beat ``fit``, a warm one: a rough fresh fit (on
        `CHECK_DRAWS` draws per colour of ``histogram``, `CHECK_STEPS` Lloyd steps) has `CHECK_GAIN` of its
        error on ``samples`` or less."""
        colors, counts = histogram
        if len(colors) <= self.n_adaptive or len(self.locked):
            return False
        space = self.color_space
        rough = self._drawn_centres(to_space(colors, space), counts, CHECK_DRAWS, CHECK_STEPS)
        points = to_space(samples[::4], space)  # a quarter, as the track measures the palette in force

        def error(centres: np.ndarray) -> float:
            return float(squared_norms(points - centres[nearest(points, centres)]).mean())

        return error(rough) <= CHECK_GAIN * error(fit.centres)

    def _cluster(self, points: np.ndarray, weights: np.ndarray, previous: Fit | None, steps: int,
                 mini_batches: bool = True) -> np.ndarray:
        """Adaptive centres, ``(min(n_adaptive, n_points), 3)``, after at most ``steps`` Lloyd iterations.

        A warm start goes straight to the Lloyd steps unless ``mini_batches``:
        on a frame's histogram a pass of mini-batches scored the same on
        issue 11's panel and took a fifth of a refit's time.
        """
        k = self.n_adaptive
        if k <= 0 or len(points) == 0:
            return np.zeros((0, 3), np.float32)
        if len(points) <= k:
            return points
        n_locked = len(self.locked)
        warm = previous is not None and len(previous.centres) - n_locked == k
        if warm and not mini_batches:
            return _lloyd(points, weights, previous.centres[n_locked:], steps, self.color_space)
        full_fit_points = FEW_COLORS if mini_batches else FULL_FIT_POINTS  # fresh fits up to these are full k-means
        if not warm and not mini_batches and len(points) > full_fit_points:
            return _lloyd(points, weights, self._drawn_centres(points, weights), steps, self.color_space)
        if not warm and len(points) <= full_fit_points:
            centres = self._best_of_starts(points, weights)  # already run to convergence
        else:
            from sklearn.cluster import MiniBatchKMeans

            kmeans = MiniBatchKMeans(
                n_clusters=k,
                init=previous.centres[n_locked:] if warm else "k-means++",
                n_init=1,
                batch_size=min(len(points), max(1024, 8 * k)),
                max_iter=WARM_PASSES if warm else 50,
                reassignment_ratio=0.0 if warm else 0.01,
                random_state=self.seed,
            )
            # One thread: the batches are small, and OpenMP workers spinning beside
            # numba's threads made a 25 ms fit take 2 s on a busy 2-core machine.
            with _threadpools().limit(limits=1):
                kmeans.fit(points, sample_weight=weights)
            centres = _lloyd(points, weights, kmeans.cluster_centers_.astype(np.float32), steps, self.color_space)
        if warm:
            return centres
        with _threadpools().limit(limits=1):
            return _relocate(points, weights, centres, RELOCATIONS, self.color_space)

    def _match(self, previous: Fit, colors: np.ndarray, centres: np.ndarray) -> np.ndarray:
        """New colours reordered so each lands in the previous slot nearest to it."""
        from scipy.optimize import linear_sum_assignment
        from scipy.spatial.distance import cdist

        n_locked = len(self.locked)
        _, order = linear_sum_assignment(cdist(previous.centres[n_locked:], centres[n_locked:], "sqeuclidean"))
        return np.concatenate([colors[:n_locked], colors[n_locked:][order]])

    def settle(self, old: np.ndarray, new: np.ndarray, samples: np.ndarray, still: np.ndarray,
               since: np.ndarray | None = None, before: np.ndarray | None = None) -> np.ndarray:
        """Which slots should take their new colour: those worth the flicker.

        Slot ``i`` adopts ``new[i]`` when the squared RGB error it saves over
        the samples that would take it (against their error now) exceeds
        ``stability`` times the flicker it causes: the still samples now
        shown in slot ``i`` times the mean per-channel change beyond their own
        drift since the last fit (``since``: a slot that follows a fade or a
        lighting change with its pixels shows no flicker). A sample counts as
        still when it is in ``still`` or, given the previous frame's samples
        ``before``, when it stayed in its slot: under sensor noise few pixels
        keep their exact values, yet a whole region keeps its colour and would
        show the change. Slots that serve moving content follow the picture;
        slots under a still background move only when it clearly pays.

        Returns
        -------
        (K,) bool ndarray
        """
        points = samples.astype(np.int32)
        space = self.color_space
        old_centres, sample_points = to_space(old, space), to_space(samples, space)
        now = nearest(sample_points, old_centres)
        then = nearest(sample_points, to_space(new, space))
        saved = squared_norms(points - old[now]) - squared_norms(points - new[then])
        gain = np.bincount(then, weights=saved, minlength=len(new))
        if before is not None:
            still = still | (self._nearest_to_samples(before, old_centres)[1] == now)
        shift = new.astype(np.float64) - old
        held = np.bincount(now, weights=still.astype(np.float64), minlength=len(new))
        drift = np.zeros_like(shift)
        if since is not None:
            moved = (points - since) * still[:, None]
            drift = _slot_sums(now, moved, len(new)) / np.maximum(held, 1)[:, None]
        flicker = held * np.abs(shift - drift).mean(axis=1)
        return (gain > self.stability * flicker) & (np.abs(shift).sum(axis=1) > 0)


def drifts_one_way(moved: np.ndarray) -> bool:
    """Whether pixels that moved by ``moved`` (``(N, 3)``, one row a pixel) drifted together: at least a
    quarter of them changed, and `DRIFT_AGREE` more of those got brighter than darker or the other way (a
    fade, a lighting change) rather than both (new content, motion)."""
    change = moved[:, 0] + moved[:, 1] + moved[:, 2]  # as `squared_norms` adds: sum(axis=1) took 4x longer
    changed = change[change != 0]
    return len(changed) >= 0.25 * max(len(moved), 1) and abs(np.mean(np.sign(changed))) >= DRIFT_AGREE


def _refit_slots(points: np.ndarray, weights: np.ndarray, centres: np.ndarray, slots: np.ndarray, steps: int,
                 color_space: str) -> np.ndarray:
    """``centres`` with each of ``slots`` (a mask) refitted to ``points`` around the others, which stay.

    The slots are seeded in turn at the point farthest from every centre so
    far (squared distance times ``weights``), then at most ``steps`` Lloyd
    iterations move only them.
    """
    kept = centres[~slots]
    distance = squared_norms(points - kept[nearest(points, kept)])
    seeded = centres.copy()
    for slot in np.flatnonzero(slots):
        pick = int(np.argmax(weights * distance))
        seeded[slot] = points[pick]
        distance = np.minimum(distance, squared_norms(points - points[pick]))
    return _lloyd(points, weights, seeded, steps, color_space, fixed=~slots)


def _relocate(points: np.ndarray, weights: np.ndarray, centres: np.ndarray, rounds: int,
              color_space: str) -> np.ndarray:
    """``centres`` after at most ``rounds`` relocations, each kept only if it saves `RELOCATION_GAIN` of the
    weighted error.

    A relocation moves the centre whose points would cost least to serve by
    their second-nearest centre into the cluster of largest error: the two
    start half a standard deviation either side of its mean along its widest
    axis, then `RELOCATION_STEPS` Lloyd iterations.
    """
    if len(centres) < 3:
        return centres
    norms = squared_norms(points)
    d = _squared_distances(points, norms, centres)
    error = float(weights @ d.min(axis=1))
    for _ in range(rounds):
        labels = d.argmin(axis=1)
        utility, spread = _slot_costs(d, labels, weights, len(centres))
        low = int(np.argmin(utility))
        spread[low] = -1
        high = int(np.argmax(spread))
        mean, half = _widest_split(points[labels == high], weights[labels == high])
        trial = centres.copy()
        trial[high], trial[low] = mean + half, mean - half
        trial = _lloyd(points, weights, trial, RELOCATION_STEPS, color_space)
        d_trial = _squared_distances(points, norms, trial)
        trial_error = float(weights @ d_trial.min(axis=1))
        if trial_error > (1 - RELOCATION_GAIN) * error:
            break
        centres, d, error = trial, d_trial, trial_error
    return centres


def _served_without(points: np.ndarray, labels: np.ndarray, distance: np.ndarray, centres: np.ndarray,
                    slot: int) -> tuple[np.ndarray, np.ndarray]:
    """Each point's squared distance to its nearest centre other than ``slot``, and that centre: the points of
    ``slot`` (``labels``) are measured against every other centre, the rest keep ``distance``."""
    distance, labels = distance.copy(), labels.astype(np.intp)
    own = np.flatnonzero(labels == slot)
    if len(own):
        d = _squared_distances(points[own], squared_norms(points[own]), centres)
        d[:, slot] = np.inf
        labels[own] = d.argmin(axis=1)
        distance[own] = d[np.arange(len(own)), labels[own]]
    return distance, labels


def _move_alone(points: np.ndarray, weights: np.ndarray, others: np.ndarray, centre: np.ndarray,
                steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd steps of one centre while the others stay, ``others`` being each point's squared distance to its
    nearest of those: the centre moves to the mean of the points nearer it. Returns it and its squared
    distance to every point."""
    to_centre = squared_norms(points - centre)
    for _ in range(steps):
        mine = to_centre < others
        if not mine.any():
            break
        moved = (weights[mine] @ points[mine] / weights[mine].sum()).astype(np.float32)
        if np.array_equal(moved, centre):
            break
        centre, to_centre = moved, squared_norms(points - moved)
    return centre, to_centre


def _slot_costs(d: np.ndarray, labels: np.ndarray, weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per centre, from the ``(N, K)`` squared distances ``d`` and each point's nearest (``labels``): what
    losing it would cost (its points served by their second nearest), and its weighted error."""
    first, second = np.partition(d, 1, axis=1)[:, :2].T
    utility = np.bincount(labels, weights * (second - first), minlength=k)
    spread = np.bincount(labels, weights * first, minlength=k)
    return utility, spread


def _widest_split(points: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The weighted mean of ``points`` and half a standard deviation along their widest axis."""
    mean = weights @ points / weights.sum()
    variances, axes = np.linalg.eigh(((points - mean).T * weights) @ (points - mean) / weights.sum())
    return mean, 0.5 * np.sqrt(max(variances[-1], 0.0)) * axes[:, -1]


def _kmeans_plusplus(points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` seeds among weighted ``points``, ``(k, 3) float32``, by greedy k-means++ (Arthur and Vassilvitskii).

    Each seed after the first is the best of ``2 + log k`` candidates, as in
    scikit-learn's `kmeans_plusplus` (`kernels.kmeans_plusplus`). Ours so that
    palettes of more than `HISTOGRAM_COLORS` colours are fitted without
    importing scikit-learn, which takes 1.5-2 s (most of it scipy.stats).
    """
    trials = 2 + int(np.log(k))
    picks = kmeans_plusplus(points.astype(np.float64), weights.astype(np.float64), k, trials,
                            rng.random(1 + (k - 1) * trials))
    return points[picks].astype(np.float32)


def _squared_distances(points: np.ndarray, norms: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``(N, C)`` squared distances of ``points`` (whose `squared_norms` are ``norms``) to ``centres``, by
    ``|p|^2 - 2 p.c + |c|^2`` (one matrix product), clipped at 0 against rounding."""
    return np.maximum(norms[:, None] - 2 * points @ centres.T + squared_norms(centres)[None, :], 0)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays hold the same values, bit for bit, in the same shape and type."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _slot_sums(labels: np.ndarray, values: np.ndarray, slots: int) -> np.ndarray:
    """Per-slot sums of ``(N, 3)`` values, ``(slots, 3)`` float64: ``values[i]`` goes to slot ``labels[i]``."""
    return np.stack([np.bincount(labels, weights=values[:, c], minlength=slots) for c in range(3)], axis=1)


def _keep_slots(old: np.ndarray, colors: np.ndarray, color_space: str) -> np.ndarray:
    """A palette holding every one of ``colors`` that changes as few of ``old``'s slots as it can.

    A colour already in ``old`` keeps its slot; each other colour takes the
    slot of the nearest colour no longer needed, and new slots at the end
    when those run out.
    """
    from scipy.optimize import linear_sum_assignment

    old_codes, new_codes = pack_rgb(old), pack_rgb(colors)
    missing = colors[~np.isin(new_codes, old_codes)]
    free = np.flatnonzero(~np.isin(old_codes, new_codes))
    slots = old.copy()
    if len(missing) and len(free):
        cost = ((to_space(old[free], color_space)[:, None] - to_space(missing, color_space)[None]) ** 2).sum(axis=2)
        rows, cols = linear_sum_assignment(cost)
        slots[free[rows]] = missing[cols]
        missing = np.delete(missing, cols, axis=0)
    return np.concatenate([slots, missing])


def _lloyd(
    points: np.ndarray,
    weights: np.ndarray,
    centres: np.ndarray,
    steps: int,
    color_space: str,
    fixed: np.ndarray | None = None,
) -> np.ndarray:
    """Weighted Lloyd iterations, at most ``steps``, until no point changes centre.

    Centres move to their points' mean; in ``"oklab"`` a step towards their
    geometric median (see `MEDIAN_FLOOR`). Emptied and ``fixed`` centres stay
    where they are.
    """
    centres = centres.copy()
    floor = points.dtype.type(MEDIAN_FLOOR if color_space == "oklab" else 0)  # oklab: towards geometric medians
    previous = None
    for _ in range(steps):
        labels = nearest(points, centres).astype(np.intp)
        if previous is not None and np.array_equal(labels, previous):
            break
        previous = labels
        total, sums = np.zeros(len(centres)), np.zeros((len(centres), 3))
        lloyd_sums(points, weights, centres, labels, floor, total, sums)
        filled = total > 0 if fixed is None else (total > 0) & ~fixed
        centres[filled] = (sums[filled] / total[filled, None]).astype(np.float32)
    return centres
