"""Quantizer and quantize(): properties, stability, bad arguments."""

import time

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import livequant
from livequant import Palette, Quantizer, presets, quantize
from livequant.demo import Scene
from livequant.frames import split_alpha, to_rgb8

DITHERS = livequant.DITHERS
frames = arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40), st.just(3)))


def colour_set(image):
    return {tuple(c) for c in image.reshape(-1, 3)}


@pytest.mark.parametrize("dither", DITHERS)
@settings(max_examples=15, deadline=None)
@given(frame=frames, k=st.sampled_from([1, 2, 16, 256]))
def test_every_output_pixel_is_a_palette_colour(dither, frame, k):
    q = Quantizer(k, dither=dither)
    out = q.quantize(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8 and out.flags.c_contiguous
    assert colour_set(out) <= colour_set(q.palette.colors)
    assert len(q.palette) <= k


@settings(max_examples=30, deadline=None)
@given(
    colors=arrays(np.uint8, st.tuples(st.integers(1, 16), st.just(3))),
    picks=arrays(np.uint8, (24, 33)),
    space=st.sampled_from(["oklab", "rgb"]),
)
def test_an_image_with_at_most_k_colours_comes_back_unchanged(colors, picks, space):
    image = colors[picks % len(colors)]
    np.testing.assert_array_equal(Quantizer(16, color_space=space).quantize(image), image)
    np.testing.assert_array_equal(quantize(image, 16, color_space=space), image)


def test_a_rare_colour_is_kept_even_when_the_sample_misses_it(rng):
    image = np.zeros((1080, 1920, 3), np.uint8)
    image[::2] = (200, 10, 10)
    image[777, 1234] = (1, 2, 3)
    np.testing.assert_array_equal(Quantizer(4).quantize(image), image)


@pytest.mark.parametrize("dither", DITHERS)
def test_same_seed_same_output(dither, rng):
    clip = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(5)]
    runs = [[Quantizer(16, dither=dither, seed=3).quantize(f) for f in clip] for _ in range(2)]
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_indices_match_quantize(rng):
    clip = [rng.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(4)]
    a, b = Quantizer(16, seed=1), Quantizer(16, seed=1)
    for frame in clip:
        out, idx = a.quantize(frame), b.indices(frame)
        assert idx.shape == frame.shape[:2] and idx.dtype == np.uint8
        np.testing.assert_array_equal(b.palette.colors[idx], out)


def test_process_returns_consistent_parts(rng):
    q = Quantizer(16)
    frame = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    result = q.process(frame, time=1.5)
    np.testing.assert_array_equal(result.palette.colors[result.indices], result.rgb)
    assert result.time == 1.5 and result.source is frame
    assert q.process(frame).time is None  # no time given: the writers place it (test_sinks)


