"""Every compiled (numba) kernel of livequant, in one file.

Numba's on-disk cache is keyed on a kernel's own source file: a cached kernel
does not see a change to a helper it inlines from another file. With every
kernel and helper here, the cache is right by construction. The per-pixel
helpers are inlined in numba's IR (``inline="always"``). As plain ``njit``
functions they compiled faster, but LLVM left them as calls: a 720p frame
took 19 ms to map instead of 2.5.

The lookup table holds every colour's nearest palette index and is filled
lazily, a cell of 2 x 2 x 2 colours at a time (`_fill_cell`) when a pixel first
meets one of them. Each entry is one 16-bit word, index and generation
together, written once: threads racing on a cell write the same words, and a
thread that reads a word another wrote reads it whole, whatever order the
memory shows their writes in.

The pixel kernels read a frame as 32-bit words, four pixels (12 bytes) to
three words, and write indices and colours the same way: a quarter of the
loads and stores of a byte at a time. A pixel is then one ``int``
``r | g << 8 | b << 16`` (little-endian byte order).

Their loops run over views that start at 0 (a chunk's or a block's slice), and
an index that cannot be negative but is computed from one that could (a dither
offset plus 255) is made unsigned (``np.uintp``): numba wraps a negative index
around, and only where LLVM can see an index is never negative does it drop
that check, and turn a loop into vector code (the temporal hold's test of every
pixel took 2.2 ns a pixel in a loop from a chunk's start, 0.45 from 0; ordered
dither's offsets unsigned, 6-16% less a pixel).
"""

from __future__ import annotations

import contextlib
import threading

import numba as nb
import numpy as np

__all__ = [
    "BITS", "BLOCK", "EXACT_BUCKETS", "HELD_BLOCK", "LEVELS", "SHIFT", "cell_histogram", "changed_pixels",
    "colours_within", "count_colors", "diffuse_frame", "distinct_colors", "exact_buckets", "index_pixels",
    "kmeans_plusplus", "lloyd_sums", "lzw_encode", "lzw_encode_lossy", "map_words", "map_words_held",
    "map_words_weighed", "nearest_centres", "nearest_centres_serial", "neighbour_gaps", "parallel_launch",
    "transparent_codes", "used_entries",
]

BITS = 7  # the table is filled in cells, 2**BITS a side ...
LEVELS = 1 << BITS
SHIFT = 8 - BITS  # ... each 2**SHIFT levels wide
BLOCK = 1 << (3 * SHIFT)  # colours in a cell
CHUNKS = 64  # parallel work units per frame
HELD_BLOCK = 256  # temporal hold: groups of four pixels tested at a time (`map_words_held`)
STRIPE_ROWS = 64  # error diffusion: rows per parallel stripe
WARMUP_ROWS = 8  # error diffusion: rows run above a stripe to warm its error field
LZW_CODES = 4096  # GIF's LZW dictionary holds at most this many codes
LZW_DIRECT_CODE_SIZE = 6  # LZW: pixels of up to this many bits index the dictionary directly
LZW_HASH_SLOTS = 1 << 13  # LZW: the hash table's entries above that (a power of two, twice LZW_CODES)
EXACT_BUCKETS = 1 << 16  # ordered dither: palette colours are filed under this many hashes (`exact_buckets`)

_CELL = LEVELS - 1  # one channel's cell bits, in place
_SUB = (1 << SHIFT) - 1  # one channel's bits within a cell
# A table's ``cells`` (`livequant.lookup.LookupTable`): each cell centre's value on the coefficients' scale (linear
# light in OKLab), then each 8-bit level's, then the 22 coefficients of `livequant.colorspace.kernel_coefficients`.
_LEVEL_VALUES = LEVELS
_COEFFICIENTS = LEVELS + 256

# Numba's workqueue threading layer, the one it falls back on where neither OpenMP (libgomp) nor TBB loads (a slim
# container image may have no libgomp), aborts the process when two threads launch parallel kernels at once, as the
# planner and the frames' mapping do. Under it, launches take turns.
_LAUNCH_TURNS = threading.Lock()
_launches_threadsafe: bool | None = None  # known once a launch has loaded a layer


@contextlib.contextmanager
def parallel_launch():
    """Wrap a call of a ``parallel=True`` kernel: one thread at a time under numba's workqueue layer (it is
    not thread safe), no waiting under OpenMP or TBB once the first launch has shown which layer loaded."""
    global _launches_threadsafe
    if _launches_threadsafe:
        yield
        return
    with _LAUNCH_TURNS:
        yield
        _launches_threadsafe = nb.threading_layer() != "workqueue"


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
def _point(l0, l1, l2, c):  # pragma: no cover - compiled
    """Working-space coordinates of a colour whose channels are ``l0, l1, l2`` on the coefficients' scale (linear
    light in OKLab), as `livequant.colorspace.to_space` computes them (``c``: a table's ``cells``)."""
    m = _COEFFICIENTS
    y0 = c[m] * l0 + c[m + 1] * l1 + c[m + 2] * l2
    y1 = c[m + 3] * l0 + c[m + 4] * l1 + c[m + 5] * l2
    y2 = c[m + 6] * l0 + c[m + 7] * l1 + c[m + 8] * l2
    if c[m + 21] > 0:
        y0, y1, y2 = np.cbrt(y0), np.cbrt(y1), np.cbrt(y2)
    return _second_matrix(y0, y1, y2, c)


@nb.njit(inline="always")
def _second_matrix(y0, y1, y2, c):  # pragma: no cover - compiled
    """The second matrix and the weights applied to ``y`` (float64), as float32 coordinates."""
    m = _COEFFICIENTS
    x0 = c[m + 9] * y0 + c[m + 10] * y1 + c[m + 11] * y2
    x1 = c[m + 12] * y0 + c[m + 13] * y1 + c[m + 14] * y2
    x2 = c[m + 15] * y0 + c[m + 16] * y1 + c[m + 17] * y2
    return (np.float32(x0) * np.float32(c[m + 18]), np.float32(x1) * np.float32(c[m + 19]),
            np.float32(x2) * np.float32(c[m + 20]))


@nb.njit(inline="always")
def _colour_point(p, c):  # pragma: no cover - compiled
    """Working-space coordinates of packed colour ``p``."""
    return _point(c[_LEVEL_VALUES + (p & 0xFF)], c[_LEVEL_VALUES + ((p >> 8) & 0xFF)], c[_LEVEL_VALUES + (p >> 16)], c)


@nb.njit(inline="always")
def _slope(y, dy, cube):  # pragma: no cover - compiled
    """For a cube root (``cube``) of ``y`` moved by at most ``dy``: its value, its slope there, and a bound on how
    far it departs from that slope's line (``(1 - t) ** (-2/3) - 1 <= 2.12 t`` for ``t = dy / y <= 1/2``); the
    slope is nan where ``y`` is too near 0 for that bound. Without the root: ``y``, 1 and 0."""
    if not cube:
        return y, 1.0, 0.0
    root = np.cbrt(y)
    if y <= 0.0 or 2.0 * dy > y:
        return root, np.nan, 0.0
    slope = root / (3.0 * y)
    return root, slope, 2.12 * slope * dy * dy / y


