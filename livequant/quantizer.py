"""The Quantizer: palette fitting + lookup + dither + temporal hold, frame after frame.

Each frame is mapped through the current palette's lookup table. Adaptive
palettes are refitted by `livequant.fit` when the `RefitPolicy` says so:
synchronously (deterministic, the default) or in a background worker
(``background=True``, what the live pipeline uses) so a frame never waits
for k-means. A still pixel keeps its palette index from the last frame
(temporal hold), which removes the flicker of noise at colour boundaries.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from livequant.colorspace import COLOR_SPACES
from livequant.dither import DITHERS, diffuse, ordered_offsets
from livequant.fit import Fit, PaletteFitter, RefitPolicy
from livequant.frames import QuantizedFrame, check_frame
from livequant.lookup import LookupTable, build_table, map_frame, map_frame_held, nearest_exact
from livequant.palette import Palette
from livequant.presets import resolve

__all__ = ["COLOR_SPACES", "DITHERS", "Quantizer", "quantize"]

log = logging.getLogger("livequant")

ERROR_DIFFUSION = ("floyd-steinberg", "sierra-lite")


@dataclass(frozen=True, eq=False)
class _State:
    """What the frame loop reads: swapped as one reference when a refit lands."""

    palette: Palette
    table: LookupTable
    offsets: np.ndarray
    fit: Fit | None
    generation: int
    fresh: bool  # True when slots do not follow from the previous palette


def _check_options(n_colors, dither, color_space, dither_strength, hold, refit_every, sample_size, stability=0.0):
    if isinstance(n_colors, bool) or not isinstance(n_colors, (int, np.integer)) or not 1 <= n_colors <= 256:
        raise ValueError(f"n_colors must be an integer in 1..256, got {n_colors!r}")
    if dither not in DITHERS:
        raise ValueError(f"dither must be one of {', '.join(DITHERS)}; got {dither!r}")
    if color_space not in COLOR_SPACES:
        raise ValueError(f"color_space must be one of {', '.join(COLOR_SPACES)}; got {color_space!r}")
    if not 0 <= dither_strength <= 2:
        raise ValueError(f"dither_strength must be in 0..2, got {dither_strength!r}")
    if not isinstance(hold, (int, np.integer)) or not 0 <= hold <= 64:
        raise ValueError(f"hold must be an integer in 0..64 (levels; 0 turns it off), got {hold!r}")
    if not stability >= 0:
        raise ValueError(f"stability must be >= 0, got {stability!r}")
    if not isinstance(refit_every, (int, np.integer)) or refit_every < 0:
        raise ValueError(f"refit_every must be an integer >= 0 (0: refit on drift only), got {refit_every!r}")
    if sample_size is not None and (not isinstance(sample_size, (int, np.integer)) or sample_size < 1):
        raise ValueError(f"sample_size must be a positive integer, got {sample_size!r}")


class Quantizer:
    """Quantize a stream of frames to a limited palette, fitted live or fixed.

    Parameters
    ----------
    n_colors : int
        Palette size K, 1..256 (ignored for a fixed ``palette``).
    palette : Palette, str or path, optional
        A fixed palette: a `Palette`, a preset name (see `livequant.presets`)
        or a palette file. ``None`` fits an adaptive palette to the frames.
    dither : str
        One of `DITHERS`: ``"none"``, ``"bayer"`` (8x8; ``"bayer2"``,
        ``"bayer4"``, ``"bayer8"``), ``"bluenoise"``, ``"floyd-steinberg"``,
        ``"sierra-lite"``.
    color_space : {"oklab", "rgb"}
        Space in which palettes are fitted and nearest colours measured.
    refit_every : int
        Consider a warm refit every this many frames (0: only on drift or a
        scene cut). A refit replaces the palette only when it is clearly better.
    sample_size : int, optional
        Pixels sampled per fit; default ``max(8192, 64 * n_colors)``.
    seed : int
        Seed for sampling and k-means++: same seed, same output.
    locked : array_like of (L, 3) uint8, optional
        Colours always in the adaptive palette; the other ``n_colors - L`` adapt.
    dither_strength : float
        0..2; scales the dither amplitude (ordered) or the error passed on (diffusion).
    hold : int
        Temporal hold threshold in levels: a pixel that changed by at most
        this much keeps its palette index. 0 turns it off.
    stability : float
        How much flicker on still regions weighs against error when a refit
        moves a palette colour; 0 takes every refit as it is.
    background : bool
        Refit in a worker thread; frames keep the current palette meanwhile.

    Examples
    --------
    >>> q = Quantizer(16)
    >>> out = q.quantize(frame)            # doctest: +SKIP
    >>> idx = q.indices(next_frame)        # doctest: +SKIP
    """

    def __init__(
        self,
        n_colors: int = 16,
        *,
        palette: Palette | str | None = None,
        dither: str = "none",
        color_space: str = "oklab",
        refit_every: int = 3,
        sample_size: int | None = None,
        seed: int = 0,
        locked=None,
        dither_strength: float = 1.0,
        hold: int = 3,
        stability: float = 10.0,
        background: bool = False,
    ):
        _check_options(n_colors, dither, color_space, dither_strength, hold, refit_every, sample_size, stability)
        self._locked = None if locked is None else Palette(locked).colors
        if self._locked is not None and len(self._locked) >= n_colors and palette is None:
            raise ValueError(f"locked has {len(self._locked)} colours, which leaves none of n_colors={n_colors} to adapt")
        self.n_colors = int(n_colors)
        self.dither = dither
        self.color_space = color_space
        self.refit_every = refit_every
        self.sample_size = sample_size
        self.seed = seed
        self.dither_strength = float(dither_strength)
        self.hold = int(hold)
        self.stability = float(stability)
        self.frozen = False
        self.stats = {"frames": 0, "refits": 0, "fit_ms": 0.0, "refit_errors": 0}
        self._fixed = None if palette is None else resolve(palette)
        self._state: _State | None = None
        self._new_fitter()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="livequant-refit") if background else None
        self._pending: tuple[Future, str] | None = None
        self._last_samples: np.ndarray | None = None  # the previous frame's
        self._fitted_on: np.ndarray | None = None  # those of the last refit
        self._held: tuple[np.ndarray, np.ndarray, int] | None = None  # indices, reference input, generation
        if self._fixed is not None:
            self._publish(None, self._fixed, fresh=True)

    # ----------------------------------------------------------------- public

    @property
    def palette(self) -> Palette:
        """The palette in force (fitted on the first frame for adaptive quantizers)."""
        if self._state is None:
            raise RuntimeError("no palette yet: an adaptive Quantizer fits its palette on the first frame")
        return self._state.palette

    def quantize(self, frame: np.ndarray) -> np.ndarray:
        """Quantize one frame.

        Parameters
        ----------
        frame : (H, W, 3) uint8 ndarray
            RGB frame.

        Returns
        -------
        (H, W, 3) uint8 ndarray
            The frame in palette colours.
        """
        return self.process(frame).rgb

    def indices(self, frame: np.ndarray) -> np.ndarray:
        """Quantize one frame exactly as `quantize` does, returning the index map.

        Returns
        -------
        (H, W) uint8 ndarray
            Index of each pixel into `palette` (what GIF / ``pal8`` output needs).
        """
        return self.process(frame).indices

    def process(self, frame: np.ndarray, time: float = 0.0) -> QuantizedFrame:
        """Quantize one frame and return colours, indices and the palette used.

        Parameters
        ----------
        frame : (H, W, 3) uint8 ndarray
        time : float
            Presentation time in seconds, passed through to the result.

        Returns
        -------
        QuantizedFrame
        """
        frame = check_frame(frame)
        self.stats["frames"] += 1
        if self._fixed is None:
            self._update_palette(frame)
        state = self._state
        out_rgb = np.empty_like(frame)
        indices = self._map(frame, state, out_rgb)
        return QuantizedFrame(rgb=out_rgb, indices=indices, palette=state.palette, time=time, source=frame)

    def configure(self, *, n_colors=None, dither=None, palette=None, frozen=None) -> None:
        """Change settings between frames, from the thread that calls `process`.

        The preview's keys use this.

        Parameters
        ----------
        n_colors : int, optional
            New palette size; refits from scratch.
        dither : str, optional
            New dither, one of `DITHERS`.
        palette : Palette, str or path, optional
            A fixed palette, or ``"adaptive"`` to fit palettes again.
        frozen : bool, optional
            Stop (True) or resume (False) refitting the adaptive palette.
        """
        _check_options(
            self.n_colors if n_colors is None else n_colors,
            self.dither if dither is None else dither,
            self.color_space, self.dither_strength, self.hold, self.refit_every, self.sample_size,
        )
        if frozen is not None:
            self.frozen = bool(frozen)
        if dither is not None:
            self.dither = dither
            if self._state is not None:
                self._publish(self._state.fit, self._state.palette, fresh=False, table=self._state.table)
        if palette is not None:
            self._fixed = None if palette == "adaptive" else resolve(palette)
        if n_colors is not None and n_colors != self.n_colors:
            self.n_colors = int(n_colors)
            if self._locked is not None and len(self._locked) >= self.n_colors:
                self._locked = None
            self._new_fitter()
        if palette is not None or n_colors is not None:
            self._pending = None
            if self._fixed is not None:
                self._publish(None, self._fixed, fresh=True)
            else:
                self._force_fresh = True

    def close(self) -> None:
        """Stop the background worker, if any."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> Quantizer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- palette

    @property
    def _still_levels(self) -> int:
        """Largest per-channel change of a pixel that still counts as still (noise)."""
        return max(self.hold, 1)

    def _new_fitter(self) -> None:
        size = self.sample_size or max(8192, 64 * self.n_colors)
        self._fitter = PaletteFitter(
            self.n_colors,
            color_space=self.color_space,
            sample_size=size,
            seed=self.seed,
            locked=self._locked,
            stability=self.stability,
        )
        self._policy = RefitPolicy(self.refit_every)
        self._force_fresh = True

    def _update_palette(self, frame: np.ndarray) -> None:
        """Land a finished background refit, then start one if the policy says so."""
        if self._pending is not None and self._pending[0].done():
            self._land(*self._pending)
            self._pending = None
        if self.frozen and self._state is not None:
            return
        samples = self._fitter.sample(frame)
        previous, self._last_samples = self._last_samples, samples
        if self._force_fresh or self._state is None or self._state.fit is None:
            kind = "fresh"
        else:
            kind = self._policy.decide(self._fitter.error(samples[::4], self._state.fit))
        if kind == "keep" or self._pending is not None:
            return
        fitted_on = self._fitted_on
        if kind == "warm" and fitted_on is not None and fitted_on.shape == samples.shape:
            if np.abs(samples.astype(np.int16) - fitted_on).max() <= self._still_levels:
                return  # nothing moved since the last fit: nothing new to learn
        self._fitted_on = samples
        self._force_fresh = False
        current = None if self._state is None else self._state.fit
        still = None
        if previous is not None and previous.shape == samples.shape:
            still = np.abs(samples.astype(np.int16) - previous).max(axis=1) <= self._still_levels
        if self._executor is not None and self._state is not None:
            self._pending = (self._executor.submit(self._refit, kind, samples, current, still), kind)
            return
        try:
            result = self._refit(kind, samples, current, still)
        except Exception as error:
            if self._state is None:
                raise  # no palette to fall back on
            self._refit_failed(error)
            return
        self._apply(kind, result)

    def _refit(self, kind: str, samples: np.ndarray, current: Fit | None, still: np.ndarray | None):
        """Fit (fresh or warm) and build the table; None in place of both when no slot changed."""
        start = time.perf_counter()
        fit = self._fitter.fit(samples, previous=None if kind == "fresh" else current, still=still)
        if kind == "warm" and np.array_equal(fit.colors, current.colors):
            return None, fit.error, time.perf_counter() - start
        table = build_table(fit.colors, self.color_space)
        return (fit, table), fit.error, time.perf_counter() - start

    def _land(self, future: Future, kind: str) -> None:
        try:
            result = future.result()
        except Exception as error:
            self._refit_failed(error)
            return
        self._apply(kind, result)

    def _refit_failed(self, error: Exception) -> None:
        """Keep the last good palette; report the first failure only."""
        if not self.stats["refit_errors"]:
            log.error("palette refit failed, keeping the current palette: %s", error)
        self.stats["refit_errors"] += 1
        self._policy.fitted(self._policy.baseline)

    def _apply(self, kind: str, result) -> None:
        fitted, error, seconds = result
        self._policy.fitted(error)
        self.stats["fit_ms"] = seconds * 1000
        if fitted is not None:
            fit, table = fitted
            self.stats["refits"] += 1
            self._publish(fit, Palette(fit.colors, name="adaptive"), fresh=kind == "fresh", table=table)

    def _publish(self, fit: Fit | None, palette: Palette, *, fresh: bool, table: LookupTable | None = None) -> None:
        if table is None:
            table = build_table(palette.colors, self.color_space)
        generation = 0 if self._state is None else self._state.generation + 1
        # Held indices only carry over to a palette of the same slots.
        fresh = fresh or self._state is None or len(self._state.palette) != len(palette)
        offsets = ordered_offsets(self.dither, table, self.dither_strength)
        self._state = _State(palette, table, offsets, fit, generation, fresh)

    # ---------------------------------------------------------------- mapping

    def _map(self, frame: np.ndarray, state: _State, out_rgb: np.ndarray) -> np.ndarray:
        t = state.table
        if self.dither in ERROR_DIFFUSION:
            indices = np.empty(frame.shape[:2], np.uint8)
            diffuse(frame, t, self.dither, self.dither_strength, indices, out_rgb)
            self._held = None
            return indices
        if not self.hold:
            indices = np.empty(frame.shape[:2], np.uint8)
            map_frame(frame, t.table, t.fine, t.colors, state.offsets, indices, out_rgb)
            return indices
        held = self._held
        if held is None or held[0].shape != frame.shape[:2] or (state.fresh and held[2] != state.generation):
            indices = np.empty(frame.shape[:2], np.uint8)
            map_frame(frame, t.table, t.fine, t.colors, state.offsets, indices, out_rgb)
            self._held = (indices, frame.copy(), state.generation)
            return indices.copy()
        indices, reference, generation = held
        # After a palette change, the same trade as the fitter's: error saved against change shown.
        weight = self.stability / 3 if generation != state.generation else -1.0
        map_frame_held(frame, t.table, t.fine, t.colors, state.offsets, self.hold, weight, reference, indices, out_rgb)
        self._held = (indices, reference, state.generation)
        return indices.copy()


