"""Palette fitting decisions: when to refit, which slot a new colour lands in, which slots take their change."""

import cv2
import numpy as np
import pytest
from sklearn.cluster import KMeans

from livequant import fit
from livequant.colorspace import to_space
from livequant.fit import Fit, PaletteFitter, sample_positions
from livequant.kernels import kmeans_plusplus, lloyd_sums
from livequant.lookup import nearest
from livequant.track import RefitPolicy

GRAYS = np.array([[0, 0, 0], [60, 60, 60], [120, 120, 120], [250, 250, 250]], np.uint8)


def fitter(k: int = 4, **options) -> PaletteFitter:
    return PaletteFitter(k, color_space="rgb", sample_size=4096, seed=0, **options)


def as_fit(colors) -> Fit:
    colors = np.asarray(colors, np.uint8)
    return Fit(colors=colors, centres=to_space(colors, "rgb"), error=0.0)


# RefitPolicy.decide


def test_the_policy_keeps_a_palette_whose_error_holds():
    policy = RefitPolicy(refit_every=0)
    policy.fitted(10.0)
    assert [policy.decide(e) for e in (10.0, 12.0, 12.5, 9.0)] == ["keep"] * 4


def test_the_policy_refits_warm_on_drift_and_fresh_on_a_scene_cut():
    policy = RefitPolicy(refit_every=0, drift=0.25, scene_cut=3.0)
    policy.fitted(10.0)
    assert policy.decide(12.6) == "warm"  # more than 25 % over the error at the last fit
    assert policy.decide(29.0) == "warm"
    assert policy.decide(30.1) == "fresh"  # more than three times


def test_the_policy_refits_on_its_clock_counting_from_the_last_fit():
    policy = RefitPolicy(refit_every=3)
    policy.fitted(10.0)
    assert [policy.decide(10.0) for _ in range(3)] == ["keep", "keep", "warm"]
    policy.fitted(10.0)
    assert [policy.decide(10.0) for _ in range(3)] == ["keep", "keep", "warm"]


def test_a_fit_moves_the_baseline_the_policy_compares_with():
    policy = RefitPolicy(refit_every=0)
    policy.fitted(10.0)
    assert policy.decide(20.0) == "warm"
    policy.fitted(20.0)
    assert policy.decide(20.0) == "keep"


def test_a_refit_that_paid_is_tried_again_on_the_next_frame():
    policy = RefitPolicy(refit_every=3, chase=0.05)
    policy.fitted(10.0)
    assert [policy.decide(10.0) for _ in range(3)] == ["keep", "keep", "warm"]
    policy.fitted(9.0, shown=9.0)  # 10 % less error than the palette it replaced: the picture moves, follow it
    assert policy.decide(9.0) == "warm"
    policy.fitted(8.8, shown=8.8)  # 2 % less: back to the clock
    assert [policy.decide(8.8) for _ in range(3)] == ["keep", "keep", "warm"]
    policy.fitted(8.0, shown=8.7)  # the exact error fell 9 %, but the frame shown through the table 1 %
    assert [policy.decide(8.7) for _ in range(3)] == ["keep", "keep", "warm"]
    policy.fitted(8.0)  # the palette did not change: nothing to chase
    assert policy.decide(8.0) == "keep"
    policy.decide(20.0)
    policy.failed()  # a refit that failed is not chased: the clock again, the baseline kept
    assert [policy.decide(8.8) for _ in range(3)] == ["keep", "keep", "warm"]
    unchased = RefitPolicy(refit_every=3)
    unchased.fitted(10.0)
    unchased.decide(10.0)
    unchased.fitted(5.0, shown=5.0)
    assert unchased.decide(5.0) == "keep"


def test_before_any_fit_any_error_is_a_scene_cut():
    assert RefitPolicy(refit_every=0).decide(0.5) == "fresh"


# slot matching (a warm fit keeps each colour in its slot)


@pytest.mark.parametrize("order", [[3, 1, 0, 2], [1, 0, 3, 2], [0, 1, 2, 3]])
def test_a_warm_fit_puts_each_colour_in_the_slot_it_had(order):
    samples = np.repeat(GRAYS, 50, axis=0)
    previous = as_fit(GRAYS[order])
    assert fitter().fit(samples, previous).colors.tolist() == GRAYS[order].tolist()


def test_a_warm_fit_puts_moved_colours_in_the_nearest_slot():
    previous = as_fit([[250, 250, 250], [0, 0, 0], [120, 120, 120], [60, 60, 60]])
    moved = GRAYS.astype(int) + [[5, 5, 5], [4, 4, 4], [-3, -3, -3], [-6, -6, -6]]
    colors = fitter().fit(np.repeat(moved.astype(np.uint8), 50, axis=0), previous).colors
    assert colors.tolist() == [[244, 244, 244], [5, 5, 5], [117, 117, 117], [64, 64, 64]]


