"""Nearest-colour lookup: a table of every RGB colour's nearest palette entry, and the calls that map frames
through it.

The table is filled lazily: the kernels work out a colour's entry the first time a pixel meets it (a 720p
frame meets some 30 thousand of the cube's 2 million cells of 2 x 2 x 2 colours), for its whole cell at once,
exactly: the entry nearest the cell's centre when no boundary between entries can cross the cell, each
colour's own nearest when one can (40% of the cells a cockatoo frame met at K=256, 23% at K=64). The entry
nearest the centre for all of a cell's colours, as this table gave before 2026-12-04, cost 0.1-0.2 dB PSNR
at K=256 and streaks on smooth gradients. A lookup is one load and a rarely taken branch (the kernels are in
`livequant.kernels`). `nearest_reference` is the plain numpy brute force the tests compare against.
"""

from __future__ import annotations

import functools
import mmap
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from livequant.colorspace import channel_curve, kernel_coefficients, to_space, unique_rgb
from livequant.kernels import (
    EXACT_BUCKETS,
    LEVELS,
    SHIFT,
    exact_buckets,
    index_pixels,
    map_words,
    map_words_held,
    map_words_weighed,
    nearest_centres,
    nearest_centres_serial,
    parallel_launch,
)

__all__ = [
    "LEVELS",
    "LookupTable",
    "build_table",
    "lookup_pixels",
    "map_pixels",
    "map_pixels_held",
    "nearest",
    "nearest_exact",
    "nearest_reference",
    "nearest_spacing",
]

#: A table's memory is reused by this many tables in turn before it is zeroed (an entry's high byte).
GENERATIONS = 255
#: At most this many dead tables' memory is kept for new ones (the GIF of cockatoo at K=256 held 3 tables at once).
SPARE_TABLES = 2
_SPARE_TABLES: list[tuple[np.ndarray, np.ndarray, int]] = []
#: `nearest` splits the points over threads from this many on (realshort's GIF at K=256, its fits' 285 searches:
#: 153 ms against 180 from 16,384 and 227 on one thread); fewer (smaller palettes' samples) run on one thread.
PARALLEL_POINTS = 1 << 13


@dataclass(frozen=True, eq=False)
class LookupTable:
    """A nearest-colour table for one palette in one colour space.

    Attributes
    ----------
    colors : (K, 3) uint8 ndarray
        The palette the table maps into.
    table : (2 ** 24,) uint16 ndarray
        Each colour's palette index in the low byte, and in the high byte
        ``generation`` once known (the kernels fill in a colour's cell when
        they first meet it), at the colour's packed value ``r | g << 8 | b << 16``.
    coarse : (LEVELS ** 3,) uint16 ndarray
        Each cell's palette index nearest to its centre, with the generation,
        once known: what error diffusion reads (see `livequant.dither`).
    generation : int
        1 to `GENERATIONS`: the table's memory may be a dead table's, whose
        entries carry another generation.
    cells : ndarray
        `livequant.colorspace.kernel_coefficients` of the cells' centre values
        and of every 8-bit level on each channel: the kernels compute a cell
        centre's or a colour's working-space coordinates from it (shared by
        all tables in one space).
    columns : (3, K) float32 ndarray
        The palette in the working space, a row a coordinate (the kernels
        measure every entry, in vector code).
    packed : (K,) uint32 ndarray
        The colours as ``r | g << 8 | b << 16``, as the kernels write them.
    spread : float
        Typical per-channel step between neighbouring palette colours on the
        dither scale (`livequant.colorspace.channel_curve`): the dither amplitude.
    shifted : (511, 256) uint8 ndarray
        ``shifted[o + 255, v]``: channel value ``v`` with dither offset ``o``
        added on that scale (shared by all tables in one space).
    exact : (EXACT_BUCKETS,) uint8 ndarray
        The buckets the palette colours are filed under
        (`livequant.kernels.exact_buckets`): under ordered dither a pixel that
        is a palette colour takes it.
    """

    colors: np.ndarray
    table: np.ndarray
    coarse: np.ndarray
    generation: int
    cells: np.ndarray
    columns: np.ndarray
    packed: np.ndarray
    spread: float
    shifted: np.ndarray
    exact: np.ndarray