@nb.njit(inline="always")
def _cell_geometry(cell, c):  # pragma: no cover - compiled
    """The centre of ``cell`` in the working space; the linear map from a colour's change on the coefficients'
    scale to its change there, with the cube roots' slopes at the centre (rows of a 3 x 3 matrix, row-major); how
    far each channel's levels reach from the centre's, and its lowest and highest level less the centre's, on
    that scale; a bound on how far any colour of the
    cell lies from where the map puts it; and whether the cell is too near black for that bound
    (`_black_radius`).

    A colour differs from the centre by one of two values a channel, and the first matrix is linear; the second
    stretches the roots' departures from their slopes' lines by at most its Frobenius norm.
    """
    m = _COEFFICIENTS
    a0, a1, a2 = cell & _CELL, (cell >> BITS) & _CELL, cell >> (2 * BITS)
    l0, l1, l2 = c[a0], c[a1], c[a2]
    low = (c[_LEVEL_VALUES + (a0 << SHIFT)] - l0, c[_LEVEL_VALUES + (a1 << SHIFT)] - l1,
           c[_LEVEL_VALUES + (a2 << SHIFT)] - l2)
    high = (c[_LEVEL_VALUES + (a0 << SHIFT) + _SUB] - l0, c[_LEVEL_VALUES + (a1 << SHIFT) + _SUB] - l1,
            c[_LEVEL_VALUES + (a2 << SHIFT) + _SUB] - l2)
    w0, w1, w2 = max(-low[0], high[0]), max(-low[1], high[1]), max(-low[2], high[2])
    cube = c[m + 21] > 0
    r0, slope0, off0 = _slope(c[m] * l0 + c[m + 1] * l1 + c[m + 2] * l2,
                              abs(c[m]) * w0 + abs(c[m + 1]) * w1 + abs(c[m + 2]) * w2, cube)
    r1, slope1, off1 = _slope(c[m + 3] * l0 + c[m + 4] * l1 + c[m + 5] * l2,
                              abs(c[m + 3]) * w0 + abs(c[m + 4]) * w1 + abs(c[m + 5]) * w2, cube)
    r2, slope2, off2 = _slope(c[m + 6] * l0 + c[m + 7] * l1 + c[m + 8] * l2,
                              abs(c[m + 6]) * w0 + abs(c[m + 7]) * w1 + abs(c[m + 8]) * w2, cube)
    x0, x1, x2 = _second_matrix(r0, r1, r2, c)
    norm = 0.0
    for k in range(3):
        row = m + 9 + 3 * k
        norm += (c[row] ** 2 + c[row + 1] ** 2 + c[row + 2] ** 2) * c[m + 18 + k] ** 2
    error = np.sqrt(norm * (off0 * off0 + off1 * off1 + off2 * off2))
    black = np.isnan(slope0) or np.isnan(slope1) or np.isnan(slope2)
    jacobian = (_jacobian_entry(c, 0, 0, slope0, slope1, slope2), _jacobian_entry(c, 0, 1, slope0, slope1, slope2),
                _jacobian_entry(c, 0, 2, slope0, slope1, slope2), _jacobian_entry(c, 1, 0, slope0, slope1, slope2),
                _jacobian_entry(c, 1, 1, slope0, slope1, slope2), _jacobian_entry(c, 1, 2, slope0, slope1, slope2),
                _jacobian_entry(c, 2, 0, slope0, slope1, slope2), _jacobian_entry(c, 2, 1, slope0, slope1, slope2),
                _jacobian_entry(c, 2, 2, slope0, slope1, slope2))
    return x0, x1, x2, jacobian, (w0, w1, w2), low, high, error, black


@nb.njit(inline="always")
def _jacobian_entry(c, k, channel, slope0, slope1, slope2):  # pragma: no cover - compiled
    """How coordinate ``k`` changes with ``channel`` on the coefficients' scale, at the cube roots' slopes."""
    m = _COEFFICIENTS
    row = m + 9 + 3 * k
    return (c[row] * slope0 * c[m + channel] + c[row + 1] * slope1 * c[m + 3 + channel]
            + c[row + 2] * slope2 * c[m + 6 + channel]) * c[m + 18 + k]


@nb.njit(inline="always")
def _corner(jacobian, low, high, sub):  # pragma: no cover - compiled
    """Where `_cell_geometry`'s map puts the cell's colour ``sub``, less the centre."""
    j = jacobian
    d0 = high[0] if sub & _SUB else low[0]
    d1 = high[1] if (sub >> SHIFT) & _SUB else low[1]
    d2 = high[2] if sub >> (2 * SHIFT) else low[2]
    return (j[0] * d0 + j[1] * d1 + j[2] * d2, j[3] * d0 + j[4] * d1 + j[5] * d2, j[6] * d0 + j[7] * d1 + j[8] * d2)


@nb.njit(inline="always")
def _black_radius(widths, c):  # pragma: no cover - compiled
    """A bound on the distance from a cell's centre to its colours near black, its channels reaching ``widths``
    from the centre's on the coefficients' scale: each cube root moves by at most the cube root of its value's
    move, which the second matrix and the weights stretch row by row."""
    m = _COEFFICIENTS
    w0, w1, w2 = widths
    f0 = np.cbrt(abs(c[m]) * w0 + abs(c[m + 1]) * w1 + abs(c[m + 2]) * w2)
    f1 = np.cbrt(abs(c[m + 3]) * w0 + abs(c[m + 4]) * w1 + abs(c[m + 5]) * w2)
    f2 = np.cbrt(abs(c[m + 6]) * w0 + abs(c[m + 7]) * w1 + abs(c[m + 8]) * w2)
    total = 0.0
    for k in range(3):
        row = m + 9 + 3 * k
        spread = (abs(c[row]) * f0 + abs(c[row + 1]) * f1 + abs(c[row + 2]) * f2) * abs(c[m + 18 + k])
        total += spread * spread
    return np.sqrt(total)


@nb.njit(inline="always")
def _distance_to_row(x0, x1, x2, columns, row):  # pragma: no cover - compiled
    e0, e1, e2 = x0 - columns[0, row], x1 - columns[1, row], x2 - columns[2, row]
    return e0 * e0 + e1 * e1 + e2 * e2


@nb.njit(inline="always")
def _nearest_of(x0, x1, x2, columns, candidates, n):  # pragma: no cover - compiled
    """The palette index nearest to ``(x0, x1, x2)`` among ``candidates[:n]`` (ties: the lowest), its squared
    distance, and the second smallest."""
    best = second = np.float32(np.inf)
    best_i = columns.shape[1]
    for m in range(n):
        j = candidates[m]
        dist = _distance_to_row(x0, x1, x2, columns, j)
        if dist < best or (dist == best and j < best_i):
            second = best
            best, best_i = dist, j
        elif dist < second:
            second = dist
    return best_i, best, second


