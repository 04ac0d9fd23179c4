"""The compiled lookup against the numpy brute force."""

import functools

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from livequant.colorspace import to_space
from livequant.dither import diffuse
from livequant.kernels import BITS, LEVELS, SHIFT
from livequant.lookup import (
    GENERATIONS,
    build_table,
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
    """``table`` with every cell met once through the kernels, so every colour is known."""
    lookup_pixels(cell_corners(), table)
    assert np.all(table.table >> 8 == table.generation)
    return table


def assert_nearest(pixels, got, colors, space):
    """``got`` is each pixel's nearest palette index, ties to the lowest: exactly so in ``"rgb"`` (integer
    distances), within float32 rounding in OKLab, 1e-6 in distance (the kernels compute a colour's coordinates
    in float64; `to_space` in float32: a colour between two a level apart went either way)."""
    if space == "rgb":
        np.testing.assert_array_equal(got, nearest_reference(pixels, colors, space))
        return
    d = distances(pixels, colors, space)
    rows = np.arange(len(pixels))
    assert np.all(np.sqrt(d[rows, got]) <= np.sqrt(d.min(axis=1)) + 1e-6)


@pytest.mark.parametrize("space", SPACES)
@settings(max_examples=40, deadline=None)
@given(colors=palettes)
def test_palette_colours_map_to_themselves(space, colors):
    idx, rgb = apply(build_table(colors, space), colors)
    np.testing.assert_array_equal(rgb, colors)


def around(colors):
    """Each colour and its 26 neighbours a level away on each channel (clipped), ``(27 K, 3) uint8``."""
    steps = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    return np.clip(colors.astype(np.int64)[:, None, :] + steps[None], 0, 255).reshape(-1, 3).astype(np.uint8)


@pytest.mark.parametrize("space", SPACES)
@settings(max_examples=25, deadline=None)
@given(colors=palettes, seed=st.integers(0, 2**32 - 1))
@example(colors=np.array([[145, 177, 145]] + [[145, 145, 145]] * 5 + [[145, 145, 163]], np.uint8), seed=1970)
def test_every_colour_gets_the_brute_force_nearest(space, colors, seed):
    """Random colours, the palette's neighbourhoods (where boundaries cross cells) and the darkest colours
    (where OKLab's cube root is steepest), met in one order by the serial kernel and in another by the
    threaded one."""
    rng = np.random.default_rng(seed)
    darkest = np.stack(np.meshgrid(*[np.arange(8)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    pixels = np.concatenate([rng.integers(0, 256, (3000, 3)), around(colors), darkest]).astype(np.uint8)
    got = lookup_pixels(pixels, build_table(colors, space))
    assert_nearest(pixels, got, colors, space)
    order = rng.permutation(len(pixels))
    idx, _ = apply(build_table(colors, space), pixels[order])
    np.testing.assert_array_equal(idx, got[order])


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
    """Two centres 5 levels either side of a point: the tie goes to the lower index, wherever the two sit."""
    point = np.array([[189.0, 235.0, 247.0]], np.float32)
    for low, high in [(0, k - 1), (k - 1, 0)]:
        centres = rng.integers(0, 120, (k, 3)).astype(np.float32)  # the others all farther
        centres[low], centres[high] = point[0] - 5, point[0] + 5
        assert nearest(point, centres)[0] == 0


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("k", [1, 2, 16, 255, 256])
def test_nearest_is_the_float32_brute_force_argmin(space, k, rng):
    """Each point's centre is the first minimum of its float32 squared distances, computed as the kernel does:
    on random colours, on the centres themselves (twins among them: the lower index), and on midpoints."""
    colors = rng.integers(0, 256, (k, 3), dtype=np.uint8)
    colors[k // 2] = colors[0]  # twins
    centres = to_space(colors, space)
    pixels = rng.integers(0, 256, (20_000, 3), dtype=np.uint8)  # over `PARALLEL_POINTS`: the threaded kernel too
    points = np.concatenate([to_space(pixels, space), centres, (centres[:1] + centres[-1:]) / 2])
    gaps = points[:, None, :] - centres[None, :, :]
    expected = (gaps[..., 0] * gaps[..., 0] + gaps[..., 1] * gaps[..., 1] + gaps[..., 2] * gaps[..., 2]).argmin(axis=1)
    np.testing.assert_array_equal(nearest(points, centres), expected)
    for few in (slice(0, 5000), slice(-k - 1, None)):  # under `PARALLEL_POINTS`: the serial kernel
        np.testing.assert_array_equal(nearest(points[few], centres), expected[few])


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
    a, b = filled(build_table(colors, "oklab")), build_table(colors, "oklab")
    pixels = cell_corners()[rng.permutation(LEVELS**3)[:50_000]] + rng.integers(0, 1 << SHIFT, (50_000, 3))
    np.testing.assert_array_equal(lookup_pixels(pixels.astype(np.uint8), a), lookup_pixels(pixels.astype(np.uint8), b))


def test_a_table_on_a_dead_tables_memory_knows_nothing_it_knew(rng):
    """Tables in turn on the same memory, past the generation that zeroes it: each answers for its own
    palette only. Frames seen by the one before leave their colours' entries behind."""
    pixels = rng.integers(0, 256, (2000, 3), dtype=np.uint8)
    generations = []
    for n in range(GENERATIONS + 3):
        colors = rng.integers(0, 256, (1 + n % 40, 3), dtype=np.uint8)
        table = build_table(colors, "rgb")
        generations.append(table.generation)
        assert_nearest(pixels, lookup_pixels(pixels, table), colors, "rgb")
        del table
    assert 1 in generations[generations.index(GENERATIONS):]  # memory reused, then zeroed once round


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
    np.testing.assert_array_equal(idx.ravel(), lookup_pixels(shifted.astype(np.uint8), full))
    np.testing.assert_array_equal(rgb, colors[idx])
    pixels = frame.reshape(-1, 3)
    np.testing.assert_array_equal(lookup_pixels(pixels, table), lookup_pixels(pixels, full))


def held_reference(frame, table, offsets, threshold, weight, reference, previous, shown):
    """Temporal hold in numpy: what `map_pixels_held` must give, ``previous`` having shown ``shown``'s colours."""
    h, w = frame.shape[:2]
    p = frame.reshape(-1, 3).astype(np.int64)
    ref = reference.reshape(-1, 3).astype(np.int64)
    before = previous.ravel().astype(np.int64)
    shifted = table.shifted[tiled(offsets, h, w).reshape(-1, 1) + 255, p]  # offsets on the table's dither scale
    best = lookup_pixels(np.ascontiguousarray(shifted, dtype=np.uint8), table)
    still = np.abs(p - ref).max(axis=1) <= threshold
    idx = np.where(still, before, best)
    if weight >= 0:
        c, was = table.colors.astype(np.int64), shown.colors.astype(np.int64)[before]
        saved = ((p - c[before]) ** 2).sum(axis=1) - ((p - c[best]) ** 2).sum(axis=1)
        more = np.abs(was - c[best]).sum(axis=1) - np.abs(was - c[before]).sum(axis=1)
        idx = np.where(still & (saved > weight * more), best, idx)
    kept = still if weight < 0 else np.zeros_like(still)  # a weighed pixel's index is chosen again at p
    new_ref = np.where(kept[:, None], ref, p)
    return idx.reshape(h, w), new_ref.reshape(h, w, 3)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weight", [-1.0, 0.0, 20.0])
@pytest.mark.parametrize("in_place", [False, True])
def test_map_pixels_held_keeps_still_pixels(shape, weight, in_place, rng):
    """Still pixels keep their index; after a palette change (``weight >= 0``) one moves when the error it saves
    outweighs the extra change it shows from its colour in the previous palette (some slots moved a little,
    some far)."""
    colors = rng.integers(0, 256, (16, 3), dtype=np.uint8)
    table = build_table(colors, "oklab")
    moved = colors.astype(np.int16) + rng.integers(-4, 5, (16, 3)) * (np.arange(16) % 3 == 0)[:, None]
    moved[::5] = rng.integers(0, 256, (4, 3))
    shown = build_table(np.clip(moved, 0, 255).astype(np.uint8), "oklab")
    reference = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    change = rng.integers(-6, 7, (*shape, 3)) * (rng.random((*shape, 1)) < 0.5)
    frame = np.clip(reference + change, 0, 255).astype(np.uint8)
    previous = rng.integers(0, 16, shape, dtype=np.uint8)
    offsets = rng.integers(-20, 21, (4, 4)).astype(np.int16)
    full = filled(build_table(colors, "oklab"))
    expected_idx, expected_ref = held_reference(frame, full, offsets, 3, weight, reference, previous, shown)
    before = previous.copy()
    out_idx = previous if in_place else np.empty(shape, np.uint8)
    rgb = np.empty_like(frame)
    map_pixels_held(frame, table, offsets, 3, weight, reference, previous, out_idx, rgb, shown=shown)
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
    """Cells filled in as pixels meet them, in any order and by any kernel, hold what a full table holds: each
    colour's nearest entry, ties to the lowest index."""
    colors = PALETTES[name]
    full = filled(build_table(colors, space))
    grey = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    pixels = np.concatenate([rng.integers(0, 256, (20000, 3), dtype=np.uint8), around(colors), grey])
    got = lookup_pixels(pixels, build_table(colors, space))
    np.testing.assert_array_equal(got, lookup_pixels(pixels, full))
    assert_nearest(pixels, got, colors, space)

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