@functools.cache
def _cell_coefficients(color_space: str) -> np.ndarray:
    """How the kernels compute the working-space coordinates of a cell's centre and of each colour
    (`LookupTable.cells`), read only."""
    width = 1 << SHIFT
    out = kernel_coefficients(np.concatenate([np.arange(LEVELS) * width + (width - 1) / 2, np.arange(256)]),
                              color_space)
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


def nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest of ``centres`` to each of ``points`` (exact; ties: the lowest index).

    Parameters
    ----------
    points : (N, 3) float32 ndarray
    centres : (K, 3) float32 ndarray
        Both in one working space.

    Returns
    -------
    (N,) uint16 ndarray
    """
    out = np.empty(points.shape[0], dtype=np.uint16)
    points, columns = np.ascontiguousarray(points, np.float32), np.ascontiguousarray(np.asarray(centres, np.float32).T)
    if len(points) < PARALLEL_POINTS:
        nearest_centres_serial(points, columns, out)
        return out
    with parallel_launch():
        nearest_centres(points, columns, out)
    return out


def _spread(colors: np.ndarray, color_space: str) -> float:
    """Median per-channel (Chebyshev) distance from each palette colour to its nearest neighbour, on the
    space's dither scale (`livequant.colorspace.channel_curve`).

    Ordered dither adds one offset to all three channels, so the step it must
    bridge is measured per channel: 255 between black and white.
    """
    if len(colors) < 2:
        return 0.0
    return float(np.median(nearest_spacing(channel_curve(color_space)[colors].astype(np.float32))))


def nearest_spacing(points: np.ndarray) -> np.ndarray:
    """Each of ``(K, 3)`` points' largest channel difference to its nearest other point, ``(K,)`` (inf for one)."""
    distances = np.abs(points[:, None, 0] - points[None, :, 0])  # channel by channel: a table is built each refit
    for channel in (1, 2):
        np.maximum(distances, np.abs(points[:, None, channel] - points[None, :, channel]), out=distances)
    np.fill_diagonal(distances, np.inf)  # each colour's distance to itself
    return distances.min(axis=1)


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
    columns = np.ascontiguousarray(to_space(colors, color_space).T, np.float32)
    colours, cells, generation = _table_memory()
    c = colors.astype(np.uint32)
    packed = c[:, 0] | (c[:, 1] << 8) | (c[:, 2] << 16)
    exact = np.zeros(EXACT_BUCKETS, np.uint8)
    exact_buckets(packed, exact)
    table = LookupTable(colors=colors, table=colours, coarse=cells, generation=generation,
                        cells=_cell_coefficients(color_space), columns=columns, packed=packed,
                        spread=_spread(colors, color_space), shifted=_shifted(color_space), exact=exact)
    weakref.finalize(table, _spare, colours, cells, generation)
    return table


def _table_memory() -> tuple[np.ndarray, np.ndarray, int]:
    """Memory for a new table (colours and cells), and the generation its entries will carry: a dead table's,
    one generation on (nothing it knew counts), else fresh zeros; after `GENERATIONS` tables its pages are
    given back, and come back zeroed when next written.

    The memory is mapped anonymously: the system maps each page in, zeroed, when an entry on it is first
    written (2,000 pages a 720p frame); numpy's own zeroed memory is zeroed at once, or in 2 MB pages.
    Mapping them in and out took 1.2 ms a table at 720p (cockatoo), and a GIF of it at K=256 builds a table
    nearly every frame.
    """
    try:
        colours, cells, generation = _SPARE_TABLES.pop()
    except IndexError:
        colours, cells, generation = _zeros(1 << 24), _zeros(LEVELS**3), 0
    if generation == GENERATIONS:
        _zero(colours)
        _zero(cells)
        generation = 0
    return colours, cells, generation + 1


