"""Dithering: ordered (Bayer), blue noise, and error diffusion.

Ordered and blue-noise dither add a fixed, tiled threshold to each pixel
before the lookup, so a static input gives the same output frame after frame.
Error diffusion (Floyd-Steinberg, Sierra Lite) runs serpentine in horizontal
stripes processed in parallel; each stripe first runs over a few rows above it
so its error field starts warm and no seam shows (the kernel is
`livequant.kernels.diffuse_frame`). A still pixel can keep its index from the
previous frame (`livequant.hold.TemporalHold`), passing on the error
that reaches it, up to `HELD_DRIFT` from what reached it when that was
chosen: re-diffused, sensor noise changes the pattern over whole still
regions. Each channel's error moves `ERROR_SHRINK` levels towards zero
before it is passed on: errors of a level or so, which
nobody sees, would otherwise scatter stray pixels over areas a fitted palette
matches closely (FFmpeg's integer shares drop errors under about 2 levels).
`REGISTRY` names every dither once, with its kind and what it applies.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from livequant.kernels import diffuse_frame, parallel_launch
from livequant.lookup import LookupTable

__all__ = ["DITHERS", "Dither", "REGISTRY", "bayer_matrix", "blue_noise", "diffuse", "is_diffusion", "ordered_offsets"]


@functools.cache
def bayer_matrix(n: int) -> np.ndarray:
    """The ``(n, n)`` Bayer threshold matrix with values ``(rank + 0.5) / n**2`` in (0, 1).

    Parameters
    ----------
    n : {2, 4, 8, 16}
    """
    m = np.zeros((1, 1), dtype=np.int64)
    while m.shape[0] < n:
        m = np.block([[4 * m, 4 * m + 2], [4 * m + 3, 4 * m + 1]])
    return (m + 0.5) / (n * n)


@functools.cache
def blue_noise(size: int = 64, sigma: float = 1.5, seed: int = 7) -> np.ndarray:
    """A tileable blue-noise threshold mask by Ulichney's void-and-cluster method.

    Returns
    -------
    (size, size) float64 ndarray
        Each value ``(rank + 0.5) / size**2`` appears once.
    """
    n = size * size
    d = np.minimum(np.arange(size), size - np.arange(size))
    kernel = np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2 * sigma**2)).ravel()
    rows, cols = np.divmod(np.arange(n), size)

    def splat(i: int) -> np.ndarray:  # the toroidal Gaussian centred on pixel i
        return kernel[((rows - rows[i]) % size) * size + (cols - cols[i]) % size]

    def energy_of(pattern: np.ndarray) -> np.ndarray:
        f = np.fft.ifft2(np.fft.fft2(pattern.reshape(size, size)) * np.fft.fft2(kernel.reshape(size, size)))
        return f.real.ravel()

    rng = np.random.default_rng(seed)
    pattern = np.zeros(n, dtype=bool)
    pattern[rng.choice(n, n // 10, replace=False)] = True
    energy = energy_of(pattern)
    while True:  # spread the initial points: move the tightest cluster into the largest void
        cluster = int(np.argmax(np.where(pattern, energy, -np.inf)))
        pattern[cluster] = False
        energy -= splat(cluster)
        void = int(np.argmin(np.where(pattern, np.inf, energy)))
        pattern[void] = True
        energy += splat(void)
        if void == cluster:
            break
    rank = np.zeros(n, dtype=np.int64)
    ones = int(pattern.sum())
    shrinking, e = pattern.copy(), energy.copy()
    for r in range(ones - 1, -1, -1):  # rank the initial points, tightest cluster last
        cluster = int(np.argmax(np.where(shrinking, e, -np.inf)))
        shrinking[cluster] = False
        e -= splat(cluster)
        rank[cluster] = r
    for r in range(ones, n):  # then fill the largest voids in order
        void = int(np.argmin(np.where(pattern, np.inf, energy)))
        pattern[void] = True
        energy += splat(void)
        rank[void] = r
    return ((rank + 0.5) / n).reshape(size, size)


@dataclass(frozen=True)
class Dither:
    """One dither method.

    Attributes
    ----------
    kind : {"none", "ordered", "diffusion"}
    mask : callable, optional
        Ordered: returns the ``(M, M)`` threshold mask, values in (0, 1), tiled over the frame.
    weights : tuple of 4 floats, optional
        Diffusion: shares of a pixel's error passed right, down-left, down and
        down-right (on left-to-right rows).
    """

    kind: str
    mask: Callable[[], np.ndarray] | None = None
    weights: tuple[float, float, float, float] | None = None


#: Every dither by name, in the order the preview's ``d`` key cycles them.
REGISTRY = {
    "none": Dither("none"),
    "bayer": Dither("ordered", mask=functools.partial(bayer_matrix, 8)),
    "bayer2": Dither("ordered", mask=functools.partial(bayer_matrix, 2)),
    "bayer4": Dither("ordered", mask=functools.partial(bayer_matrix, 4)),
    "bayer8": Dither("ordered", mask=functools.partial(bayer_matrix, 8)),
    "bluenoise": Dither("ordered", mask=blue_noise),
    "floyd-steinberg": Dither("diffusion", weights=(7 / 16, 3 / 16, 5 / 16, 1 / 16)),
    "sierra-lite": Dither("diffusion", weights=(2 / 4, 1 / 4, 1 / 4, 0.0)),
}
DITHERS = tuple(REGISTRY)
#: Levels each channel's error moves towards zero before error diffusion passes it on (0 if it is closer).
ERROR_SHRINK = 1.5
#: `diffuse_frame`'s ``opaque`` when every pixel shows.
EVERY_PIXEL_SHOWS = np.zeros((0, 0), dtype=bool)
#: `diffuse_frame`'s ``errors`` when they are not kept.
NO_ERRORS = np.zeros((0, 0, 3), dtype=np.int16)
#: A held pixel passes on the error that reaches it, as a chosen one does, while that error stays within this many
#: levels (a channel) of what reached it when its index was chosen; beyond, the error it passed then (and its own
#: change since). Held pixels passed on whatever reached them, and nothing absorbed a change from pixels chosen
#: again: it drifted through the still part until one chosen again took it whole, and the demo's moving hills in
#: PICO-8's colours grew red and green streaks, its sky bands (6 x 6 blocks' tone error, 99th percentile, 124 on
#: the demo's clip against 102 diffused afresh; 103 now). Issue 11's panel (Floyd-Steinberg and Sierra Lite, K=16
#: and 64) within 0.01 dB of blurred PSNR of before; 16 levels cost K=16 0.05 dB, none (0) 0.13 dB.
HELD_DRIFT = 64


def is_diffusion(dither: str) -> bool:
    """Whether ``dither`` is an error diffusion (which carries no temporal hold)."""
    return REGISTRY[dither].kind == "diffusion"


def ordered_offsets(dither: str, table: LookupTable, strength: float) -> np.ndarray:
    """Per-pixel offsets (in 0-255 levels) for an ordered dither, tiled by the kernel.

    The amplitude follows the palette: ``strength`` times the typical distance
    between neighbouring palette colours, so a sparse palette dithers more.

    Returns
    -------
    (M, M) int16 ndarray
        ``(1, 1)`` zeros for ``"none"``.
    """
    method = REGISTRY[dither]
    if method.kind != "ordered":
        return np.zeros((1, 1), dtype=np.int16)
    return np.rint((method.mask() - 0.5) * table.spread * strength).astype(np.int16)


@functools.lru_cache(maxsize=16)
def _passed_errors(strength: float) -> np.ndarray:
    """The error diffusion passes on for each channel error -255..255 (at ``error + 255``): moved
    `ERROR_SHRINK` towards zero, times ``strength``; ``(511,) float32``, read only."""
    errors = np.arange(-255, 256, dtype=np.float64)
    shrunk = np.sign(errors) * np.maximum(np.abs(errors) - ERROR_SHRINK, 0.0)
    passed = shrunk.astype(np.float32) * np.float32(strength)
    passed.flags.writeable = False
    return passed


def diffuse(
    frame: np.ndarray, table: LookupTable, dither: str, strength: float, out_idx: np.ndarray, out_rgb: np.ndarray,
    *, hold: int = -1, weight: float = -1.0, reference: np.ndarray | None = None, previous: np.ndarray | None = None,
    shown: LookupTable | None = None, out_reference: np.ndarray | None = None, opaque: np.ndarray | None = None,
    errors: np.ndarray | None = None,
) -> None:
    """Error-diffusion dither of ``frame`` into ``out_idx`` and ``out_rgb`` (in place).

    Parameters
    ----------
    frame : (H, W, 3) uint8 ndarray
    table : LookupTable
    dither : {"floyd-steinberg", "sierra-lite"}
    strength : float
        Fraction of the error passed on (1 is the classic kernel), after `ERROR_SHRINK`.
    out_idx : (H, W) uint8 ndarray
    out_rgb : (H, W, 3) uint8 ndarray
    hold : int
        Levels a channel may differ from ``reference`` for the pixel to keep
        its index from ``previous``; it passes on the error that reaches it
        while that stays within `HELD_DRIFT` of what reached it when its index
        was chosen, else the error it passed then (``errors``) plus its own
        change since; -1: no hold.
    weight : float
        On the frame after a palette change: a held pixel moves to the best
        entry when the squared error that saves exceeds ``weight`` times the
        change that shows beyond keeping its index (-1: no check).
    reference : (H, W, 3) uint8 ndarray, optional
        The input values each of ``previous`` was chosen at.
    previous : (H, W) uint8 ndarray, optional
    shown : LookupTable, optional
        The table of the palette ``previous`` indexes (default: ``table``).
    out_reference : (H, W, 3) uint8 ndarray, optional
        Receives the reference for the next frame: ``reference`` where held, ``frame`` elsewhere.
    opaque : (H, W) bool ndarray, optional
        False where a pixel is transparent (`livequant.frames.split_alpha`):
        it neither takes nor passes on error. Default: every pixel shows.
    errors : (H, W, 3) int16 ndarray, optional
        The error each pixel passed on when its index was chosen (before `ERROR_SHRINK` and the kernel's
        shares): read where a pixel is held, written where it is chosen, for the next frame. Default: not
        kept, and a held pixel passes on whatever error reaches it.
    """
    weights = np.array(REGISTRY[dither].weights, dtype=np.float32)
    if hold < 0:
        reference = out_reference = np.zeros((1, 1, 3), np.uint8)
        previous = np.zeros((1, 1), np.uint8)
    with parallel_launch():
        diffuse_frame(frame, table.coarse, table.generation, table.cells, table.columns, table.colors, weights,
                      _passed_errors(float(strength)), hold, np.float32(weight), reference, previous,
                      (table if shown is None else shown).colors, NO_ERRORS if errors is None else errors,
                      HELD_DRIFT, EVERY_PIXEL_SHOWS if opaque is None else opaque, out_idx, out_rgb, out_reference)
