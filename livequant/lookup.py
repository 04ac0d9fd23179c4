"""Nearest-colour lookup: a 3-D table over the RGB cube, and the calls that map frames through it.

The cube is cut into 128 x 128 x 128 cells (`LEVELS` a side, each ``2 ** SHIFT``
levels wide), each holding the palette entry nearest to its centre in the working
colour space. The table is filled lazily: it starts as `UNKNOWN` everywhere, and
the kernels compute a cell's entry the first time a pixel meets it (a frame
touches some 16 thousand of the 2 million cells) from the cell centre's working-space
coordinates, which they compute (a table of them, 25 MB a space, cost more in cache
misses than the arithmetic, and a quarter second to build). A cell that contains a palette
colour points instead to an exact block of its 2 x 2 x 2 colours, so every
palette colour maps to itself. A lookup is one load and a rarely taken branch
(the kernels are in `livequant.kernels`). `nearest_reference` is the plain numpy
brute force the tests compare against.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from livequant.colorspace import channel_curve, kernel_coefficients, to_space, unique_rgb
from livequant.kernels import (
    BITS,
    BLOCK,
    FINE_FLAG,
    LEVELS,
    SCAN_ENTRIES,
    SHIFT,
    UNKNOWN,
    index_pixels,
    map_words,
    map_words_held,
    nearest_neighbours,
    nearest_sorted,
    nearest_sorted_serial,
)

__all__ = [
    "LEVELS",
    "LookupTable",
    "build_table",
    "cell_index",
    "lookup_pixels",
    "map_pixels",
    "map_pixels_held",
    "nearest",
    "nearest_exact",
    "nearest_reference",
]

NO_OFFSETS = np.zeros((1, 1), np.int16)
NO_NEIGHBOURS, NO_REACH, NO_GUESS = np.zeros((0, 1), np.uint16), np.zeros((0, 1), np.float32), np.zeros(0, np.uint16)
#: `nearest` from a guess checks at most this many of the guessed centre's neighbours before it walks: at
#: K=256 a warm Lloyd step's point had 3-5 within reach on average, 1-7% more than 16 (realshort, cockatoo).
LISTED_NEIGHBOURS = 16
#: `nearest` splits the points over threads from this many on (a 256-colour fit's samples and histogram:
#: the GIF of cockatoo at K=256 took 3.7 s instead of 4.3); fewer (smaller palettes' samples) run on one thread.
PARALLEL_POINTS = 1 << 14


@dataclass(frozen=True, eq=False)
class LookupTable:
    """A nearest-colour table for one palette in one colour space.

    Attributes
    ----------
    colors : (K, 3) uint8 ndarray
        The palette the table maps into.
    table : (LEVELS ** 3,) uint16 ndarray
        Palette index of each cell (see `cell_index`), ``FINE_FLAG + block``
        for a cell holding palette colours, or `UNKNOWN` for a cell no pixel
        has met yet (the kernels fill it in).
    fine : (BLOCK * n_blocks,) uint8 ndarray
        Exact palette index of each colour of those cells.
    cells : ndarray
        `livequant.colorspace.kernel_coefficients` of the cells' centre values
        on each channel: the kernels compute a cell centre's working-space
        coordinates from it (shared by all tables in one space).
    ranked : (K, 4) float32 ndarray
        The palette in the working space, rows ``(x, y, z, index)``; in order
        of ``x`` for palettes of more than `SCAN_ENTRIES` colours, which the
        kernels search out from a cell centre's ``x`` (smaller ones are scanned).
    packed : (K,) uint32 ndarray
        The colours as ``r | g << 8 | b << 16``, as the kernels write them.
    spread : float
        Typical per-channel step between neighbouring palette colours on the
        dither scale (`livequant.colorspace.channel_curve`): the dither amplitude.
    shifted : (511, 256) uint8 ndarray
        ``shifted[o + 255, v]``: channel value ``v`` with dither offset ``o``
        added on that scale (shared by all tables in one space).
    """

    colors: np.ndarray
    table: np.ndarray
    fine: np.ndarray
    cells: np.ndarray
    ranked: np.ndarray
    packed: np.ndarray
    spread: float
    shifted: np.ndarray


def _grid_rgb(index: np.ndarray, bits: int) -> np.ndarray:
    """``(N, 3)`` coordinates of positions in a ``2**bits`` a side grid laid out as the table (red fastest)."""
    mask = (1 << bits) - 1
    return np.stack([index & mask, (index >> bits) & mask, index >> (2 * bits)], axis=1)


def cell_index(rgb: np.ndarray) -> np.ndarray:
    """Table position of the cell of each of ``(N, 3)`` RGB values, ``(N,) int64``."""
    c = np.asarray(rgb).astype(np.int64) >> SHIFT
    return c[:, 0] | (c[:, 1] << BITS) | (c[:, 2] << (2 * BITS))


@functools.cache
def _cell_coefficients(color_space: str) -> np.ndarray:
    """How the kernels compute a cell centre's working-space coordinates (`LookupTable.cells`), read only."""
    width = 1 << SHIFT
    out = kernel_coefficients(np.arange(LEVELS) * width + (width - 1) / 2, color_space)
    out.flags.writeable = False
    return out


