"""The Quantizer: palette track + lookup + dither + temporal hold, frame after frame.

A frame goes through two steps. `Quantizer.plan` asks the palette track
(`livequant.track`) which palette the frame gets: it refits when the policy
says so, afresh at a scene cut. `Quantizer.apply` maps the frame through that
palette's lookup table, dithered or held: a still pixel keeps its palette
index from the previous frame (`livequant.hold.TemporalHold`), which removes the flicker of
noise at colour boundaries. `Quantizer.process` does both; the pipeline runs
``plan`` ahead of ``apply`` for files (same output, fits overlap mapping) and
lets fits land when they are ready for live sources (``background=True``).
"""

from __future__ import annotations

import math

import numpy as np

from livequant.colorspace import COLOR_SPACES, working_space
from livequant.dither import DITHERS, REGISTRY, is_diffusion, ordered_offsets
from livequant.fit import PaletteFitter
from livequant.frames import QuantizedFrame, check_frame, check_opaque
from livequant.hold import DIFFUSION_HOLD, TemporalHold, default_hold, hold_weight
from livequant.lookup import build_table, nearest_exact
from livequant.palette import Palette
from livequant.presets import resolve
from livequant.track import PaletteStep, PaletteTrack, default_sample_size

__all__ = ["COLOR_SPACES", "DITHERS", "Quantizer", "fixed_space", "quantize"]


def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_time(time) -> None:
    if time is not None and (not _is_number(time) or not math.isfinite(time)):
        raise ValueError(f"time must be a finite number of seconds or None, got {time!r}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_options(n_colors, dither, color_space, dither_strength, hold, refit_every, sample_size, stability=0.0,
                   seed=0):
    if not _is_integer(n_colors) or not 1 <= n_colors <= 256:
        raise ValueError(f"n_colors must be an integer in 1..256, got {n_colors!r}")
    if not _is_integer(seed) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in 0..{2**32 - 1} (the same seed gives the same palettes), "
                         f"got {seed!r}")
    if dither not in DITHERS:
        raise ValueError(f"dither must be one of {', '.join(DITHERS)}; got {dither!r}")
    if color_space not in COLOR_SPACES:
        raise ValueError(f"color_space must be one of {', '.join(COLOR_SPACES)}; got {color_space!r}")
    if not _is_number(dither_strength) or not 0 <= dither_strength <= 2:
        raise ValueError(f"dither_strength must be a number in 0..2, got {dither_strength!r}")
    if hold is not None and (not _is_integer(hold) or not 0 <= hold <= 64):
        raise ValueError(f"hold must be an integer in 0..64 (levels; 0 turns it off) or None, got {hold!r}")
    if not _is_number(stability) or not stability >= 0:
        raise ValueError(f"stability must be a number >= 0, got {stability!r}")
    if not _is_integer(refit_every) or refit_every < 0:
        raise ValueError(f"refit_every must be an integer >= 0 (0: refit on drift only), got {refit_every!r}")
    if sample_size is not None and (not _is_integer(sample_size) or sample_size < 1):
        raise ValueError(f"sample_size must be a positive integer, got {sample_size!r}")


def _locked_colors(locked, n_colors: int, palette) -> np.ndarray | None:
    """``locked`` as ``(L, 3) uint8`` colours (None: none); `ValueError` if they leave no slot of an adaptive
    palette of ``n_colors`` to fit (with a fixed ``palette`` they are not used)."""
    colors = None if locked is None else Palette(locked).colors
    if colors is not None and len(colors) >= n_colors and palette is None:
        raise ValueError(f"locked has {len(colors)} colours, which leaves none of n_colors={n_colors} to adapt; "
                         "lock fewer colours or raise n_colors")
    return colors


def fixed_space(dither: str, color_space: str, n_colors: int) -> str:
    """The space a fixed palette of ``n_colors`` is matched in: sRGB under an ordered dither, else the working
    space of ``color_space``.

    A fixed palette's colours lie far apart, and an ordered pattern between
    two of them keeps the picture's tone where its offsets and the midpoint
    between the two are measured alike, in sRGB (as FFmpeg's paletteuse and
    retro tools dither): OKLab's midpoints sit lower, which lightened dark
    tones (a flat grey 32 came out 99 in sRGB on ``gray2``; blurred PSNR
    on three photos and a ramp +5 to +11 dB with ``gray2``, +0.7 to +3.1
    with ``pico8``).
    """
    return "rgb" if REGISTRY[dither].kind == "ordered" else working_space(color_space, n_colors)


