"""Every compiled (numba) kernel of livequant, in one file.

Numba's on-disk cache is keyed on a kernel's own source file: a cached kernel
does not see a change to a helper it inlines from another file. With every
kernel and helper here, the cache is right by construction.

The pixel kernels read a frame as 32-bit words, four pixels (12 bytes) to
three words, and write indices and colours the same way: a quarter of the
loads and stores of a byte at a time. A pixel is then one ``int``
``r | g << 8 | b << 16`` (little-endian byte order), and the lookup table is
laid out in that order: cell ``(b >> SHIFT, g >> SHIFT, r >> SHIFT)``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = [
    "BITS", "BLOCK", "FINE_FLAG", "LEVELS", "SHIFT", "diffuse_frame", "distinct_colors", "fill_table", "map_frame_held",
    "map_words", "nearest_sorted",
]

BITS = 7  # the table: 2**BITS cells a side ...
LEVELS = 1 << BITS
SHIFT = 8 - BITS  # ... each 2**SHIFT levels wide
FINE_FLAG = 256  # table values >= FINE_FLAG point to a fine block (a cell holding palette colours)
BLOCK = 1 << (3 * SHIFT)  # colours in a cell: the entries of a fine block
CHUNKS = 64  # parallel work units per frame
STRIPE_ROWS = 64  # error diffusion: rows per parallel stripe
WARMUP_ROWS = 8  # error diffusion: rows run above a stripe to warm its error field

_CELL = LEVELS - 1  # one channel's cell bits, in place
_SUB = (1 << SHIFT) - 1  # one channel's bits within a cell


# ---------------------------------------------------------------- one pixel


@nb.njit(inline="always")
def _cell(p):  # pragma: no cover - compiled
    """Table cell of packed pixel ``p``: its channels' top `BITS` bits, red lowest."""
    return (
        ((p >> SHIFT) & _CELL)
        | ((p >> (8 + SHIFT - BITS)) & (_CELL << BITS))
        | ((p >> (16 + SHIFT - 2 * BITS)) & (_CELL << (2 * BITS)))
    )


@nb.njit(inline="always")
def _index(p, table, fine):  # pragma: no cover - compiled
    """Palette index of packed pixel ``p``: one table load, and a rarely taken branch into a fine block."""
    i = np.intp(table[_cell(p)])
    if i >= FINE_FLAG:
        sub = (p & _SUB) | ((p >> (8 - SHIFT)) & (_SUB << SHIFT)) | ((p >> (16 - 2 * SHIFT)) & (_SUB << (2 * SHIFT)))
        i = np.intp(fine[(i - FINE_FLAG) * BLOCK + sub])
    return i


@nb.njit(inline="always")
def _pixels(words, g):  # pragma: no cover - compiled
    """The four packed pixels of group ``g`` of a frame read as words."""
    w0, w1, w2 = np.intp(words[3 * g]), np.intp(words[3 * g + 1]), np.intp(words[3 * g + 2])
    return w0 & 0xFFFFFF, (w0 >> 24) | ((w1 & 0xFFFF) << 8), (w1 >> 16) | ((w2 & 0xFF) << 16), w2 >> 8


@nb.njit(inline="always")
def _store(words, g, p0, p1, p2, p3):  # pragma: no cover - compiled
    """Write four packed pixels as group ``g`` of a frame read as words."""
    words[3 * g] = np.uint32((p0 | (p1 << 24)) & 0xFFFFFFFF)
    words[3 * g + 1] = np.uint32(((p1 >> 8) | (p2 << 16)) & 0xFFFFFFFF)
    words[3 * g + 2] = np.uint32((p2 >> 16) | (p3 << 8))


@nb.njit(inline="always")
def _store_indices(words, g, i0, i1, i2, i3):  # pragma: no cover - compiled
    words[g] = np.uint32(i0 | (i1 << 8) | (i2 << 16) | (i3 << 24))


@nb.njit(inline="always")
def _offset(p, o):  # pragma: no cover - compiled
    """Packed pixel ``p`` with ``o`` added to each channel, clamped to 0..255."""
    r = min(max((p & 0xFF) + o, 0), 255)
    g = min(max(((p >> 8) & 0xFF) + o, 0), 255)
    b = min(max((p >> 16) + o, 0), 255)
    return r | (g << 8) | (b << 16)