@functools.cache
def _shifted(color_space: str) -> np.ndarray:
    """``(511, 256) uint8``: each channel value with each dither offset -255..255 added on the space's dither
    scale (`livequant.colorspace.channel_curve`), then back to the nearest 8-bit value (read only)."""
    curve = channel_curve(color_space)
    moved = np.clip(curve[None, :] + np.arange(-255, 256, dtype=np.float64)[:, None], 0.0, 255.0)
    out = np.rint(np.interp(moved, curve, np.arange(256, dtype=np.float64))).astype(np.uint8)
    out.flags.writeable = False
    return out


def _projection_axis(color_space: str) -> np.ndarray:
    """A unit vector along which palette entries are sorted to prune the search."""
    if color_space != "rgb":
        return np.array([1.0, 0.0, 0.0], dtype=np.float32)  # lightness
    return np.full(3, 1 / np.sqrt(3), dtype=np.float32)  # gray axis


def nearest(points: np.ndarray, centres: np.ndarray, color_space: str, guess: np.ndarray | None = None) -> np.ndarray:
    """Index of the nearest of ``centres`` to each of ``points`` (exact; ties: the lowest index).

    Parameters
    ----------
    points : (N, 3) float32 ndarray
    centres : (K, 3) float32 ndarray
        Both in the working space ``color_space``.
    guess : (N,) integer ndarray, optional
        A likely answer for each point (its centre before a Lloyd step moved
        the centres a little): the search checks only the guessed centre's
        neighbours that could be nearer (`kernels.nearest_neighbours`). The
        answer is the same.

    Returns
    -------
    (N,) uint16 ndarray
    """
    axis = _projection_axis(color_space)
    centres = np.ascontiguousarray(centres, np.float32)
    keys = centres[:, 0] * axis[0] + centres[:, 1] * axis[1] + centres[:, 2] * axis[2]  # as the kernels key a point
    order = np.argsort(keys, kind="stable")
    ranked = np.column_stack([centres[order], order.astype(np.float32)])
    if guess is None:
        neighbours, reach, guess = NO_NEIGHBOURS, NO_REACH, NO_GUESS
    else:
        (neighbours, reach), guess = _neighbours(centres), np.asarray(guess, np.uint16)
    out = np.empty(points.shape[0], dtype=np.uint16)
    search = nearest_sorted if len(points) >= PARALLEL_POINTS else nearest_sorted_serial
    search(points, ranked, keys[order], axis, centres, neighbours, reach, guess, out)
    return out