class Quantizer:
    """Quantize a stream of frames to a limited palette, fitted live or fixed.

    Parameters
    ----------
    n_colors : int
        Palette size K, 1..256 (unused while ``palette`` is fixed, and checked all the same: `configure` may
        turn the palette adaptive).
    palette : Palette, str or path, optional
        A fixed palette: a `Palette`, a preset name (see `livequant.presets`)
        or a palette file. ``None`` fits an adaptive palette to the frames.
    dither : str
        One of `DITHERS`: ``"none"``, ``"bayer"`` (8x8; ``"bayer2"``,
        ``"bayer4"``, ``"bayer8"``), ``"bluenoise"``, ``"floyd-steinberg"``,
        ``"sierra-lite"``.
    color_space : {"oklab", "rgb"}
        Space in which palettes are fitted and nearest colours measured.
        OKLab weighs lightness 0.7, or 0.6 in palettes of more than 64
        colours (`livequant.colorspace.working_space`). A fixed palette under
        an ordered dither is matched in sRGB (`fixed_space`).
    refit_every : int
        Consider a warm refit every this many frames (0: only on drift or a
        scene cut). A refit replaces the palette only when it is clearly better.
    sample_size : int, optional
        Pixels sampled per fit; default ``max(8192, 64 * n_colors)``.
    seed : int
        Seed for sampling and k-means++: same seed, same output.
    locked : array_like of (L, 3) uint8, optional
        Colours always in the adaptive palette; the other ``n_colors - L`` adapt.
        A palette size of ``L`` or fewer (`configure`) adapts all its colours,
        and the locked ones come back with a larger size.
    dither_strength : float
        0..2; scales the dither amplitude (ordered) or the error passed on (diffusion).
    hold : int, optional
        Temporal hold threshold in levels: a pixel that changed by at most
        this much keeps its palette index. 0 turns it off; None (the
        default) takes `default_hold` of the palette's size, lowered to 1
        on frames whose noise it would cost too much to hold
        (`livequant.hold.NOISE_HOLD_RATIO`), and under error diffusion `DIFFUSION_HOLD`,
        raised to cover the noise where the palette's colours lie far apart
        (`livequant.hold.DIFFUSION_NOISE_COVER`).
    stability : float
        How much flicker on still regions weighs against error when a refit
        moves a palette colour; 0 takes every refit as it is.
    background : bool
        For live sources: `process` fits in a worker thread and keeps the
        current palette meanwhile, so a frame never waits. Output then
        depends on timing; leave it off for files (the pipeline fits ahead).

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
        hold: int | None = None,
        stability: float = 10.0,
        background: bool = False,
    ):
        _check_options(n_colors, dither, color_space, dither_strength, hold, refit_every, sample_size, stability, seed)
        if not isinstance(background, (bool, np.bool_)):
            raise ValueError(f"background must be True or False, got {background!r}")
        self._locked = _locked_colors(locked, n_colors, palette)
        self.n_colors = int(n_colors)
        self.dither = dither
        self.color_space = color_space
        self.refit_every = refit_every
        self.sample_size = sample_size
        self.seed = seed
        self.dither_strength = float(dither_strength)
        self.stability = float(stability)
        self.background = bool(background)
        self.frozen = False
        self.frames = 0
        self._hold_setting = hold
        self._fixed: PaletteStep | None = None
        if palette is not None:
            self._use_fixed(resolve(palette))
        self.hold = self._new_hold()
        self.track = self._new_track()
        self._offsets: tuple[object, np.ndarray] | None = None  # (table, dither) they were made for, offsets
        self._last_step: PaletteStep | None = None
        self._lag = 0  # of the palette in force: frames from the one it was fitted on to its first
        self._planned = 0  # frames planned; `frames` counts those applied
        self._closed = False
        self._earlier_stats: dict = {}  # `stats` of the tracks `configure` replaced

    # ----------------------------------------------------------------- public

    @property
    def palette(self) -> Palette:
        """The palette in force (fitted on the first frame for adaptive quantizers)."""
        step = self._fixed or self.track.current
        if step is None:
            raise RuntimeError("no palette yet: an adaptive Quantizer fits its palette on the first frame")
        return step.palette

    @property
    def stats(self) -> dict:
        """Counters: ``frames``, ``fits`` (fits finished, whether or not they changed a colour), ``refits``
        (palettes that landed), ``cuts`` (fresh starts after the first), ``recalls`` (earlier palettes
        brought back), ``fit_ms`` (the last fit), ``refit_errors``; since the quantizer was made, over
        every palette size `configure` set."""
        now, earlier = self.track.stats, self._earlier_stats
        counted = {name: value + earlier.get(name, 0) for name, value in now.items()}
        counted["fit_ms"] = now["fit_ms"] if now["fits"] else earlier.get("fit_ms", 0.0)
        return {"frames": self.frames, **counted}

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

    def process(self, frame: np.ndarray, time: float | None = None, opaque: np.ndarray | None = None, *,
                wait: float = 0.0) -> QuantizedFrame:
        """Quantize one frame and return colours, indices and the palette used.

        Parameters
        ----------
        frame : (H, W, 3) uint8 ndarray
        time : float, optional
            Presentation time in seconds, passed through to the result: the
            file writers time the frame by it. Without it they show the frame
            ``1 / fps`` after the one before.
        opaque : (H, W) bool ndarray, optional
            False where the pixel is transparent (`livequant.frames.split_alpha`),
            passed through to the result for the writers; error diffusion
            carries no error through those pixels.
        wait : float, optional
            With ``background``, the seconds the frame may wait for a refit in
            the worker to land (`run` gives a slow source's frames up to half
            their interval).

        Returns
        -------
        QuantizedFrame
        """
        self._check_open()
        frame = check_frame(frame)
        _check_time(time)  # before the track moves on
        if not _is_number(wait) or not wait >= 0:
            raise ValueError(f"wait must be a number of seconds >= 0, got {wait!r}")
        if self.background and self._fixed is None:
            step = self.track.step_live(frame, self._next_index(), self.frozen, wait)
        else:
            step = self.plan(frame)
        return self.apply(frame, step, time, opaque)

    def plan(self, frame: np.ndarray) -> PaletteStep:
        """The palette the next frame is mapped with, refitting first if the track says so.

        Call it on every frame, in order; `apply` may then run behind it (in
        another thread), in the same order, with the steps it returned.
        """
        self._check_open()
        index = self._next_index()
        if self._fixed is not None:
            return self._fixed
        if self.frozen and self.track.current is not None:
            return self.track.current
        return self.track.step(check_frame(frame), index)

    def apply(self, frame: np.ndarray, step: PaletteStep, time: float | None = None,
              opaque: np.ndarray | None = None) -> QuantizedFrame:
        """Map ``frame`` with the palette of ``step`` (from `plan`): dither, temporal hold.
        ``time`` and ``opaque`` as for `process`.

        Returns
        -------
        QuantizedFrame
        """
        self._check_open()
        if not isinstance(step, PaletteStep):
            raise TypeError(f"apply takes the PaletteStep that plan returned for the frame, got {type(step).__name__}")
        frame = check_frame(frame)
        _check_time(time)
        opaque = check_opaque(opaque, frame)
        self.frames += 1
        indices = np.empty(frame.shape[:2], np.uint8)
        out_rgb = np.empty_like(frame)
        if is_diffusion(self.dither):
            self.hold.diffuse(frame, step, self.dither, self.dither_strength, indices, out_rgb, opaque)
        else:
            self.hold.map(frame, step, self._ordered_offsets(step), indices, out_rgb)
        event = "" if step is self._last_step else step.event
        if event:
            self._lag = self.frames - 1 - step.fitted_on if step.fitted_on >= 0 else 0
        self._last_step = step
        return QuantizedFrame(rgb=out_rgb, indices=indices, palette=step.palette, time=time, source=frame,
                              event=event, palette_lag=self._lag, opaque=opaque)

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
        self._check_open()
        _check_options(
            self.n_colors if n_colors is None else n_colors,
            self.dither if dither is None else dither,
            self.color_space, self.dither_strength, self._hold_setting, self.refit_every, self.sample_size,
        )
        fixed = None if palette is None or palette == "adaptive" else resolve(palette)  # may raise: before any change
        if frozen is not None and not isinstance(frozen, (bool, np.bool_)):
            raise ValueError(f"frozen must be True or False, got {frozen!r}")
        if frozen is not None:
            self.frozen = bool(frozen)
        if dither is not None:
            self.dither = dither
            self.hold.reset()  # held indices were chosen under the old dither
            if palette is None and self._fixed is not None:  # ordered dither matches a fixed palette in sRGB
                self._use_fixed(self._fixed.palette)
        if n_colors is not None and n_colors != self.n_colors:
            self.n_colors = int(n_colors)
            self.track.close()
            self._earlier_stats = self.stats
            self.track = self._new_track()
        if fixed is not None:
            self._use_fixed(fixed)
        elif palette is not None:  # "adaptive"
            self._fixed = None
            self.track.restart()
            self.track.warm_up()
        size = self._palette_size()  # another size can hold by another threshold and weight
        if (self.hold.threshold, self.hold.weight) != (self._hold_levels(size), hold_weight(size, self.stability)):
            self.hold = self._new_hold()

    def close(self) -> None:
        """Stop the background worker, if any; the quantizer takes no more frames or settings."""
        self.track.close()
        self._closed = True

    def __enter__(self) -> Quantizer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- helpers

    def _new_track(self) -> PaletteTrack:
        hold = self._hold_levels(self.n_colors)
        fitter = PaletteFitter(
            self.n_colors,
            color_space=working_space(self.color_space, self.n_colors),
            sample_size=self.sample_size or default_sample_size(self.n_colors),
            seed=self.seed,
            locked=self._locked if self._locked is not None and len(self._locked) < self.n_colors else None,
            stability=self.stability,
            unseen_levels=max(hold - 1, 0),  # a move the hold would hide from a pixel
            still_levels=max(hold, 1),
        )
        track = PaletteTrack(fitter, self.refit_every, fitter.still_levels, background=self.background)
        if self._fixed is None:
            track.warm_up()
        return track

    def _palette_size(self) -> int:
        """Colours of the palette in use: the fixed one's, else ``n_colors``."""
        return len(self._fixed.palette) if self._fixed is not None else self.n_colors

    def _hold_levels(self, n_colors: int) -> int:
        """The hold threshold for a palette of ``n_colors``: as given, else `default_hold`."""
        return default_hold(n_colors) if self._hold_setting is None else int(self._hold_setting)

    def _new_hold(self) -> TemporalHold:
        """A temporal hold for the palette in force: the thresholds as given, else `default_hold` and, under
        error diffusion, `DIFFUSION_HOLD`."""
        diffusion = DIFFUSION_HOLD if self._hold_setting is None else int(self._hold_setting)
        size = self._palette_size()
        return TemporalHold(self._hold_levels(size), hold_weight(size, self.stability), diffusion,
                            follows_noise=self._hold_setting is None)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this Quantizer is closed; make a new one")

    def _next_index(self) -> int:
        self._planned += 1
        return self._planned - 1

    def _use_fixed(self, palette: Palette, space: str | None = None) -> None:
        """Map to the fixed ``palette`` from now on, nearest measured in ``space`` (default: `fixed_space`)."""
        space = space or fixed_space(self.dither, self.color_space, len(palette))
        self._fixed = PaletteStep(palette, build_table(palette.colors, space), None, fresh=True)

    def _ordered_offsets(self, step: PaletteStep) -> np.ndarray:
        """The ordered-dither offsets for ``step``'s table, made once per table and dither; none where the
        palette holds every colour of the frame it was fitted on (`PaletteStep.exact`): shown exactly."""
        key = (step.table, "none" if step.exact else self.dither)
        if self._offsets is None or self._offsets[0] != key:
            self._offsets = (key, ordered_offsets(key[1], step.table, self.dither_strength))
        return self._offsets[1]


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
    opaque: np.ndarray | None = None,
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
    opaque : (H, W) bool ndarray, optional
        As for `Quantizer.process`: error diffusion carries no error through
        transparent pixels.

    Returns
    -------
    (H, W, 3) uint8 ndarray
    """
    image = check_frame(image, "image")
    opaque = check_opaque(opaque, image)
    if sample_size is None:  # a Quantizer's "default"; `_check_options` lets it through
        raise ValueError("sample_size must be a positive integer, got None")
    _check_options(n_colors, dither, color_space, dither_strength, 0, 0, sample_size, seed=seed)
    locked = _locked_colors(locked, n_colors, palette)
    adaptive = palette is None
    if adaptive:
        fitter = PaletteFitter(
            n_colors,
            color_space=working_space(color_space, n_colors),
            sample_size=sample_size,
            seed=seed,
            locked=locked,
            refine_steps=30,
        )
        palette = Palette(fitter.fit(fitter.sample(image)).colors, name="adaptive")
    palette = resolve(palette)
    if dither == "none":
        return palette.colors[nearest_exact(image, palette.colors, working_space(color_space, len(palette)))]
    q = Quantizer(palette=palette, dither=dither, color_space=color_space, dither_strength=dither_strength, hold=0)
    if adaptive:  # a palette fitted to the picture lies close together: matched where it was fitted
        q._use_fixed(palette, working_space(color_space, len(palette)))
    return q.process(image, opaque=opaque).rgb