def _zeros(n: int) -> np.ndarray:
    """``(n,) uint16`` zeros in private anonymous memory of their own (``.base.obj``: its `mmap.mmap`)."""
    private = {"flags": mmap.MAP_PRIVATE} if hasattr(mmap, "MAP_PRIVATE") else {}  # not on Windows
    return np.frombuffer(mmap.mmap(-1, 2 * n, **private), dtype=np.uint16)


def _zero(memory: np.ndarray) -> None:
    """Zero `_zeros` memory: on Linux by giving its pages back (they come back zeroed when next written)."""
    if sys.platform.startswith("linux"):
        memory.base.obj.madvise(mmap.MADV_DONTNEED)
    else:
        memory[:] = 0


def _spare(colours: np.ndarray, cells: np.ndarray, generation: int) -> None:
    """Keep a dead table's memory for the next (at most `SPARE_TABLES` of them)."""
    if len(_SPARE_TABLES) < SPARE_TABLES:
        _SPARE_TABLES.append((colours, cells, generation))


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
        map_words(pixels, table.table, table.generation, table.cells, table.columns, table.packed, offsets,
                  table.shifted, table.exact, width, start, indices, colours)

    with parallel_launch():
        _by_words(call, (frame,), (out_idx, out_rgb))


def map_pixels_held(frame: np.ndarray, table: LookupTable, offsets: np.ndarray, threshold: int, weight: float,
                    reference: np.ndarray, previous: np.ndarray, out_idx: np.ndarray, out_rgb: np.ndarray,
                    shown: LookupTable | None = None) -> None:
    """`map_pixels` with temporal hold: a still pixel keeps its index from ``previous``.

    Parameters
    ----------
    threshold : int
        Largest per-channel change from ``reference``, in levels, that counts as still.
    weight : float
        After a palette change, a still pixel moves to its best entry when the squared
        error that saves exceeds ``weight`` times the change that shows beyond keeping
        its index; ``-1``: never.
    reference : (H, W, 3) uint8 ndarray
        Input values at which each held index was chosen; updated in place.
    previous : (H, W) uint8 ndarray
        The previous frame's indices (read only).
    out_idx : (H, W) uint8 ndarray
        This frame's indices; may be ``previous`` itself.
    shown : LookupTable, optional
        The table of the palette ``previous`` indexes (default: ``table``).
    """
    width = frame.shape[1]
    shown_colors = (table if shown is None else shown).packed

    def call(start, pixels, held, references, indices, colours):
        leading = (table.table, table.generation, table.cells, table.columns, table.packed, offsets, table.shifted,
                   table.exact, width, start, threshold)
        if weight < 0:
            map_words_held(pixels, *leading, references, held, indices, colours)
        else:
            map_words_weighed(pixels, *leading, weight, references, held, shown_colors, indices, colours)

    with parallel_launch():
        _by_words(call, (frame, previous), (reference, out_idx, out_rgb))


def lookup_pixels(pixels: np.ndarray, table: LookupTable) -> np.ndarray:
    """Table index of each of ``(N, 3) uint8`` pixels, ``(N,) uint8``, on the calling thread."""
    out = np.empty(len(pixels), np.uint8)
    index_pixels(np.ascontiguousarray(pixels), table.table, table.generation, table.cells, table.columns, out)
    return out


def nearest_exact(frame: np.ndarray, colors: np.ndarray, color_space: str) -> np.ndarray:
    """Exact nearest palette index of every pixel (no table), for stills.

    Returns
    -------
    (H, W) uint8 ndarray
    """
    distinct, inverse, _ = unique_rgb(frame.reshape(-1, 3))
    index = nearest(to_space(distinct, color_space), to_space(colors, color_space))
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
