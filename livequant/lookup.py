"""Nearest-colour lookup: a 3-D table over the RGB cube and the compiled kernels that apply it.

The cube is cut into 128 x 128 x 128 cells (2 levels a side), each holding
the palette entry nearest to its centre in the working colour space. The table
is refined from an exact 64-cell-a-side grid: only cells on a boundary between
entries are evaluated again, among their neighbours' entries. A cell that
contains a palette colour points instead to an exact 2 x 2 x 2 block, so every
palette colour maps to itself. A lookup is one load and a rarely taken branch.
`nearest_reference` is the plain numpy brute force the tests compare against.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numba as nb
import numpy as np

from livequant.colorspace import to_space

__all__ = [
    "LookupTable",
    "build_table",
    "diffuse_frame",
    "lookup_pixels",
    "map_frame",
    "map_frame_held",
    "map_pixels",
    "map_pixels_held",
    "nearest_exact",
    "nearest_reference",
]

BITS = 7  # the table: 128 cells a side, 2 levels wide
LEVELS = 1 << BITS
SHIFT = 8 - BITS
COARSE_BITS = 5  # the grid of exact nearest entries the table is refined from
FINE_FLAG = 256  # table values >= FINE_FLAG point to a fine block
STRIPE_ROWS = 64  # error diffusion: rows per parallel stripe
WARMUP_ROWS = 8  # error diffusion: rows run above a stripe to warm its error field


@dataclass(frozen=True, eq=False)
class LookupTable:
    """A nearest-colour table for one palette in one colour space.

    Attributes
    ----------
    colors : (K, 3) uint8 ndarray
        The palette the table maps into.
    table : (128 ** 3,) uint16 ndarray
        Palette index of each cell, or ``FINE_FLAG + block`` for a cell holding palette colours.
    fine : (8 * n_blocks,) uint8 ndarray
        Exact palette index of each colour of the refined cells.
    spread : float
        Typical per-channel step between neighbouring palette colours (dither amplitude).
    """

    colors: np.ndarray
    table: np.ndarray
    fine: np.ndarray
    spread: float


@functools.cache
def _cell_centres(color_space: str, bits: int) -> np.ndarray:
    """Working-space coordinates of the cell centres of a ``2**bits`` a side grid, ``(n ** 3, 3) float32``.

    Built in slices: the float64 intermediates of the whole 128^3 grid at once
    took 300 MB of peak memory for a 25 MB result.
    """
    width = 1 << (8 - bits)
    n = 1 << bits
    out = np.empty((n**3, 3), dtype=np.float32)
    for start in range(0, n**3, 1 << 16):
        cell = np.arange(start, min(start + (1 << 16), n**3))
        rgb = np.stack([cell >> (2 * bits), (cell >> bits) & (n - 1), cell & (n - 1)], axis=1) * width + (width - 1) / 2
        out[start : start + len(cell)] = to_space(rgb, color_space)
    return out


def _projection_axis(color_space: str) -> np.ndarray:
    """A unit vector along which palette entries are sorted to prune the search."""
    if color_space == "oklab":
        return np.array([1.0, 0.0, 0.0], dtype=np.float32)  # lightness
    return np.full(3, 1 / np.sqrt(3), dtype=np.float32)  # gray axis


@nb.njit(parallel=True, nogil=True, cache=True)
def _nearest_sorted(points, centres, axis, out):  # pragma: no cover - compiled
    """Index of the nearest centre for each point (ties: lowest index).

    Centres are sorted by their projection on ``axis``; the search walks out
    from the point's own projection and stops once the projected gap alone
    exceeds the best distance found, which is exact and prunes most entries.
    """
    k = centres.shape[0]
    proj = centres @ axis
    order = np.argsort(proj, kind="mergesort")
    sorted_proj = proj[order]
    for i in nb.prange(points.shape[0]):
        p0, p1, p2 = points[i, 0], points[i, 1], points[i, 2]
        pp = p0 * axis[0] + p1 * axis[1] + p2 * axis[2]
        start = np.searchsorted(sorted_proj, pp)
        best = np.inf
        best_i = k
        lo, hi = start - 1, start
        while lo >= 0 or hi < k:
            gap_lo = pp - sorted_proj[lo] if lo >= 0 else np.inf
            gap_hi = sorted_proj[hi] - pp if hi < k else np.inf
            if gap_lo <= gap_hi:
                j, gap = order[lo], gap_lo
                lo -= 1
            else:
                j, gap = order[hi], gap_hi
                hi += 1
            if gap * gap > best:
                break
            d0 = p0 - centres[j, 0]
            d1 = p1 - centres[j, 1]
            d2 = p2 - centres[j, 2]
            d = d0 * d0 + d1 * d1 + d2 * d2
            if d < best or (d == best and j < best_i):
                best = d
                best_i = j
        out[i] = best_i


def _nearest(points: np.ndarray, centres: np.ndarray, color_space: str) -> np.ndarray:
    out = np.empty(points.shape[0], dtype=np.uint16)
    _nearest_sorted(points, centres, _projection_axis(color_space), out)
    return out


def _spread(colors: np.ndarray) -> float:
    """Median per-channel (Chebyshev) distance from each palette colour to its nearest neighbour.

    Ordered dither adds one offset to all three channels, so the step it must
    bridge is measured per channel: 255 between black and white.
    """
    if len(colors) < 2:
        return 0.0
    c = colors.astype(np.float32)
    d = np.abs(c[:, None, :] - c[None, :, :]).max(axis=2)
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(axis=1)))


@functools.cache
def _children(color_space: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The table's cell centres grouped by coarse cell.

    Returns
    -------
    coords : (C, 3, R) float32 ndarray
        Working-space coordinates of the ``R = (2 ** (BITS - COARSE_BITS)) ** 3``
        fine centres of each of the ``C = 8 ** COARSE_BITS`` coarse cells, channel-planar.
    slots : (C, R) int64 ndarray
        Their positions in the table.
    reach : (C,) float32 ndarray
        Distance from each coarse cell's centre to its farthest fine centre,
        with 1% to spare for the curvature of OKLab.
    """
    ratio = 1 << (BITS - COARSE_BITS)
    n = 1 << COARSE_BITS
    cell = np.arange(n**3)
    child = np.arange(ratio**3)
    r = (cell // (n * n))[:, None] * ratio + child // (ratio * ratio)
    g = ((cell // n) % n)[:, None] * ratio + (child // ratio) % ratio
    b = (cell % n)[:, None] * ratio + child % ratio
    slots = (r * LEVELS + g) * LEVELS + b
    coords = _cell_centres(color_space, BITS)[slots]  # (C, R, 3)
    reach = np.sqrt(((coords - _cell_centres(color_space, COARSE_BITS)[:, None, :]) ** 2).sum(axis=2)).max(axis=1)
    return np.ascontiguousarray(coords.transpose(0, 2, 1)), slots, (reach * 1.01).astype(np.float32)


@nb.njit(parallel=True, nogil=True, cache=True)
def _fill_table(coarse_grid, children, slots, reach, centres, axis, table):  # pragma: no cover - compiled
    """Exact nearest entry for every table cell centre, coarse cell by coarse cell.

    For a coarse cell with centre ``m`` whose nearest entry lies at distance
    ``d``, and whose fine centres lie within ``h`` of ``m``, any entry nearest
    to one of them lies within ``d + 2h`` of ``m`` (triangle inequality). That
    short candidate list is found by a walk along the sorted projections, and
    each fine centre takes the nearest candidate (ties: the lowest index).
    """
    k = centres.shape[0]
    n_children = children.shape[2]
    proj = centres @ axis
    order = np.argsort(proj, kind="mergesort")
    sorted_proj = proj[order]
    for cell in nb.prange(coarse_grid.shape[0]):
        m0, m1, m2 = coarse_grid[cell, 0], coarse_grid[cell, 1], coarse_grid[cell, 2]
        d = np.inf
        for j in range(k):
            e0, e1, e2 = m0 - centres[j, 0], m1 - centres[j, 1], m2 - centres[j, 2]
            d = min(d, e0 * e0 + e1 * e1 + e2 * e2)
        radius = np.sqrt(d) + 2 * reach[cell]
        pp = m0 * axis[0] + m1 * axis[1] + m2 * axis[2]
        lo = np.searchsorted(sorted_proj, pp - radius)
        hi = np.searchsorted(sorted_proj, pp + radius, side="right")
        candidates = np.sort(order[lo:hi])
        best = np.full(n_children, np.inf, np.float32)
        best_i = np.zeros(n_children, np.uint16)
        x0, x1, x2 = children[cell, 0], children[cell, 1], children[cell, 2]
        for j in candidates:
            e0, e1, e2 = m0 - centres[j, 0], m1 - centres[j, 1], m2 - centres[j, 2]
            if e0 * e0 + e1 * e1 + e2 * e2 > radius * radius:
                continue
            c0, c1, c2 = centres[j, 0], centres[j, 1], centres[j, 2]
            for ch in range(n_children):
                e0, e1, e2 = x0[ch] - c0, x1[ch] - c1, x2[ch] - c2
                dist = e0 * e0 + e1 * e1 + e2 * e2
                if dist < best[ch]:
                    best[ch] = dist
                    best_i[ch] = j
        for ch in range(n_children):
            table[slots[cell, ch]] = best_i[ch]


def build_table(colors: np.ndarray, color_space: str) -> LookupTable:
    """Build the lookup table mapping every RGB cell to its nearest palette entry.

    Parameters
    ----------
    colors : (K, 3) uint8 ndarray
        Palette colours, K in 1..256.
    color_space : {"oklab", "rgb"}
        Space in which "nearest" is measured.

    Returns
    -------
    LookupTable
    """
    colors = np.ascontiguousarray(colors, dtype=np.uint8)
    centres = to_space(colors, color_space)
    table = np.empty(LEVELS**3, dtype=np.uint16)
    children, slots, reach = _children(color_space)
    coarse_grid = _cell_centres(color_space, COARSE_BITS)
    _fill_table(coarse_grid, children, slots, reach, centres, _projection_axis(color_space), table)
    # Cells holding palette colours get an exact block, so each palette colour maps to itself.
    own = np.unique(_cell_index(colors))
    step = 1 << SHIFT
    offsets = np.arange(step**3)
    within = np.stack([offsets >> (2 * SHIFT), (offsets >> SHIFT) % step, offsets % step], axis=1)
    corners = np.stack([own >> (2 * BITS), (own >> BITS) % LEVELS, own % LEVELS], axis=1) << SHIFT
    own_rgb = (corners[:, None, :] + within[None, :, :]).reshape(-1, 3)
    fine = _nearest(to_space(own_rgb, color_space), centres, color_space).astype(np.uint8)
    table[own] = FINE_FLAG + np.arange(len(own), dtype=np.uint16)
    return LookupTable(colors=colors, table=table, fine=fine, spread=_spread(colors))


def _cell_index(rgb: np.ndarray) -> np.ndarray:
    c = rgb.astype(np.int64) >> SHIFT
    return (c[:, 0] << (2 * BITS)) | (c[:, 1] << BITS) | c[:, 2]


@nb.njit(inline="always")
def _lookup(r, g, b, table, fine):  # pragma: no cover - compiled
    r, g, b = np.intp(r), np.intp(g), np.intp(b)
    i = np.intp(table[((r >> 1) << 14) | ((g >> 1) << 7) | (b >> 1)])
    if i >= 256:
        i = np.intp(fine[((i - 256) << 3) | ((r & 1) << 2) | ((g & 1) << 1) | (b & 1)])
    return i


@nb.njit(inline="always")
def _distance2(r, g, b, colors, j):  # pragma: no cover - compiled
    d0 = np.int32(r) - colors[j, 0]
    d1 = np.int32(g) - colors[j, 1]
    d2 = np.int32(b) - colors[j, 2]
    return d0 * d0 + d1 * d1 + d2 * d2


@nb.njit(inline="always")
def _put(i, colors, out_idx, out_rgb, y, x):  # pragma: no cover - compiled
    out_idx[y, x] = i
    out_rgb[y, x, 0] = colors[i, 0]
    out_rgb[y, x, 1] = colors[i, 1]
    out_rgb[y, x, 2] = colors[i, 2]


@nb.njit(inline="always")
def _offset(v, o):  # pragma: no cover - compiled
    return min(max(np.intp(v) + o, 0), 255)


@nb.njit(parallel=True, nogil=True, cache=True)
def map_frame(frame, table, fine, colors, offsets, out_idx, out_rgb):  # pragma: no cover - compiled
    """Map every pixel through the table, writing indices and colours.

    Parameters
    ----------
    frame : (H, W, 3) uint8
    table, fine, colors : arrays of a `LookupTable`
    offsets : (M, M) int16, M a power of two
        Ordered-dither offsets added to all three channels, tiled over the
        frame; ``(1, 1)`` for none.
    out_idx : (H, W) uint8
    out_rgb : (H, W, 3) uint8
    """
    h, w = frame.shape[0], frame.shape[1]
    wrap = offsets.shape[0] - 1
    for y in nb.prange(h):
        if wrap == 0:
            for x in range(w):
                i = _lookup(frame[y, x, 0], frame[y, x, 1], frame[y, x, 2], table, fine)
                _put(i, colors, out_idx, out_rgb, y, x)
        else:
            row = offsets[y & wrap]
            for x in range(w):
                o = row[x & wrap]
                r, g, b = _offset(frame[y, x, 0], o), _offset(frame[y, x, 1], o), _offset(frame[y, x, 2], o)
                _put(_lookup(r, g, b, table, fine), colors, out_idx, out_rgb, y, x)


@nb.njit(parallel=True, nogil=True, cache=True)
def map_frame_held(frame, table, fine, colors, offsets, threshold, weight, ref, out_idx, out_rgb):  # pragma: no cover
    """`map_frame` with temporal hold: still pixels keep their previous index.

    A pixel whose channels all differ from ``ref`` by at most ``threshold``
    keeps its index in ``out_idx``; any other pixel is mapped afresh and
    ``ref`` takes its value. With ``weight >= 0`` (the frame after a palette
    change) a still pixel moves to the best entry when the squared RGB error
    that saves exceeds ``weight`` times the summed channel change it shows.

    Parameters
    ----------
    threshold : int
        Largest per-channel change, in levels, that counts as still.
    weight : float
        Error saved per level of visible change needed to move, or ``-1``
        for no check.
    ref : (H, W, 3) uint8
        Input values at which each kept index was chosen (updated in place).
    """
    h, w = frame.shape[0], frame.shape[1]
    wrap = offsets.shape[0] - 1
    for y in nb.prange(h):
        row = offsets[y & wrap]
        for x in range(w):
            r, g, b = np.intp(frame[y, x, 0]), np.intp(frame[y, x, 1]), np.intp(frame[y, x, 2])
            still = max(abs(r - ref[y, x, 0]), abs(g - ref[y, x, 1]), abs(b - ref[y, x, 2])) <= threshold
            o = row[x & wrap]
            if still:
                i = np.intp(out_idx[y, x])
                if weight >= 0:
                    best = _lookup(_offset(r, o), _offset(g, o), _offset(b, o), table, fine)
                    saved = _distance2(r, g, b, colors, i) - _distance2(r, g, b, colors, best)
                    shown = (
                        abs(np.intp(colors[i, 0]) - colors[best, 0])
                        + abs(np.intp(colors[i, 1]) - colors[best, 1])
                        + abs(np.intp(colors[i, 2]) - colors[best, 2])
                    )
                    if saved > weight * shown:
                        i = best
            else:
                ref[y, x, 0], ref[y, x, 1], ref[y, x, 2] = r, g, b
                i = _lookup(_offset(r, o), _offset(g, o), _offset(b, o), table, fine)
            _put(i, colors, out_idx, out_rgb, y, x)


@nb.njit(parallel=True, nogil=True, cache=True)
def diffuse_frame(frame, table, fine, colors, weights, strength, out_idx, out_rgb):  # pragma: no cover - compiled
    """Serpentine error diffusion through the table, in parallel stripes (see `livequant.dither`).

    ``weights`` are the shares of the error passed right, down-left, down and
    down-right; ``strength`` scales the error passed on. Each stripe of
    `STRIPE_ROWS` first runs `WARMUP_ROWS` rows above it so its error field
    starts warm and no seam shows.
    """
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


def map_pixels(frame: np.ndarray, table: LookupTable, offsets: np.ndarray, out_idx: np.ndarray,
               out_rgb: np.ndarray) -> None:
    """Map every pixel of ``frame`` through ``table``, writing ``out_idx`` and ``out_rgb``.

    Parameters
    ----------
    frame : (H, W, 3) uint8 ndarray
    table : LookupTable
    offsets : (M, M) int16 ndarray
        Ordered-dither offsets (see `livequant.dither.ordered_offsets`); ``(1, 1)`` zeros for none.
    out_idx : (H, W) uint8 ndarray
    out_rgb : (H, W, 3) uint8 ndarray
    """
    map_frame(frame, table.table, table.fine, table.colors, offsets, out_idx, out_rgb)


def map_pixels_held(frame: np.ndarray, table: LookupTable, offsets: np.ndarray, threshold: int, weight: float,
                    reference: np.ndarray, previous: np.ndarray, out_idx: np.ndarray, out_rgb: np.ndarray) -> None:
    """`map_pixels` with temporal hold: a still pixel keeps its index from ``previous``.

    Parameters
    ----------
    threshold : int
        Largest per-channel change from ``reference``, in levels, that counts as still.
    weight : float
        After a palette change, a still pixel moves to its best entry when the squared
        error that saves exceeds ``weight`` times the change it shows; ``-1``: never.
    reference : (H, W, 3) uint8 ndarray
        Input values at which each held index was chosen; updated in place.
    previous : (H, W) uint8 ndarray
        The previous frame's indices (read only).
    out_idx : (H, W) uint8 ndarray
        This frame's indices; may be ``previous`` itself.
    """
    if out_idx is not previous:
        out_idx[...] = previous
    map_frame_held(frame, table.table, table.fine, table.colors, offsets, threshold, weight, reference, out_idx,
                   out_rgb)


def lookup_pixels(pixels: np.ndarray, table: LookupTable) -> np.ndarray:
    """Table index of each of ``(N, 3) uint8`` pixels, ``(N,) uint8``."""
    frame = np.ascontiguousarray(pixels.reshape(1, -1, 3))
    out_idx = np.empty(frame.shape[:2], np.uint8)
    map_pixels(frame, table, np.zeros((1, 1), np.int16), out_idx, np.empty_like(frame))
    return out_idx[0]


def nearest_exact(frame: np.ndarray, colors: np.ndarray, color_space: str) -> np.ndarray:
    """Exact nearest palette index of every pixel (no table), for stills.

    Returns
    -------
    (H, W) uint8 ndarray
    """
    h, w = frame.shape[:2]
    flat = frame.reshape(-1, 3)
    packed = (flat[:, 0].astype(np.uint32) << 16) | (flat[:, 1].astype(np.uint32) << 8) | flat[:, 2]
    unique, inverse = np.unique(packed, return_inverse=True)
    unique_rgb = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255], axis=1).astype(np.uint8)
    nearest = _nearest(to_space(unique_rgb, color_space), to_space(colors, color_space), color_space)
    return nearest[inverse.ravel()].astype(np.uint8).reshape(h, w)


def nearest_reference(pixels: np.ndarray, colors: np.ndarray, color_space: str) -> np.ndarray:
    """Brute-force nearest palette index in plain numpy (the tests' reference).

    Parameters
    ----------
    pixels : (N, 3) uint8 or float ndarray
        sRGB values on the 0-255 scale.
    colors : (K, 3) uint8 ndarray
    color_space : {"oklab", "rgb"}

    Returns
    -------
    (N,) int64 ndarray
    """
    p = to_space(pixels, color_space)
    c = to_space(colors, color_space)
    d = ((p[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
    return d.argmin(axis=1)
