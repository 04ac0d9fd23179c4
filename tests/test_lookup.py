"""The compiled lookup against the numpy brute force."""

import functools

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from livequant.colorspace import to_space
from livequant.dither import diffuse
from livequant.kernels import BITS, BLOCK, FINE_FLAG, LEVELS, SHIFT, UNKNOWN
from livequant.lookup import (
    build_table,
    cell_index,
    lookup_pixels,
    map_pixels,
    map_pixels_held,
    nearest,
    nearest_exact,
    nearest_reference,
)

SPACES = ["oklab", "oklab-large", "rgb"]  # the working spaces (`livequant.colorspace.working_space`)
palettes = arrays(np.uint8, st.tuples(st.integers(1, 256), st.just(3)))


def apply(table, pixels):
    """Map ``(N, 3)`` pixels through ``table`` with the compiled kernel."""
    frame = np.ascontiguousarray(pixels.reshape(1, -1, 3))
    idx = np.empty(frame.shape[:2], np.uint8)
    rgb = np.empty_like(frame)
    map_pixels(frame, table, np.zeros((1, 1), np.int16), idx, rgb)
    return idx[0], rgb[0]


def distances(pixels, colors, space):
    p, c = to_space(pixels, space), to_space(colors, space)
    return ((p[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)


@functools.cache
def cell_corners():
    """One pixel in each table cell, ``(LEVELS ** 3, 3) uint8``, in table order."""
    cell = np.arange(LEVELS**3)
    mask = LEVELS - 1
    return (np.stack([cell & mask, (cell >> BITS) & mask, cell >> (2 * BITS)], axis=1) << SHIFT).astype(np.uint8)


def filled(table):
    """``table`` with every cell met once through the kernels, so none is left `UNKNOWN`."""
    lookup_pixels(cell_corners(), table)
    assert not np.any(table.table == UNKNOWN)
    return table


@pytest.mark.parametrize("space", SPACES)
@settings(max_examples=40, deadline=None)
@given(colors=palettes)
def test_palette_colours_map_to_themselves(space, colors):
    idx, rgb = apply(build_table(colors, space), colors)
    np.testing.assert_array_equal(rgb, colors)


@pytest.mark.parametrize("space", SPACES)
@settings(max_examples=25, deadline=None)
@given(colors=palettes, seed=st.integers(0, 2**32 - 1))
@example(colors=np.array([[145, 177, 145]] + [[145, 145, 145]] * 5 + [[145, 145, 163]], np.uint8), seed=1970)
def test_cell_centres_get_the_brute_force_nearest(space, colors, seed):
    table = build_table(colors, space)
    corner = np.random.default_rng(seed).integers(0, LEVELS, (4000, 3)) << SHIFT
    centres = corner + ((1 << SHIFT) - 1) / 2
    expected = nearest_reference(centres, colors, space)
    lookup_pixels(corner.astype(np.uint8), table)  # the kernel fills in the cells it meets
    got = table.table[cell_index(corner)].astype(np.int64)
    assert not np.any(got == UNKNOWN)
    plain = got < FINE_FLAG  # cells holding palette colours are checked pixel by pixel below
    d = distances(centres[plain], colors, space)
    rows = np.arange(plain.sum())
    # Same entry, or a tie within float32 rounding: the kernel computes a cell centre's coordinates itself
    # (found by hypothesis: a cell 2e-8 nearer one of two colours 0.0069 away, in float64).
    assert np.all((got[plain] == expected[plain]) | (d[rows, got[plain]] <= d[rows, expected[plain]] * (1 + 1e-5)))


@pytest.mark.parametrize("space", SPACES)
@settings(max_examples=25, deadline=None)
@given(colors=palettes, pixels=arrays(np.uint8, (500, 3)))
def test_any_pixel_maps_within_its_cell_of_the_nearest(space, colors, pixels):
    """A pixel gets the nearest entry of its cell centre: by the triangle
    inequality its distance exceeds the best by at most twice its distance
    to that centre."""
    idx, rgb = apply(build_table(colors, space), pixels)
    centre = (pixels.astype(np.float64) // 2) * 2 + 0.5
    slack = 2 * np.sqrt(((to_space(pixels, space) - to_space(centre, space)) ** 2).sum(axis=1))
    d = np.sqrt(distances(pixels, colors, space))
    rows = np.arange(len(pixels))
    assert np.all(d[rows, idx] <= d.min(axis=1) + slack + 1e-5)
    assert {tuple(c) for c in rgb} <= {tuple(c) for c in colors}


@pytest.mark.parametrize("space", SPACES)
def test_nearest_exact_matches_reference(space, rng):
    colors = rng.integers(0, 256, (37, 3), dtype=np.uint8)
    frame = rng.integers(0, 256, (31, 17, 3), dtype=np.uint8)
    got = nearest_exact(frame, colors, space).ravel()
    expected = nearest_reference(frame.reshape(-1, 3), colors, space)
    d = distances(frame.reshape(-1, 3), colors, space)
    rows = np.arange(len(got))
    np.testing.assert_allclose(d[rows, got], d[rows, expected], rtol=1e-6)


@pytest.mark.parametrize("k", [2, 16, 256])
def test_nearest_breaks_exact_ties_to_the_lowest_index(k, rng):
    """Two centres 5 levels either side of a point along the grey axis, which the search walks: their
    projected gaps round differently in float32, and the tie must still go to the lower index."""
    point = np.array([[189.0, 235.0, 247.0]], np.float32)
    for low, high in [(0, k - 1), (k - 1, 0)]:
        centres = rng.integers(0, 120, (k, 3)).astype(np.float32)  # the others all farther
        centres[low], centres[high] = point[0] - 5, point[0] + 5
        assert nearest(point, centres, "rgb")[0] == 0


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("k", [1, 2, 16, 256])
def test_nearest_gives_the_same_answer_from_any_guess(space, k, rng):
    """Guesses from centres before a small move (mostly right), random ones (mostly wrong), twin centres, and
    points on a midpoint between two centres guessed to the higher index (a tie: the lower index wins)."""
    colors = rng.integers(0, 256, (k, 3), dtype=np.uint8)
    colors[k // 2] = colors[0]  # twins: no room around either
    centres = to_space(colors, space)
    pixels = rng.integers(0, 256, (20_000, 3), dtype=np.uint8)  # over `PARALLEL_POINTS`: the threaded kernel too
    points = np.concatenate([to_space(pixels, space), centres, (centres[:1] + centres[-1:]) / 2])
    moved = centres + rng.normal(0, 0.002 if space != "rgb" else 2, centres.shape).astype(np.float32)
    plain = nearest(points, moved, space)
    before = nearest(points, centres, space)
    guesses = [before, rng.integers(0, k, len(points)), np.full(len(points), k - 1)]
    for guess in guesses:
        np.testing.assert_array_equal(nearest(points, moved, space, guess=guess), plain)
    for few in (points[:5000], points[-3:]):  # under `PARALLEL_POINTS`: the serial kernel
        np.testing.assert_array_equal(nearest(few, moved, space, guess=np.full(len(few), k - 1)),
                                      nearest(few, moved, space))
    assert (before == nearest(points, centres, space, guess=before)).all()


@settings(max_examples=40, deadline=None)
@given(colors=palettes)
def test_spread_is_the_median_distance_to_the_nearest_other_colour(colors):
    """The step ordered dither bridges: per channel (Chebyshev), duplicates at distance 0."""
    c = colors.astype(np.float64)
    distance = np.abs(c[:, None, :] - c[None, :, :]).max(axis=2)
    np.fill_diagonal(distance, np.inf)
    expected = float(np.median(distance.min(axis=1))) if len(colors) > 1 else 0.0
    assert build_table(colors, "rgb").spread == expected


def test_table_is_deterministic(rng):
    colors = rng.integers(0, 256, (64, 3), dtype=np.uint8)
    a, b = filled(build_table(colors, "oklab")), filled(build_table(colors, "oklab"))
    np.testing.assert_array_equal(a.table, b.table)
    np.testing.assert_array_equal(a.fine, b.fine)


def table_reference(table, pixels):
    """The table read in numpy: each pixel's cell, or its colour's entry in the cell's fine block (cells must be
    known: see `filled`)."""
    got = table.table[cell_index(pixels)].astype(np.int64)
    assert not np.any(got == UNKNOWN)
    fine = got >= FINE_FLAG
    low = pixels.astype(np.int64) & ((1 << SHIFT) - 1)
    sub = low[:, 0] | (low[:, 1] << SHIFT) | (low[:, 2] << (2 * SHIFT))
    got[fine] = table.fine[(got[fine] - FINE_FLAG) * BLOCK + sub[fine]]
    return got


def tiled(offsets, h, w):
    m = offsets.shape[0]
    return np.tile(offsets, (h // m + 1, w // m + 1))[:h, :w].astype(np.int64)


SHAPES = [(1, 1), (1, 7), (3, 5), (31, 17), (16, 24)]  # one to three pixels past a group of four, and none


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("m", [1, 2, 8])
def test_map_pixels_is_the_table_with_offsets(shape, m, rng):
    colors = rng.integers(0, 256, (23, 3), dtype=np.uint8)
    table, full = build_table(colors, "rgb"), filled(build_table(colors, "rgb"))
    frame = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    offsets = rng.integers(-255, 256, (m, m)).astype(np.int16) if m > 1 else np.zeros((1, 1), np.int16)
    idx, rgb = np.empty(shape, np.uint8), np.empty_like(frame)
    map_pixels(frame, table, offsets, idx, rgb)
    shifted = np.clip(frame + tiled(offsets, *shape)[..., None], 0, 255).reshape(-1, 3)
    np.testing.assert_array_equal(idx.ravel(), table_reference(full, shifted))
    np.testing.assert_array_equal(rgb, colors[idx])
    pixels = frame.reshape(-1, 3)
    np.testing.assert_array_equal(lookup_pixels(pixels, table), table_reference(full, pixels))


def held_reference(frame, table, offsets, threshold, weight, reference, previous):
    """Temporal hold in numpy: what `map_pixels_held` must give."""
    h, w = frame.shape[:2]
    p = frame.reshape(-1, 3).astype(np.int64)
    ref = reference.reshape(-1, 3).astype(np.int64)
    before = previous.ravel().astype(np.int64)
    shifted = table.shifted[tiled(offsets, h, w).reshape(-1, 1) + 255, p]  # offsets on the table's dither scale
    best = table_reference(table, shifted)
    still = np.abs(p - ref).max(axis=1) <= threshold
    idx = np.where(still, before, best)
    if weight >= 0:
        c = table.colors.astype(np.int64)
        saved = ((p - c[before]) ** 2).sum(axis=1) - ((p - c[best]) ** 2).sum(axis=1)
        shown = np.abs(c[before] - c[best]).sum(axis=1)
        idx = np.where(still & (saved > weight * shown), best, idx)
    kept = still if weight < 0 else np.zeros_like(still)  # a weighed pixel's index is chosen again at p
    new_ref = np.where(kept[:, None], ref, p)
    return idx.reshape(h, w), new_ref.reshape(h, w, 3)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weight", [-1.0, 0.0, 20.0])
@pytest.mark.parametrize("in_place", [False, True])
def test_map_pixels_held_keeps_still_pixels(shape, weight, in_place, rng):
    colors = rng.integers(0, 256, (16, 3), dtype=np.uint8)
    table = build_table(colors, "oklab")
    reference = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    change = rng.integers(-6, 7, (*shape, 3)) * (rng.random((*shape, 1)) < 0.5)
    frame = np.clip(reference + change, 0, 255).astype(np.uint8)
    previous = rng.integers(0, 16, shape, dtype=np.uint8)
    offsets = rng.integers(-20, 21, (4, 4)).astype(np.int16)
    full = filled(build_table(colors, "oklab"))
    expected_idx, expected_ref = held_reference(frame, full, offsets, 3, weight, reference, previous)
    before = previous.copy()
    out_idx = previous if in_place else np.empty(shape, np.uint8)
    rgb = np.empty_like(frame)
    map_pixels_held(frame, table, offsets, 3, weight, reference, previous, out_idx, rgb)
    np.testing.assert_array_equal(out_idx, expected_idx)
    np.testing.assert_array_equal(reference, expected_ref)
    np.testing.assert_array_equal(rgb, colors[out_idx])
    if not in_place:
        np.testing.assert_array_equal(previous, before)


PALETTES = {
    **{f"random {k}": np.random.default_rng(k).integers(0, 256, (k, 3), dtype=np.uint8) for k in (1, 2, 16, 64, 256)},
    # Cell centres (2 c + 0.5) halfway between two greys 3 levels apart: exact ties, in both spaces.
    "grey every 3": np.repeat(np.arange(0, 256, 3, dtype=np.uint8)[:, None], 3, axis=1),
    "duplicates": np.tile(np.random.default_rng(5).integers(0, 256, (8, 3), dtype=np.uint8), (3, 1)),
}


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("name", PALETTES)
def test_lazy_table_gives_the_full_table(space, name, rng):
    """Cells filled in as pixels meet them, in any order and by any kernel, hold what a full table holds:
    the exact nearest entry to the cell centre, ties to the lowest index."""
    colors = PALETTES[name]
    full = filled(build_table(colors, space))
    cells = rng.integers(0, LEVELS**3, 3000)
    points = to_space(cell_corners()[cells] + ((1 << SHIFT) - 1) / 2, space)
    centres = to_space(colors, space)
    e = [points[:, None, ch] - centres[None, :, ch] for ch in range(3)]  # float32, as the kernel computes
    expected = (e[0] * e[0] + e[1] * e[1] + e[2] * e[2]).argmin(axis=1)
    plain = full.table[cells] < FINE_FLAG
    np.testing.assert_array_equal(full.table[cells][plain], expected[plain])

    grey = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    pixels = np.concatenate([rng.integers(0, 256, (20000, 3), dtype=np.uint8), colors, grey])
    np.testing.assert_array_equal(lookup_pixels(pixels, build_table(colors, space)), table_reference(full, pixels))

    frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    offsets = rng.integers(-40, 41, (4, 4)).astype(np.int16)
    for call in (
        lambda table, idx, rgb: map_pixels(frame, table, offsets, idx, rgb),
        lambda table, idx, rgb: map_pixels_held(frame, table, offsets, 0, -1.0, np.zeros_like(frame),
                                                np.zeros(idx.shape, np.uint8), idx, rgb),
        lambda table, idx, rgb: diffuse(frame, table, "floyd-steinberg", 1.0, idx, rgb),
    ):
        outputs = []
        for table in (build_table(colors, space), full):
            idx, rgb = np.empty(frame.shape[:2], np.uint8), np.empty_like(frame)
            call(table, idx, rgb)
            outputs.append((idx, rgb))
        np.testing.assert_array_equal(outputs[0][0], outputs[1][0])
        np.testing.assert_array_equal(outputs[0][1], outputs[1][1])