@nb.njit(nogil=True, cache=True)
def _fill_cell(cells, cell, columns, table, generation):  # pragma: no cover - compiled
    """Write each colour of ``cell`` its nearest palette index (ties: the lowest), with ``generation`` in the
    high byte, at its own place in ``table`` (its packed value).

    The entry nearest to the cell centre (squared distance ``d``) is nearest to every colour of the cell (all
    within ``r`` of the centre) unless another entry lies within ``sqrt(d) + 2 r`` of the centre and its
    bisector with the nearest passes within ``r`` of the centre; the colours' own nearest entries are among
    those candidates. A colour's nearest is first sought from where the cube roots' slopes put it
    (`_cell_geometry`), and from its exact coordinates only where the runner-up is within the error of that.
    The nearest and the runner-up are found by `_nearest_to_centre`.
    """
    c = cells
    x0, x1, x2, jacobian, widths, low, high, error, black = _cell_geometry(cell, c)
    if black:
        radius = _black_radius(widths, c)
    else:
        radius = 0.0
        for sub in range(BLOCK):
            e0, e1, e2 = _corner(jacobian, low, high, sub)
            radius = max(radius, e0 * e0 + e1 * e1 + e2 * e2)
        radius = np.sqrt(radius) + error
    margin = np.float32(2.0 * radius * 1.001 + 2e-6)
    gaps = np.empty(columns.shape[1] + 1, np.float32)
    nearest_i, best, second = _nearest_to_centre(x0, x1, x2, columns, gaps)
    corner = ((cell & _CELL) << SHIFT) | (((cell >> BITS) & _CELL) << (8 + SHIFT)) | (
        (cell >> (2 * BITS)) << (16 + SHIFT))
    reach = np.sqrt(best) + margin
    within = reach * reach * np.float32(1.00001) + np.float32(1e-9)
    if second > within:  # no other entry within reach
        _fill_block(table, corner, (generation << 8) | nearest_i)
        return
    candidates = np.empty(columns.shape[1], np.intp)
    candidates[0] = nearest_i
    n = 1
    n0, n1, n2 = columns[0, nearest_i], columns[1, nearest_i], columns[2, nearest_i]
    for j in range(columns.shape[1]):
        if j != nearest_i and gaps[j] <= within:
            gap = np.sqrt(_distance_to_row(n0, n1, n2, columns, j))
            if gaps[j] - best <= margin * gap * np.float32(1.00001) + np.float32(1e-9):  # the bisector passes near
                candidates[n] = j
                n += 1
    if n == 1:
        _fill_block(table, corner, (generation << 8) | nearest_i)
        return
    for sub in range(BLOCK):
        p = corner | (sub & _SUB) | (((sub >> SHIFT) & _SUB) << 8) | ((sub >> (2 * SHIFT)) << 16)
        found = False
        if not black:
            e0, e1, e2 = _corner(jacobian, low, high, sub)
            j, closest, runner_up = _nearest_of(x0 + np.float32(e0), x1 + np.float32(e1), x2 + np.float32(e2), columns,
                                                candidates, n)
            found = np.sqrt(runner_up) - np.sqrt(closest) > 2.0 * error * 1.001 + 2e-6
        if not found:
            p0, p1, p2 = _colour_point(p, c)
            j = _nearest_of(p0, p1, p2, columns, candidates, n)[0]
        table[p] = (generation << 8) | j


@nb.njit(inline="always")
def _fill_block(table, corner, entry):  # pragma: no cover - compiled
    """Write ``entry`` for every colour of the cell whose lowest colour is packed ``corner``."""
    for sub in range(BLOCK):
        table[corner | (sub & _SUB) | (((sub >> SHIFT) & _SUB) << 8) | ((sub >> (2 * SHIFT)) << 16)] = entry


@nb.njit(inline="always")
def _index(p, table, generation, cells, columns):  # pragma: no cover - compiled
    """Palette index of packed pixel ``p``: one table load and, for a colour not known yet (its entry's high byte
    is not ``generation``), a rarely taken branch that fills in its cell (`_fill_cell`)."""
    entry = np.intp(table[p])
    if entry >> 8 != generation:
        _fill_cell(cells, _cell(p), columns, table, generation)
        entry = np.intp(table[p])
    return entry & 0xFF


@nb.njit(inline="always")
def _coarse_index(p, coarse, generation, cells, columns):  # pragma: no cover - compiled
    """Palette index nearest to the centre of packed pixel ``p``'s cell: ``coarse``'s entry for the cell, the
    index in the low byte and ``generation`` in the high byte once known (`_nearest_centre`, written back)."""
    cell = _cell(p)
    entry = np.intp(coarse[cell])
    if entry >> 8 == generation:
        return entry & 0xFF
    i = _nearest_centre(cells, cell, columns)
    coarse[cell] = (generation << 8) | i
    return i


@nb.njit(nogil=True, cache=True)
def _nearest_centre(cells, cell, columns):  # pragma: no cover - compiled
    """Index of the palette entry nearest to the centre of ``cell`` (ties: the lowest index)."""
    c = cells
    x0, x1, x2 = _point(c[cell & _CELL], c[(cell >> BITS) & _CELL], c[cell >> (2 * BITS)], c)
    return _nearest_to_centre(x0, x1, x2, columns, np.empty(columns.shape[1] + 1, np.float32))[0]


@nb.njit(inline="always")
def _nearest_to_centre(x0, x1, x2, columns, gaps):  # pragma: no cover - compiled
    """The palette index nearest to ``(x0, x1, x2)`` (ties: the lowest), its squared distance and the second
    smallest (inf for a palette of one); ``gaps`` (``(K + 1,) float32`` scratch) is left holding every entry's
    squared distance. Every entry is measured, in loops LLVM turns into vector code, as in `_scan_nearest`."""
    k = columns.shape[1]
    nearest = _scan_nearest(x0, x1, x2, columns, gaps)
    bits = gaps.view(np.int32)
    runner_up = np.int32(0x7F800000)  # inf
    for j in range(k):
        runner_up = min(runner_up, bits[j] if j != nearest else np.int32(0x7F800000))
    bits[k] = runner_up
    return nearest, gaps[nearest], gaps[k]


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
def _bucket(p):  # pragma: no cover - compiled
    """Which of `EXACT_BUCKETS` packed colour ``p`` is filed under (Knuth's multiplicative hash)."""
    return ((p * 2654435761) & 0xFFFFFFFF) >> 16


@nb.njit(cache=True)
def exact_buckets(packed, out):  # pragma: no cover - compiled
    """Mark in ``out`` (``(EXACT_BUCKETS,) uint8``, zeros) the bucket of each palette colour in ``packed``."""
    for k in range(packed.shape[0]):
        out[_bucket(np.intp(packed[k]))] = 1


@nb.njit(inline="always")
def _dithered_index(p, o, shifted, exact, table, generation, cells, columns, packed):  # pragma: no cover - compiled
    """Palette index of packed pixel ``p`` with ordered-dither offset ``o``; a pixel that is exactly a palette
    colour (its bucket in ``exact`` marked, and the table's entry for it that colour) keeps it: flat areas of
    the palette's own colours (a black bar, graphics) stay flat."""
    if o and exact[_bucket(p)]:
        i = _index(p, table, generation, cells, columns)
        if packed[i] == p:
            return i
    return _index(_offset(p, o, shifted) if o else p, table, generation, cells, columns)


@nb.njit(inline="always")
def _offset(p, o, shifted):  # pragma: no cover - compiled
    """Packed pixel ``p`` with ordered-dither offset ``o`` on each channel: ``shifted[o + 255, value]``."""
    row = np.uintp(o + 255)
    return np.intp(shifted[row, p & 0xFF]) | (np.intp(shifted[row, (p >> 8) & 0xFF]) << 8) | (
        np.intp(shifted[row, p >> 16]) << 16)


@nb.njit(inline="always")
def _tile(offsets, wrap, x, y):  # pragma: no cover - compiled
    """The ordered-dither offset at ``(x, y)``: the tile ``offsets`` repeated over the frame."""
    return np.intp(offsets[np.uintp(y & wrap), np.uintp(x & wrap)])


@nb.njit(inline="always")
def _offsets4(offsets, wrap, x, y, width):  # pragma: no cover - compiled
    """The ordered-dither offsets of four pixels from ``(x, y)`` on, and the position after them."""
    if x + 4 < width:  # all in this row, and the next group too
        return (_tile(offsets, wrap, x, y), _tile(offsets, wrap, x + 1, y), _tile(offsets, wrap, x + 2, y),
                _tile(offsets, wrap, x + 3, y), x + 4, y)
    o0 = _tile(offsets, wrap, x, y)
    x, y = (x + 1, y) if x + 1 < width else (0, y + 1)
    o1 = _tile(offsets, wrap, x, y)
    x, y = (x + 1, y) if x + 1 < width else (0, y + 1)
    o2 = _tile(offsets, wrap, x, y)
    x, y = (x + 1, y) if x + 1 < width else (0, y + 1)
    o3 = _tile(offsets, wrap, x, y)
    x, y = (x + 1, y) if x + 1 < width else (0, y + 1)
    return o0, o1, o2, o3, x, y


