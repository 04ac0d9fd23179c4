"""The compiled lookup against the numpy brute force."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from livequant.colorspace import to_space
from livequant.lookup import LEVELS, SHIFT, build_table, map_frame, nearest_exact, nearest_reference

SPACES = ["oklab", "rgb"]
palettes = arrays(np.uint8, st.tuples(st.integers(1, 256), st.just(3)))


def apply(table, pixels):
    """Map ``(N, 3)`` pixels through ``table`` with the compiled kernel."""
    frame = np.ascontiguousarray(pixels.reshape(1, -1, 3))
    idx = np.empty(frame.shape[:2], np.uint8)
    rgb = np.empty_like(frame)
    map_frame(frame, table.table, table.fine, table.colors, np.zeros((1, 1), np.int16), idx, rgb)
    return idx[0], rgb[0]


def distances(pixels, colors, space):
    p, c = to_space(pixels, space), to_space(colors, space)
    return ((p[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)


@pytest.mark.parametrize("space", SPACES)
@settings(max_examples=40, deadline=None)
@given(colors=palettes)
def test_palette_colours_map_to_themselves(space, colors):
    idx, rgb = apply(build_table(colors, space), colors)
    np.testing.assert_array_equal(rgb, colors)


@pytest.mark.parametrize("space", SPACES)
@settings(max_examples=25, deadline=None)
@given(colors=palettes, seed=st.integers(0, 2**32 - 1))
def test_cell_centres_get_the_brute_force_nearest(space, colors, seed):
    table = build_table(colors, space)
    cells = np.random.default_rng(seed).integers(0, LEVELS**3, 4000)
    width = 1 << SHIFT
    corner = np.stack([cells >> (2 * 7), (cells >> 7) % LEVELS, cells % LEVELS], axis=1) * width
    centres = corner + (width - 1) / 2
    expected = nearest_reference(centres, colors, space)
    got = table.table[cells].astype(np.int64)
    plain = got < 256  # cells holding palette colours are checked pixel by pixel below
    d = distances(centres[plain], colors, space)
    rows = np.arange(plain.sum())
    # Same entry, or an exact tie (duplicate colours).
    assert np.all((got[plain] == expected[plain]) | (d[rows, got[plain]] == d[rows, expected[plain]]))


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


def test_table_is_deterministic(rng):
    colors = rng.integers(0, 256, (64, 3), dtype=np.uint8)
    a, b = build_table(colors, "oklab"), build_table(colors, "oklab")
    np.testing.assert_array_equal(a.table, b.table)
    np.testing.assert_array_equal(a.fine, b.fine)