def test_locked_colours_stay_first_in_a_warm_fit():
    locked = np.array([[255, 0, 0]], np.uint8)
    previous = as_fit([[255, 0, 0], [250, 250, 250], [0, 0, 0]])
    samples = np.repeat(np.array([[0, 0, 0], [250, 250, 250], [255, 0, 0]], np.uint8), 50, axis=0)
    colors = fitter(3, locked=locked).fit(samples, previous).colors
    assert colors.tolist() == [[255, 0, 0], [250, 250, 250], [0, 0, 0]]


def test_a_fit_is_the_same_for_the_same_seed(rng):
    samples = rng.integers(0, 256, (3000, 3), dtype=np.uint8)
    first, second = fitter(8).fit(samples), fitter(8).fit(samples)
    assert np.array_equal(first.colors, second.colors)


# settle: a slot takes its new colour when the error it saves outweighs the flicker


OLD = np.array([[0, 0, 0], [248, 248, 248]], np.uint8)
NEW = np.array([[0, 0, 0], [250, 250, 250]], np.uint8)
SAMPLES = np.repeat(np.array([[0, 0, 0], [250, 250, 250]], np.uint8), 100, axis=0)


def test_settle_with_no_stability_takes_every_change_that_helps():
    still = np.ones(len(SAMPLES), bool)
    assert fitter(2, stability=0.0).settle(OLD, NEW, SAMPLES, still).tolist() == [False, True]


def test_settle_keeps_a_small_gain_under_a_still_background():
    still = np.ones(len(SAMPLES), bool)
    assert fitter(2, stability=10.0).settle(OLD, NEW, SAMPLES, still).tolist() == [False, False]


def test_settle_lets_slots_on_moving_content_follow_the_picture():
    moving = np.zeros(len(SAMPLES), bool)
    assert fitter(2, stability=10.0).settle(OLD, NEW, SAMPLES, moving).tolist() == [False, True]


def test_settle_takes_a_large_gain_even_under_a_still_background():
    old = np.array([[0, 0, 0], [150, 150, 150]], np.uint8)
    still = np.ones(len(SAMPLES), bool)
    assert fitter(2, stability=10.0).settle(old, NEW, SAMPLES, still).tolist() == [False, True]


def test_settle_never_takes_a_change_that_costs_error():
    worse = np.array([[0, 0, 0], [200, 200, 200]], np.uint8)
    moving = np.zeros(len(SAMPLES), bool)
    assert fitter(2, stability=0.0).settle(NEW, worse, SAMPLES, moving).tolist() == [False, False]


@pytest.mark.parametrize("still_levels, moved", [(3, True), (10, False)])
def test_a_fit_lets_pixels_that_creep_since_the_last_fit_move_their_slot(still_levels, moved):
    old = np.array([[0, 0, 0], [100, 100, 100]], np.uint8)
    previous = Fit(old, to_space(old, "rgb"), 0.0)
    gray = lambda level, n: np.full((n, 3), level, np.uint8)  # noqa: E731
    # Black stays; the grey slot's pixels crept 6 levels apart since the last fit (each frame's step under
    # the still threshold, as in a zoom), and new content came into it.
    samples = np.concatenate([gray(0, 100), gray(94, 100), gray(106, 100), gray(130, 200)])
    since = np.concatenate([gray(0, 100), gray(100, 200), gray(200, 200)])
    still = np.arange(500) < 300
    fitter2 = PaletteFitter(2, color_space="rgb", sample_size=500, seed=0, stability=100.0, still_levels=still_levels)
    colors = fitter2.fit(samples, previous=previous, still=still, since=since).colors
    assert colors[0].tolist() == [0, 0, 0]
    assert (colors[1].tolist() == [115] * 3) if moved else (colors[1].tolist() == [100] * 3)


@pytest.mark.parametrize("space", ["rgb", "oklab"])
def test_keep_close_takes_back_nearby_colours_within_its_error_allowance(rng, space):
    centres = np.array([[40, 40, 40], [120, 60, 30], [200, 200, 210], [250, 240, 120]], np.float64)
    samples = np.clip(np.repeat(centres, 500, axis=0) + rng.normal(0, 6, (2000, 3)), 0, 255).astype(np.uint8)
    fitter = PaletteFitter(4, color_space=space, sample_size=2000, seed=0)
    fit = fitter.fit(samples)
    before = np.array([[42, 41, 39], [118, 61, 33], [90, 150, 250], [0, 0, 0]], np.uint8)  # two near, two far
    assert np.array_equal(fitter.keep_close(fit, before, 0.0, samples).colors, fit.colors)
    kept = fitter.keep_close(fit, before, 0.12, samples)
    taken = {tuple(c) for c in kept.colors.tolist()} & {tuple(c) for c in before.tolist()}
    assert taken == {tuple(c) for c in before[:2].tolist()}  # the near ones, each once
    assert fit.error <= kept.error <= 1.12 * fit.error


