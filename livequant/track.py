"""The palette track: which palette each frame is mapped with, and why.

For every frame, in order, the track decides whether the palette in force
still serves (``keep``), should follow the picture (a ``warm`` refit from the
current centres, slots matched, each slot settling only when it pays), or
must start again (a ``fresh`` fit). A palette starts afresh on the first
frame, at a scene cut, and when its error jumps past `RefitPolicy.scene_cut`
times its error at the last fit.

A palette also starts again when the picture has moved a scene cut's
distance from the frame it started on, a little at a time, with new content
rather than the same content lighter or darker (a cross-dissolve, not a fade:
slots follow that, `PaletteFitter.follow_drift`): warm refits from the old
scene's palette stay in a poor local minimum there, 1-2.5 dB under a fresh fit
for the rest of the shot. It starts again as on an error jump (below).

When the error jumps (a flash, a light switched on) the palette keeps the
slots under the parts of the picture that stood still and fits the others to
what changed (`PaletteFitter.fit_around`), as long as that costs at most
`JUMP_AROUND` over a fresh fit: those parts keep their colours and the
temporal hold carries on. Otherwise it starts afresh, taking back each
previous colour that serves nearly as well as a new one (`JUMP_KEEP`). The
palette it replaces is remembered, up to `RECALLED` of them: when one fits a
later frame as well as it fitted its own and clearly better than the palette
in force, it comes back instead of a refit, so the picture returns to
exactly its colours from before.

A warm palette can also stay in a poor local minimum that no trigger above
sees (a palette born on the near-black frames of a fade in ends 3-5 dB under
a fresh fit): palettes fitted to the whole frame check now and then whether a
rough fresh fit beats them clearly (`FRESH_CHECK_EVERY`), and if a full one
does, start again from it, taking back close colours as on an error jump.
When a drift ends (a fade, a lighting change: the samples moved one way since
the fit before, and now do not), the first warm refit after it compares a full
fresh fit without the rough one first: warm refits that followed a brightening
picture ended 1.5 dB under a fresh fit and stayed there once it was still,
where the rough fit did not see it.

A scene cut is found from two consecutive frames alone (`is_scene_cut`), and
forgets everything before it: the fit, the remembered palettes, the policy's
clock, baseline and last error, and the temporal hold with the noise it
measured. So the frames from a cut onwards
do not depend on what came before it, and a chunk of a film that starts at a
cut (`scene_cuts`) reproduces the sequential output exactly.

Three ways to run the same decisions:

- `PaletteTrack.step`: synchronous, the palette for each frame as it comes.
- Ahead of the frames (files): a worker calls `step` on frames in order,
  while another thread maps earlier frames with the steps already made; the
  output is identical to the synchronous one whatever the timing.
- `PaletteTrack.step_live` (cameras): fits run in a worker thread and the
  newest finished palette wins, so a frame never waits for k-means; the
  ``lag`` of each palette (frames from the one it was fitted on to the first
  one it is used for) is recorded.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, replace

import numpy as np

from livequant.colorspace import largest_channel, squared_norms, to_space
from livequant.fit import CHECK_GAIN, Fit, PaletteFitter, drifts_one_way
from livequant.lookup import LookupTable, build_table, lookup_pixels
from livequant.palette import Palette

__all__ = ["PaletteStep", "PaletteTrack", "RefitPolicy", "is_scene_cut", "scene_cuts"]

log = logging.getLogger("livequant")

#: Histogram bins per channel for the scene-cut test, and their width in levels.
CUT_BINS = 8
CUT_BIN_WIDTH = 256 // CUT_BINS
#: Share of the samples that must change histogram bin for a scene cut.
CUT_DISTANCE = 0.5
#: The refit policy compares errors with at least that of a change of this many levels a channel.
FLOOR_LEVELS = 2.0
#: Palettes remembered from before fresh starts on an error jump.
RECALLED = 4
#: A remembered palette comes back when its error is below the palette in force's divided by this.
RECALL_GAIN = 1.25
#: After an error jump, previous colours replace new ones while that adds at most this share to the fresh
#: fit's error (0.12: half a decibel; see `PaletteFitter.keep_close`).
JUMP_KEEP = 0.12
#: After an error jump, a fit around the slots under still content (`PaletteFitter.fit_around`) is taken while
#: its error is at most this share above a fresh fit's (0.25: one decibel).
JUMP_AROUND = 0.25
#: Palettes fitted to the whole frame (`PaletteFitter.whole_frame`) refit again on the next frame after a refit
#: that cut the error shown on its frame by more than this share (see `RefitPolicy`): on issue 11's panel at
#: K=256 this gave +0.1 to +0.4 dB on every moving clip and nothing changed on still ones; at K=64 (panel and
#: hold-out) +0.07 dB, 2 more floor checks met and CIEDE2000 lower than without it (on samples, before palettes
#: of 64 colours were fitted to the whole frame, it raised flicker). The errors before and after are both
#: measured through the lookup tables: the new palette's exact error lies 2-5% below at K=256, and compared with
#: that nearly every refit was chased, even one that changed nothing. So measured, on issue 11's panel and
#: hold-out at K=256 (mean PSNR against the old chase at 0.03, planning time over the 21 clips): 0.001 +0.03 dB,
#: 1.28x the time; 0.01 +0.01 dB, 1.06x; 0.02 -0.02 dB, 0.92x (each clip within 0.11 dB of 0.01); 0.03 -0.09 dB
#: (the cartoon -0.37), 0.75x.
CHASE_GAIN = 0.02
#: A palette fitted to the whole frame checks whether a fresh fit would clearly beat it (`PaletteFitter.beaten_afresh`)
#: every this many warm refits in a row, and on every warm refit once a fade has taken the picture a scene cut's
#: distance from where the palette started; not while its error is under the policy's floor (a 2-level change):
#: there a fresh fit of a few hundred colours (full k-means, 8 starts) was tried on 5 frames of the GIF table's
#: cuts clip for nothing, 1.5x its planning time.
FRESH_CHECK_EVERY = 4


def is_scene_cut(previous: np.ndarray, samples: np.ndarray) -> bool:
    """Whether two consecutive frames' samples lie across a scene cut.

    A cut when `histogram_distance` exceeds `CUT_DISTANCE` on the bins and on
    bins shifted by half their width. Motion, noise, pans and slow fades move
    few samples between bins; a new shot moves most of them. A flat backdrop
    at a bin's edge (a UI's grey #E0E0E0) crosses it with a change of one
    level, and lies mid-bin on the shifted bins.

    Parameters
    ----------
    previous, samples : (N, 3) uint8 ndarray
        Pixels sampled from the previous and the current frame.
    """
    return all(histogram_distance(previous, samples, offset) > CUT_DISTANCE for offset in (0, CUT_BIN_WIDTH // 2))


def histogram_distance(before: np.ndarray, after: np.ndarray, offset: int = 0) -> float:
    """The share of the samples that would have to move to another bin to turn the colour histogram of
    ``before`` into that of ``after`` (total variation distance; `CUT_BINS` bins a channel, starting
    ``offset`` levels below 0)."""
    per_channel = CUT_BINS + 1  # with an offset, the top values fall in one more
    shift = CUT_BIN_WIDTH.bit_length() - 1

    def histogram(pixels: np.ndarray) -> np.ndarray:
        p = (pixels.astype(np.int32) + offset) >> shift
        codes = (p[:, 0] * per_channel + p[:, 1]) * per_channel + p[:, 2]
        return np.bincount(codes, minlength=per_channel**3) / max(len(pixels), 1)

    return 0.5 * float(np.abs(histogram(before) - histogram(after)).sum())


def scene_cuts(frames, *, n_colors: int = 16, sample_size: int | None = None, seed: int = 0) -> list[int]:
    """Indices of the frames at which the palette track starts afresh at a scene cut.

    A `Quantizer` with the same ``n_colors``, ``sample_size`` and ``seed``,
    started new at such a frame, gives exactly the frames the sequential one
    gives from there on.

    Parameters
    ----------
    frames : iterable of (H, W, 3) uint8 ndarray
    n_colors, sample_size, seed
        As for `Quantizer` (they decide which pixels are sampled).

    Returns
    -------
    list of int
        Frame indices, each > 0, ascending.
    """
    fitter = PaletteFitter(n_colors, color_space="rgb", sample_size=sample_size or default_sample_size(n_colors),
                           seed=seed)
    cuts, previous = [], None
    for index, frame in enumerate(frames):
        samples = fitter.sample(frame)
        if previous is not None and is_scene_cut(previous, samples):
            cuts.append(index)
        previous = samples
    return cuts


def level_error(color_space: str, levels: float) -> float:
    """The squared working-space distance of mid grey from a grey ``levels`` lighter: an error scale."""
    grey = np.array([[128.0] * 3, [128.0 + levels] * 3])
    a, b = to_space(grey, color_space)
    return float(((a - b) ** 2).sum())


def default_sample_size(n_colors: int) -> int:
    """Pixels sampled per fit unless told otherwise: ``max(8192, 64 * n_colors)``."""
    return max(8192, 64 * n_colors)


class RefitPolicy:
    """When to refit: on a clock, on error drift, and afresh when the error jumps.

    Parameters
    ----------
    refit_every : int
        Try a warm refit at least every this many frames (0: never on a clock).
    drift : float
        Refit warm when the palette's error exceeds its error at the last
        fit by this fraction.
    scene_cut : float
        Refit from scratch when the error exceeds this multiple of the error
        at the last fit.
    floor : float
        Errors are compared with at least this much: a palette that fits a
        frame almost exactly (a few-colour source) is not refitted for every
        change too small to see.
    chase : float
        A refit that cut the error by more than this fraction is tried again
        on the next frame instead of waiting for the clock: the picture is
        moving faster than the palette follows (0: off).
    """

    def __init__(self, refit_every: int, drift: float = 0.25, scene_cut: float = 3.0, floor: float = 0.0,
                 chase: float = 0.0):
        self.refit_every = refit_every
        self.drift = drift
        self.scene_cut = scene_cut
        self.floor = floor
        self.chase = chase
        self.frames_since = 0
        self.baseline = 0.0
        self.error_before = 0.0  # the palette's error on the frame of the last decision

    def decide(self, error: float) -> str:
        """Return ``"fresh"``, ``"warm"`` or ``"keep"`` for the palette's ``error`` on a new frame."""
        self.frames_since += 1
        self.error_before = error
        reference = max(self.baseline, self.floor) + 1e-9
        if error > self.scene_cut * reference:
            return "fresh"
        if error > (1 + self.drift) * reference or (self.refit_every and self.frames_since >= self.refit_every):
            return "warm"
        return "keep"

    def restart(self) -> None:
        """Forget the frames before a fresh start (a scene cut, the first frame): no error to measure the
        fresh palette's gain against, as in a track that starts there."""
        self.error_before = 0.0

    def fitted(self, error: float, shown: float | None = None) -> None:
        """Record a refit attempt whose resulting palette has ``error``.

        ``shown`` is the new palette's error on the frame it was fitted on,
        measured as the error passed to `decide` was (None: the palette did
        not change). The refit paid when that is less than the error before
        by more than ``chase``.
        """
        paid = (self.chase and self.refit_every and shown is not None
                and shown < (1 - self.chase) * self.error_before)
        self.frames_since = self.refit_every - 1 if paid else 0
        self.baseline = error

    def failed(self) -> None:
        """Record a refit attempt that failed: the next one waits for the clock, the baseline stays."""
        self.frames_since = 0