@nb.njit(inline="always")
def _offsets4(offsets, wrap, x, y, width):  # pragma: no cover - compiled
    """The ordered-dither offsets of four pixels from ``(x, y)`` on, and the position after them."""
    if x + 4 < width:  # all in this row, and the next group too
        row = offsets[y & wrap]
        return (np.intp(row[x & wrap]), np.intp(row[(x + 1) & wrap]), np.intp(row[(x + 2) & wrap]),
                np.intp(row[(x + 3) & wrap]), x + 4, y)
    o0 = np.intp(offsets[y & wrap, x & wrap])
    x, y = (x + 1, y) if x + 1 < width else (0, y + 1)
    o1 = np.intp(offsets[y & wrap, x & wrap])
    x, y = (x + 1, y) if x + 1 < width else (0, y + 1)
    o2 = np.intp(offsets[y & wrap, x & wrap])
    x, y = (x + 1, y) if x + 1 < width else (0, y + 1)
    o3 = np.intp(offsets[y & wrap, x & wrap])
    x, y = (x + 1, y) if x + 1 < width else (0, y + 1)
    return o0, o1, o2, o3, x, y


@nb.njit(inline="always")
def _chunk(n, c, chunks):  # pragma: no cover - compiled
    return n * c // chunks, n * (c + 1) // chunks


# ---------------------------------------------------------------- frames


@nb.njit(parallel=True, nogil=True, cache=True)
def map_words(pixels, table, fine, packed, offsets, width, start, out_idx, out_rgb):  # pragma: no cover - compiled
    """Map a frame through the table, four pixels at a time, writing indices and colours.

    Parameters
    ----------
    pixels : (3 * G,) uint32
        ``4 * G`` RGB pixels read as words.
    table, fine, packed : arrays of a `livequant.lookup.LookupTable`
    offsets : (M, M) int16, M a power of two
        Ordered-dither offsets added to all three channels, tiled over the
        frame; ``(1, 1)`` for none.
    width : int
        Frame width, for the offsets' tiling.
    start : int
        Flat position in the frame of the first pixel.
    out_idx : (G,) uint32
        Indices, four to a word.
    out_rgb : (3 * G,) uint32
        Colours, as ``pixels``.
    """
    n = out_idx.shape[0]
    wrap = offsets.shape[0] - 1
    chunks = min(CHUNKS, n)
    for c in nb.prange(chunks):
        g0, g1 = _chunk(n, c, chunks)
        if wrap == 0:
            for g in range(g0, g1):
                p0, p1, p2, p3 = _pixels(pixels, g)
                i0, i1, i2, i3 = _index(p0, table, fine), _index(p1, table, fine), _index(p2, table, fine), _index(
                    p3, table, fine)
                _store_indices(out_idx, g, i0, i1, i2, i3)
                _store(out_rgb, g, np.intp(packed[i0]), np.intp(packed[i1]), np.intp(packed[i2]), np.intp(packed[i3]))
        else:
            y, x = divmod(start + 4 * g0, width)
            for g in range(g0, g1):
                p0, p1, p2, p3 = _pixels(pixels, g)
                o0, o1, o2, o3, x, y = _offsets4(offsets, wrap, x, y, width)
                i0, i1 = _index(_offset(p0, o0), table, fine), _index(_offset(p1, o1), table, fine)
                i2, i3 = _index(_offset(p2, o2), table, fine), _index(_offset(p3, o3), table, fine)
                _store_indices(out_idx, g, i0, i1, i2, i3)
                _store(out_rgb, g, np.intp(packed[i0]), np.intp(packed[i1]), np.intp(packed[i2]), np.intp(packed[i3]))


@nb.njit(inline="always")
def _distance2(p, q):  # pragma: no cover - compiled
    """Squared RGB distance between packed colours."""
    d0 = (p & 0xFF) - (q & 0xFF)
    d1 = ((p >> 8) & 0xFF) - ((q >> 8) & 0xFF)
    d2 = (p >> 16) - (q >> 16)
    return d0 * d0 + d1 * d1 + d2 * d2