@nb.njit(inline="always")
def _chunk(n, c, chunks):  # pragma: no cover - compiled
    return n * c // chunks, n * (c + 1) // chunks


# ---------------------------------------------------------------- frames


@nb.njit(parallel=True, nogil=True, cache=True)
def map_words(pixels, table, generation, cells, columns, packed, offsets, shifted, exact, width, start, out_idx,
              out_rgb):  # pragma: no cover - compiled
    """Map a frame through the table, four pixels at a time, writing indices and colours.

    Parameters
    ----------
    pixels : (3 * G,) uint32
        ``4 * G`` RGB pixels read as words.
    table, generation, cells, columns, packed : arrays of a `livequant.lookup.LookupTable`
    offsets : (M, M) int16, M a power of two
        Ordered-dither offsets, -255..255, for all three channels, tiled over
        the frame; ``(1, 1)`` for none.
    shifted : (511, 256) uint8
        A channel value with each offset added, on the table's dither scale
        (`livequant.lookup.LookupTable.shifted`).
    exact : (EXACT_BUCKETS,) uint8
        The palette colours' buckets (`exact_buckets`): a pixel that is a
        palette colour takes it, whatever its offset.
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
        words, indices, colours = pixels[3 * g0:3 * g1], out_idx[g0:g1], out_rgb[3 * g0:3 * g1]
        if wrap == 0:
            for g in range(g1 - g0):
                p0, p1, p2, p3 = _pixels(words, g)
                i0, i1 = _index(p0, table, generation, cells, columns), _index(p1, table, generation, cells, columns)
                i2, i3 = _index(p2, table, generation, cells, columns), _index(p3, table, generation, cells, columns)
                _store_indices(indices, g, i0, i1, i2, i3)
                _store(colours, g, np.intp(packed[i0]), np.intp(packed[i1]), np.intp(packed[i2]), np.intp(packed[i3]))
        else:
            y, x = divmod(start + 4 * g0, width)
            for g in range(g1 - g0):
                p0, p1, p2, p3 = _pixels(words, g)
                o0, o1, o2, o3, x, y = _offsets4(offsets, wrap, x, y, width)
                i0 = _dithered_index(p0, o0, shifted, exact, table, generation, cells, columns, packed)
                i1 = _dithered_index(p1, o1, shifted, exact, table, generation, cells, columns, packed)
                i2 = _dithered_index(p2, o2, shifted, exact, table, generation, cells, columns, packed)
                i3 = _dithered_index(p3, o3, shifted, exact, table, generation, cells, columns, packed)
                _store_indices(indices, g, i0, i1, i2, i3)
                _store(colours, g, np.intp(packed[i0]), np.intp(packed[i1]), np.intp(packed[i2]), np.intp(packed[i3]))


@nb.njit(inline="always")
def _distance2(p, q):  # pragma: no cover - compiled
    """Squared RGB distance between packed colours."""
    d0 = (p & 0xFF) - (q & 0xFF)
    d1 = ((p >> 8) & 0xFF) - ((q >> 8) & 0xFF)
    d2 = (p >> 16) - (q >> 16)
    return d0 * d0 + d1 * d1 + d2 * d2


@nb.njit(inline="always")
def _moved(p, q, threshold):  # pragma: no cover - compiled
    """1 where a channel of packed pixel ``p`` differs from the reference ``q`` by more than ``threshold``, else 0."""
    d = max(abs((p & 0xFF) - (q & 0xFF)), abs(((p >> 8) & 0xFF) - ((q >> 8) & 0xFF)), abs((p >> 16) - (q >> 16)))
    return np.intp(d > threshold)


@nb.njit(inline="always")
def _moved_pixels(words, reference, threshold, out):  # pragma: no cover - compiled
    """For each group of four pixels of ``words``, bit ``j`` of ``out``'s byte set where pixel ``j`` moved from
    ``reference`` (`_moved`): a loop with no branch, which LLVM turns into vector code."""
    for g in range(words.shape[0] // 3):
        p0, p1, p2, p3 = _pixels(words, g)
        q0, q1, q2, q3 = _pixels(reference, g)
        out[g] = (_moved(p0, q0, threshold) | (_moved(p1, q1, threshold) << 1) | (_moved(p2, q2, threshold) << 2)
                  | (_moved(p3, q3, threshold) << 3))


@nb.njit(inline="always")
def _held_index(moved, p, q, i, o, shifted, exact, table, generation, cells, columns,
                packed):  # pragma: no cover - compiled
    """Pixel ``p``'s index under the temporal hold, and the reference value it was chosen at: the previous index
    ``i`` and reference ``q`` unless it ``moved``, else the table's entry for ``p`` with dither offset ``o``,
    and ``p``."""
    if moved:
        return _dithered_index(p, o, shifted, exact, table, generation, cells, columns, packed), p
    return i, q


@nb.njit(inline="always")
def _weighed_index(p, q, i, o, shifted, exact, threshold, weight, table, generation, cells, columns, packed,
                   shown):  # pragma: no cover - compiled
    """Pixel ``p``'s index on a new palette's first frame, and the reference value it was chosen at (``p``).

    The table's entry for ``p`` with dither offset ``o``, unless a channel is
    within ``threshold`` of the reference ``q`` and moving from the previous
    index ``i`` to that entry does not save ``weight`` times the change it
    shows more than keeping ``i`` does, from ``shown[i]``, the colour it
    showed before: then ``i``.
    """
    best = _dithered_index(p, o, shifted, exact, table, generation, cells, columns, packed)
    if best == i or _moved(p, q, threshold):
        return best, p
    was, kept, now = np.intp(shown[i]), np.intp(packed[i]), np.intp(packed[best])
    if _distance2(p, kept) - _distance2(p, now) > weight * (_change(was, now) - _change(was, kept)):
        return best, p
    return i, p


@nb.njit(inline="always")
def _change(a, b):  # pragma: no cover - compiled
    """Summed channel difference of packed colours ``a`` and ``b``."""
    return abs((a & 0xFF) - (b & 0xFF)) + abs(((a >> 8) & 0xFF) - ((b >> 8) & 0xFF)) + abs((a >> 16) - (b >> 16))


@nb.njit(parallel=True, nogil=True, cache=True)
def map_words_held(pixels, table, generation, cells, columns, packed, offsets, shifted, exact, width, start, threshold,
                   reference, previous, out_idx, out_rgb):  # pragma: no cover - compiled
    """`map_words` with temporal hold: still pixels keep their previous index.

    A pixel whose channels all differ from ``reference`` by at most
    ``threshold`` keeps its index from ``previous``; any other pixel is
    mapped afresh and ``reference`` takes its value. Which pixels moved is
    found first for `HELD_BLOCK` groups at a time (`_moved_pixels`), and
    four that all stayed take their four indices in one word.

    Parameters
    ----------
    pixels, table, generation, cells, columns, packed, offsets, shifted, exact, width, start, out_idx, out_rgb
        As for `map_words`.
    threshold : int
        Largest per-channel change, in levels, that counts as still.
    reference : (3 * G,) uint32
        Input values at which each kept index was chosen, as ``pixels`` (updated in place).
    previous : (G,) uint32
        The previous indices, as ``out_idx``; may be ``out_idx`` itself.
    """
    n = out_idx.shape[0]
    wrap = offsets.shape[0] - 1
    chunks = min(CHUNKS, n)
    for c in nb.prange(chunks):
        g0, g1 = _chunk(n, c, chunks)
        y, x = divmod(start + 4 * g0, width)
        o0 = o1 = o2 = o3 = 0
        moved = np.empty(HELD_BLOCK, np.uint8)
        for b0 in range(g0, g1, HELD_BLOCK):
            b1 = min(b0 + HELD_BLOCK, g1)
            words, references, held = pixels[3 * b0:3 * b1], reference[3 * b0:3 * b1], previous[b0:b1]
            indices, colours = out_idx[b0:b1], out_rgb[3 * b0:3 * b1]
            _moved_pixels(words, references, threshold, moved)
            for g in range(b1 - b0):
                if wrap:
                    o0, o1, o2, o3, x, y = _offsets4(offsets, wrap, x, y, width)
                word, m = np.intp(held[g]), moved[g]
                i0, i1, i2, i3 = word & 0xFF, (word >> 8) & 0xFF, (word >> 16) & 0xFF, word >> 24
                if m:
                    p0, p1, p2, p3 = _pixels(words, g)
                    q0, q1, q2, q3 = _pixels(references, g)
                    i0, q0 = _held_index(m & 1, p0, q0, i0, o0, shifted, exact, table, generation, cells, columns,
                                         packed)
                    i1, q1 = _held_index(m & 2, p1, q1, i1, o1, shifted, exact, table, generation, cells, columns,
                                         packed)
                    i2, q2 = _held_index(m & 4, p2, q2, i2, o2, shifted, exact, table, generation, cells, columns,
                                         packed)
                    i3, q3 = _held_index(m & 8, p3, q3, i3, o3, shifted, exact, table, generation, cells, columns,
                                         packed)
                    _store(references, g, q0, q1, q2, q3)
                    _store_indices(indices, g, i0, i1, i2, i3)
                else:
                    indices[g] = word
                _store(colours, g, np.intp(packed[i0]), np.intp(packed[i1]), np.intp(packed[i2]), np.intp(packed[i3]))


@nb.njit(parallel=True, nogil=True, cache=True)
def map_words_weighed(pixels, table, generation, cells, columns, packed, offsets, shifted, exact, width, start,
                      threshold, weight, reference, previous, shown, out_idx, out_rgb):  # pragma: no cover - compiled
    """`map_words_held` for a new palette's first frame: a still pixel moves to the best entry when the squared
    RGB error that saves exceeds ``weight`` times the summed channel change that shows beyond keeping its index,
    both from the colour it showed (``shown``: the packed colours of the palette ``previous`` indexes), and
    ``reference`` takes every pixel's value (its index was chosen again there) (`_weighed_index`)."""
    n = out_idx.shape[0]
    wrap = offsets.shape[0] - 1
    chunks = min(CHUNKS, n)
    for c in nb.prange(chunks):
        g0, g1 = _chunk(n, c, chunks)
        y, x = divmod(start + 4 * g0, width)
        o0 = o1 = o2 = o3 = 0
        words, references, held = pixels[3 * g0:3 * g1], reference[3 * g0:3 * g1], previous[g0:g1]
        indices, colours = out_idx[g0:g1], out_rgb[3 * g0:3 * g1]
        for g in range(g1 - g0):
            if wrap:
                o0, o1, o2, o3, x, y = _offsets4(offsets, wrap, x, y, width)
            word = np.intp(held[g])
            p0, p1, p2, p3 = _pixels(words, g)
            q0, q1, q2, q3 = _pixels(references, g)
            i0, q0 = _weighed_index(p0, q0, word & 0xFF, o0, shifted, exact, threshold, weight, table, generation,
                                    cells, columns, packed, shown)
            i1, q1 = _weighed_index(p1, q1, (word >> 8) & 0xFF, o1, shifted, exact, threshold, weight, table,
                                    generation, cells, columns, packed, shown)
            i2, q2 = _weighed_index(p2, q2, (word >> 16) & 0xFF, o2, shifted, exact, threshold, weight, table,
                                    generation, cells, columns, packed, shown)
            i3, q3 = _weighed_index(p3, q3, word >> 24, o3, shifted, exact, threshold, weight, table, generation,
                                    cells, columns, packed, shown)
            _store(references, g, q0, q1, q2, q3)
            _store_indices(indices, g, i0, i1, i2, i3)
            _store(colours, g, np.intp(packed[i0]), np.intp(packed[i1]), np.intp(packed[i2]), np.intp(packed[i3]))