@dataclass(frozen=True, eq=False)
class PaletteStep:
    """A palette in force from some frame on, with its lookup table.

    Attributes
    ----------
    palette : Palette
    table : LookupTable
    fit : Fit or None
        The fit behind an adaptive palette; None for a fixed one, and for
        the rough one a live track shows until its first fit lands.
    fresh : bool
        The slots do not follow from the previous palette (first frame, scene
        cut, new palette size): the temporal hold starts again.
    fitted_on : int
        Index of the frame the palette was fitted on; -1 for a fixed palette.
    exact : bool
        The palette holds every colour of the frame it was fitted on (a frame
        of few colours): such frames are shown exactly, never held.
    """

    palette: Palette
    table: LookupTable
    fit: Fit | None
    fresh: bool
    fitted_on: int = -1
    exact: bool = False

    @property
    def event(self) -> str:
        """``"fresh"`` or ``"refit"``: how this palette came to be."""
        return "fresh" if self.fresh else "refit"


@dataclass(frozen=True, eq=False)
class _Job:
    """One refit to run: what kind, on which frame and samples, from which palette."""

    kind: str  # "fresh", "warm", or "jump" (fitted around the still slots, else fresh keeping close colours)
    samples: np.ndarray
    previous: Fit | None  # the palette in force (warm and jump)
    still: np.ndarray | None  # samples that did not move since the previous frame
    since: np.ndarray | None  # the samples the previous palette was fitted on
    before: np.ndarray | None  # the previous frame's samples
    index: int  # of the frame in the stream
    frame: np.ndarray  # the frame itself, for fits to the whole of it (`PaletteFitter.histogram`)
    check: bool = False  # a warm refit that also checks whether a fresh fit would clearly beat it
    check_fully: bool = False  # the same with a full fresh fit, not gated by a rough one (a drift just ended)


