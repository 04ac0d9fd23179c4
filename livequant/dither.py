"""Dithering: ordered (Bayer), blue noise, and error diffusion.

Ordered and blue-noise dither add a fixed, tiled threshold to each pixel
before the lookup, so a static input gives the same output frame after frame.
Error diffusion (Floyd-Steinberg, Sierra Lite) runs serpentine in horizontal
stripes processed in parallel; each stripe first runs over a few rows above it
so its error field starts warm and no seam shows.
"""

from __future__ import annotations

import functools

import numba as nb
import numpy as np

from livequant.lookup import LookupTable, _lookup

__all__ = ["DITHERS", "bayer_matrix", "blue_noise", "diffuse", "ordered_offsets"]

DITHERS = ("none", "bayer", "bayer2", "bayer4", "bayer8", "bluenoise", "floyd-steinberg", "sierra-lite")

#: Error-diffusion kernels: weights to the right, down-left, down, down-right (left-to-right rows).
_KERNELS = {
    "floyd-steinberg": (7 / 16, 3 / 16, 5 / 16, 1 / 16),
    "sierra-lite": (2 / 4, 1 / 4, 1 / 4, 0.0),
}
STRIPE_ROWS = 64
WARMUP_ROWS = 8


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


def ordered_offsets(dither: str, table: LookupTable, strength: float) -> np.ndarray:
    """Per-pixel offsets (in 0-255 levels) for an ordered dither, tiled by the kernel.

    The amplitude follows the palette: ``strength`` times the typical distance
    between neighbouring palette colours, so a sparse palette dithers more.

    Returns
    -------
    (M, M) int16 ndarray
        ``(1, 1)`` zeros for ``"none"``.
    """
    if dither == "bluenoise":
        mask = blue_noise()
    elif dither.startswith("bayer"):
        mask = bayer_matrix(int(dither[5:] or 8))
    else:
        return np.zeros((1, 1), dtype=np.int16)
    return np.rint((mask - 0.5) * table.spread * strength).astype(np.int16)


# Not cached: numba's cache key is this file alone, so a cached copy would keep
# an old inlined `_lookup` after lookup.py changes.
@nb.njit(parallel=True, nogil=True)
def _diffuse(frame, table, fine, colors, weights, strength, out_idx, out_rgb):  # pragma: no cover - compiled
    h, w = frame.shape[0], frame.shape[1]
    right, down_left, down, down_right = weights[0], weights[1], weights[2], weights[3]
    n_stripes = (h + STRIPE_ROWS - 1) // STRIPE_ROWS
    for s in nb.prange(n_stripes):
        y0 = s * STRIPE_ROWS
        y1 = min(y0 + STRIPE_ROWS, h)
        err = np.zeros((2, w + 2, 3), dtype=np.float32)  # this row and the next, 1 px border
        for y in range(max(0, y0 - WARMUP_ROWS), y1):
            cur, nxt = err[y % 2], err[(y + 1) % 2]
            step = 1 if y % 2 == 0 else -1  # serpentine
            x = 0 if step == 1 else w - 1
            # Error carried right, and the next row's three open cells, per channel.
            cr = cg = cb = np.float32(0.0)
            pr0 = pg0 = pb0 = np.float32(0.0)  # next row at x - step: complete after this pixel
            pr1 = pg1 = pb1 = np.float32(0.0)  # next row at x
            for _ in range(w):
                r = min(max(np.int32(frame[y, x, 0] + cur[x + 1, 0] + cr + np.float32(0.5)), 0), 255)
                g = min(max(np.int32(frame[y, x, 1] + cur[x + 1, 1] + cg + np.float32(0.5)), 0), 255)
                b = min(max(np.int32(frame[y, x, 2] + cur[x + 1, 2] + cb + np.float32(0.5)), 0), 255)
                i = _lookup(r, g, b, table, fine)
                if y >= y0:
                    out_idx[y, x] = i
                    out_rgb[y, x, 0], out_rgb[y, x, 1], out_rgb[y, x, 2] = colors[i, 0], colors[i, 1], colors[i, 2]
                er = (r - np.float32(colors[i, 0])) * strength
                eg = (g - np.float32(colors[i, 1])) * strength
                eb = (b - np.float32(colors[i, 2])) * strength
                cr, cg, cb = er * right, eg * right, eb * right
                nxt[x + 1 - step, 0] = pr0 + er * down_left
                nxt[x + 1 - step, 1] = pg0 + eg * down_left
                nxt[x + 1 - step, 2] = pb0 + eb * down_left
                pr0, pg0, pb0 = pr1 + er * down, pg1 + eg * down, pb1 + eb * down
                pr1, pg1, pb1 = er * down_right, eg * down_right, eb * down_right
                x += step
            nxt[x + 1 - step, 0], nxt[x + 1 - step, 1], nxt[x + 1 - step, 2] = pr0, pg0, pb0
            cur[:, :] = 0.0


def diffuse(
    frame: np.ndarray, table: LookupTable, dither: str, strength: float, out_idx: np.ndarray, out_rgb: np.ndarray
) -> None:
    """Error-diffusion dither of ``frame`` into ``out_idx`` and ``out_rgb`` (in place).

    Parameters
    ----------
    frame : (H, W, 3) uint8 ndarray
    table : LookupTable
    dither : {"floyd-steinberg", "sierra-lite"}
    strength : float
        Fraction of the error passed on (1 is the classic kernel).
    out_idx : (H, W) uint8 ndarray
    out_rgb : (H, W, 3) uint8 ndarray
    """
    weights = np.array(_KERNELS[dither], dtype=np.float32)
    _diffuse(frame, table.table, table.fine, table.colors, weights, np.float32(strength), out_idx, out_rgb)