@nb.njit(parallel=True, nogil=True, cache=True)
def map_frame_held(frame, table, fine, packed, offsets, threshold, weight, reference, previous, out_idx,
                   out_rgb):  # pragma: no cover - compiled
    """Map a frame through the table with temporal hold: still pixels keep their previous index.

    A pixel whose channels all differ from ``reference`` by at most
    ``threshold`` keeps its index from ``previous``; any other pixel is
    mapped afresh and ``reference`` takes its value. With ``weight >= 0``
    (the frame after a palette change) a still pixel moves to the best entry
    when the squared RGB error that saves exceeds ``weight`` times the summed
    channel change it shows. Pixels are read a byte at a time here: the hold
    reads each channel anyway, and a byte load extracts it for free.

    Parameters
    ----------
    frame : (H, W, 3) uint8
    table, fine, packed : arrays of a `livequant.lookup.LookupTable`
    offsets : (M, M) int16, M a power of two
        Ordered-dither offsets, tiled over the frame; ``(1, 1)`` for none.
    threshold : int
        Largest per-channel change, in levels, that counts as still.
    weight : float
        Error saved per level of visible change needed to move, or ``-1``
        for no check.
    reference : (H, W, 3) uint8
        Input values at which each kept index was chosen (updated in place).
    previous : (H, W) uint8
        The previous indices; may be ``out_idx`` itself.
    out_idx : (H, W) uint8
    out_rgb : (H, W, 3) uint8
    """
    h, w = frame.shape[0], frame.shape[1]
    wrap = offsets.shape[0] - 1
    for y in nb.prange(h):
        row = offsets[y & wrap]
        for x in range(w):
            r, g, b = np.intp(frame[y, x, 0]), np.intp(frame[y, x, 1]), np.intp(frame[y, x, 2])
            p = r | (g << 8) | (b << 16)
            still = max(abs(r - reference[y, x, 0]), abs(g - reference[y, x, 1]), abs(b - reference[y, x, 2]))
            if still <= threshold:
                i = np.intp(previous[y, x])
                if weight >= 0:
                    best = _index(_offset(p, np.intp(row[x & wrap])), table, fine)
                    was, now = np.intp(packed[i]), np.intp(packed[best])
                    shown = abs((was & 0xFF) - (now & 0xFF)) + abs(((was >> 8) & 0xFF) - ((now >> 8) & 0xFF)) + abs(
                        (was >> 16) - (now >> 16))
                    if _distance2(p, was) - _distance2(p, now) > weight * shown:
                        i = best
            else:
                reference[y, x, 0], reference[y, x, 1], reference[y, x, 2] = r, g, b
                i = _index(_offset(p, np.intp(row[x & wrap])), table, fine)
            out_idx[y, x] = i
            c = np.intp(packed[i])
            out_rgb[y, x, 0], out_rgb[y, x, 1], out_rgb[y, x, 2] = c & 0xFF, (c >> 8) & 0xFF, c >> 16


@nb.njit(parallel=True, nogil=True, cache=True)
def diffuse_frame(frame, table, fine, colors, weights, strength, out_idx, out_rgb):  # pragma: no cover - compiled
    """Serpentine error diffusion through the table, in parallel stripes (see `livequant.dither`).

    ``frame`` is ``(H, W, 3) uint8``; ``weights`` are the shares of the error
    passed right, down-left, down and down-right; ``strength`` scales the
    error passed on. Each stripe of `STRIPE_ROWS` first runs `WARMUP_ROWS`
    rows above it so its error field starts warm and no seam shows.
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
                r = min(max(np.intp(frame[y, x, 0] + cur[x + 1, 0] + cr + np.float32(0.5)), 0), 255)
                g = min(max(np.intp(frame[y, x, 1] + cur[x + 1, 1] + cg + np.float32(0.5)), 0), 255)
                b = min(max(np.intp(frame[y, x, 2] + cur[x + 1, 2] + cb + np.float32(0.5)), 0), 255)
                i = _index(r | (g << 8) | (b << 16), table, fine)
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


# ---------------------------------------------------------------- nearest search and table fill


@nb.njit(parallel=True, nogil=True, cache=True)
def nearest_sorted(points, centres, axis, out):  # pragma: no cover - compiled
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


@nb.njit(parallel=True, nogil=True, cache=True)
def fill_table(coarse_grid, children, slots, reach, centres, axis, table):  # pragma: no cover - compiled
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


@nb.njit(nogil=True, cache=True)
def distinct_colors(pixels, limit):  # pragma: no cover - compiled
    """The distinct colours of ``(N, 3) uint8`` pixels if there are at most ``limit``, else None.

    An open-addressing hash set of packed colours; stops at the first colour
    past the limit, so a natural image costs a few hundred pixels.
    """
    size = 1024
    slots = np.full(size, -1, np.int64)
    found = np.empty((limit + 1, 3), np.uint8)
    count = 0
    for p in range(pixels.shape[0]):
        key = (np.int64(pixels[p, 0]) << 16) | (np.int64(pixels[p, 1]) << 8) | pixels[p, 2]
        h = (key * 2654435761) & (size - 1)
        while slots[h] != -1 and slots[h] != key:
            h = (h + 1) & (size - 1)
        if slots[h] == -1:
            if count == limit:
                return None
            slots[h] = key
            found[count] = pixels[p]
            count += 1
    return found[:count].copy()