@dataclass(frozen=True, eq=False)
class _Outcome:
    """What a refit produced: a new fit and table, or None when no slot changed."""

    fit: Fit | None
    table: LookupTable | None
    error: float
    shown: float | None  # the new palette's error on the frame through its table, as `RefitPolicy.decide` sees it
    seconds: float
    matched: bool  # slot i of the new palette follows slot i of the previous one


class PaletteTrack:
    """The adaptive palette of a stream: refit policy, fitter, scene cuts and pending work.

    Parameters
    ----------
    fitter : PaletteFitter
    refit_every : int
        See `RefitPolicy`.
    still_levels : int
        Largest per-channel change of a pixel that still counts as still.
    background : bool
        Create the worker thread that `step_live` fits in.
    """

    def __init__(self, fitter: PaletteFitter, refit_every: int, still_levels: int, background: bool = False):
        self.fitter = fitter
        chase = CHASE_GAIN if fitter.whole_frame else 0.0
        self.policy = RefitPolicy(refit_every, floor=level_error(fitter.color_space, FLOOR_LEVELS), chase=chase)
        self.still_levels = still_levels
        self.current: PaletteStep | None = None
        self.stats = {"fits": 0, "refits": 0, "cuts": 0, "recalls": 0, "fit_ms": 0.0, "refit_errors": 0}
        self._last_samples: np.ndarray | None = None  # the previous frame's
        self._last_frame: np.ndarray | None = None  # the frame `step` was given last
        self._fitted_on: np.ndarray | None = None  # those of the last refit
        self._started_on: np.ndarray | None = None  # those of the frame the palette last started afresh on
        self._restart = True
        self._warm_refits = 0  # in a row
        self._drifting = False  # the last warm refit's samples drifted one way since the fit before (whole-frame fits)
        self._remembered: list[tuple[PaletteStep, float]] = []  # palettes before error jumps, their errors then
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="livequant-refit") if background else None
        self._closed = False  # the worker was stopped (`close`)
        self._pending: tuple[Future, _Job] | None = None
        self._rough_error = 0.0  # the rough palette's error on the samples it was made from
        self._warming = False  # `warm_up` was called
        self._dropped_stale = False  # a first fit older than the rough palette in force (`_beaten_by_rough`)

    def warm_up(self) -> None:
        """Have the worker run a fresh, a warm and a jump refit on made-up frames before the stream's first fit
        (once; nothing is kept): the imports and the compiled kernels' first calls they take, 1-2 s in a fresh
        process (scikit-learn's import most of it), then hold up no fit of the stream's."""
        if self._executor is not None and not self._warming:
            self._warming = True
            self._executor.submit(self._refit_made_up_frames)

    def restart(self) -> None:
        """Start afresh on the next frame (a new palette size, back from a fixed palette)."""
        self._restart = True
        self._pending = None

    def step(self, frame: np.ndarray, index: int) -> PaletteStep:
        """The palette for frame ``index`` of the stream, the next one; fits first if the policy says so.

        A frame given again (the same array, its samples as they were: a source re-timed to more frames a
        second repeats it) keeps the palette, so that it shows the same picture again; an array refilled with
        another picture does not.
        """
        if (frame is self._last_frame and self.current is not None
                and np.array_equal(self.fitter.sample(frame), self._last_samples)):
            return self.current
        self._last_frame = frame
        job = self._plan(frame, index)
        if job is not None:
            self._run(job)
        return self.current

    def step_live(self, frame: np.ndarray, index: int, frozen: bool = False, wait: float = 0.0) -> PaletteStep:
        """The newest finished palette for frame ``index``, the next one; fits run in the worker.

        Until the first fit lands, a rough palette (`PaletteFitter.rough`,
        a few milliseconds) is shown. ``frozen`` keeps the palette in force
        and starts no fit. The frame waits up to ``wait`` seconds for a fit
        in the worker to land (a slow source has the time: a slide shown for
        a second was shown in the slide before's palette).
        """
        if self._executor is None:
            raise RuntimeError("this Quantizer is closed; make a new one" if self._closed else
                               "step_live needs a track created with background=True")
        self._land_finished()
        if frozen and self.current is not None:
            return self.current
        job = self._plan(frame, index)
        if job is None or self._pending is not None:
            if self._pending is not None and self.current.fit is None:
                self._follow_roughly(self._last_samples, index)
        else:
            if self.fitter.whole_frame:  # the worker reads it while the caller may reuse its buffer
                job = replace(job, frame=frame.copy())
            if self.current is None:
                self._show_rough(job.samples, index)
            self._pending = (self._executor.submit(self._refit, job), job)
        if wait > 0 and self._pending is not None:
            wait_for([self._pending[0]], timeout=wait)
            self._land_finished()
        return self.current

    def _land_finished(self) -> None:
        """Land the fit the worker has finished, if any."""
        if self._pending is None or not self._pending[0].done():
            return
        future, job = self._pending
        self._pending = None
        try:
            outcome = future.result()
            if not self._beaten_by_rough(outcome):
                self._land(job, outcome)
        except Exception as error:
            self._failed(error)

    def _show_rough(self, samples: np.ndarray, index: int) -> None:
        """Put a rough palette of ``samples`` (frame ``index``'s) in force, to show until the first fit lands."""
        colors = self.fitter.rough(samples)
        self.current = PaletteStep(Palette(colors, name="adaptive"), build_table(colors, self.fitter.color_space),
                                   None, fresh=True, fitted_on=index)
        self._rough_error = self._error(samples[::4], self.current)

    def _follow_roughly(self, samples: np.ndarray, index: int) -> None:
        """While the first fit runs, make the rough palette again from frame ``index``'s ``samples`` once its
        error has drifted as far as a refit's (`RefitPolicy`): in a fresh process the first fit waits for the
        worker's `warm_up`, or else for the imports."""
        reference = max(self._rough_error, self.policy.floor)
        if self._error(samples[::4], self.current) > (1 + self.policy.drift) * reference:
            self._show_rough(samples, index)

    def _beaten_by_rough(self, outcome: _Outcome) -> bool:
        """Whether the rough palette in force fits the newest frame better than ``outcome``'s, the first fit,
        made from an older frame (it waited for the warm-up): it is dropped, and the next frame starts a fit of
        its own. Once only: where the picture moves faster than fits land, a later one is always older."""
        if self.current.fit is not None or outcome.fit is None or self._dropped_stale:
            return False
        samples = self._last_samples[::4]
        fitted = self._mapped_error(samples, lookup_pixels(samples, outcome.table), outcome.fit.centres)
        self._dropped_stale = fitted > self._error(samples, self.current)
        return self._dropped_stale

    def _refit_made_up_frames(self) -> None:
        """`warm_up`'s work."""
        ramp = np.linspace(0, 255, 64, dtype=np.float32)
        base = np.stack(np.broadcast_arrays(ramp[:, None], ramp[None, :], 128.0), axis=2)
        frames = [np.ascontiguousarray(np.clip(base + shift, 0, 255).astype(np.uint8)) for shift in (0, 8, 96)]
        first, moved, jumped = (self.fitter.sample(frame) for frame in frames)
        fresh = self._refit(_Job("fresh", first, None, None, None, None, 0, frames[0])).fit
        still = largest_channel(np.abs(moved.astype(np.int16) - first)) <= self.still_levels
        self._refit(_Job("warm", moved, fresh, still, first, first, 1, frames[1], check=True))
        self._refit(_Job("jump", jumped, fresh, still, None, None, 2, frames[2]))

    def close(self) -> None:
        """Stop the worker thread, if any."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
            self._closed = True

    # ------------------------------------------------------------- decisions

    def _plan(self, frame: np.ndarray, index: int) -> _Job | None:
        """Decide, for frame ``index``, whether to refit and how."""
        samples = self.fitter.sample(frame)
        previous, self._last_samples = self._last_samples, samples
        far = visible = False  # a fade a cut's distance from the palette's start; an error over the floor
        if self._restart or self.current is None or self.current.fit is None or is_scene_cut(previous, samples):
            kind = "fresh"
            self._remembered.clear()
            self.policy.restart()
        elif self.fitter.exact(samples):  # few colours: refit exactly when one is missing
            kind = "warm" if self._error(samples, self.current) > 0 else "keep"
        else:
            error = self._error(samples[::4], self.current)
            kind = self.policy.decide(error)
            visible = error > self.policy.floor
            started_on = self._started_on
            if (kind == "warm" and started_on is not None and started_on.shape == samples.shape
                    and histogram_distance(started_on, samples) > CUT_DISTANCE):  # on the bins alone, as tuned
                if drifts_one_way(samples.astype(np.float64) - started_on):
                    far = True  # a fade: followed, but check whether starting again would be better
                else:
                    kind = "fresh"  # a cut's worth of new content, a little at a time
            if self._pending is None:
                if self._recall(samples, error, index):
                    return None
                if kind == "fresh":
                    self._remembered = [*self._remembered[1 - RECALLED:], (self.current, self.policy.baseline)]
                    kind = "jump"
        if kind == "keep" or self._pending is not None:
            return None
        since = self._fitted_on if self._fitted_on is not None and self._fitted_on.shape == samples.shape else None
        if kind == "warm" and since is not None:
            if np.abs(samples.astype(np.int16) - since).max() <= self.still_levels:
                return None  # nothing moved since the last fit: nothing new to learn
        self._fitted_on = samples
        self._warm_refits = self._warm_refits + 1 if kind == "warm" else 0
        if kind != "warm":
            self._started_on, self._drifting = samples, False
        self._restart = False
        if kind == "fresh":
            return _Job(kind, samples, None, None, None, None, index, frame)
        still = None
        if previous is not None and previous.shape == samples.shape:
            still = largest_channel(np.abs(samples.astype(np.int16) - previous)) <= self.still_levels
        if kind == "jump":
            return _Job(kind, samples, self.current.fit, still, None, None, index, frame)
        before = previous if still is not None else None
        check = self.fitter.whole_frame and visible and (far or self._warm_refits % FRESH_CHECK_EVERY == 0)
        drifting = (self.fitter.whole_frame and since is not None
                    and drifts_one_way(samples.astype(np.float64) - since))
        drift_ended, self._drifting = self._drifting and not drifting, drifting
        return _Job(kind, samples, self.current.fit, still, since, before, index, frame, check, drift_ended)

    def _error(self, samples: np.ndarray, step: PaletteStep) -> float:
        """Mean squared working-space distance of ``samples`` to the colours of ``step`` they map to (a rough
        palette's, which has no fit, in the working space too)."""
        centres = step.fit.centres if step.fit is not None else to_space(step.palette.colors, self.fitter.color_space)
        return self._mapped_error(samples, lookup_pixels(samples, step.table), centres)

    def _mapped_error(self, samples: np.ndarray, mapped: np.ndarray, centres: np.ndarray) -> float:
        """Mean squared working-space distance of ``samples`` to the ``centres`` of index ``mapped``."""
        points = to_space(samples, self.fitter.color_space)
        return float(squared_norms(points - centres[mapped]).mean())

    def _recall(self, samples: np.ndarray, error: float, index: int) -> bool:
        """Bring back the remembered palette that fits ``samples`` as well as it fitted its own frames and
        `RECALL_GAIN` times better than the one in force (``error``), if any; the one in force is remembered."""
        if not self._remembered:
            return False
        errors = [self._error(samples[::4], step) for step, _ in self._remembered]
        best = int(np.argmin(errors))
        step, baseline = self._remembered[best]
        if errors[best] * RECALL_GAIN > error or errors[best] > (1 + self.policy.drift) * max(baseline,
                                                                                              self.policy.floor):
            return False
        self._remembered[best] = (self.current, self.policy.baseline)
        # Slot for slot back to the palette the one in force replaced, if that one was fitted around it.
        self.current = replace(step, fresh=self.current.fresh, fitted_on=index)
        self.policy.fitted(errors[best], errors[best])
        self._fitted_on = samples
        self.stats["recalls"] += 1
        return True

    # ------------------------------------------------------------------ work

    def _refit(self, job: _Job) -> _Outcome:
        """Fit and build the table; pure compute, safe in a worker."""
        start = time.perf_counter()
        matched = job.kind == "warm"
        histogram = self.fitter.histogram(job.frame)
        if matched:
            fit = self.fitter.fit(job.samples, previous=job.previous, still=job.still, since=job.since,
                                  before=job.before, histogram=histogram)
            if job.check_fully or (job.check and self.fitter.beaten_afresh(job.samples, fit, histogram)):
                fresh = self.fitter.keep_close(self.fitter.fit(job.samples, histogram=histogram),
                                               job.previous.colors, JUMP_KEEP, job.samples)
                if fresh.error <= CHECK_GAIN * fit.error:
                    fit, matched = fresh, False
            if matched and np.array_equal(fit.colors, job.previous.colors):
                return _Outcome(None, None, fit.error, None, time.perf_counter() - start, matched)
        else:
            fit = self.fitter.fit(job.samples, histogram=histogram)
            if job.kind == "jump":  # a light switched on: the still parts keep their slots, or at least colours
                around = None if job.still is None else self.fitter.fit_around(job.samples, job.previous, job.still,
                                                                              histogram)
                if around is not None and around.error <= (1 + JUMP_AROUND) * fit.error:
                    fit, matched = around, True
                else:
                    fit = self.fitter.keep_close(fit, job.previous.colors, JUMP_KEEP, job.samples)
        table = build_table(fit.colors, self.fitter.color_space)
        # live: every sample's cell is filled here, not when a frame meets it; a file's frames fill theirs on the
        # mapping threads, which have room, and only the quarter of the samples measured is looked up
        every = 1 if self._executor is not None else 4
        mapped = lookup_pixels(job.samples[::every], table)
        shown = self._mapped_error(job.samples[::4], mapped[::4 // every], fit.centres)
        return _Outcome(fit, table, fit.error, shown, time.perf_counter() - start, matched)

    def _run(self, job: _Job) -> None:
        try:
            outcome = self._refit(job)
        except Exception as error:
            if self.current is None:
                raise  # no palette to fall back on
            self._failed(error)
            return
        self._land(job, outcome)

    def _land(self, job: _Job, outcome: _Outcome) -> None:
        self.policy.fitted(outcome.error, outcome.shown)
        self.stats["fits"] += 1
        self.stats["fit_ms"] = outcome.seconds * 1000
        if outcome.fit is None:
            return
        self.stats["refits"] += 1
        exact = self.fitter.exact(job.samples)
        fresh = not outcome.matched or self.current is None
        if fresh and job.kind == "warm":  # a fresh fit beat the warm one (`FRESH_CHECK_EVERY`)
            self._started_on, self._warm_refits = job.samples, 0
        if not fresh and len(self.current.palette) != len(outcome.fit.colors):
            fresh = not exact  # slots unmatched, unless an exact palette grew (its old slots kept their colours)
        if fresh and self.current is not None and self.current.fit is not None:  # not after a rough palette
            self.stats["cuts"] += 1
        palette = Palette(outcome.fit.colors, name="adaptive")
        self.current = PaletteStep(palette, outcome.table, outcome.fit, fresh, job.index, exact)

    def _failed(self, error: Exception) -> None:
        """Keep the last good palette; report the first failure only."""
        if not self.stats["refit_errors"]:
            log.error("palette refit failed, keeping the current palette: %s", error)
        self.stats["refit_errors"] += 1
        self.policy.failed()