@nb.njit(parallel=True, nogil=True, cache=True)
def diffuse_frame(frame, coarse, generation, cells, columns, colors, weights, passed, threshold, weight, reference,
                  previous, shown, errors, drift, opaque, out_idx, out_rgb,
                  out_reference):  # pragma: no cover - compiled
    """Serpentine error diffusion through the coarse table, in parallel stripes (see `livequant.dither`).

    ``frame`` is ``(H, W, 3) uint8``; ``coarse, generation, cells, columns`` and
    ``colors`` are arrays of a `livequant.lookup.LookupTable`; ``weights`` are the shares of the error
    passed right, down-left, down and down-right; ``passed`` (``(511,) float32``)
    is the error passed on for each channel's error -255..255, at ``error + 255``
    (a table: a load is the shortest step on the path from one pixel to the next,
    which each pixel waits on). Each stripe of `STRIPE_ROWS` first runs `WARMUP_ROWS`
    rows above it so its error field starts warm and no seam shows.

    With ``threshold >= 0``, a pixel whose channels all differ from
    ``reference`` (``(H, W, 3) uint8``, the input values its index was
    chosen at) by at most ``threshold`` keeps its index from ``previous``
    (``(H, W) uint8``) and passes on its error with what reaches it, while
    that stays within ``drift`` levels (a channel) of the error it passed
    when its index was chosen (``errors``, ``(H, W, 3) int16``, before the
    kernel's shares) plus its own change since; beyond, that error: what
    pixels chosen again pass on does not drift on through the still part
    (it did, with nothing to absorb it, into streaks of far colours). Every
    other pixel writes its error there, for the frame after (a held pixel's
    stays; with ``errors`` of shape ``(0, 0, 3)`` none is kept, and a held
    pixel passes on what reaches it);
    with ``weight >= 0`` (the frame after a palette change) it moves to the
    best entry for its value with the error carried to it, when the squared
    RGB error that saves exceeds ``weight`` times the summed channel change
    that shows beyond keeping its index, both from the colour it showed
    (``shown``, ``(K', 3) uint8``: the palette ``previous`` indexes), and its
    index counts as chosen again at its value.
    ``out_reference`` gets the reference of every pixel (its value where it
    was chosen). The inputs are only read, so stripes running over
    another's rows agree (``errors`` is read only where held, and written only
    where not, which every stripe decides alike). With ``threshold < 0`` no
    pixel is held.

    Where ``opaque`` (``(H, W) bool``, or ``(0, 0)`` when every pixel shows) is
    False the pixel is transparent: it is mapped at its own value and neither
    takes nor passes on error, so what it was filled with does not reach the
    pixels that show.
    """
    h, w = frame.shape[0], frame.shape[1]
    every_pixel_shows = opaque.shape[0] == 0
    keeps_errors = errors.shape[0] > 0
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
                shows = every_pixel_shows or opaque[y, x]
                if shows:
                    r = min(max(np.intp(frame[y, x, 0] + cur[x + 1, 0] + cr + np.float32(0.5)), 0), 255)
                    g = min(max(np.intp(frame[y, x, 1] + cur[x + 1, 1] + cg + np.float32(0.5)), 0), 255)
                    b = min(max(np.intp(frame[y, x, 2] + cur[x + 1, 2] + cb + np.float32(0.5)), 0), 255)
                else:
                    r, g, b = np.intp(frame[y, x, 0]), np.intp(frame[y, x, 1]), np.intp(frame[y, x, 2])
                still = threshold >= 0
                for c in range(3):
                    still = still and abs(np.intp(frame[y, x, c]) - np.intp(reference[y, x, c])) <= threshold
                p = r | (g << 8) | (b << 16)
                i = np.intp(previous[y, x]) if still else _coarse_index(p, coarse, generation, cells, columns)
                if still and weight >= 0:
                    best = _coarse_index(p, coarse, generation, cells, columns)
                    h0, h1, h2 = np.intp(colors[i, 0]), np.intp(colors[i, 1]), np.intp(colors[i, 2])
                    b0, b1, b2 = np.intp(colors[best, 0]), np.intp(colors[best, 1]), np.intp(colors[best, 2])
                    s0, s1, s2 = np.intp(shown[i, 0]), np.intp(shown[i, 1]), np.intp(shown[i, 2])
                    saved = ((r - h0) ** 2 + (g - h1) ** 2 + (b - h2) ** 2
                             - (r - b0) ** 2 - (g - b1) ** 2 - (b - b2) ** 2)
                    more = (abs(s0 - b0) + abs(s1 - b1) + abs(s2 - b2)) - (abs(s0 - h0) + abs(s1 - h1) + abs(s2 - h2))
                    if saved > weight * more:
                        i = best
                    still = False  # chosen again here either way
                if y >= y0:
                    out_idx[y, x] = i
                    if threshold >= 0:
                        source = reference if still else frame
                        out_reference[y, x, 0], out_reference[y, x, 1] = source[y, x, 0], source[y, x, 1]
                        out_reference[y, x, 2] = source[y, x, 2]
                    out_rgb[y, x, 0], out_rgb[y, x, 1], out_rgb[y, x, 2] = colors[i, 0], colors[i, 1], colors[i, 2]
                e0, e1, e2 = r - np.intp(colors[i, 0]), g - np.intp(colors[i, 1]), b - np.intp(colors[i, 2])
                if still and keeps_errors:  # drifted from the error passed when chosen (with its own change since)?
                    f0 = np.intp(errors[y, x, 0]) + np.intp(frame[y, x, 0]) - np.intp(reference[y, x, 0])
                    f1 = np.intp(errors[y, x, 1]) + np.intp(frame[y, x, 1]) - np.intp(reference[y, x, 1])
                    f2 = np.intp(errors[y, x, 2]) + np.intp(frame[y, x, 2]) - np.intp(reference[y, x, 2])
                    if max(abs(e0 - f0), abs(e1 - f1), abs(e2 - f2)) > drift:
                        e0, e1, e2 = min(max(f0, -255), 255), min(max(f1, -255), 255), min(max(f2, -255), 255)
                if not shows:
                    e0 = e1 = e2 = 0
                if keeps_errors and not still and y >= y0:
                    errors[y, x, 0], errors[y, x, 1], errors[y, x, 2] = e0, e1, e2
                er, eg, eb = passed[e0 + 255], passed[e1 + 255], passed[e2 + 255]
                cr, cg, cb = er * right, eg * right, eb * right
                nxt[x + 1 - step, 0] = pr0 + er * down_left
                nxt[x + 1 - step, 1] = pg0 + eg * down_left
                nxt[x + 1 - step, 2] = pb0 + eb * down_left
                pr0, pg0, pb0 = pr1 + er * down, pg1 + eg * down, pb1 + eb * down
                pr1, pg1, pb1 = er * down_right, eg * down_right, eb * down_right
                x += step
            nxt[x + 1 - step, 0], nxt[x + 1 - step, 1], nxt[x + 1 - step, 2] = pr0, pg0, pb0
            cur[:, :] = 0.0


