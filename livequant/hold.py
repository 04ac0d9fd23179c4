"""The temporal hold: a still pixel keeps its palette index from the frame before.

A pixel whose channels stay within a few levels (by palette size, `default_hold`; lower where the frame's noise
is large for the palette's spacing) of the value its index was chosen at keeps that index, which removes the
flicker of noise at colour boundaries; on a new palette's first frame a still pixel moves only where the error
that saves outweighs the change it shows (`hold_weight`). `livequant.quantizer.Quantizer` holds one.
"""

from __future__ import annotations

import math

import numpy as np

from livequant.colorspace import largest_channel
from livequant.dither import diffuse
from livequant.lookup import map_pixels, map_pixels_held, nearest_spacing
from livequant.track import PaletteStep

__all__ = ["TemporalHold", "default_hold", "hold_weight", "still_noise"]

#: The default temporal hold, in levels, by palette size: (most colours, levels), smallest first (`default_hold`).
HOLD_BY_SIZE = ((32, 3), (64, 2), (256, 1))
#: The default hold under error diffusion, at every palette size: a dither pattern shows a drift of a level or
#: two that one colour a pixel hides. On issue 11's panel (`bench_quality.py --dither`, Floyd-Steinberg, median
#: over the clips of the blurred PSNR against diffusing every frame afresh, and the flicker's geometric mean):
#: 1 level K=16 -0.01 dB at 0.11x the flicker, K=64 -0.06 dB at 0.21x, K=256 -0.10 dB at 0.25x; the ordered
#: path's levels (3, 2) -0.06 dB at 0.09x (K=16) and -0.17 dB at 0.18x (K=64).
DIFFUSION_HOLD = 1
#: Under error diffusion the default hold follows the noise where the palette's colours lie far apart: a still
#: pixel keeps its index while its channels stay within `DIFFUSION_NOISE_COVER` standard deviations of a
#: channel's change between two frames, up to `DIFFUSION_SPACING_SHARE` of the median spacing of the entries the
#: picture uses (a drift that far is small next to their errors), and at least `DIFFUSION_HOLD`. Re-diffused, a
#: level of noise moves the pattern by whole entries: a still scene under sensor noise of sigma 1 changed 22-24%
#: of its pixels a frame with CGA's colours, 19-21% with PICO-8's, 12-17% with 16 fitted ones; held so, 0%
#: (`bench_quality.py --dither`). On issue 11's panel (Floyd-Steinberg, against each frame afresh): K=16 blurred
#: PSNR -0.11 dB (1 level: -0.01) at 0.07x the flicker (0.08x), the worst clip 0.23x (0.40x); K=64 -0.04 dB
#: (-0.01) at 0.17x (0.18x), the worst 0.32x (0.45x). A share of 0.15 kept half the crawl at K=16; without the
#: share the hold cost K=64 0.7 dB.
DIFFUSION_NOISE_COVER = 3.5
DIFFUSION_SPACING_SHARE = 0.25
#: Up to this many colours, a still pixel weighs the change it would show `SMALL_PALETTE_HOLD_WEIGHT` times
#: as much as the fitter does (`hold_weight`).
SMALL_PALETTE = 32
#: Sixteen colours' errors are large, so a palette change that brings any entry a little nearer moved many
#: still pixels at once at the fitter's weight. On issue 11's panel at K=16, seeds 0-2: the floor on 102
#: instead of 99 of 108 checks (only the fade's left), the worst flicker but the fade's 0.80-0.93x its bound
#: instead of 0.98-1.17x, all checks 257 against 256 of 3 x 94; the hold-out's floor on 141 instead of 140 of 144.
#: 8 put the flashing light under FFmpeg per frame's PSNR; at K=64 and 256, 4 gave no less flicker.
SMALL_PALETTE_HOLD_WEIGHT = 4.0
#: The default hold drops to 1 level on a frame whose noise would cost, held, about as much as the
#: quantization: where its variance (per channel, from still pixels' change since the frame before) is at least
#: this times the squared median spacing of the entries the picture uses over 12 (a uniform quantizer's error).
#: A faint sky's ramp (sigma 0.8, entries 3 levels apart) is then followed, and a photograph under noise of
#: sigma 1 whose entries lie 9 apart (the panel's flash) still held.
NOISE_HOLD_RATIO = 0.45
#: The noise is measured on every n-th pixel of every n-th row, n at least `NOISE_PROBE` and enough for at most
#: `NOISE_PROBE_PIXELS` of them (about 1 ms a frame at any size), on those whose change lies within
#: `NOISE_STILL_LEVELS` of the median change in every channel, and smoothed over frames by `NOISE_SMOOTHING`.
NOISE_PROBE = 8
NOISE_PROBE_PIXELS = 4096
NOISE_STILL_LEVELS = 6
NOISE_SMOOTHING = 0.25


def hold_weight(n_colors: int, stability: float) -> float:
    """How much squared error a still pixel must save per level of change shown to move to a new palette's
    better entry: ``stability / 3``, the fitter's trade per channel, times `SMALL_PALETTE_HOLD_WEIGHT` for
    palettes of at most `SMALL_PALETTE` colours."""
    return stability / 3 * (SMALL_PALETTE_HOLD_WEIGHT if n_colors <= SMALL_PALETTE else 1.0)