@pytest.mark.parametrize("space", ["oklab", "rgb"])
def test_fit_around_keeps_the_slots_of_still_content_and_fits_the_others_to_what_changed(rng, space):
    old = np.array([[40, 40, 40], [120, 60, 30], [200, 200, 210], [90, 150, 250]], np.uint8)
    previous = Fit(old, to_space(old, space), 0.0)
    lit = np.array([[250, 240, 120], [255, 200, 90]], np.float64)  # a light on where the blue was
    centres = np.concatenate([old[:3], lit])
    samples = np.clip(np.repeat(centres, 400, axis=0) + rng.normal(0, 3, (2000, 3)), 0, 255).astype(np.uint8)
    still = np.arange(2000) < 1200  # the first three colours did not move
    fitter4 = PaletteFitter(4, color_space=space, sample_size=2000, seed=0)
    around = fitter4.fit_around(samples, previous, still)
    assert np.array_equal(around.colors[:3], old[:3])  # kept, slot for slot
    assert np.abs(around.colors[3].astype(int) - lit.mean(axis=0)).max() < 25  # the free slot went to the light
    assert around.error < fitter4.error(samples, previous) / 4
    assert fitter4.fit_around(samples, previous, np.zeros(2000, bool)) is None  # nothing still: nothing to keep


@pytest.mark.parametrize("space", ["oklab", "rgb"])
def test_follow_drift_moves_the_slots_with_a_fade_and_not_with_noise_or_motion(rng, space):
    old = np.array([[40, 40, 40], [120, 60, 30], [200, 200, 210], [90, 150, 250]], np.uint8)
    since = np.clip(np.repeat(old.astype(np.float64), 500, axis=0) + rng.normal(0, 2, (2000, 3)), 0, 255)
    since = since.astype(np.uint8)
    still = np.ones(2000, bool)
    fitter4 = PaletteFitter(4, color_space=space, sample_size=2000, seed=0)
    darker = (since - 3).astype(np.uint8)  # a fade: every pixel 3 levels darker since the last fit
    colors, carried = fitter4.follow_drift(old, darker, still, since)
    assert np.abs(colors.astype(int) - (old.astype(int) - 3)).max() <= 1
    assert np.abs(carried).max() <= 0.5  # what rounding to whole levels left
    noise = np.clip(since + rng.integers(-1, 2, since.shape), 0, 255).astype(np.uint8)
    assert fitter4.follow_drift(old, noise, still, since) is None
    both_ways = since.astype(np.int16) + np.where(np.arange(2000) % 2, 3, -3)[:, None]  # motion over a gradient
    assert fitter4.follow_drift(old, both_ways.astype(np.uint8), still, since) is None


def test_follow_drift_carries_a_fraction_of_a_level_to_the_next_refit():
    old = np.array([[60, 200, 120], [180, 90, 30]], np.uint8)
    since = np.repeat(old, 1000, axis=0)
    fitter2 = PaletteFitter(2, color_space="rgb", sample_size=2000, seed=0)
    colors, carried = old, None
    for _ in range(5):  # five refits of a fade, each 0.4 levels darker on average (two pixels in five, one level)
        samples = since.copy()
        samples[np.arange(2000) % 5 < 2] -= 1
        colors, carried = fitter2.follow_drift(colors, samples, np.ones(2000, bool), since, carried)
        since = np.repeat(colors, 1000, axis=0)  # the next refit's pixels start at the colours shown
    # rounded each time, 0.4 levels would never move a slot; carried, five refits move it 2 levels
    np.testing.assert_array_equal(colors.astype(int), old.astype(int) - 2)


def test_follow_drift_moves_each_channel_that_clearly_drifts():
    old = np.array([[200, 150, 3], [120, 220, 2]], np.uint8)  # saturated: one channel near black
    since = np.repeat(old, 1000, axis=0)
    samples = since.astype(np.int16) - [3, 2, 0]
    samples[::7, 2] -= 1  # the dark channel: a few pixels one level down, against noise of its own
    samples[1::7, 2] += 1
    fitter2 = PaletteFitter(2, color_space="rgb", sample_size=2000, seed=0)
    colors, _ = fitter2.follow_drift(old, samples.clip(0, 255).astype(np.uint8), np.ones(2000, bool), since)
    # the slots follow in red and green although blue shows no clear drift (they stayed put while any channel
    # did not, and lagged a fade at 256 colours)
    np.testing.assert_array_equal(colors.astype(int), old.astype(int) - [3, 2, 0])


