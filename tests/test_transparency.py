"""Transparency: kept from input to output where both hold it (GIF, animated WebP and PNG, PNG, WebP and TIFF
pictures), flattened elsewhere or on --background, never a palette entry spent on it."""

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from livequant import run
from livequant.cli import main
from livequant.frames import ALPHA_CUT, split_alpha
from livequant.gif import GifEncoder
from livequant.png import indexed_png
from livequant.quantizer import Quantizer, quantize
from livequant.sources import resize_rgba
from livequant.sinks import GifWriter

RED, BLUE, GREEN = (220, 30, 30), (30, 40, 210), (0, 255, 0)


def _sprite_frames(n: int = 6, size=(48, 32)) -> list[np.ndarray]:
    """RGBA frames: a red square moving right over a clear canvas, a blue bar that shows on every other frame,
    and green under alpha 0 wherever nothing shows (no palette should take it)."""
    w, h = size
    frames = []
    for i in range(n):
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., :3] = GREEN
        rgba[4:16, 4 + 5 * i : 16 + 5 * i] = (*RED, 255)
        if i % 2 == 0:
            rgba[24:28, :] = (*BLUE, 255)
        rgba[20, 2] = (*RED, ALPHA_CUT)  # just shows
        rgba[20, 4] = (*RED, ALPHA_CUT - 1)  # just does not
        frames.append(rgba)
    return frames


def _gif_of(frames, path) -> None:
    """``frames`` (RGBA) as a GIF, each pixel the index of its colour (the frames have few)."""
    rgb = [split_alpha(f) for f in frames]
    colors = np.unique(np.concatenate([c.reshape(-1, 3) for c, _ in rgb]), axis=0)
    encoder = GifEncoder(frames[0].shape[1], frames[0].shape[0], colors)
    data = encoder.header()
    for i, (c, opaque) in enumerate(rgb):
        lookup = {tuple(color): k for k, color in enumerate(colors.tolist())}
        indices = np.array([lookup[tuple(p)] for p in c.reshape(-1, 3).tolist()], np.uint8).reshape(c.shape[:2])
        data += encoder.add(indices, colors, i * 0.1, opaque)
    path.write_bytes(data + encoder.end())