def still_noise(before: np.ndarray, after: np.ndarray) -> float | None:
    """Variance per channel of the noise on two frames, from the pixels whose change lies within
    `NOISE_STILL_LEVELS` of the median change in every channel (a lighting change moves them all): their
    change's variance over 2. None for fewer than 64 such pixels."""
    change = after.astype(np.int16) - before
    far = np.abs(change - np.median(change.reshape(-1, 3), axis=0))
    still = largest_channel(far) <= NOISE_STILL_LEVELS
    if np.count_nonzero(still) < 64:
        return None
    return float(change[still].var(axis=0).mean() / 2)


def default_hold(n_colors: int) -> int:
    """The temporal hold, in levels, for a palette of ``n_colors``: 3 up to 32 colours, 2 up to 64, 1 above
    (`HOLD_BY_SIZE`).

    A held pixel may have moved ``hold`` levels from the value its colour was
    chosen at. Sixteen colours lie 16-30 levels apart (a channel, nearest
    neighbours, median over issue 11's panel) and 3 levels cost little error;
    256 lie 4-8 apart, where 2 levels cost as much as the quantization itself
    and a switch shows only a small step. On issue 11's panel, 1 level gave
    K=256 0.1-0.5 dB more than 2 on every moving clip, with less flicker on
    all but the flashing light and the fade; at K=64 it put the flashing
    light over its flicker bound (1.38x), and at K=16 so did 2 levels. Where
    the noise is large for the palette's spacing, `TemporalHold` lowers it
    to 1 level frame by frame (`NOISE_HOLD_RATIO`).
    """
    return next(levels for size, levels in HOLD_BY_SIZE if n_colors <= size)