@pytest.mark.parametrize("shift, moves", [(1, False), (2, False), (6, True)])
def test_a_warm_refit_leaves_a_slot_that_would_move_too_little_to_see(rng, shift, moves):
    old = np.array([[40, 40, 40], [120, 60, 30], [200, 200, 210], [90, 150, 250]], np.uint8)
    moved = np.repeat(old.astype(np.float64) + shift, 500, axis=0) + rng.normal(0, 1.5, (2000, 3))
    samples = np.clip(np.rint(moved), 0, 255).astype(np.uint8)  # the picture moved by shift levels
    colors = fitter(4).fit(samples, previous=as_fit(old), still=np.zeros(2000, bool)).colors
    assert np.array_equal(colors, old) != moves
    if moves:
        assert np.abs(colors.astype(int) - (old.astype(int) + shift)).max() <= 1


# PaletteFitter.rough


def test_a_rough_palette_spreads_over_the_lightness_of_the_samples():
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    greys = np.sort(fitter().rough(ramp)[:, 0].astype(int))
    np.testing.assert_allclose(greys, [32, 96, 160, 224], atol=8)  # the quarters' middles, one Lloyd step on
    locked = fitter(locked=np.array([[255, 0, 0]], np.uint8)).rough(ramp)
    assert len(locked) == 4 and tuple(locked[0]) == (255, 0, 0)
    assert len(fitter(8).rough(GRAYS)) == 4  # no more colours than the samples have


# PaletteFitter.histogram: fine palettes are fitted to every pixel


def test_the_histogram_gathers_every_pixel_in_its_table_cell(rng):
    frame = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    frame[:20] = frame[0, 0]  # many pixels in one cell
    fine = PaletteFitter(256, color_space="oklab", sample_size=1024, seed=0)
    colors, counts = fine.histogram(frame)
    pixels = frame.reshape(-1, 3).astype(np.int64)
    cells = (pixels >> 1) @ [1, 128, 128 * 128]
    expected, inverse, expected_counts = np.unique(cells, return_inverse=True, return_counts=True)
    means = np.stack([np.bincount(inverse, weights=pixels[:, c]) for c in range(3)], axis=1) / expected_counts[:, None]
    order = np.argsort((colors.astype(np.int64) >> 1) @ [1, 128, 128 * 128])
    np.testing.assert_array_equal(counts[order], expected_counts)
    np.testing.assert_allclose(colors[order], means, atol=1e-4)
    again = fine.histogram(frame)  # the cell rows were reset
    np.testing.assert_array_equal(again[1], counts)
    assert fitter(32).histogram(frame) is None  # coarser palettes are fitted to the sample


@pytest.mark.parametrize("space", ["oklab", "rgb"])
def test_a_frame_of_few_colours_a_level_apart_fills_a_fine_palette(rng, space):
    """A screen recording's anti-aliased text: colours in pairs 1 level apart, 362 of them, which the table's
    cells (2 levels wide) would merge into 181: the palette of 256 gets a slot for each of the 256 commonest."""
    base = rng.integers(0, 127, (181, 3)) * 2
    colors = np.concatenate([base, base + (1, 0, 0)]).astype(np.uint8)
    frame = np.ascontiguousarray(np.repeat(colors, 60, axis=0).reshape(181, 120, 3))
    fitter = PaletteFitter(256, color_space=space, sample_size=16384, seed=0)
    colors_met, counts = fitter.histogram(frame)
    assert len(colors_met) == 362 and counts.sum() == frame.shape[0] * frame.shape[1]
    palette = fitter.fit(fitter.sample(frame), histogram=(colors_met, counts)).colors
    assert len(np.unique(palette, axis=0)) == 256
    error = np.abs(palette[nearest(to_space(frame.reshape(-1, 3), space), to_space(palette, space))].astype(int)
                   - frame.reshape(-1, 3)).max(axis=1)
    assert (error <= 1).all() and (error == 0).mean() > 0.7  # 150 of 181 pairs share a slot: those lose 1 level


def test_a_fine_palette_gives_a_colour_to_detail_the_sample_misses():
    frame = np.zeros((256, 256, 3), np.uint8)
    frame[:, :, 0] = np.arange(256)[None, :]  # a red-blue plane: far more colours than the palette holds
    frame[:, :, 2] = np.arange(256)[:, None]
    fine = PaletteFitter(256, color_space="rgb", sample_size=2048, seed=0)
    unsampled = np.setdiff1d(np.arange(256 * 256), sample_positions(256, 256, 2048, 0))
    frame.reshape(-1, 3)[unsampled[::500][:60]] = (0, 255, 0)  # green specks, all between sample positions
    samples = fine.sample(frame)
    on_sample = fine.fit(samples).colors
    on_frame = fine.fit(samples, histogram=fine.histogram(frame)).colors
    assert np.abs(on_sample.astype(int) - (0, 255, 0)).sum(axis=1).min() > 100
    assert (on_frame == (0, 255, 0)).all(axis=1).any()