def quantize(
    image: np.ndarray,
    n_colors: int = 16,
    *,
    palette: Palette | str | None = None,
    dither: str = "none",
    color_space: str = "oklab",
    sample_size: int = 65536,
    seed: int = 0,
    locked=None,
    dither_strength: float = 1.0,
) -> np.ndarray:
    """Quantize one still image at best quality.

    Fits with a larger sample and more refinement than the video path, and maps
    every pixel to its exact nearest palette colour (no table) unless dithering.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
    n_colors : int
        Palette size, 1..256.
    palette, dither, color_space, seed, locked, dither_strength
        As for `Quantizer`.
    sample_size : int
        Pixels sampled for the fit.

    Returns
    -------
    (H, W, 3) uint8 ndarray
    """
    image = check_frame(image, "image")
    _check_options(n_colors, dither, color_space, dither_strength, 0, 0, sample_size)
    if palette is None:
        fitter = PaletteFitter(
            n_colors,
            color_space=color_space,
            sample_size=sample_size,
            seed=seed,
            locked=None if locked is None else Palette(locked).colors,
            refine_steps=30,
        )
        palette = Palette(fitter.fit(fitter.sample(image)).colors, name="adaptive")
    palette = resolve(palette)
    if dither == "none":
        return palette.colors[nearest_exact(image, palette.colors, color_space)]
    q = Quantizer(palette=palette, dither=dither, color_space=color_space, dither_strength=dither_strength, hold=0)
    return q.quantize(image)