def smooth_frame(seed=0, shape=(120, 160)):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = np.stack([x * 255 // shape[1], y * 255 // shape[0], (x + y) * 127 // sum(shape)], axis=2)
    return np.clip(base + rng.integers(-8, 9, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("space", ["oklab", "rgb"])
def test_warm_refit_on_an_unchanged_frame_keeps_slots_and_indices(space):
    frame = smooth_frame()
    q = Quantizer(32, color_space=space, refit_every=1)
    first_idx = q.indices(frame)
    first = q.palette.colors.copy()
    for _ in range(4):
        idx = q.indices(frame)
        assert np.abs(q.palette.colors.astype(int) - first).max() <= 1
        np.testing.assert_array_equal(idx, first_idx)
    assert q.stats["refits"] >= 1


def test_every_fit_is_counted_and_only_those_that_move_a_colour_are_refits(rng):
    frame = smooth_frame()
    q = Quantizer(16, refit_every=1)
    for _ in range(20):  # a still scene under sensor noise: a fit a frame, most of them not worth the flicker
        q.quantize(np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8))
    assert q.stats["fits"] == 20
    assert 1 <= q.stats["refits"] < q.stats["fits"]


def test_stats_count_over_every_palette_size_configure_sets():
    frame = smooth_frame()
    q = Quantizer(16, refit_every=1)
    for i in range(6):
        q.quantize(np.roll(frame, i, axis=1))
    before = q.stats
    q.configure(n_colors=8)  # the preview's keys do this: its run's refit count went negative
    assert q.stats == before
    for i in range(4):
        q.quantize(np.roll(frame, i, axis=0))
    after = q.stats
    assert after["frames"] == 10 and after["fits"] == before["fits"] + 4 and after["refits"] > before["refits"]


@pytest.mark.parametrize("dither", ["none", "bayer", "bayer2", "bayer4", "bluenoise", "floyd-steinberg", "sierra-lite"])
def test_static_input_gives_identical_frames(dither):
    frame = smooth_frame(seed=2)
    q = Quantizer(8, dither=dither, refit_every=1)
    outputs = [q.quantize(frame) for _ in range(6)]
    for out in outputs[1:]:
        np.testing.assert_array_equal(out, outputs[0])


def test_noise_on_a_still_scene_does_not_flicker():
    """Sensor noise of +-1 level must not switch indices on a still picture."""
    base = smooth_frame(seed=4)
    rng = np.random.default_rng(5)
    q = Quantizer(16)
    outs = [q.quantize(np.clip(base.astype(int) + rng.integers(-1, 2, base.shape), 0, 255).astype(np.uint8)) for _ in range(8)]
    changed = np.mean([np.any(a != b, axis=2).mean() for a, b in zip(outs[2:], outs[3:])])
    assert changed < 0.001
    plain = Quantizer(16, hold=0)
    outs = [plain.quantize(np.clip(base.astype(int) + rng.integers(-1, 2, base.shape), 0, 255).astype(np.uint8)) for _ in range(8)]
    assert np.mean([np.any(a != b, axis=2).mean() for a, b in zip(outs[2:], outs[3:])]) > changed


@pytest.mark.parametrize("dither", ["floyd-steinberg", "sierra-lite"])
def test_error_diffusion_holds_still_pixels_under_noise(dither):
    """Re-diffused, a level of noise moves the dither pattern over the whole picture; held, still pixels keep
    their indices and the pattern stays, while its tone stays right (the error of the kept colours is passed on)."""
    base = smooth_frame(seed=4)
    noisy = [np.clip(base.astype(int) + np.random.default_rng(i).integers(0, 2, base.shape), 0, 255).astype(np.uint8)
             for i in range(8)]

    def changed(hold):
        q = Quantizer(16, dither=dither, hold=hold)
        outs = [q.quantize(frame) for frame in noisy]
        blurred = [cv2.blur(out.astype(np.float32), (5, 5)) - cv2.blur(f.astype(np.float32), (5, 5))
                   for out, f in zip(outs, noisy)]
        tone = float(np.mean([np.abs(b).mean() for b in blurred[2:]]))
        return np.mean([np.any(a != b, axis=2).mean() for a, b in zip(outs[2:], outs[3:])]), tone

    held, held_tone = changed(None)
    plain, plain_tone = changed(0)
    assert plain > 0.2 and held < 0.01, (plain, held)
    assert held_tone < 1.2 * plain_tone + 0.5, (held_tone, plain_tone)


@pytest.mark.parametrize("preset", ["cga", "pico8", "gameboy"])
def test_error_diffusion_with_far_apart_colours_keeps_a_noisy_still_scene_still(preset):
    """A retro palette's colours lie far apart: re-diffused, sensor noise of sigma 1 moves the dither pattern by
    whole colours (a webcam's still scene crawls), and a hold of 1 level does not stop it. The default hold
    covers the noise there, so the scene stays still; a change of the light larger than the noise is still
    dithered afresh, and the picture's tone goes where a fresh diffusion of the new light takes it."""
    base = smooth_frame(seed=4).astype(np.float32)
    rng = np.random.default_rng(0)

    def noisy(shift):
        return np.clip(np.rint(base + shift + rng.normal(0, 1.0, base.shape)), 0, 255).astype(np.uint8)

    def changed(hold):
        q = Quantizer(palette=preset, dither="floyd-steinberg", hold=hold)
        outs = [q.quantize(noisy(0)) for _ in range(8)]
        return np.mean([np.any(a != b, axis=2).mean() for a, b in zip(outs[3:], outs[4:])]), q, outs[-1]

    (held, q, still), (one_level, _, _) = changed(None), changed(1)
    assert held < 0.005 and one_level > 0.03, (held, one_level)
    lit = noisy(24)
    out = q.quantize(lit)
    assert np.any(out != still, axis=2).mean() > 0.2
    fresh = float(Quantizer(palette=preset, dither="floyd-steinberg").quantize(lit).mean())
    assert abs(float(out.mean()) - fresh) < 0.2 * abs(float(still.mean()) - fresh), (out.mean(), still.mean(), fresh)


def test_error_diffusion_held_beside_moving_content_streaks_nowhere():
    """Held pixels passed on the error of the colour they kept; where the error reaching them changed (from pixels
    chosen again), nothing absorbed it, and it drifted through the still part until a pixel chosen again took it
    whole: the demo's moving hills in PICO-8's colours grew red and green streaks, its sky bands. Now what a held
    pixel passes on stays within `HELD_DRIFT` of what it passed when chosen, and the tone of 6 x 6 blocks goes as
    far wrong as diffusing every frame afresh does (the palette cannot show every colour), not farther."""
    frames = [frame for frame, _ in Scene(size=(240, 135), frames=24)]

    def tone_errors(hold):
        q = Quantizer(palette="pico8", dither="floyd-steinberg", hold=hold)
        outs = [q.quantize(frame) for frame in frames]
        blocks = [np.float32(image[:132]).reshape(22, 6, 40, 6, 3).mean(axis=(1, 3)) for image in frames + outs]
        return np.percentile([np.linalg.norm(a - b, axis=2) for a, b in zip(blocks[8:24], blocks[32:])], 99)

    held, afresh = tone_errors(None), tone_errors(0)
    assert held < afresh + 4, (held, afresh)  # 105.6 against 97.6 before, 98.1 now


def test_error_diffusion_redithers_what_moves_and_keeps_the_rest():
    """Half the picture changes level: that half is dithered afresh to its new level, the other keeps its pattern."""
    palette = Palette([(0, 0, 0), (255, 255, 255)])
    frame = np.full((64, 128, 3), 100, np.uint8)
    q = Quantizer(palette=palette, dither="floyd-steinberg", color_space="rgb")
    first = q.quantize(frame)
    moved = frame.copy()
    moved[:, 64:] = 180
    second = q.quantize(moved)
    np.testing.assert_array_equal(second[:, :56], first[:, :56])  # left of what the moved half's error reaches
    assert abs(second[:, 64:].mean() - 180) < 0.06 * 255 and abs(second[:, :64].mean() - 100) < 0.06 * 255


def test_error_diffusion_under_a_new_palette_moves_pixels_whose_slot_went_far(rng):
    """On a new palette's first frame a held pixel whose slot's colour went far takes the best entry, as the
    ordered path's pixels do; one whose slot barely moved keeps it."""
    from livequant.lookup import build_table
    from livequant.hold import TemporalHold
    from livequant.track import PaletteStep

    def step(colors):
        colors = np.array(colors, np.uint8)
        return PaletteStep(Palette(colors), build_table(colors, "rgb"), None, fresh=False)

    frame = np.zeros((32, 64, 3), np.uint8)
    frame[:, :32], frame[:, 32:] = 40, 220
    hold = TemporalHold(3, weight=10 / 3)
    before = [np.empty((32, 64), np.uint8), np.empty((32, 64, 3), np.uint8)]
    hold.diffuse(frame, step([(40, 40, 40), (220, 220, 220)]), "floyd-steinberg", 1.0, *before)
    after = [np.empty((32, 64), np.uint8), np.empty((32, 64, 3), np.uint8)]
    hold.diffuse(frame, step([(42, 42, 42), (0, 200, 0), (225, 225, 225)]), "floyd-steinberg", 1.0, *after)
    assert (after[0][:, :32] == 0).all()  # slot 0 moved 2 levels: kept
    assert (after[0][:, 32:] != 1).all()  # slot 1 went far: none of its pixels keep it


def test_the_default_hold_is_finer_for_large_palettes():
    """With more than 32 colours a pixel that moved 3 levels takes its nearest colour again; with fewer, or
    with ``hold=3`` given, it keeps its colour. Changing the palette's size changes the default hold (3 levels
    up to 32 colours, 2 up to 64, 1 above), and with it the smallest move a warm refit makes (one level under
    the hold)."""
    ramp = np.linspace(0, 255, 240, dtype=np.uint8)
    frame = np.ascontiguousarray(np.broadcast_to(ramp[None, :, None], (8, 240, 3)))
    moved = frame + np.uint8(3) * (frame < 250)

    def switched(**kwargs):
        q = Quantizer(**kwargs)
        before = q.indices(frame)
        return np.mean(q.indices(moved) != before)

    fine = Palette(np.repeat(np.arange(0, 256, 4, dtype=np.uint8)[:, None], 3, axis=1))  # 64 greys
    coarse = Palette(np.repeat(np.arange(0, 256, 17, dtype=np.uint8)[:, None], 3, axis=1))  # 16 greys
    assert switched(palette=fine) > 0.3
    assert switched(palette=fine, hold=3) == 0
    assert switched(palette=coarse) == 0
    q = Quantizer(16)
    assert q.hold.threshold == 3 and q.track.fitter.unseen_levels == 2  # refits hide moves the hold would
    q.configure(n_colors=64)
    assert q.hold.threshold == 2 and q.track.fitter.unseen_levels == 1
    q.configure(n_colors=256)
    assert q.hold.threshold == 1 and q.track.fitter.unseen_levels == 0
    assert q.track.fitter.still_levels == q.track.still_levels == 1  # still as the hold counts it
    assert Quantizer(256, hold=0).track.fitter.unseen_levels == 0
    q.configure(palette=coarse)
    assert q.hold.threshold == 3
    # under error diffusion the default is one level at every size (a dither pattern shows a small drift);
    # a hold given is kept
    assert [Quantizer(k).hold.diffusion_threshold for k in (16, 64, 256)] == [1, 1, 1]
    assert Quantizer(16, hold=3).hold.diffusion_threshold == 3 and Quantizer(16, hold=0).hold.diffusion_threshold == 0


def test_small_palettes_weigh_the_change_a_still_pixel_shows_more():
    """On a refitted palette's first frame a still grey of 100 shown as 90 is offered an entry at 99: a
    palette of 64 colours moves it there (the error saved, 3 * (100 - 81), outweighs the fitter's weight on
    9 levels shown per channel); one of 16, whose errors are larger everywhere, keeps it (`hold_weight`).
    Changing the palette's size with a hold given changes the weight too."""
    from livequant.lookup import build_table
    from livequant.hold import TemporalHold, hold_weight
    from livequant.track import PaletteStep

    def step(greys):
        colors = np.repeat(np.array(greys, np.uint8)[:, None], 3, axis=1)
        return PaletteStep(Palette(colors), build_table(colors, "rgb"), None, fresh=False)

    frame = np.full((8, 16, 3), 100, np.uint8)
    shown = {}
    for size in (16, 64):
        hold = TemporalHold(3, hold_weight(size, 10.0))
        out = [np.empty((8, 16), np.uint8), np.empty((8, 16, 3), np.uint8)]
        hold.map(frame, step([90, 200]), np.zeros((1, 1), np.int16), *out)
        out = [np.empty((8, 16), np.uint8), np.empty((8, 16, 3), np.uint8)]
        hold.map(frame, step([90, 200, 99]), np.zeros((1, 1), np.int16), *out)
        shown[size] = set(np.unique(out[1]))
    assert shown == {16: {90}, 64: {99}}
    q = Quantizer(16, hold=2)
    q.configure(n_colors=64)
    assert q.hold.weight == hold_weight(64, q.stability) < hold_weight(16, q.stability)


def test_scene_cut_refits_from_scratch():
    q = Quantizer(8, refit_every=0)
    q.quantize(np.full((40, 40, 3), (250, 10, 10), np.uint8))
    blue = np.zeros((40, 40, 3), np.uint8)
    blue[:, :20] = (10, 10, 250)
    blue[:, 20:] = (10, 240, 10)
    np.testing.assert_array_equal(q.quantize(blue), blue)


@pytest.mark.parametrize("n_colors", [16, 256])  # 256: fitted to the whole frame, which the worker reads
def test_background_refits_never_block_and_land(n_colors):
    frames = [smooth_frame(seed=seed) for seed in (6, 8)]
    buffer = np.empty_like(frames[0])  # the caller reuses its buffer, as a capture loop may
    with Quantizer(n_colors, background=True, refit_every=1) as q:
        deadline = time.monotonic() + 60
        for i in range(10_000):
            buffer[...] = frames[i % 30 // 15]
            assert colour_set(q.quantize(buffer)) <= colour_set(q.palette.colors)
            if i >= 30 and q.stats["refits"] >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.005)  # a camera's frames
        assert q.stats["refits"] >= 2


@pytest.mark.parametrize("name", ["gameboy", "pico8", "cga1", "websafe", "gray16"])
def test_fixed_presets_are_used_as_given(name, rng):
    frame = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    q = Quantizer(palette=name)
    assert q.palette == presets.get(name)
    assert colour_set(q.quantize(frame)) <= colour_set(presets.get(name).colors)


def test_locked_colours_stay_in_the_palette(rng):
    locked = [(0, 0, 0), (255, 255, 255)]
    q = Quantizer(8, locked=locked)
    q.quantize(smooth_frame(seed=7))
    assert {(0, 0, 0), (255, 255, 255)} <= colour_set(q.palette.colors)
    q.configure(n_colors=2)  # no room for them: all of it adapts
    q.quantize(smooth_frame(seed=7))
    q.configure(n_colors=8)  # they come back (they were dropped for good)
    q.quantize(smooth_frame(seed=7))
    assert {(0, 0, 0), (255, 255, 255)} <= colour_set(q.palette.colors)


def test_configure_changes_settings_live():
    frame = smooth_frame(seed=8)
    q = Quantizer(16)
    q.quantize(frame)
    q.configure(n_colors=4)
    q.quantize(frame)
    assert len(q.palette) == 4
    q.configure(palette="gameboy", dither="bayer")
    assert colour_set(q.quantize(frame)) <= colour_set(presets.get("gameboy").colors)
    q.configure(palette="adaptive", frozen=True)
    q.quantize(frame)
    frozen = q.palette
    q.quantize(255 - frame)
    assert q.palette == frozen


def test_configure_that_fails_changes_nothing():
    q = Quantizer(16)
    q.quantize(smooth_frame(seed=8))
    with pytest.raises(ValueError, match="nope"):
        q.configure(n_colors=8, dither="bayer", palette="nope")
    assert (q.n_colors, q.dither, len(q.palette)) == (16, "none", 16)


def test_a_frame_given_again_keeps_its_palette_and_shows_the_same_picture(rng):
    """`--fps 25` on a 10 fps clip repeats each frame 2-3 times: refits landed on the copies, and up to 19% of
    the pixels changed between two copies of one frame (the auditor's realshort, 11 of 54 pairs; this pan at 16
    colours: 16 of 36 pairs, 20 refits for 24 frames)."""
    scene = smooth_frame(seed=3, shape=(120, 400))
    frames = [np.clip(scene[:, 8 * i : 8 * i + 160] + rng.integers(-4, 5, (120, 160, 3)), 0, 255).astype(np.uint8)
              for i in range(24)]
    repeated, once = Quantizer(16), Quantizer(16)
    shown = [[repeated.process(frame).rgb for _ in range(3 - i % 2)] for i, frame in enumerate(frames)]
    assert all(np.array_equal(copies[0], copy) for copies in shown for copy in copies[1:])
    for frame in frames:
        once.process(frame)
    assert repeated.stats["refits"] == once.stats["refits"] >= 2
    reused, fresh = Quantizer(16), Quantizer(16)  # one array refilled with each frame is each frame
    buffer = np.empty_like(frames[0])
    for frame in frames:
        buffer[:] = frame
        assert np.array_equal(reused.process(buffer).rgb, fresh.process(frame).rgb)


def test_arguments_of_the_wrong_kind_are_named_where_they_are_given():
    """Each failed deep inside (an AttributeError from apply, a TypeError from the track or the sampler) or, for
    the flags, was taken as true."""
    frame = smooth_frame(seed=8)
    with pytest.raises(TypeError, match="^apply takes the PaletteStep that plan returned for the frame, got NoneType"):
        Quantizer(4).apply(frame, None)
    with pytest.raises(ValueError, match=r"^wait must be a number of seconds >= 0, got 'x'$"):
        Quantizer(4, background=True).process(frame, wait="x")
    with pytest.raises(ValueError, match=r"^frozen must be True or False, got 'no'$"):
        Quantizer(4).configure(frozen="no")
    with pytest.raises(ValueError, match=r"^background must be True or False, got 'no'$"):
        Quantizer(4, background="no")
    with pytest.raises(ValueError, match=r"^sample_size must be a positive integer, got None$"):
        quantize(frame, 4, sample_size=None)
    with pytest.raises(ValueError, match=r"^split_alpha takes an \(H, W, 4\) uint8 RGBA image, got uint8 of shape "):
        split_alpha(frame)
    q = Quantizer(4)
    q.configure(frozen=np.True_)
    assert q.frozen is True


def test_a_fixed_palette_is_matched_for_the_dither_it_is_given_later():
    frame = smooth_frame(seed=8)
    q = Quantizer(palette="gray4")
    q.quantize(frame)
    q.configure(dither="bayer")  # ordered: matched in sRGB from now on (`fixed_space`)
    np.testing.assert_array_equal(q.quantize(frame), Quantizer(palette="gray4", dither="bayer").quantize(frame))


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"n_colors": 0}, ValueError, "n_colors"),
        ({"n_colors": 257}, ValueError, "257"),
        ({"n_colors": 2.5}, ValueError, "n_colors"),
        ({"dither": "atkinson"}, ValueError, "atkinson"),
        ({"color_space": "hsv"}, ValueError, "color_space"),
        ({"palette": "no-such-preset"}, ValueError, "no-such-preset"),
        ({"hold": -1}, ValueError, "hold"),
        ({"refit_every": -2}, ValueError, "refit_every"),
        ({"dither_strength": 5}, ValueError, "dither_strength"),
        ({"stability": -1}, ValueError, "stability"),
        ({"stability": "x"}, ValueError, "stability"),
        ({"dither_strength": "1"}, ValueError, "dither_strength"),
        ({"seed": "x"}, ValueError, "seed"),
        ({"seed": None}, ValueError, "seed"),
        ({"hold": True}, ValueError, "hold"),
        ({"n_colors": 2, "locked": [[255, 0, 0], [0, 255, 0], [0, 0, 255]]}, ValueError, "locked has 3 colours"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, error, words):
    with pytest.raises(error, match=words):
        Quantizer(**kwargs)
    if "palette" not in kwargs and "hold" not in kwargs and "refit_every" not in kwargs and "stability" not in kwargs:
        with pytest.raises(error, match=words):  # the one-picture call checks them as the Quantizer does
            quantize(np.zeros((8, 8, 3), np.uint8), **{"n_colors": 4, **kwargs})


@pytest.mark.parametrize("background", [True, False])
def test_a_quantizer_used_after_close_says_it_is_closed(background):
    frame = np.zeros((8, 8, 3), np.uint8)
    with Quantizer(4, background=background) as q:
        step = q.plan(frame)
    # a foreground quantizer went on after close, and configure(n_colors=) started a new worker
    for use in (lambda: q.process(frame, 0.1), lambda: q.plan(frame), lambda: q.apply(frame, step),
                lambda: q.configure(n_colors=8), lambda: q.quantize(frame)):
        with pytest.raises(RuntimeError, match="this Quantizer is closed; make a new one"):
            use()


@pytest.mark.parametrize(
    "frame, error, words",
    [
        (np.zeros((4, 4, 3), np.float32), TypeError, "float32"),
        (np.zeros((4, 4), np.uint8), ValueError, r"\(4, 4\)"),
        (np.zeros((4, 4, 4), np.uint8), ValueError, r"\(4, 4, 4\)"),
        (np.zeros((0, 4, 3), np.uint8), ValueError, "shape"),
        ([[1, 2, 3]], TypeError, "list"),
    ],
)
def test_bad_frames_are_refused_with_what_arrived(frame, error, words):
    with pytest.raises(error, match=words):
        Quantizer(4).quantize(frame)
    with pytest.raises(error, match=words):
        quantize(frame, 4)


SIZES = [(k, shape) for k in (1, 2, 16, 256) for shape in [(1, 1), (1, 7), (9, 1)]] + [(16, (2160, 3840)), (256, (2160, 3840))]


@pytest.mark.parametrize("k, shape", SIZES)
def test_sizes_and_palette_sizes(k, shape, rng):
    frame = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    out = Quantizer(k).quantize(frame)
    assert out.shape == frame.shape
    assert len(colour_set(out)) <= k


def test_single_colour_frame(rng):
    frame = np.full((50, 60, 3), (12, 200, 99), np.uint8)
    for k in (1, 16, 256):
        np.testing.assert_array_equal(Quantizer(k).quantize(frame), frame)
        np.testing.assert_array_equal(quantize(frame, k), frame)


def psnr(a, b):
    return 10 * np.log10(255**2 / np.mean((a.astype(float) - b) ** 2))


@pytest.mark.parametrize("k", [4, 16])
def test_quantize_still_matches_full_kmeans(k):
    from sklearn.cluster import KMeans

    image = smooth_frame(seed=9, shape=(96, 128))
    pixels = image.reshape(-1, 3).astype(np.float64)
    kmeans = KMeans(k, n_init=4, random_state=0).fit(pixels)
    reference = np.clip(np.rint(kmeans.cluster_centers_), 0, 255).astype(np.uint8)[kmeans.labels_].reshape(image.shape)
    out = quantize(image, k, color_space="rgb")
    assert len(colour_set(out)) <= k
    assert psnr(image, out) > psnr(image, reference) - 0.2


def test_palette_argument_accepts_palette_objects(rng):
    pal = Palette([(0, 0, 0), (255, 0, 0), (0, 0, 255)])
    frame = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
    assert colour_set(quantize(frame, palette=pal)) <= colour_set(pal.colors)


class BrokenFitter:
    """A real PaletteFitter whose fits fail from now on."""

    def __init__(self, fitter):
        self.inner = fitter

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def fit(self, *args, **kwargs):
        raise RuntimeError("fitter broke")


@pytest.mark.parametrize("background", [False, True])
def test_a_failing_refit_keeps_the_last_palette_and_reports_once(background, caplog, rng):
    q = Quantizer(8, refit_every=1, background=background)
    for _ in range(500):  # a live track shows a rough palette until its first fit lands
        q.quantize(smooth_frame(seed=10))
        if q.stats["refits"]:
            break
        time.sleep(0.01)
    good = q.palette
    q.track.fitter = BrokenFitter(q.track.fitter)
    with caplog.at_level("ERROR", logger="livequant"):
        for seed in range(11, 19):
            out = q.quantize(smooth_frame(seed=seed))
            assert colour_set(out) <= colour_set(good.colors)
    q.close()
    assert q.palette == good
    assert q.stats["refit_errors"] >= 1 and q.stats["refits"] == 1  # the first fit only
    failures = [r.getMessage() for r in caplog.records if "refit" in r.getMessage()]
    assert failures == ["palette refit failed, keeping the current palette: fitter broke"]


@pytest.mark.parametrize("space", ["oklab", "rgb"])
@pytest.mark.parametrize("k", [3, 4])
def test_few_distinct_colours_are_not_merged_badly(space, k):
    """Red, black and three near-identical greens (a decoded CMYK JPEG): k=3 must
    keep red and black apart rather than spend slots on the greens."""
    image = np.zeros((21, 33, 3), np.uint8)
    image[:, :11] = (255, 1, 1)
    image[:, 22:] = (0, 0, 0)
    image[:, 11:22] = (1, 255, 1)
    image[:3, 11:22] = (2, 254, 2)
    image[3:6, 11:22] = (2, 255, 1)
    for out in (quantize(image, k, color_space=space), Quantizer(k, color_space=space).quantize(image)):
        assert {(255, 1, 1), (0, 0, 0)} <= colour_set(out)
        assert np.abs(out.astype(int) - image).max() <= 2


@pytest.mark.parametrize(("frame", "error", "message"), [
    (np.zeros((8, 8), np.uint8), ValueError, r"got shape \(8, 8\); convert gray or RGBA with livequant\.frames"),
    (np.zeros((8, 8, 4), np.uint8), ValueError, r"got shape \(8, 8, 4\); convert gray or RGBA with livequant\.frames"),
    (np.zeros((0, 8, 3), np.uint8), ValueError, r"^frame must be uint8 RGB of shape \(H, W, 3\), got shape \(0, 8, 3\)$"
     ),
    (np.zeros((8, 8, 3), np.float32), TypeError, r"got dtype float32; convert with livequant\.frames\.to_rgb8\(\)"),
    ([[0]], TypeError, r"^frame must be a numpy uint8 array \(H, W, 3\), got list$"),
    ("pillow", TypeError, r"got Image; a Pillow image: numpy\.asarray\(image\.convert\('RGB'\)\)$"),
], ids=["gray", "rgba", "empty", "float", "list", "pillow"])
def test_a_frame_of_the_wrong_kind_is_named_with_its_fix(frame, error, message):
    if isinstance(frame, str):  # made here: Pillow is imported where it is used
        from PIL import Image

        frame = Image.new("RGBA", (8, 8))
        assert Quantizer(4).process(np.asarray(frame.convert("RGB"))).rgb.shape == (8, 8, 3)  # the fix named works
    with pytest.raises(error, match=message):
        Quantizer(4).process(frame)
    if "to_rgb8" in message:  # the fix named works
        assert Quantizer(4).process(to_rgb8(frame)).rgb.shape == (8, 8, 3)