@pytest.mark.parametrize("space", ["oklab", "rgb"])
def test_a_fresh_fit_gives_small_bright_features_a_colour_of_their_own(space):
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:180, 0:320]
    dark = np.stack([10 + 40 * x / 320, 10 + 30 * y / 180, 20 + 20 * (x + y) / 500], axis=2)  # a night sky
    frame = np.clip(dark + rng.normal(0, 3, dark.shape), 0, 255)
    stars = np.array([[250, 240, 120], [120, 200, 255], [255, 120, 90], [230, 230, 230], [180, 255, 160],
                      [255, 180, 240]])
    for row, cy in enumerate(range(20, 180, 40)):  # four 3x3 stars of each colour, 0.4 % of the frame
        for column, cx in enumerate(range(25, 320, 50)):
            color = stars[(row + column) % len(stars)]
            frame[cy - 1 : cy + 2, cx - 1 : cx + 2] = color * (0.9 + 0.1 * rng.random(3))
    frame = np.ascontiguousarray(frame.astype(np.uint8))
    fitting = PaletteFitter(64, color_space=space, sample_size=8192, seed=0)
    colors = fitting.fit(fitting.sample(frame)).colors
    off = np.abs(colors[None].astype(int) - stars[:, None]).max(axis=2).min(axis=1)
    # k-means alone left the farthest star colour 58-118 levels from the palette (the sky held the slots)
    assert off.max() <= 24, off


def test_a_fine_palette_moves_the_slots_no_pixel_uses_any_more():
    ramp = np.arange(256, dtype=np.uint8)
    frame = np.zeros((256, 256, 3), np.uint8)
    frame[:, :, 0] = ramp[None, :]  # a red ramp above a blue one
    frame[128:, :, 0] = 0
    frame[128:, :, 2] = ramp[None, :]
    fine = PaletteFitter(128, color_space="rgb", sample_size=4096, seed=0)
    before = fine.fit(fine.sample(frame), histogram=fine.histogram(frame))
    frame[128:] = 0
    frame[128:, :, 1] = ramp[None, :]  # the blue ramp turns green: the blue slots lose every pixel
    samples = fine.sample(frame)
    still = np.zeros(len(samples), bool)
    after = fine.fit(samples, previous=before, still=still, histogram=fine.histogram(frame))
    pixels = to_space(frame.reshape(-1, 3), "rgb")
    assert (np.bincount(nearest(pixels, before.centres), minlength=128) == 0).sum() > 30
    assert np.bincount(nearest(pixels, after.centres), minlength=128).min() > 0
    red = before.colors[:, 0] > 0
    assert (after.colors[red] == before.colors[red]).all(axis=1).mean() > 0.9  # the still red ramp keeps its colours


@pytest.mark.parametrize("left, moved", [(3, False), (6, True)])
def test_a_palette_fitted_to_the_sample_moves_its_slots_no_sample_uses_once_a_quarter_are(rng, left, moved):
    # As after a fade to black: the slots of the bright colours have lost every pixel.
    dark = rng.integers(0, 90, (4000, 3)).astype(np.uint8)
    coarse = PaletteFitter(16, color_space="rgb", sample_size=4000, seed=0)
    bright = np.full((left, 3), 240, np.uint8) + np.arange(left, dtype=np.uint8)[:, None]
    colors = np.concatenate([coarse.fit(dark[: 16 - left]).colors, bright])  # the dark slots seeded on 16 - left
    previous = Fit(colors=colors, centres=to_space(colors, "rgb"), error=0.0)
    after = coarse.fit(dark, previous=previous, still=np.zeros(4000, bool))
    assert (after.colors[16 - left :] == bright).all(axis=1).any() != moved
    if moved:  # every slot serves the picture again
        assert np.bincount(nearest(to_space(dark, "rgb"), after.centres), minlength=16).min() > 0


def test_a_fresh_fine_palette_scores_as_full_k_means_on_its_histogram(rng):
    frame = np.zeros((256, 256, 3), np.uint8)
    frame[:, :, 0] = np.arange(256)[None, :] // 4 + 96  # a gentle red-blue gradient over most of the frame
    frame[:, :, 2] = np.arange(256)[:, None] // 4 + 96
    specks = rng.random((256, 256)) < 0.1  # and a tenth of the pixels random, nearly every one its own colour
    frame[specks] = rng.integers(0, 256, (specks.sum(), 3), dtype=np.uint8)
    fine = PaletteFitter(256, color_space="rgb", sample_size=4096, seed=0)
    colors, counts = fine.histogram(frame)
    fit = fine.fit(fine.sample(frame), histogram=(colors, counts))
    reference = KMeans(256, n_init=1, random_state=0).fit(colors, sample_weight=counts).cluster_centers_
    pixels = to_space(frame.reshape(-1, 3), "rgb")

    def error(centres):
        centres = centres.astype(np.float32)
        return ((pixels - centres[nearest(pixels, centres)]) ** 2).sum(axis=1).mean()

    # seeds drawn from the histogram's colours, rare or not (MiniBatchKMeans), scored 1.2-1.3x the reference
    assert error(fit.centres) < 1.05 * error(reference)