# ---------------------------------------------------------------- nearest search


@nb.njit(nogil=True, cache=True)
def index_pixels(pixels, table, generation, cells, columns, out):  # pragma: no cover - compiled
    """Table index of each of ``(N, 3) uint8`` pixels, on the calling thread (a few thousand samples)."""
    for n in range(pixels.shape[0]):
        p = np.intp(pixels[n, 0]) | (np.intp(pixels[n, 1]) << 8) | (np.intp(pixels[n, 2]) << 16)
        out[n] = _index(p, table, generation, cells, columns)


@nb.njit(inline="always")
def _scan_nearest(p0, p1, p2, columns, gaps):  # pragma: no cover - compiled
    """Index of the nearest of the centres ``columns`` (``(3, K)``, a row a coordinate) to ``(p0, p1, p2)``,
    ties: the lowest index; ``gaps``: ``(K,) float32`` scratch.

    Every centre is measured, in two loops LLVM turns into vector code (256 centres: about 45 ns a point
    here, where a search pruned along one axis took 150-220): the squared distances, then the least of
    their bit patterns with the index below them. Non-negative floats order as their bits do, so that
    integer minimum is the nearest centre, and among equals the lowest index.
    """
    k = columns.shape[1]
    for j in range(k):
        e0, e1, e2 = p0 - columns[0, j], p1 - columns[1, j], p2 - columns[2, j]
        gaps[j] = e0 * e0 + e1 * e1 + e2 * e2
    bits = gaps.view(np.int32)
    least = np.int64(0x7FFFFFFFFFFFFFFF)
    for j in range(k):
        least = min(least, (np.int64(bits[j]) << 16) | j)
    return least & 0xFFFF