def _decoded_rgba(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgba") for f in container.decode(video=0)]


def _pillow_rgba(path) -> list[np.ndarray]:
    with Image.open(path) as image:
        frames = []
        for i in range(getattr(image, "n_frames", 1)):
            image.seek(i)
            frames.append(np.array(image.convert("RGBA")))
        return frames


def _shows(rgba: np.ndarray) -> np.ndarray:
    return rgba[..., 3] >= ALPHA_CUT


# ------------------------------------------------------------------ compute

def test_split_alpha_fills_hidden_pixels_with_the_colours_that_show_in_their_proportions():
    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[:5, :8] = (10, 20, 30, 255)  # 40 pixels
    rgba[20:, 30:] = (200, 0, 0, ALPHA_CUT)  # 100, just showing
    rgba[10, 10] = (1, 2, 3, ALPHA_CUT - 1)  # just hidden
    rgb, opaque = split_alpha(rgba)
    assert opaque.sum() == 140 and not opaque[10, 10]
    assert (rgb[:5, :8] == (10, 20, 30)).all() and (rgb[20:, 30:] == (200, 0, 0)).all()  # their own, not blended
    colours, counts = np.unique(rgb.reshape(-1, 3), axis=0, return_counts=True)
    assert colours.tolist() == [[10, 20, 30], [200, 0, 0]]
    assert abs(counts[0] / counts.sum() - 40 / 140) < 0.03  # a fit sees what shows, as it shows (to a part-round)
    assert rgba[10, 10, 0] == 1  # the input is left as it was
    rgba[..., 3] = 255
    assert split_alpha(rgba)[1] is None
    rgba[..., 3] = 0
    rgb, opaque = split_alpha(rgba)
    assert not opaque.any() and (rgb == 255).all()


def _disc_over(fill, size=(64, 48)) -> tuple[np.ndarray, np.ndarray]:
    """A colour gradient showing in a disc, ``fill`` where nothing shows: ``(rgb, opaque)``."""
    w, h = size
    yy, xx = np.mgrid[:h, :w]
    opaque = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (0.4 * h) ** 2
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = xx * 255 // w, yy * 255 // h, 128
    rgb[~opaque] = fill
    return rgb, opaque


@pytest.mark.parametrize("dither", ["floyd-steinberg", "sierra-lite"])
def test_error_diffusion_carries_no_error_through_transparent_pixels(dither):
    """What fills the transparent pixels does not reach the pixels that show: not on a first frame, not on
    a held one, not in a still picture."""
    green, magenta = _disc_over(GREEN), _disc_over((255, 0, 255))
    opaque = green[1]
    assert (green[0][opaque] == magenta[0][opaque]).all() and (green[0] != magenta[0]).any()
    shown = []
    for first, second in [(green, green), (magenta, magenta), (green, magenta)]:
        quantizer = Quantizer(palette="pico-8", dither=dither)
        frames = [quantizer.process(rgb, opaque=mask) for rgb, mask in (first, second)]
        assert frames[1].opaque is second[1]
        shown.append([f.rgb[opaque] for f in frames])
    for frames in shown[1:]:
        assert all((a == b).all() for a, b in zip(frames, shown[0], strict=True))
    still = [quantize(rgb, palette="pico-8", dither=dither, opaque=mask)[opaque] for rgb, mask in (green, magenta)]
    assert (still[0] == still[1]).all() and (still[0] == shown[0][0]).all()
    unmasked = [Quantizer(palette="pico-8", dither=dither).process(rgb).rgb[opaque] for rgb, _ in (green, magenta)]
    assert (unmasked[0] != unmasked[1]).any()  # without the mask, the fill shows


def test_a_mask_that_does_not_fit_its_frame_is_refused_naming_it():
    rgb, opaque = _disc_over(GREEN)
    for bad in (opaque[:, :-1], opaque.astype(np.uint8), "all"):
        with pytest.raises(ValueError, match="opaque must be None or an \\(H, W\\) bool array"):
            Quantizer(4).process(rgb, opaque=bad)


def test_scaling_weighs_colours_by_alpha():
    """Shrinking a red square's edge over transparent green gives red, never a blend with the green."""
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = GREEN
    rgba[:, :5] = (*RED, 255)
    small = resize_rgba(rgba, (4, 4))
    assert (small[:, :2, :3] == RED).all() and (small[:, 2, :3] == RED).all()  # the edge column: half covered
    assert (small[:, 2, 3] == 128).all() and (small[:, 3, 3] == 0).all()


@pytest.mark.parametrize("lossy", [0.0, 24.0])
@pytest.mark.parametrize("seed", range(6))
def test_gif_frames_show_what_was_given_where_pixels_come_and_go(seed, lossy, tmp_path):
    """Pixels that show, turn transparent (drawn once, then cleared) and show again, over palettes that change;
    FFmpeg and Pillow decode every frame as given: the same pixels show, in their colours (within ``lossy``)."""
    rng = np.random.default_rng(seed)
    h, w = 20, 30
    frames = []
    for i in range(10):
        colors = rng.integers(0, 256, (int(rng.choice([3, 8, 200])), 3)).astype(np.uint8)
        if i and rng.random() < 0.4:  # the same palette and pixels as the frame before, less some
            colors, indices = frames[-1][0], frames[-1][1].copy()
        else:
            indices = rng.integers(0, len(colors), (h, w)).astype(np.uint8)
        opaque = rng.random((h, w)) < rng.choice([0.0, 0.3, 0.9, 1.0])
        y, x = rng.integers(0, h), rng.integers(0, w)
        opaque[y : y + 6, x : x + 9] = True
        if i == 0 and seed % 2 == 0:  # a first frame that shows whole, cleared where the next does not
            opaque[:] = True
        frames.append((colors, indices, None if opaque.all() else opaque))
    encoder = GifEncoder(w, h, frames[0][0], alpha=True, lossy=lossy)
    data = encoder.header()
    for i, (colors, indices, opaque) in enumerate(frames):
        data += encoder.add(indices, colors, i * 0.1, opaque)
    path = tmp_path / "a.gif"
    path.write_bytes(data + encoder.end())
    for decoded in (_decoded_rgba(path), _pillow_rgba(path)):
        assert len(decoded) == len(frames)
        for rgba, (colors, indices, opaque) in zip(decoded, frames):
            shows = np.ones((h, w), bool) if opaque is None else opaque
            assert (_shows(rgba) == shows).all()
            gaps = ((rgba[..., :3].astype(np.int32) - colors[indices]) ** 2).sum(axis=2)
            assert gaps[shows].max() <= lossy**2


def test_a_gif_frame_of_256_colours_and_transparent_pixels_is_refused():
    colors = np.array([(i, 255 - i, i // 2) for i in range(256)], np.uint8)
    indices = np.vstack([np.arange(256, dtype=np.uint8).reshape(16, 16), np.zeros((1, 16), np.uint8)])
    opaque = np.ones((17, 16), bool)
    opaque[0, 0] = False  # entry 0 still shows in the last row
    encoder = GifEncoder(16, 17, colors)
    encoder.add(indices, colors, 0.0, opaque)
    with pytest.raises(ValueError, match="255 or fewer"):
        encoder.end()
    indices[-1] = 1  # entry 0 unused: it can be the transparent one
    encoder = GifEncoder(16, 17, colors)
    encoder.add(indices, colors, 0.0, opaque)
    assert encoder.end()


def test_indexed_png_marks_transparent_pixels_in_its_table(tmp_path):
    colors = np.array([RED, BLUE], np.uint8)
    indices = np.array([[0, 1, 0], [1, 0, 1]], np.uint8)
    opaque = np.array([[True, False, True], [True, True, False]])
    path = tmp_path / "a.png"
    path.write_bytes(indexed_png(indices, colors, opaque))
    bgra = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert ((bgra[..., 3] == 255) == opaque).all() and set(np.unique(bgra[..., 3])) == {0, 255}
    assert (bgra[..., 2::-1][opaque] == colors[indices][opaque]).all()
    assert indexed_png(np.zeros((2, 2), np.uint8), np.zeros((256, 3), np.uint8), opaque[:, :2]) is None


def test_a_source_of_triples_carries_its_masks_to_the_sinks(tmp_path):
    frames = [split_alpha(f) for f in _sprite_frames()]
    path = tmp_path / "a.gif"
    with Quantizer(4) as quantizer, GifWriter(path) as sink:
        run([(rgb, i / 10, opaque) for i, (rgb, opaque) in enumerate(frames)], quantizer, [sink])
    for rgba, (_, opaque) in zip(_decoded_rgba(path), frames, strict=True):
        assert (_shows(rgba) == opaque).all()
    bad = [(frames[0][0], 0.0, np.ones((2, 2), bool))]
    with Quantizer(4) as quantizer, pytest.raises(ValueError, match="opaque"):
        run(bad, quantizer, [_Nowhere()])


class _Nowhere:
    interactive = False

    def write(self, qframe) -> None:
        pass


# ------------------------------------------------------------- command line

@pytest.fixture
def sprite_gif(tmp_path):
    path = tmp_path / "sprite.gif"
    _gif_of(_sprite_frames(), path)
    return path


@pytest.mark.parametrize("suffix", [".gif", ".apng", ".webp"])
def test_transcode_keeps_transparency_in_animations(sprite_gif, tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    assert main(["transcode", str(sprite_gif), str(out), "-k", "4", "-q"]) == 0
    expected = [split_alpha(f) for f in _sprite_frames()]
    decoded = _pillow_rgba(out) if suffix == ".webp" else _decoded_rgba(out)  # FFmpeg decodes no animated WebP
    assert len(decoded) == len(expected)
    for rgba, (rgb, opaque) in zip(decoded, expected):
        assert (_shows(rgba) == opaque).all()
        shown = rgba[..., :3][opaque].astype(int)
        assert np.abs(shown - rgb[opaque]).max() <= 2  # red and blue, as they were
        assert not (np.abs(rgba[..., :3][opaque].astype(int) - GREEN).sum(axis=1) < 60).any()


def test_an_animation_that_turns_transparent_after_a_whole_first_frame(tmp_path):
    """A first frame that shows whole is cleared where the next one shows transparent pixels; it names a transparent
    index all the same, without which Pillow decodes every later frame as opaque."""
    frames = _sprite_frames()
    frames[0][..., 3] = 255
    source = tmp_path / "in.apng"
    with av.open(str(source), "w", format="apng") as out:
        stream = out.add_stream("apng", rate=10)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "rgba"
        for i, rgba in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgba, format="rgba")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    out = tmp_path / "out.gif"
    assert main(["transcode", str(source), str(out), "-k", "4", "-q"]) == 0
    for decoded in (_decoded_rgba(out), _pillow_rgba(out)):
        assert [(_shows(rgba) == (f[..., 3] >= ALPHA_CUT)).all() for rgba, f in zip(decoded, frames)] == [True] * 6


def test_a_palette_spends_no_entry_on_transparent_pixels(tmp_path):
    picture = tmp_path / "sprite.png"
    cv2.imwrite(str(picture), cv2.cvtColor(_sprite_frames()[0], cv2.COLOR_RGBA2BGRA))
    out = tmp_path / "out.png"
    assert main(["image", str(picture), str(out), "-k", "2", "-q"]) == 0
    rgba = _pillow_rgba(out)[0]
    assert (_shows(rgba) == split_alpha(_sprite_frames()[0])[1]).all()
    assert {tuple(c) for c in rgba[_shows(rgba)][:, :3].tolist()} == {RED, BLUE}


def test_the_palette_command_fits_the_pixels_that_show(sprite_gif, tmp_path, capsys):
    picture = tmp_path / "sprite.png"
    cv2.imwrite(str(picture), cv2.cvtColor(_sprite_frames()[0], cv2.COLOR_RGBA2BGRA))
    for source in (picture, sprite_gif):
        assert main(["palette", str(source), "-k", "4"]) == 0
        assert set(capsys.readouterr().out.split()) == {"#dc1e1e", "#1e28d2"}  # red and blue, no green or white
    cv2.imwrite(str(picture), np.zeros((8, 8, 4), np.uint8))
    assert main(["palette", str(picture)]) == 2
    assert "wholly transparent" in capsys.readouterr().err


def test_a_global_palette_is_fitted_to_the_pixels_that_show(sprite_gif, tmp_path, capsys):
    out = tmp_path / "out.gif"
    assert main(["transcode", str(sprite_gif), str(out), "--gif-palette", "global", "-k", "4", "-q"]) == 0
    shown = np.concatenate([rgba[_shows(rgba)][:, :3] for rgba in _pillow_rgba(out)])
    assert {tuple(c) for c in shown.tolist()} == {RED, BLUE}
    written = out.read_bytes()
    (tmp_path / "clear").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "clear" / f"{i}.png"), np.zeros((8, 8, 4), np.uint8))
    assert main(["transcode", str(tmp_path / "clear" / "%d.png"), str(out), "--gif-palette", "global", "-y"]) == 2
    assert capsys.readouterr().err == (f"livequant: error: '{tmp_path / 'clear' / '%d.png'}' is wholly transparent: no "
                                       "colour shows to fit a palette to; leave out --gif-palette global\n")
    assert out.read_bytes() == written


@pytest.mark.parametrize(("output", "background", "expected"), [
    ("out.jpg", [], (255, 255, 255)), ("out.png", ["--background", "black"], (0, 0, 0)),
    ("out.gif", ["--background", "#20a0ff"], (0x20, 0xA0, 0xFF))])
def test_pictures_are_flattened_where_the_output_or_the_user_says(tmp_path, output, background, expected):
    picture = tmp_path / "sprite.png"
    cv2.imwrite(str(picture), cv2.cvtColor(_sprite_frames()[0], cv2.COLOR_RGBA2BGRA))
    out = tmp_path / output
    assert main(["image", str(picture), str(out), "-k", "4", "-q", *background]) == 0
    rgba = _pillow_rgba(out)[0]
    assert _shows(rgba).all()
    assert np.abs(rgba[30, 40, :3].astype(int) - expected).max() <= 3  # a pixel that was transparent


def test_video_outputs_flatten_on_white_or_the_background(sprite_gif, tmp_path):
    out = tmp_path / "out.mkv"
    assert main(["transcode", str(sprite_gif), str(out), "-k", "4", "-q", "--lossless"]) == 0
    assert (_decoded_rgba(out)[0][30, 40, :3] == 255).all()
    assert main(["transcode", str(sprite_gif), str(out), "-k", "4", "-q", "--lossless", "-y",
                 "--background", "black"]) == 0
    assert (_decoded_rgba(out)[0][30, 40, :3] == 0).all()


def test_transparency_survives_scaling_and_pixelation(sprite_gif, tmp_path):
    for options, size, red in ((["--scale", "2"], (64, 96), (20, 20)), (["--pixelate", "2"], (32, 48), (10, 10))):
        out = tmp_path / "out.gif"
        assert main(["transcode", str(sprite_gif), str(out), "-k", "4", "-q", "-y", *options]) == 0
        first = _decoded_rgba(out)[0]
        assert first.shape[:2] == size
        assert _shows(first)[red] and not _shows(first)[-1, -1]  # the red square shows, the corner does not


def test_256_colours_with_transparency_in_a_gif_is_an_error_naming_the_fix(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (64, 64, 4)).astype(np.uint8)
    rgba[..., 3] = 255
    rgba[:8, :8, 3] = 0
    picture = tmp_path / "noise.png"
    cv2.imwrite(str(picture), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    out = tmp_path / "out.gif"
    assert main(["image", str(picture), str(out), "-k", "256", "-q"]) == 1
    assert "-k 255 or fewer" in capsys.readouterr().err and not out.exists()
    assert main(["image", str(picture), str(out), "-k", "255", "-q"]) == 0
    assert main(["image", str(picture), str(tmp_path / "out.png"), "-k", "256", "-q"]) == 0  # RGBA PNG
    png = _pillow_rgba(tmp_path / "out.png")[0]
    assert not _shows(png)[:8, :8].any() and _shows(png)[8:].all()


def test_a_background_that_is_no_colour_is_a_usage_error(sprite_gif, tmp_path, capsys):
    assert main(["transcode", str(sprite_gif), str(tmp_path / "out.gif"), "--background", "teal-ish"]) == 2
    assert "is not a colour" in capsys.readouterr().err


def test_an_animated_webp_sticker_keeps_its_transparency_and_times(tmp_path):
    """FFmpeg here decodes no animated WebP (the stickers of chat apps); Pillow does, frame by frame."""
    frames = _sprite_frames()
    source = tmp_path / "sticker.webp"
    pictures = [Image.fromarray(rgba, "RGBA") for rgba in frames]
    pictures[0].save(source, save_all=True, append_images=pictures[1:], duration=[100, 50, 150, 100, 50, 100],
                     lossless=True, loop=0)
    out = tmp_path / "out.gif"
    assert main(["transcode", str(source), str(out), "-k", "4", "-q"]) == 0
    with av.open(str(out)) as gif:
        decoded = [(f.to_ndarray(format="rgba"), round(float(f.time), 2)) for f in gif.decode(video=0)]
    assert [t for _, t in decoded] == [0.0, 0.1, 0.15, 0.3, 0.4, 0.45]
    assert all((_shows(rgba) == (f[..., 3] >= ALPHA_CUT)).all() for (rgba, _), f in zip(decoded, frames))
    assert main(["transcode", str(source), str(out), "-k", "4", "-q", "-y", "--start", "0.12", "--duration",
                 "0.2"]) == 0
    with av.open(str(out)) as gif:  # 0.12-0.15 of the second frame, the third, 0.3-0.32 of the fourth
        assert [round(float(f.time), 2) for f in gif.decode(video=0)] == [0.0, 0.03, 0.18]


def test_a_checkerboard_shows_behind_transparent_pixels_only():
    from livequant.frames import CHECKER_GREYS, on_checkerboard

    rgb = np.full((20, 24, 3), RED, np.uint8)
    opaque = np.ones((20, 24), bool)
    opaque[:, 12:] = False
    shown = on_checkerboard(rgb, opaque, square=4)
    assert (shown[:, :12] == RED).all() and shown.shape == rgb.shape and shown.dtype == np.uint8
    light, dark = (np.asarray(g, np.uint8) for g in CHECKER_GREYS)
    assert (shown[0:4, 12:16] == dark).all() and (shown[0:4, 16:20] == light).all()  # squares from the top left
    assert (shown[4:8, 12:16] == light).all() and (shown[4:8, 16:20] == dark).all()
    assert on_checkerboard(rgb, None) is rgb


@pytest.mark.parametrize("suffix", [".mkv", ".apng", ".bmp"])
def test_sinks_that_cannot_keep_transparency_show_it_on_white(tmp_path, suffix):
    """A frame with transparent pixels (from a source opened with alpha) to a sink that holds none: white there,
    not the colours a fit saw in their place."""
    from livequant.frames import QuantizedFrame
    from livequant.palette import Palette
    from livequant.sinks import AnimationWriter, ImageWriter, VideoWriter

    colors = np.array([RED, BLUE], np.uint8)
    indices = np.zeros((24, 32), np.uint8)
    indices[:, 16:] = 1
    opaque = np.ones((24, 32), bool)
    opaque[:, 24:] = False
    qframe = QuantizedFrame(colors[indices], indices, Palette(colors), 0.0, opaque=opaque)
    path = tmp_path / f"out{suffix}"
    sinks = {".mkv": lambda: VideoWriter(path, 10, lossless=True), ".apng": lambda: AnimationWriter(path, fps=10),
             ".bmp": lambda: ImageWriter(path)}
    with sinks[suffix]() as sink:
        sink.write(qframe)
    rgb = _pillow_rgba(path)[0][..., :3] if suffix == ".bmp" else _decoded_rgba(path)[0][..., :3]
    assert (rgb[:, 24:] == 255).all() and (rgb[:, :16] == RED).all() and (rgb[:, 16:24] == BLUE).all()