def rounded_palette_error(frame: np.ndarray, colours: np.ndarray) -> float:
    """Mean squared RGB error of ``frame`` mapped to ``colours`` rounded to uint8, each pixel to its nearest."""
    pixels = to_space(frame.reshape(-1, 3), "rgb")
    centres = to_space(np.clip(np.rint(colours), 0, 255).astype(np.uint8), "rgb")
    return float(((pixels - centres[nearest(pixels, centres)]) ** 2).sum(axis=1).mean())


def test_a_fine_palette_fits_each_colour_of_a_smooth_noisy_picture_its_cells_would_blur(rng):
    """An overcast sky, a ramp of 15 levels under sensor noise (sigma 1.2), fills some 300 of the table's cells,
    about one a slot of 256: fitted to the cells' means a palette had 1.87x full k-means' error (a cell's own
    spread was most of it); fitted colour by colour, 1.01-1.02x."""
    ramp = np.linspace((150, 160, 175), (165, 172, 185), 180)[:, None, :] * np.ones((1, 320, 1))
    frame = np.clip(np.rint(ramp + rng.normal(0, 1.2, ramp.shape)), 0, 255).astype(np.uint8)
    fine = PaletteFitter(256, color_space="rgb", sample_size=16384, seed=0)
    colors, counts = fine.histogram(frame)
    unique, unique_counts = np.unique(frame.reshape(-1, 3), axis=0, return_counts=True)
    assert len(colors) == len(unique)
    fit = fine.fit(fine.sample(frame), histogram=(colors, counts))
    reference = KMeans(256, n_init=1, random_state=0).fit(unique.astype(np.float32), sample_weight=unique_counts)

    assert rounded_palette_error(frame, fit.colors) < 1.1 * rounded_palette_error(frame, reference.cluster_centers_)


def test_a_fine_palette_of_a_screen_recording_gives_rare_text_colours_their_slots():
    """Anti-aliased text on a white page: some 1,200 colours, nearly all of them rare. Seeded on draws by pixel
    count (as larger histograms are), a palette of 256 had 1.12x full k-means' error; fitted as full k-means,
    0.99x."""
    frame = np.full((360, 640, 3), 250, np.uint8)
    frame[:24] = np.linspace((40, 90, 170), (90, 150, 220), 640)[None].astype(np.uint8)
    for line in range(26):
        cv2.putText(frame, f"{line:03d}  The quick brown fox jumps over the lazy dog", (20, 36 + 12 * line),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.35, (30 + line % 5 * 30, 40, 60), 1, cv2.LINE_AA)
    fine = PaletteFitter(256, color_space="rgb", sample_size=16384, seed=0)
    colors, counts = fine.histogram(frame)
    assert fit.FEW_COLORS < len(colors) <= fit.FULL_FIT_POINTS
    palette = fine.fit(fine.sample(frame), histogram=(colors, counts)).colors
    reference = KMeans(256, n_init=1, random_state=0).fit(colors, sample_weight=counts).cluster_centers_

    assert rounded_palette_error(frame, palette) <= rounded_palette_error(frame, reference)


@pytest.mark.parametrize("space, expected", [("oklab", (200, 40, 40)), ("rgb", (184, 40, 56))])
def test_an_oklab_palette_minimises_the_mean_distance_and_an_rgb_one_the_mean_squared(space, expected):
    frame = np.zeros((40, 40, 3), np.uint8)
    frame[:] = (200, 40, 40)
    frame[:4] = (40, 40, 200)  # a tenth blue
    one = PaletteFitter(1, color_space=space, sample_size=4096, seed=0)
    # oklab: the geometric median, the red (CIEDE2000 averages distances); rgb: the mean (PSNR, squared error)
    assert np.abs(one.fit(one.sample(frame)).colors[0].astype(int) - expected).max() <= 1


def reference_kmeans_plusplus(points, weights, k, trials, uniforms):
    """Greedy k-means++ written out in numpy, one seed at a time."""
    points = points.astype(np.float64)
    picks = [min(int(np.searchsorted(np.cumsum(weights), uniforms[0] * weights.sum(), side="right")), len(points) - 1)]
    closest = ((points - points[picks[0]]) ** 2).sum(axis=1)
    for s in range(1, k):
        cumulative = np.cumsum(weights * closest)
        drawn = np.searchsorted(cumulative, uniforms[1 + (s - 1) * trials:1 + s * trials] * cumulative[-1], "right")
        drawn = drawn.clip(max=len(points) - 1)
        distances = np.minimum(closest[:, None], ((points[:, None] - points[drawn][None]) ** 2).sum(axis=2))
        best = int(np.argmin(weights @ distances))
        closest, picks = distances[:, best], picks + [int(drawn[best])]
    return np.array(picks)


