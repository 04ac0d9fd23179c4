"""OKLab conversions and dither masks."""

import numpy as np
import pytest

from livequant.colorspace import from_space, oklab_to_srgb, srgb_to_oklab, to_space, working_space
from livequant.dither import DITHERS, REGISTRY, bayer_matrix, blue_noise, is_diffusion


def test_oklab_reference_values():
    # Values from Ottosson's reference implementation.
    np.testing.assert_allclose(srgb_to_oklab(np.array([255, 255, 255], np.uint8)), [1.0, 0.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(srgb_to_oklab(np.array([255, 0, 0], np.uint8)), [0.62796, 0.22486, 0.12585], atol=1e-4)
    np.testing.assert_allclose(srgb_to_oklab(np.array([0, 0, 255], np.uint8)), [0.45201, -0.03246, -0.31153], atol=1e-4)


@pytest.mark.parametrize("space", ["oklab", "oklab-large", "rgb"])
def test_every_srgb_colour_round_trips(space, rng):
    rgb = rng.integers(0, 256, (20000, 3), dtype=np.uint8)
    np.testing.assert_array_equal(from_space(to_space(rgb, space), space), rgb)


def test_palettes_of_more_than_64_colours_weigh_oklab_lightness_less(rng):
    assert [working_space("oklab", k) for k in (16, 64, 65, 256)] == ["oklab", "oklab", "oklab-large", "oklab-large"]
    assert working_space("rgb", 256) == "rgb"
    rgb = rng.integers(0, 256, (100, 3), dtype=np.uint8)
    small, large = to_space(rgb, "oklab"), to_space(rgb, "oklab-large")
    np.testing.assert_allclose(large[:, 0], small[:, 0] * 0.6 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(large[:, 1:], small[:, 1:])


def test_float_and_uint8_inputs_agree(rng):
    rgb = rng.integers(0, 256, (100, 3), dtype=np.uint8)
    np.testing.assert_allclose(srgb_to_oklab(rgb), srgb_to_oklab(rgb.astype(np.float64)), atol=1e-6)
    np.testing.assert_allclose(oklab_to_srgb(srgb_to_oklab(rgb)), rgb, atol=5e-3)  # OKLab in float32


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_bayer_matrix_is_a_permutation_of_ranks(n):
    m = bayer_matrix(n)
    assert m.shape == (n, n)
    np.testing.assert_array_equal(np.sort((m * n * n - 0.5).round().ravel()), np.arange(n * n))


def test_blue_noise_is_a_permutation_with_little_low_frequency_energy():
    mask = blue_noise()
    n = mask.size
    np.testing.assert_array_equal(np.sort((mask * n - 0.5).round().ravel()), np.arange(n))
    spectrum = np.abs(np.fft.fft2(mask - mask.mean())) ** 2
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(64), np.fft.fftfreq(64), indexing="ij"))
    low, high = spectrum[(f > 0) & (f < 0.1)].mean(), spectrum[f > 0.3].mean()
    assert low < 0.2 * high  # white noise would give about 1
    white = np.random.default_rng(0).permutation(n).reshape(64, 64) / n
    w = np.abs(np.fft.fft2(white - white.mean())) ** 2
    assert w[(f > 0) & (f < 0.1)].mean() > 0.5 * w[f > 0.3].mean()


@pytest.mark.parametrize("space", ["rgb", "oklab"])
@pytest.mark.parametrize("dither", ["floyd-steinberg", "sierra-lite", "bayer", "bluenoise"])
@pytest.mark.parametrize("level", [32, 128, 200])
def test_dither_keeps_the_average_level(dither, level, space):
    """Black and white dithered over flat gray: the share of white tracks the gray level (a fixed palette under
    an ordered dither is matched in sRGB: OKLab's midpoints made a grey of 32 a pattern of mean 96)."""
    from livequant import Palette, Quantizer

    q = Quantizer(palette=Palette([(0, 0, 0), (255, 255, 255)]), dither=dither, color_space=space)
    out = q.quantize(np.full((256, 300, 3), level, np.uint8))
    assert abs(out.mean() - level) < 0.06 * 255
    # Mixed, not flat: both colours appear in every 16-pixel-wide band.
    assert all(0 < (out[:, x : x + 16] == 255).mean() < 1 for x in range(0, 300, 16))


@pytest.mark.parametrize("dither", ["bayer", "bluenoise"])
def test_ordered_dither_in_oklab_leaves_a_flat_dark_palette_colour_flat(dither):
    """A black bar on a palette holding black and a dark grey stays black: OKLab's midpoint between the two
    lies near level 8, and offsets added in sRGB speckled it (a fifth of a letterbox bar on a video frame)."""
    from livequant import Palette, Quantizer

    palette = Palette([(0, 0, 0), (34, 34, 34), (90, 90, 90), (160, 160, 160), (255, 255, 255)])
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[:, 32:] = np.arange(32, dtype=np.uint8)[None, :, None] * 8  # a ramp beside it, to dither
    out = Quantizer(palette=palette, dither=dither).quantize(frame)
    assert (out[:, :32] == 0).all()
    assert len(np.unique(out[:, 32:].reshape(-1, 3), axis=0)) == 5  # the ramp still dithers over all five


@pytest.mark.parametrize("space", ["oklab", "rgb"])
@pytest.mark.parametrize("dither", ["bayer", "bluenoise"])
def test_ordered_dither_shows_the_palettes_own_colours_exactly(dither, space):
    """Flat areas of a palette's own colours stay flat (a sixth of NES tiles speckled, up to 62% of one), and a
    frame of few colours fitted exactly is shown exactly (a 6-colour cartoon at 16 colours: 10% of it moved)."""
    from livequant import Quantizer, presets

    for name in ("gameboy", "nes", "pico8", "c64"):
        colors = presets.get(name).colors
        tiles = np.repeat(np.repeat(colors[:, None, None, :], 16, 1), 16, 2).reshape(-1, 16, 3)
        np.testing.assert_array_equal(Quantizer(palette=name, dither=dither, color_space=space).quantize(tiles), tiles)
    six = np.array([[0, 0, 0], [255, 255, 255], [200, 30, 40], [30, 160, 60], [40, 60, 200], [240, 220, 30]], np.uint8)
    cartoon = six[(np.arange(96)[:, None] // 16 + np.arange(128)[None, :] // 16) % 6]
    q = Quantizer(16, dither=dither, color_space=space)
    for _ in range(2):
        np.testing.assert_array_equal(q.quantize(cartoon), cartoon)
    ramp = np.repeat(np.linspace(0, 255, 128)[None, :, None], 32, 0).repeat(3, 2).astype(np.uint8)
    assert len(np.unique(Quantizer(palette="gray4", dither=dither).quantize(ramp)[:, 40:56])) > 1  # still dithers


def test_offsets_in_rgb_are_plain_sums_and_in_oklab_follow_lightness():
    from livequant.lookup import build_table

    values, offsets = np.arange(256), np.arange(-255, 256)
    plain = build_table(np.array([[0, 0, 0], [255, 255, 255]], np.uint8), "rgb").shifted
    np.testing.assert_array_equal(plain, np.clip(values[None, :] + offsets[:, None], 0, 255))
    shaped = build_table(np.array([[0, 0, 0], [255, 255, 255]], np.uint8), "oklab").shifted.astype(int)
    np.testing.assert_array_equal(shaped[255], values)  # no offset, no change
    assert (np.diff(shaped, axis=0) >= 0).all() and (np.diff(shaped, axis=1) >= 0).all()  # monotonic both ways
    moved = shaped[255 + 16] - values  # the same offset moves black 1 level, mid-grey and lighter 18-20
    assert moved[0] <= 2 and moved[100] > 10 * moved[0] and moved[200] >= moved[100]


@pytest.mark.parametrize("dither", ["floyd-steinberg", "sierra-lite"])
def test_error_diffusion_has_no_stripe_seams(dither):
    from livequant import Palette, Quantizer

    q = Quantizer(palette=Palette([(0, 0, 0), (255, 255, 255)]), dither=dither, color_space="rgb")
    out = q.quantize(np.full((512, 256, 3), 100, np.uint8))[..., 0] == 255
    rows = out.mean(axis=1)
    # Rows at stripe starts (every 64) look like any other row.
    assert abs(rows[::64].mean() - rows.mean()) < 0.08


@pytest.mark.parametrize("dither", ["floyd-steinberg", "sierra-lite"])
def test_error_diffusion_passes_on_less_of_errors_nobody_sees(dither):
    from livequant import Palette, Quantizer
    from livequant.dither import ERROR_SHRINK

    palette = Palette([(100, 100, 100), (110, 110, 110)])
    shares = {}
    for level in (101, 102, 105):
        flat = np.full((128, 128, 3), level, np.uint8)
        out = Quantizer(palette=palette, dither=dither, color_space="rgb").quantize(flat)
        shares[level] = (out[..., 0] == 110).mean()
        assert abs(out.mean() - level) <= ERROR_SHRINK  # the tone stays within the shrink
    # One level above an entry: an error within the shrink passes nothing on and the area stays flat (no
    # stray pixels: smaller, steadier GIFs). Two levels above: half a level passes on, so about 8% of the
    # pixels go to the far entry (the classic kernel's 20%).
    assert shares[101] == 0
    assert 0.05 < shares[102] < 0.11
    assert shares[105] == pytest.approx(0.5, abs=0.01)  # halfway between: untouched

def test_registry_names_each_dither_once_with_its_kind():
    assert DITHERS == tuple(REGISTRY)
    for name, method in REGISTRY.items():
        assert method.kind in ("none", "ordered", "diffusion")
        assert (method.mask is not None) == (method.kind == "ordered"), name
        assert (method.weights is not None) == is_diffusion(name), name
        if method.weights is not None:
            assert sum(method.weights) == pytest.approx(1.0)