class TemporalHold:
    """Still pixels keep their palette index from the previous frame.

    A pixel whose channels all stay within ``threshold`` levels of the value
    at which its index was chosen keeps that index. On the first frame of a
    new palette, a still pixel moves only if the error that saves outweighs
    ``weight`` (`hold_weight`) times the change that shows beyond keeping
    its index, both from the colour it showed (a slot that moved far shows a
    change either way), and
    its index counts as chosen again at its value on that frame. A
    fresh palette (scene cut, first frame) starts the hold again, and an exact
    one (a frame of few colours, all in the palette) holds nothing: such a
    frame is shown as it is. Under error diffusion (`diffuse`) a still pixel
    keeps its index and passes on its error, up to `livequant.dither.HELD_DRIFT`
    from the one it passed when that was chosen. With ``follows_noise``, `map`
    holds within 1 level on a frame whose noise would cost about as much as
    the quantization (`NOISE_HOLD_RATIO`), and `diffuse` holds within the
    noise where the palette's entries lie far apart
    (`DIFFUSION_NOISE_COVER`).

    Parameters
    ----------
    threshold : int
        Levels a channel may change and still count as still; 0: no hold.
    weight : float
        Squared error a still pixel must save per level of change shown to
        move on a new palette's first frame (`hold_weight`).
    diffusion_threshold : int, optional
        The same under error diffusion (default: ``threshold``).
    follows_noise : bool
        Lower ``threshold`` to 1 where the noise is large for the palette's spacing, and raise
        ``diffusion_threshold`` to cover the noise where it is small for it.
    """

    def __init__(self, threshold: int, weight: float, diffusion_threshold: int | None = None,
                 follows_noise: bool = False):
        self.threshold = threshold
        self.weight = weight
        self.diffusion_threshold = threshold if diffusion_threshold is None else diffusion_threshold
        self.follows_noise = follows_noise
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame."""
        self._indices: np.ndarray | None = None  # the previous frame's, handed out: only read
        self._reference: np.ndarray | None = None  # input values the held indices were chosen at
        self._step: PaletteStep | None = None  # the palette they index
        self._probe: np.ndarray | None = None  # the previous frame's pixels that measure the noise
        self._noise: float | None = None  # its variance, smoothed over frames
        self._spacing: tuple[PaletteStep, np.ndarray] | None = None  # a palette's `nearest_spacing`
        self._errors: np.ndarray | None = None  # under error diffusion: the error each index passed when chosen

    def map(self, frame: np.ndarray, step: PaletteStep, offsets: np.ndarray, out_idx: np.ndarray,
            out_rgb: np.ndarray) -> None:
        """Map ``frame`` with ``step``'s table into ``out_idx`` and ``out_rgb``, holding still pixels."""
        self._errors = None  # no error diffused: a diffusion after this starts again
        if not self.threshold:
            map_pixels(frame, step.table, offsets, out_idx, out_rgb)
            return
        threshold = self._threshold(frame) if self.follows_noise else self.threshold
        if self._starts_again(step, out_idx):
            map_pixels(frame, step.table, offsets, out_idx, out_rgb)
            self._reference = frame.copy()
            self._forget_noise(step)
        else:
            map_pixels_held(frame, step.table, offsets, threshold, self._weight(step), self._reference,
                            self._indices, out_idx, out_rgb, shown=self._step.table)
        self._indices, self._step = out_idx, step

    def diffuse(self, frame: np.ndarray, step: PaletteStep, dither: str, strength: float, out_idx: np.ndarray,
                out_rgb: np.ndarray, opaque: np.ndarray | None = None) -> None:
        """Error-diffuse ``frame`` with ``step``'s table into ``out_idx`` and ``out_rgb``, holding still pixels.

        A still pixel keeps its index and passes on its error, up to
        `livequant.dither.HELD_DRIFT` from the one it passed when that was
        chosen, so the dither pattern of a still region stays put and what
        pixels chosen again pass on does not drift on through it; on a new
        palette's first frame it moves as under `map`, judged at its value
        with the error carried to it. The hold starts again where `map`'s
        does. Transparent pixels (False in ``opaque``) neither take nor pass
        on error.
        """
        threshold = self._diffusion_threshold(frame) if self.follows_noise else self.diffusion_threshold
        if not threshold or self._errors is None or self._starts_again(step, out_idx):
            if threshold and (self._errors is None or self._errors.shape != frame.shape):
                self._errors = np.empty(frame.shape, np.int16)  # read where held, written elsewhere
            diffuse(frame, step.table, dither, strength, out_idx, out_rgb, opaque=opaque,
                    errors=self._errors if threshold else None)
            reference = frame.copy()
            self._forget_noise(step)
        else:
            reference = np.empty_like(frame)
            diffuse(frame, step.table, dither, strength, out_idx, out_rgb, hold=threshold,
                    weight=self._weight(step), reference=self._reference, previous=self._indices,
                    shown=self._step.table, out_reference=reference, opaque=opaque, errors=self._errors)
        self._reference, self._indices, self._step = reference, out_idx, step

    def _threshold(self, frame: np.ndarray) -> int:
        """This frame's hold: 1 level where the noise measured since the frame before, held, would cost about
        as much as the quantization with the entries the previous frame used, else ``threshold``."""
        if self.threshold <= 1:
            return self.threshold
        noise = self._measure_noise(frame)
        if noise is None:
            return self.threshold
        return 1 if 12 * noise >= NOISE_HOLD_RATIO * self._used_spacing(frame) ** 2 else self.threshold

    def _diffusion_threshold(self, frame: np.ndarray) -> int:
        """This frame's hold under error diffusion: `DIFFUSION_NOISE_COVER` deviations of the noise measured
        since the frame before, up to `DIFFUSION_SPACING_SHARE` of the entries' spacing, at least
        ``diffusion_threshold``."""
        noise = self._measure_noise(frame) if self.diffusion_threshold else None
        if noise is None:
            return self.diffusion_threshold
        cover = math.ceil(DIFFUSION_NOISE_COVER * math.sqrt(2 * noise))
        return max(self.diffusion_threshold, int(min(cover, DIFFUSION_SPACING_SHARE * self._used_spacing(frame))))

    def _forget_noise(self, step: PaletteStep) -> None:
        """On a fresh palette's first frame (a scene cut), measure the noise afresh from here, as a hold that
        starts on this frame does (a frame shown exactly keeps what was measured)."""
        if step.fresh:
            self._noise = None

    def _probe_stride(self, frame: np.ndarray) -> int:
        """Every how many pixels and rows the noise and the spacing are measured (`NOISE_PROBE_PIXELS`)."""
        return max(NOISE_PROBE, math.ceil(math.sqrt(frame.shape[0] * frame.shape[1] / NOISE_PROBE_PIXELS)))

    def _measure_noise(self, frame: np.ndarray) -> float | None:
        """The noise's variance per channel since the frame before, smoothed over frames (`still_noise`);
        None on the first frame, one of another size, or where too few pixels are still."""
        stride = self._probe_stride(frame)
        probe = frame[::stride, ::stride]
        before, self._probe = self._probe, probe.copy()
        if before is None or self._indices is None or self._indices.shape != frame.shape[:2]:
            self._noise = None
            return None
        noise = still_noise(before, probe)
        if noise is not None:
            self._noise = noise if self._noise is None else self._noise + NOISE_SMOOTHING * (noise - self._noise)
        return self._noise

    def _used_spacing(self, frame: np.ndarray) -> float:
        """The median `nearest_spacing` of the entries the previous frame showed, over the noise's probe."""
        if self._spacing is None or self._spacing[0] is not self._step:
            self._spacing = (self._step, nearest_spacing(self._step.palette.colors.astype(np.float32)))
        stride = self._probe_stride(frame)
        return float(np.median(self._spacing[1][self._indices[::stride, ::stride]]))

    def _weight(self, step: PaletteStep) -> float:
        """How much error a still pixel must save per level of change shown to move, on a new palette's
        first frame (-1 on other frames: no check)."""
        return self.weight if step is not self._step else -1.0

    def _starts_again(self, step: PaletteStep, out_idx: np.ndarray) -> bool:
        """Whether nothing is held on this frame: the first, a new size, a fresh palette's first, an exact one."""
        held = self._indices
        return held is None or held.shape != out_idx.shape or (step.fresh and step is not self._step) or step.exact