@pytest.mark.parametrize("k", [4, 16, 64])
def test_the_compiled_k_means_plus_plus_picks_the_seeds_the_algorithm_defines(rng, k):
    points = rng.integers(0, 256, (1500, 3)).astype(np.float64)
    weights = rng.integers(1, 40, 1500).astype(np.float64)
    trials = 2 + int(np.log(k))
    uniforms = rng.random(1 + (k - 1) * trials)
    picks = kmeans_plusplus(points, weights, k, trials, uniforms)
    assert np.array_equal(picks, reference_kmeans_plusplus(points, weights, k, trials, uniforms))


def test_k_means_plus_plus_seeds_every_separate_cluster_once(rng):
    centres = rng.permutation(np.stack(np.meshgrid(*[np.arange(0, 256, 60)] * 3), -1).reshape(-1, 3))[:20]
    points = (np.repeat(centres, 30, axis=0) + rng.normal(0, 2, (600, 3))).astype(np.float64)
    picks = kmeans_plusplus(points, np.ones(600), 20, 2 + int(np.log(20)), rng.random(1 + 19 * 4))
    assert sorted(picks // 30) == list(range(20))


def test_a_rough_fresh_fit_tells_a_stuck_palette_from_a_good_one(rng):
    frame = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)  # colours everywhere in the cube
    fine = PaletteFitter(64, color_space="rgb", sample_size=4096, seed=0)
    samples, histogram = fine.sample(frame), fine.histogram(frame)
    good = fine.fit(samples, histogram=histogram)
    stuck = as_fit(np.clip(good.colors // 4, 0, 255))  # the same palette squeezed into the dark corner
    assert fine.beaten_afresh(samples, stuck, histogram)
    assert not fine.beaten_afresh(samples, good, histogram)


@pytest.mark.parametrize("still_blue", [False, True])
def test_a_warm_refit_moves_a_slot_no_still_sample_uses_to_where_the_error_is(still_blue, monkeypatch):
    # A gray still background, a red ramp in motion, and two slots on a few blue pixels that are leaving the
    # picture (as in a zoom): one blue slot does more for the ramp, unless still pixels show it.
    ramp = np.stack([np.repeat(np.arange(256), 8), np.zeros(2048), np.zeros(2048)], axis=1)
    blues = np.array([[0, 0, 200]] * 20 + [[0, 0, 210]] * 20)
    samples = np.concatenate([np.full((2000, 3), 128), ramp, blues]).astype(np.uint8)
    still = np.zeros(len(samples), bool)
    still[:2000] = True
    still[-40:] = still_blue
    reds = np.stack([np.linspace(9, 246, 13), np.zeros(13), np.zeros(13)], axis=1)
    colors = np.concatenate([[[128, 128, 128], [0, 0, 200], [0, 0, 210]], reds]).astype(np.uint8)
    coarse = PaletteFitter(16, color_space="rgb", sample_size=len(samples), seed=0)
    after = coarse.fit(samples, previous=as_fit(colors), still=still)
    assert (after.colors[0] == 128).all()  # the still background keeps its colour
    blue_slots = ((after.colors[:, 2] > 150) & (after.colors[:, 0] < 50)).sum()
    assert blue_slots == (2 if still_blue else 1)
    monkeypatch.setattr(fit, "FREE_RELOCATIONS", 0)
    unmoved = coarse.fit(samples, previous=as_fit(colors), still=still)
    assert ((unmoved.colors[:, 2] > 150) & (unmoved.colors[:, 0] < 50)).sum() == 2
    assert after.error < unmoved.error if not still_blue else after.error == unmoved.error


@pytest.mark.parametrize("still_blue", [False, True])
def test_a_warm_refit_to_the_whole_frame_moves_free_slots_too(still_blue, monkeypatch):
    # As above with 64 colours, fitted to the frame's histogram: a gray still top half, a moving gradient of
    # many colours below, and a few blue pixels (on two slots of their own) that are leaving the picture.
    frame = np.full((96, 128, 3), 128, np.uint8)
    y, x = np.mgrid[:48, :128]
    frame[48:] = np.stack([x * 2, y * 5, 255 - x * 2], -1).astype(np.uint8)
    frame[90:, :6] = [0, 0, 200]
    frame[90:, 6:12] = [0, 0, 210]
    fitter = PaletteFitter(64, color_space="rgb", sample_size=4096, seed=0)
    samples, histogram = fitter.sample(frame), fitter.histogram(frame)
    h, w = frame.shape[:2]
    rows = sample_positions(h, w, 4096, 0) // w
    columns = sample_positions(h, w, 4096, 0) % w
    still = (rows < 48) | (still_blue & (rows >= 90) & (columns < 12))
    with monkeypatch.context() as patch:  # the palette in force: the gradient's, fitted on draws (a rough one)
        patch.setattr(fit, "FULL_FIT_POINTS", fit.FEW_COLORS)
        gradient = fitter.fit(samples[rows >= 48], histogram=fitter.histogram(frame[48:90]))
    colors = np.concatenate([[[128, 128, 128], [0, 0, 200], [0, 0, 210]], gradient.colors[:61]]).astype(np.uint8)

    def blue_slots(palette):
        return int(((palette[:, 2] >= 200) & (palette[:, 0] < 10) & (palette[:, 1] < 10)).sum())

    after = fitter.fit(samples, previous=as_fit(colors), still=still, histogram=histogram)
    assert (after.colors == [128, 128, 128]).all(axis=1).any()  # the still background keeps its colour
    monkeypatch.setattr(fit, "FREE_RELOCATIONS", 0)
    unmoved = fitter.fit(samples, previous=as_fit(colors), still=still, histogram=histogram)
    assert blue_slots(unmoved.colors) == 2
    assert blue_slots(after.colors) == (2 if still_blue else 1)
    assert after.error < unmoved.error if not still_blue else after.error == unmoved.error


def test_a_warm_refit_of_256_colours_moves_slots_the_picture_left(monkeypatch):
    # A gray still top half and a moving gradient below, fitted to the frame's histogram; three slots of the
    # palette in force hold colours that have left the picture: free moves take them where the error is.
    frame = np.full((96, 128, 3), 128, np.uint8)
    y, x = np.mgrid[:48, :128]
    frame[48:] = np.stack([x * 2, y * 5, 255 - x * 2], -1).astype(np.uint8)
    fitter = PaletteFitter(256, color_space="rgb", sample_size=4096, seed=0)
    samples, histogram = fitter.sample(frame), fitter.histogram(frame)
    rows = sample_positions(*frame.shape[:2], 4096, 0) // frame.shape[1]
    with monkeypatch.context() as patch:  # the palette in force: the gradient's, fitted on draws (a rough one)
        patch.setattr(fit, "FULL_FIT_POINTS", fit.FEW_COLORS)
        gradient = fitter.fit(samples[rows >= 48], histogram=fitter.histogram(frame[48:]))
    left = np.array([[0, 0, 200], [0, 200, 0], [200, 0, 0]], np.uint8)
    colors = np.concatenate([[[128, 128, 128]], left, gradient.colors[:252]]).astype(np.uint8)

    def slots_left(palette):
        return int(sum((palette == colour).all(axis=1).sum() for colour in left))

    after = fitter.fit(samples, previous=as_fit(colors), still=rows < 48, histogram=histogram)
    assert (after.colors == [128, 128, 128]).all(axis=1).any()  # the still background keeps its colour
    assert slots_left(after.colors) == 3 - fit.FREE_RELOCATIONS
    monkeypatch.setattr(fit, "FREE_RELOCATIONS", 0)
    unmoved = fitter.fit(samples, previous=as_fit(colors), still=rows < 48, histogram=histogram)
    assert slots_left(unmoved.colors) == 3
    assert after.error < unmoved.error


@pytest.mark.parametrize("weights_type", [np.float64, np.float32, np.int64])
@pytest.mark.parametrize("floor", [0.0, fit.MEDIAN_FLOOR])
def test_lloyd_sums_equal_numpy_s_bit_for_bit(rng, weights_type, floor):
    """A Lloyd step's compiled sums are numpy's bincounts of the same weights, to the bit, so palettes do not
    depend on which computes them; with a floor, each weight over the point's distance to its centre."""
    points = (rng.random((3000, 3)) * 100).astype(np.float32)
    weights = (rng.random(3000) * 40 + 1).astype(weights_type)
    centres = points[rng.choice(3000, 20, replace=False)] + np.float32(0.25)
    labels = nearest(points, centres).astype(np.intp)
    step = weights
    if floor:
        step = weights / np.maximum(np.sqrt(((points - centres[labels]) ** 2).sum(axis=1)), np.float32(floor))
    totals, sums = np.zeros(20), np.zeros((20, 3))
    lloyd_sums(points, weights, centres, labels, np.float32(floor), totals, sums)
    assert totals.tobytes() == np.bincount(labels, weights=step, minlength=20).tobytes()
    expected = [np.bincount(labels, weights=(points * step[:, None])[:, c], minlength=20) for c in range(3)]
    assert sums.tobytes() == np.stack(expected, axis=1).tobytes()