@nb.njit(parallel=True, nogil=True, cache=True)
def nearest_centres(points, columns, out):  # pragma: no cover - compiled
    """Index of the nearest of the centres ``columns`` (``(3, K) float32``, a row a coordinate) to each of
    ``(N, 3) float32`` points (ties: the lowest index), exact; the points split over threads."""
    chunk = 1024
    for c in nb.prange((points.shape[0] + chunk - 1) // chunk):
        gaps = np.empty(columns.shape[1], np.float32)
        for i in range(c * chunk, min(points.shape[0], (c + 1) * chunk)):
            out[i] = _scan_nearest(points[i, 0], points[i, 1], points[i, 2], columns, gaps)


@nb.njit(nogil=True, cache=True)
def nearest_centres_serial(points, columns, out):  # pragma: no cover - compiled
    """`nearest_centres` on the calling thread: for a few thousand points (a fit's samples), waking the
    other threads costs more than it saves, and on a busy machine a parallel region waits for its
    slowest thread."""
    gaps = np.empty(columns.shape[1], np.float32)
    for i in range(points.shape[0]):
        out[i] = _scan_nearest(points[i, 0], points[i, 1], points[i, 2], columns, gaps)


@nb.njit(nogil=True, cache=True)
def kmeans_plusplus(points, weights, k, trials, uniforms):  # pragma: no cover - compiled
    """Indices of ``k`` seeds among weighted ``(N, 3) float64`` points, by greedy k-means++.

    The first is drawn in proportion to weight; each next one is the best of
    ``trials`` candidates drawn in proportion to weight times squared
    distance to the nearest seed so far: the one that leaves the least such
    total (the first on ties). ``uniforms`` holds the ``1 + (k - 1) * trials``
    draws in [0, 1) this consumes, in order.
    """
    n = points.shape[0]
    picks = np.empty(k, np.int64)
    cumulative = np.cumsum(weights)
    picks[0] = min(np.searchsorted(cumulative, uniforms[0] * cumulative[-1], side="right"), n - 1)
    closest = np.empty(n)
    for i in range(n):
        closest[i] = _squared_gap(points, i, picks[0])
    for s in range(1, k):
        total = 0.0
        for i in range(n):
            total += weights[i] * closest[i]
            cumulative[i] = total
        best_cost = np.inf
        for t in range(trials):
            draw = min(np.searchsorted(cumulative, uniforms[1 + (s - 1) * trials + t] * total, side="right"), n - 1)
            cost = 0.0
            for i in range(n):
                cost += weights[i] * min(closest[i], _squared_gap(points, i, draw))
                if cost >= best_cost:
                    break
            if cost < best_cost:
                best_cost, picks[s] = cost, draw
        for i in range(n):
            closest[i] = min(closest[i], _squared_gap(points, i, picks[s]))
    return picks


@nb.njit(inline="always")
def _squared_gap(points, i, j):  # pragma: no cover - compiled
    """Squared distance between rows ``i`` and ``j`` of ``points``."""
    d0, d1, d2 = points[i, 0] - points[j, 0], points[i, 1] - points[j, 1], points[i, 2] - points[j, 2]
    return d0 * d0 + d1 * d1 + d2 * d2


@nb.njit(nogil=True, cache=True)
def lloyd_sums(points, weights, centres, labels, floor, totals, sums):  # pragma: no cover - compiled
    """One weighted Lloyd step's per-centre weight ``totals`` and weighted coordinate ``sums`` (float64, zeroed):
    point ``i`` goes to centre ``labels[i]``. With ``floor > 0``, a step towards each cluster's geometric median:
    each weight divided by the point's distance to its centre, at least ``floor`` (Weiszfeld's). Points are
    summed in order in numpy's types, so the sums equal numpy's ``bincount`` of the same weights, bit for bit.
    """
    for i in range(points.shape[0]):
        j = labels[i]
        w = weights[i]
        if floor > 0:
            d0, d1, d2 = points[i, 0] - centres[j, 0], points[i, 1] - centres[j, 1], points[i, 2] - centres[j, 2]
            w = w / max(np.sqrt(d0 * d0 + d1 * d1 + d2 * d2), floor)
        totals[j] += w
        sums[j, 0] += points[i, 0] * w
        sums[j, 1] += points[i, 1] * w
        sums[j, 2] += points[i, 2] * w


@nb.njit(nogil=True, cache=True)
def count_colors(pixels, limit, found, counts):  # pragma: no cover - compiled
    """Count the distinct colours of ``(N, 3) uint8`` pixels, if there are at most ``limit``.

    Each colour goes to a row of ``found`` (``(limit, 3) uint8``) in the order first met, its pixels to
    ``counts`` (``(limit,)`` int64, zeros). Returns how many, or -1 past the limit. An open-addressing
    hash set of packed colours; stops at the first colour past the limit, so a natural image costs a
    few hundred pixels (a few thousand for a limit of thousands).
    """
    size = 1024
    while size < 2 * limit:
        size *= 2
    slots = np.full(size, -1, np.int64)
    rows = np.empty(size, np.int32)
    count = 0
    for p in range(pixels.shape[0]):
        key = (np.int64(pixels[p, 0]) << 16) | (np.int64(pixels[p, 1]) << 8) | pixels[p, 2]
        h = (key * 2654435761) & (size - 1)
        while slots[h] != -1 and slots[h] != key:
            h = (h + 1) & (size - 1)
        if slots[h] == -1:
            if count == limit:
                return -1
            slots[h], rows[h] = key, count
            found[count, 0], found[count, 1], found[count, 2] = pixels[p, 0], pixels[p, 1], pixels[p, 2]
            count += 1
        counts[rows[h]] += 1
    return count


@nb.njit(nogil=True, cache=True)
def distinct_colors(pixels, limit):  # pragma: no cover - compiled
    """The distinct colours of ``(N, 3) uint8`` pixels if there are at most ``limit``, else None (see
    `count_colors`)."""
    found, counts = np.empty((max(limit, 1), 3), np.uint8), np.zeros(max(limit, 1), np.int64)
    count = count_colors(pixels, limit, found, counts)
    return None if count < 0 else found[:count].copy()


@nb.njit(nogil=True, cache=True)
def cell_histogram(frame, step, rows, cells, counts, sums):  # pragma: no cover - compiled
    """Gather the pixels of an ``(H, W, 3) uint8`` frame, every ``step``-th of every ``step``-th row, into the
    lookup table's cells; returns how many cells they met.

    ``rows`` has one entry per cell, all -1: each cell met gets the next row,
    in the order first met, and is listed in ``cells``; ``counts`` and
    ``sums`` (zeroed, a row each) receive its pixel count and channel sums.
    ``rows`` is left all -1 again.
    """
    n = 0
    for y in range(0, frame.shape[0], step):
        for x in range(0, frame.shape[1], step):
            r, g, b = np.intp(frame[y, x, 0]), np.intp(frame[y, x, 1]), np.intp(frame[y, x, 2])
            cell = _cell(r | (g << 8) | (b << 16))
            row = rows[cell]
            if row < 0:
                row = n
                rows[cell] = n
                cells[n] = cell
                n += 1
            counts[row] += 1
            sums[row, 0] += r
            sums[row, 1] += g
            sums[row, 2] += b
    for j in range(n):
        rows[cells[j]] = -1
    return n


# ---------------------------------------------------------------- GIF


@nb.njit(nogil=True, cache=True)
def changed_pixels(indices, packed, canvas):  # pragma: no cover - compiled
    """A GIF frame over the one before: each pixel's colour (``packed[indices]``) and whether it differs from
    ``canvas``, the colours shown so far, as ``(shown, changed)``."""
    h, w = indices.shape
    shown = np.empty((h, w), packed.dtype)
    changed = np.empty((h, w), np.bool_)
    for y in range(h):
        for x in range(w):
            color = packed[indices[y, x]]
            shown[y, x] = color
            changed[y, x] = color != canvas[y, x]
    return shown, changed


@nb.njit(nogil=True, cache=True)
def used_entries(indices, changed, n_entries):  # pragma: no cover - compiled
    """Which of ``n_entries`` palette entries the ``changed`` pixels of ``indices`` use, ``(n_entries,) bool``."""
    used = np.zeros(n_entries, np.bool_)
    h, w = indices.shape
    for y in range(h):
        for x in range(w):
            if changed[y, x]:
                used[indices[y, x]] = True
    return used


@nb.njit(nogil=True, cache=True)
def transparent_codes(indices, changed, lut, transparent):  # pragma: no cover - compiled
    """A GIF frame's codes when it is drawn over the one before, two ways: ``(runs, plain)``, ``(H, W) uint8``.

    A changed pixel takes its code, ``lut[indices]``, both ways. An unchanged
    one shows the same whatever its code: in ``plain`` it is ``transparent``;
    in ``runs`` it takes whichever continues the run of the pixel before it
    (in scan order, which is what LZW sees): its own code when that pixel
    has it, else ``transparent``. ``lut`` is -1 for a colour not in the
    frame's colour table (unchanged pixels only).
    """
    h, w = indices.shape
    runs = np.empty((h, w), np.uint8)
    plain = np.empty((h, w), np.uint8)
    before = -1
    for y in range(h):
        for x in range(w):
            own = lut[indices[y, x]]
            if changed[y, x]:
                code = own
                plain[y, x] = own
            else:
                code = own if own >= 0 and own == before else transparent
                plain[y, x] = transparent
            runs[y, x] = code
            before = code
    return runs, plain


@nb.njit(inline="always")
def _put_code(out, n_out, bits, n_bits, code, size):  # pragma: no cover - compiled
    """Append ``code`` (``size`` bits, lowest first) to the bit buffer ``bits`` holding ``n_bits``, and move its
    whole bytes to ``out`` from ``n_out`` on; returns ``(n_out, bits, n_bits)``."""
    bits |= np.int64(code) << n_bits
    n_bits += size
    while n_bits >= 8:
        out[n_out] = bits & 255
        n_out += 1
        bits >>= 8
        n_bits -= 8
    return n_out, bits, n_bits


@nb.njit(nogil=True, cache=True)
def lzw_encode(pixels, min_code_size):  # pragma: no cover - compiled
    """GIF's variable-width LZW of ``pixels`` (1-D uint8, each < 2**min_code_size), as packed bytes.

    Starts with a clear code, clears again when the 4096 codes are used up, ends with end-of-information.
    The dictionary maps (prefix code, pixel) to a code: up to `LZW_DIRECT_CODE_SIZE` bits a pixel
    directly, in a table of ``LZW_CODES << min_code_size`` entries; above that in a hash table of
    `LZW_HASH_SLOTS` (linear probing), which stays in cache where the direct table (2 MB at 8 bits)
    would not. A clear resets only the entries made.
    """
    return _lzw(pixels, min_code_size, np.zeros(0, np.int32), np.zeros((0, 0), np.int32), np.zeros(0, np.int32),
                np.zeros(0, np.bool_), 0, pixels)


@nb.njit(nogil=True, cache=True)
def lzw_encode_lossy(pixels, min_code_size, own, gaps, bound, canvas_ok, transparent,
                     chosen):  # pragma: no cover - compiled
    """`lzw_encode`, where a pixel may take another code that continues the string being matched.

    Where the string so far followed by ``pixels[i]`` is not in the dictionary, pixel ``i`` takes
    ``transparent`` where ``canvas_ok[i]`` (what is shown there stays) and the dictionary holds that, else
    the code nearest to its own colour's code ``own[i]`` (none where -1) among those the dictionary holds
    after the string, within ``bound[i]`` of it in ``gaps`` (``(n, n)``, squared distances between the
    table's codes); where none, the string ends and the pixel starts the next with its own code. The codes
    written go to ``chosen`` (1-D uint8, as ``pixels``).
    """
    return _lzw(pixels, min_code_size, own, gaps, bound, canvas_ok, transparent, chosen)


@nb.njit(inline="always")
def _lzw(pixels, min_code_size, own, gaps, bound, canvas_ok, transparent, chosen):  # pragma: no cover - compiled
    """`lzw_encode_lossy`; without ``own`` entries, `lzw_encode` (``chosen`` is then not written).

    For the lossy search each code keeps its pixel and its place among its prefix's children
    (``first_child``, ``next_sibling``): the strings one pixel longer are walked there, a few, not
    looked up for every code within reach.
    """
    lossy = own.shape[0] > 0
    clear = 1 << min_code_size
    end = clear + 1
    hashed = min_code_size > LZW_DIRECT_CODE_SIZE
    codes = np.full(LZW_HASH_SLOTS if hashed else LZW_CODES << min_code_size, -1, np.int16)
    mask = codes.size - 1
    keys = np.empty(LZW_CODES, np.int64)  # each code's (prefix, pixel) key
    slots = np.empty(LZW_CODES, np.int64)  # each code's entry in ``codes``
    first_child = np.full(LZW_CODES if lossy else 0, -1, np.int16)
    next_sibling = np.empty(LZW_CODES if lossy else 0, np.int16)
    out = np.empty(2 * pixels.size + 16, np.uint8)
    size = min_code_size + 1
    next_code = end + 1
    n_out, bits, n_bits = _put_code(out, 0, np.int64(0), 0, clear, size)
    prefix = np.int64(pixels[0])
    if lossy:
        chosen[0] = pixels[0]
    for i in range(1, pixels.size):
        pixel = np.int64(pixels[i])
        key = (prefix << min_code_size) | pixel
        slot, code = _lzw_entry(codes, keys, key, mask, hashed)
        if code < 0 and lossy:
            if canvas_ok[i]:
                code = _lzw_entry(codes, keys, (prefix << min_code_size) | transparent, mask, hashed)[1]
                if code >= 0:
                    pixel = np.int64(transparent)
            c = own[i]
            if code < 0 and c >= 0:
                nearest = bound[i] + 1
                child = first_child[prefix]
                while child >= 0:
                    q = keys[child] & (clear - 1)
                    if gaps[c, q] < nearest:
                        nearest, code, pixel = gaps[c, q], np.int64(child), q
                    child = next_sibling[child]
        if lossy:
            chosen[i] = pixel
        if code >= 0:
            prefix = np.int64(code)
            continue
        n_out, bits, n_bits = _put_code(out, n_out, bits, n_bits, prefix, size)
        if next_code < LZW_CODES:
            if next_code == 1 << size:
                size += 1
            codes[slot] = next_code
            keys[next_code] = key
            slots[next_code] = slot
            if lossy:
                next_sibling[next_code] = first_child[prefix]
                first_child[prefix] = next_code
            next_code += 1
        else:
            n_out, bits, n_bits = _put_code(out, n_out, bits, n_bits, clear, size)
            for c in range(end + 1, LZW_CODES):
                codes[slots[c]] = -1
            first_child[:] = -1
            size = min_code_size + 1
            next_code = end + 1
        prefix = pixel
    n_out, bits, n_bits = _put_code(out, n_out, bits, n_bits, prefix, size)
    n_out, bits, n_bits = _put_code(out, n_out, bits, n_bits, end, size)
    if n_bits:
        out[n_out] = bits & 255
        n_out += 1
    return out[:n_out]


@nb.njit(nogil=True, cache=True)
def colours_within(a, b, bound):  # pragma: no cover - compiled
    """Where packed colours ``a`` and ``b`` (``(H, W)``, ``0xRRGGBB``; ``1 << 24`` or more: no colour) are both
    colours, their squared RGB distance at most ``bound`` (``(H, W)``, a bound a pixel): ``(H, W) bool``."""
    h, w = a.shape
    out = np.empty((h, w), np.bool_)
    for y in range(h):
        for x in range(w):
            p, q = np.int64(a[y, x]), np.int64(b[y, x])
            out[y, x] = p < (1 << 24) and q < (1 << 24) and _distance2(p, q) <= bound[y, x]
    return out


@nb.njit(parallel=True, nogil=True, cache=True)
def neighbour_gaps(colours, most):  # pragma: no cover - compiled
    """For each pixel of packed ``colours`` (``(H, W)``, ``0xRRGGBB``; ``1 << 24`` or more: no colour), the
    squared RGB distance to the farthest colour among its 8 neighbours, at most ``most``: ``(H, W) int32``. A
    neighbour that shows no colour counts as ``most`` away (an edge). Each row and its neighbours are unpacked
    into channels first, so that they are measured in vector code (a 720p frame: 21 ms packed, 4.5 so)."""
    h, w = colours.shape
    out = np.empty((h, w), np.int32)
    for y in nb.prange(h):
        here, there = np.empty((3, w), np.int32), np.empty((3, w), np.int32)
        _unpack_row(colours[y], here)
        far = np.zeros(w, np.int32)
        for v in range(max(0, y - 1), min(h, y + 2)):
            _unpack_row(colours[v], there)
            for du in range(-1, 2):
                for x in range(max(0, -du), min(w, w - du)):
                    d0, d1 = here[0, x] - there[0, x + du], here[1, x] - there[1, x + du]
                    d2 = here[2, x] - there[2, x + du]
                    far[x] = max(far[x], d0 * d0 + d1 * d1 + d2 * d2)
        for x in range(w):
            out[y, x] = min(far[x], most)
    return out


@nb.njit(inline="always")
def _unpack_row(row, out):  # pragma: no cover - compiled
    """Packed colours ``row`` as channels ``out`` (``(3, W)``); no colour as a red far beyond any colour's."""
    for x in range(row.shape[0]):
        p = np.int64(row[x])
        out[0, x] = p >> 16 if p < (1 << 24) else 1 << 12
        out[1, x], out[2, x] = (p >> 8) & 255, p & 255


@nb.njit(inline="always")
def _lzw_entry(codes, keys, key, mask, hashed):  # pragma: no cover - compiled
    """Where LZW's dictionary ``codes`` holds ``key`` (prefix code, pixel), or the free entry it would take, and
    its code there (-1: not held)."""
    slot = ((key * 2654435761) >> 16) & mask if hashed else key  # Knuth's multiplicative hash
    code = codes[slot]
    while hashed and code >= 0 and keys[code] != key:
        slot = (slot + 1) & mask
        code = codes[slot]
    return slot, code