def _neighbours(centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each centre's `LISTED_NEIGHBOURS` nearest others (all others, in smaller palettes), nearest first, and
    their squared distances: ``(K, L) uint16`` and ``(K, L) float32``."""
    listed = max(min(LISTED_NEIGHBOURS, len(centres) - 1), 1)
    neighbours, reach = np.zeros((len(centres), listed), np.uint16), np.full((len(centres), listed), np.inf, np.float32)
    nearest_neighbours(centres, listed, neighbours, reach)
    return neighbours, reach


def _spread(colors: np.ndarray, color_space: str) -> float:
    """Median per-channel (Chebyshev) distance from each palette colour to its nearest neighbour, on the
    space's dither scale (`livequant.colorspace.channel_curve`).

    Ordered dither adds one offset to all three channels, so the step it must
    bridge is measured per channel: 255 between black and white.
    """
    if len(colors) < 2:
        return 0.0
    points = channel_curve(color_space)[colors].astype(np.float32)
    distances = np.abs(points[:, None, 0] - points[None, :, 0])  # channel by channel: a table is built each refit
    for channel in (1, 2):
        np.maximum(distances, np.abs(points[:, None, channel] - points[None, :, channel]), out=distances)
    np.fill_diagonal(distances, np.inf)  # each colour's distance to itself
    return float(np.median(distances.min(axis=1)))


def build_table(colors: np.ndarray, color_space: str) -> LookupTable:
    """Build the lookup table mapping every RGB cell to its nearest palette entry (filled lazily, see above).

    Parameters
    ----------
    colors : (K, 3) uint8 ndarray
        Palette colours, K in 1..256.
    color_space : {"oklab", "oklab-large", "rgb"}
        Space in which "nearest" is measured.

    Returns
    -------
    LookupTable
    """
    colors = np.ascontiguousarray(colors, dtype=np.uint8)
    centres = to_space(colors, color_space)
    table = np.full(LEVELS**3, UNKNOWN, dtype=np.uint16)
    # Cells holding palette colours get an exact block, so each palette colour maps to itself.
    own = np.unique(cell_index(colors))
    corners = _grid_rgb(own, BITS) << SHIFT
    own_rgb = (corners[:, None, :] + _grid_rgb(np.arange(BLOCK), SHIFT)[None, :, :]).reshape(-1, 3)
    fine = nearest(to_space(own_rgb, color_space), centres, color_space).astype(np.uint8)
    table[own] = FINE_FLAG + np.arange(len(own), dtype=np.uint16)
    c = colors.astype(np.uint32)
    packed = c[:, 0] | (c[:, 1] << 8) | (c[:, 2] << 16)
    ranked = np.column_stack([centres, np.arange(len(colors))]).astype(np.float32)
    if len(colors) > SCAN_ENTRIES:
        ranked = ranked[np.argsort(centres[:, 0], kind="stable")]
    return LookupTable(colors=colors, table=table, fine=fine, cells=_cell_coefficients(color_space), ranked=ranked,
                       packed=packed, spread=_spread(colors, color_space), shifted=_shifted(color_space))


def _bytes_per_pixel(a: np.ndarray) -> int:
    return a.size // (a.shape[0] * a.shape[1])


def _words(a: np.ndarray, groups: int) -> np.ndarray:
    """The first ``4 * groups`` pixels of an image or index map as ``uint32`` words (a view)."""
    return a.reshape(-1)[: 4 * groups * _bytes_per_pixel(a)].view(np.uint32)


def _rest(a: np.ndarray, groups: int) -> np.ndarray:
    """The pixels after the first ``4 * groups``, zero-padded to one group of words (a copy)."""
    rest = a.reshape(-1)[4 * groups * _bytes_per_pixel(a) :]
    out = np.zeros(4 * _bytes_per_pixel(a), np.uint8)
    out[: len(rest)] = rest
    return out.view(np.uint32)


def _by_words(call: Callable, inputs: tuple[np.ndarray, ...], outputs: tuple[np.ndarray, ...]) -> None:
    """Run ``call(start, *words)`` on images and index maps read as words (see `livequant.kernels`).

    First on the whole groups of four pixels (views), then on the one to three
    pixels left, if any, zero-padded (copies whose outputs are written back).
    """
    for a in (*inputs, *outputs):
        if not a.flags.c_contiguous:
            raise ValueError(f"arrays to map must be C-contiguous; got one of shape {a.shape} strides {a.strides}")
    n = inputs[0].shape[0] * inputs[0].shape[1]
    groups = n // 4
    call(0, *(_words(a, groups) for a in (*inputs, *outputs)))
    if n % 4:
        rests = [_rest(a, groups) for a in (*inputs, *outputs)]
        call(4 * groups, *rests)
        for a, words in zip(outputs, rests[len(inputs) :]):
            done = 4 * groups * _bytes_per_pixel(a)
            a.reshape(-1)[done:] = words.view(np.uint8)[: a.size - done]


def map_pixels(frame: np.ndarray, table: LookupTable, offsets: np.ndarray, out_idx: np.ndarray,
               out_rgb: np.ndarray) -> None:
    """Map every pixel of ``frame`` through ``table``, writing ``out_idx`` and ``out_rgb``.

    Parameters
    ----------
    frame : (H, W, 3) uint8 ndarray
    table : LookupTable
    offsets : (M, M) int16 ndarray
        Ordered-dither offsets, added on the table's dither scale (see `livequant.dither.ordered_offsets`);
        ``(1, 1)`` zeros for none.
    out_idx : (H, W) uint8 ndarray
    out_rgb : (H, W, 3) uint8 ndarray
    """
    width = frame.shape[1]

    def call(start, pixels, indices, colours):
        map_words(pixels, table.table, table.fine, table.cells, table.ranked, table.packed, offsets, table.shifted,
                  width, start, indices, colours)

    _by_words(call, (frame,), (out_idx, out_rgb))


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
    width = frame.shape[1]

    def call(start, pixels, held, references, indices, colours):
        map_words_held(pixels, table.table, table.fine, table.cells, table.ranked, table.packed, offsets,
                       table.shifted, width, start, threshold, weight, references, held, indices, colours)

    _by_words(call, (frame, previous), (reference, out_idx, out_rgb))


def lookup_pixels(pixels: np.ndarray, table: LookupTable) -> np.ndarray:
    """Table index of each of ``(N, 3) uint8`` pixels, ``(N,) uint8``, on the calling thread."""
    out = np.empty(len(pixels), np.uint8)
    index_pixels(np.ascontiguousarray(pixels), table.table, table.fine, table.cells, table.ranked, out)
    return out


def nearest_exact(frame: np.ndarray, colors: np.ndarray, color_space: str) -> np.ndarray:
    """Exact nearest palette index of every pixel (no table), for stills.

    Returns
    -------
    (H, W) uint8 ndarray
    """
    distinct, inverse, _ = unique_rgb(frame.reshape(-1, 3))
    index = nearest(to_space(distinct, color_space), to_space(colors, color_space), color_space)
    return index[inverse].astype(np.uint8).reshape(frame.shape[:2])


def nearest_reference(pixels: np.ndarray, colors: np.ndarray, color_space: str) -> np.ndarray:
    """Brute-force nearest palette index in plain numpy (the tests' reference).

    Parameters
    ----------
    pixels : (N, 3) uint8 or float ndarray
        sRGB values on the 0-255 scale.
    colors : (K, 3) uint8 ndarray
    color_space : {"oklab", "oklab-large", "rgb"}

    Returns
    -------
    (N,) int64 ndarray
    """
    p = to_space(pixels, color_space)
    c = to_space(colors, color_space)
    d = ((p[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
    return d.argmin(axis=1)
