"""The command line on generated media: ``main([...])`` in process, and real signals and a real window
in subprocesses."""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import av  # isort: skip
import numpy as np
import pytest

from conftest import SURROUND_TONES, channel_tones, clip_frame, gif_blocks, send_wm_delete, surround_clip, write_clip
from livequant import __version__, presets
from livequant.cli import main
from livequant.demo import SETTINGS
from livequant.palette import Palette
from livequant.sinks import GifWriter

REPO = Path(__file__).resolve().parents[1]
WINDOW_WAIT_S = 120  # a preview window opens after the imports and the first frame: a minute on a slow machine


def _decode(path):
    """``(RGB frames, times, stream types)`` of a media file."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
        types = [s.type for s in container.streams]
    return [f.to_ndarray(format="rgb24") for f in frames], [f.time for f in frames], types


def _sound(path) -> np.ndarray:
    """The first audio stream's samples, ``(channels, samples)`` float32."""
    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)


def _colors(image):
    return {tuple(c) for c in image.reshape(-1, 3).tolist()}


def _error(capsys) -> str:
    """The one line the CLI printed on stderr."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("livequant: error: "), err
    return err


@pytest.fixture
def photo(tmp_path):
    """A 96x64 PNG with smooth colour gradients and a few flat patches."""
    y, x = np.mgrid[:64, :96]
    image = np.stack([x * 255 // 95, y * 255 // 63, (x + y) * 255 // 158], -1).astype(np.uint8)
    image[8:24, 8:40] = (250, 20, 20)
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


# transcode


def test_transcode_to_mp4_keeps_frames_duration_and_audio(tmp_path, clip):
    out = tmp_path / "out.mp4"
    assert main(["transcode", str(clip.path), str(out), "-k", "8", "--dither", "bayer"]) == 0
    frames, times, types = _decode(out)
    assert len(frames) == clip.frames and frames[0].shape == (48, 64, 3)
    assert times[-1] == pytest.approx(clip.duration - 1 / clip.fps, abs=2e-3)
    assert types == ["video", "audio"]


def test_transcode_to_gif_keeps_within_the_colours(tmp_path, clip):
    out = tmp_path / "out.gif"
    assert main(["transcode", str(clip.path), str(out), "--colors", "6", "-q"]) == 0
    frames, _, _ = _decode(out)
    assert len(frames) == clip.frames
    assert max(len(_colors(f)) for f in frames) <= 6


def test_transcode_with_a_preset_uses_only_its_colours(tmp_path, clip):
    out = tmp_path / "out.gif"
    assert main(["transcode", str(clip.path), str(out), "--palette", "gameboy", "--dither", "floyd-steinberg"]) == 0
    gameboy = _colors(presets.get("gameboy").colors)
    assert all(_colors(f) <= gameboy for f in _decode(out)[0])


@pytest.mark.parametrize("dither", ["floyd-steinberg", "sierra-lite"])
def test_a_dithered_gif_of_a_still_noisy_scene_keeps_its_pattern(tmp_path, dither):
    """Through the command: a still picture under a level of noise, error-diffused into a GIF, keeps its dither
    pattern frame to frame (the temporal hold) instead of crawling; re-diffused, about a third of it changed."""
    src, out = tmp_path / "still.mkv", tmp_path / "out.gif"
    y, x = np.mgrid[:64, :96]
    base = np.stack([x * 2.5, y * 3.0, 128 + 0 * x], axis=-1).astype(np.int64)
    with av.open(str(src), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "bgr0"
        for i in range(10):
            noisy = np.clip(base + np.random.default_rng(i).integers(0, 2, base.shape), 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(noisy, format="rgb24")))
        container.mux(stream.encode(None))
    assert main(["transcode", str(src), str(out), "-k", "16", "--dither", dither, "-q"]) == 0
    frames = _decode(out)[0]
    assert len(frames) == 10
    changed = max(np.any(a != b, axis=2).mean() for a, b in zip(frames[2:], frames[3:]))
    assert changed < 0.01, changed


def test_lossless_video_keeps_the_exact_palette(tmp_path, clip):
    out = tmp_path / "out.mkv"
    assert main(["transcode", str(clip.path), str(out), "--palette", "pico8", "--lossless", "--no-audio"]) == 0
    frames, _, types = _decode(out)
    assert types == ["video"] and all(_colors(f) <= _colors(presets.get("pico8").colors) for f in frames)


def test_pixelate_makes_blocks_of_one_colour(tmp_path, clip):
    out = tmp_path / "pixels.gif"
    assert main(["transcode", str(clip.path), str(out), "--pixelate", "4", "-k", "8"]) == 0
    frame = _decode(out)[0][3]
    assert frame.shape == (48, 64, 3)
    blocks = frame.reshape(12, 4, 16, 4, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()


def test_width_fps_start_and_duration(tmp_path, clip):
    out = tmp_path / "cut.mp4"
    args = ["--width", "32", "--fps", "6", "--start", "0.5", "--duration", "1"]
    assert main(["transcode", str(clip.path), str(out), *args]) == 0
    frames, times, types = _decode(out)
    assert frames[0].shape == (24, 32, 3) and types == ["video", "audio"]
    np.testing.assert_allclose(times, np.arange(6) / 6, atol=2e-3)


@pytest.mark.parametrize(("pattern", "gif_palette"), [("shot%03d.png", "track"), ("shot%03d.png", "global"),
                                                     ("shot*.png", "track")])
def test_pictures_become_a_gif_at_the_rate_asked_with_none_dropped(tmp_path, pattern, gif_palette):
    """FFmpeg reads numbered pictures at 25 fps: --fps 10 re-timed them and dropped 2 of every 5."""
    for i in range(7):
        cv2.imwrite(str(tmp_path / f"shot{i + 1:03d}.png"), np.full((12, 16, 3), 30 * i, np.uint8))
    out = tmp_path / "out.gif"
    args = ["transcode", str(tmp_path / pattern), str(out), "--fps", "10", "--gif-palette", gif_palette]
    assert main(args) == 0
    frames, times, _ = _decode(out)
    assert [f[0, 0, 0] for f in frames] == [30 * i for i in range(7)]
    np.testing.assert_allclose(times, np.arange(7) / 10, atol=1e-6)


def test_image_sequence_output(tmp_path, clip, capsys):
    assert main(["transcode", str(clip.path), str(tmp_path / "frame-%03d.png"), "--palette", "cga1"]) == 0
    files = sorted(tmp_path.glob("frame-*.png"))
    assert len(files) == clip.frames and files[0].name == "frame-001.png"
    # the summary names the files written, not only the first
    assert f"wrote {clip.frames} frames to {files[0]} .. {files[-1]} in " in capsys.readouterr().err


# image and palette


def test_image_writes_a_still_gif_with_the_png_s_pixels(tmp_path, photo):
    """A still GIF is one picture: it was refused ("use transcode", whose video palette fits less well)."""
    for name in ("still.gif", "still.png"):
        assert main(["image", str(photo), str(tmp_path / name), "-k", "6"]) == 0
    frames, _, _ = _decode(tmp_path / "still.gif")
    assert len(frames) == 1 and len(_colors(frames[0])) <= 6
    np.testing.assert_array_equal(frames[0], cv2.cvtColor(cv2.imread(str(tmp_path / "still.png")), cv2.COLOR_BGR2RGB))


@pytest.mark.parametrize("suffix", [".avif", ".webp", ".bmp", ".tif", ".ppm", ".jp2"])
def test_image_formats_keep_the_pngs_pixels(tmp_path, photo, suffix):
    """AVIF was written at OpenCV's default quality, lossy: 6 colours came out as hundreds. JPEG 2000 was
    refused (OpenCV cannot write the 16x16 picture the check tried), and at OpenCV's default, lossy too."""
    for name in ("still.png", f"still{suffix}"):
        assert main(["image", str(photo), str(tmp_path / name), "-k", "6", "-q"]) == 0
    written = cv2.imread(str(tmp_path / f"still{suffix}"))
    np.testing.assert_array_equal(written, cv2.imread(str(tmp_path / "still.png")))


def test_image_writes_a_palette_png(tmp_path, photo):
    out = tmp_path / "small.png"
    assert main(["image", str(photo), str(out), "-k", "5", "--dither", "bluenoise"]) == 0
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        assert frame.format.name == "pal8"
        assert len(_colors(frame.to_ndarray(format="rgb24"))) <= 5


def test_image_with_a_preset_and_pixelate(tmp_path, photo):
    out = tmp_path / "pico.png"
    assert main(["image", str(photo), str(out), "--palette", "pico8", "--pixelate", "4"]) == 0
    image = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    assert image.shape == (64, 96, 3) and _colors(image) <= _colors(presets.get("pico8").colors)
    assert (image[::4, ::4].repeat(4, 0).repeat(4, 1) == image).all()


def test_pixelate_keeps_the_size_its_blocks_do_not_divide(tmp_path, photo):
    out = tmp_path / "blocks.png"
    assert main(["image", str(photo), str(out), "--pixelate", "7", "-k", "8", "-q"]) == 0  # 96x64: 13.7 x 9.1 blocks
    image = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    assert image.shape == (64, 96, 3)
    whole = image[::7, ::7].repeat(7, 0).repeat(7, 1)[:64, :96]  # blocks of 7, the last ones cut
    assert (whole == image).all()


@pytest.mark.parametrize("command", [["transcode", "{clip}", "odd.gif"], ["transcode", "{clip}", "odd.apng"],
                                     ["image", "{photo}", "odd.png"]])
def test_an_odd_width_is_kept_where_the_format_holds_it(tmp_path, clip, photo, command):
    name, source, out = command[0], command[1].format(clip=clip.path, photo=photo), tmp_path / command[2]
    assert main([name, source, str(out), "--width", "33", "-q"]) == 0
    frames, _, _ = _decode(out)
    assert frames[0].shape == ((25, 33, 3) if name == "transcode" else (22, 33, 3))  # 64x48 and 96x64, 33 wide


@pytest.mark.parametrize("suffix", [".gpl", ".json", ".png"])
def test_palette_extraction_round_trips(tmp_path, photo, capsys, suffix):
    out = tmp_path / f"palette{suffix}"
    assert main(["palette", str(photo), "-o", str(out), "-k", "6"]) == 0
    palette = Palette.from_file(out)
    assert len(palette) == 6 and capsys.readouterr().out.split() == palette.to_hex()
    assert np.abs(palette.colors.astype(int) - (250, 20, 20)).sum(1).min() < 40  # the red patch has a colour


def test_palette_without_a_file_is_printed_only(tmp_path, photo, capsys):
    """The colours alone, as `livequant palette photo.jpg` asks; -o was required."""
    assert main(["palette", str(photo), "-k", "6"]) == 0
    out, err = capsys.readouterr()
    assert len(out.split()) == 6 and Palette.from_hex(out.split()).to_hex() == out.split()
    assert err == "" and list(tmp_path.iterdir()) == [photo]
    assert main(["palette", str(photo), "-o", str(tmp_path / "p.gpl"), "-k", "6"]) == 0
    assert capsys.readouterr().out == out  # the same colours as when saved
    assert main(["palette", str(photo), "-o", str(tmp_path / "p.gpl"), "-k", "6", "-y", "-q"]) == 0
    assert capsys.readouterr() == (out, "")  # -q: no summary, as other commands take it
    assert main(["palette", str(photo), "-y"]) == 2
    assert "-y replaces the palette file given with -o, and there is none; leave out -y" in capsys.readouterr().err


def test_palette_from_a_video(tmp_path, clip, capsys):
    out = tmp_path / "clip.hex"
    assert main(["palette", str(clip.path), "-o", str(out), "--colors", "4"]) == 0
    assert len(Palette.from_file(out)) == 4


@pytest.mark.parametrize(("given", "suffix"), [("pico8", ".gpl"), ("pico8", ".act"), ("gray4", ".png"),
                                               ("file", ".json"), ("file", ".hex")])
def test_palette_converts_a_preset_or_a_palette_file(tmp_path, capsys, given, suffix):
    """`livequant palette pico8 -o pico8.gpl` said "cannot open video 'pico8'": a preset or a palette file
    comes out as it is, colour for colour, in the format -o asks for."""
    expected = presets.get("gray4" if given == "gray4" else "pico8")
    source = given
    if given == "file":
        source = str(tmp_path / "mine.gpl")
        expected.save(source)
    out = tmp_path / f"converted{suffix}"
    assert main(["palette", source, "-o", str(out), "-q"]) == 0
    assert capsys.readouterr().out.split() == expected.to_hex() == Palette.from_file(out).to_hex()


@pytest.mark.parametrize("option", [["-k", "4"], ["--color-space", "rgb"]])
def test_converting_a_palette_refuses_the_options_of_a_fit(tmp_path, capsys, option):
    assert main(["palette", "gameboy", *option]) == 2
    assert _error(capsys).strip() == (f"livequant: error: {option[0]} applies to a palette fitted to a picture, and "
                              f"'gameboy' is a palette already; leave out {option[0]}")


def test_a_damaged_palette_file_to_convert_says_what_is_wrong(tmp_path, capsys):
    damaged = tmp_path / "damaged.gpl"
    damaged.write_text("garbage\n")
    assert main(["palette", str(damaged), "-o", str(tmp_path / "out.hex")]) == 2
    assert "damaged.gpl is not a valid GIMP palette: the first line is not 'GIMP Palette'" in _error(capsys)
    assert not (tmp_path / "out.hex").exists()


def _grey_pictures(folder, n=4):
    for i in range(n):
        cv2.imwrite(str(folder / f"shot{i + 1:03d}.png"), np.full((12, 16, 3), 60 * i, np.uint8))


@pytest.mark.parametrize("pattern", ["shot%03d.png", "shot*.png"])
def test_palette_from_pictures_numbered_or_globbed(tmp_path, capsys, pattern):
    """Every grey of the pictures is in the palette (a numbered pattern was read as one file: no such file)."""
    _grey_pictures(tmp_path)
    out = tmp_path / "greys.hex"
    assert main(["palette", str(tmp_path / pattern), "-o", str(out), "-k", "4"]) == 0
    assert sorted(Palette.from_file(out).to_hex()) == ["#000000", "#3c3c3c", "#787878", "#b4b4b4"]


@pytest.mark.parametrize("command", ["image", "transcode", "palette"])
def test_a_tiff_of_many_pages_is_refused_by_every_command(tmp_path, capsys, command):
    """Its first page was quantized and the others left out without a word; a TIFF of one page is a picture."""
    from PIL import Image

    pages = [Image.fromarray(np.full((12, 16, 3), 70 * i, np.uint8)) for i in range(3)]
    pages[0].save(tmp_path / "scan.tif", save_all=True, append_images=pages[1:])
    pages[0].save(tmp_path / "one.tif")
    out = tmp_path / ("out.hex" if command == "palette" else "out.png")
    argv = [command, str(tmp_path / "scan.tif")] + (["-o", str(out)] if command == "palette" else [str(out)])
    assert main(argv) == 1
    assert _error(capsys).endswith(f"'{tmp_path}/scan.tif': it is a TIFF of 3 pages, and a picture file is one "
                                   "picture to livequant; save the pages as pictures of their own (page-%03d.png) "
                                   "and give those\n")
    assert not out.exists()
    assert main([arg.replace("scan.tif", "one.tif") for arg in argv] + ["-k", "2", "-q"]) == 0 and out.exists()


def test_numbered_pictures_with_a_gap_are_refused_naming_the_missing_one(tmp_path, capsys):
    """FFmpeg stops at the first missing number: 2 of 5 pictures were written and nothing said."""
    _grey_pictures(tmp_path, n=5)
    (tmp_path / "shot003.png").unlink()
    out = tmp_path / "out.gif"
    assert main(["transcode", str(tmp_path / "shot%03d.png"), str(out), "--fps", "5"]) == 1
    assert _error(capsys) == (f"livequant: error: cannot read the pictures '{tmp_path}/shot%03d.png' whole: "
                              f"'{tmp_path}/shot003.png' is missing, and the 2 numbered after it would be left out; "
                              "number them without a gap\n")
    assert not out.exists()
    (tmp_path / "shot005.png").rename(tmp_path / "shot003.png")  # 1, 2, 3, 4 and a shot5.png %03d does not name
    cv2.imwrite(str(tmp_path / "shot5.png"), np.zeros((12, 16, 3), np.uint8))
    assert main(["transcode", str(tmp_path / "shot%03d.png"), str(out), "--fps", "5", "-q"]) == 0
    with av.open(str(out)) as written:
        assert sum(1 for _ in written.decode(video=0)) == 4


@pytest.mark.parametrize(("pattern", "what"), [("shot*.png", "matches 4 pictures"),
                                              ("shot%03d.png", "names numbered pictures")])
def test_image_of_many_pictures_is_refused_with_the_command_for_all(tmp_path, capsys, pattern, what):
    """It quantized the first picture of a glob and said nothing of the others (a numbered pattern: no such
    file)."""
    _grey_pictures(tmp_path)
    assert main(["image", str(tmp_path / pattern), str(tmp_path / "out.png")]) == 2
    assert _error(capsys).endswith(f"{what} and `livequant image` quantizes one; name one, or quantize them all "
                                   f"with `livequant transcode '{tmp_path}/{pattern}' '{tmp_path}/out-%04d.png'`\n")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("suffix", ["gif", "png", "webp"])
def test_an_animated_picture_is_an_animation_to_every_command(tmp_path, capsys, suffix):
    """An animated GIF, PNG (APNG) or WebP: `image` quantized its first frame without a word; an APNG named .png
    was one picture to `transcode` and `palette` too (FFmpeg reads .png as one frame unless told APNG)."""
    from PIL import Image

    greys = [Image.new("RGB", (32, 24), (g, g, g)) for g in (0, 120, 240)]
    path = tmp_path / f"greys.{suffix}"
    greys[0].save(path, save_all=True, append_images=greys[1:], duration=100,
                  **({"lossless": True} if suffix == "webp" else {}))
    assert main(["image", str(path), str(tmp_path / "one.png")]) == 2
    assert _error(capsys) == (f"livequant: error: '{path}' is animated, and `livequant image` quantizes one "
                              f"picture; use `livequant transcode '{path}' '{tmp_path / 'one.gif'}'`\n")
    assert not (tmp_path / "one.png").exists()
    assert main(["transcode", str(path), str(tmp_path / "all.gif"), "-q"]) == 0  # a WebP through Pillow
    assert len(gif_blocks((tmp_path / "all.gif").read_bytes())[1]) == 3
    assert main(["palette", str(path), "-k", "3"]) == 0
    assert capsys.readouterr().out.split() == ["#000000", "#787878", "#f0f0f0"]


def test_a_video_to_image_is_one_line_naming_transcode(tmp_path, capsys):
    """`image clip.mp4 one.png` said the file was "not an image, or a format OpenCV cannot read"."""
    clip = write_clip(tmp_path / "clip.mp4", frames=3).path
    assert main(["image", str(clip), str(tmp_path / "one.png")]) == 2
    assert _error(capsys) == (f"livequant: error: '{clip}' is a video, and `livequant image` quantizes one "
                              f"picture; use `livequant transcode '{clip}' '{tmp_path / 'one.gif'}'`\n")
    assert not (tmp_path / "one.png").exists()
    (tmp_path / "notes.dat").write_text("not a picture")
    assert main(["image", str(tmp_path / "notes.dat"), str(tmp_path / "one.png")]) == 1
    assert "not an image, or a format OpenCV cannot read" in _error(capsys)
    if cv2.haveImageWriter(".avif"):  # a still FFmpeg reads as a video of one frame, OpenCV as a picture
        cv2.imwrite(str(tmp_path / "still.avif"), np.full((16, 16, 3), 90, np.uint8))
        assert main(["image", str(tmp_path / "still.avif"), str(tmp_path / "one.png"), "-q"]) == 0


# demo


def test_demo_writes_its_files(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "demo"), "--frames", "3"]) == 0
    names = {p.name for p in (tmp_path / "demo").iterdir()}
    assert names == {f"{stem}{suffix}" for stem, _, _ in SETTINGS for suffix in (".mp4", ".gif")} | {
        "contact-sheet.png", ".livequant-demo"}
    sheet = cv2.imread(str(tmp_path / "demo" / "contact-sheet.png"))
    assert sheet.shape[1] > 5 * 480 and sheet.shape[0] > 3 * 270  # 5 columns, 3 frames
    assert len(_decode(tmp_path / "demo" / "gameboy-bayer.gif")[0]) == 3
    assert "contact-sheet.png" in capsys.readouterr().out
    assert main(["demo", "-o", str(tmp_path / "demo"), "--frames", "2", "-y"]) == 0  # again: its own files replaced
    assert len(_decode(tmp_path / "demo" / "gameboy-bayer.gif")[0]) == 2


def test_demo_leaves_a_file_it_did_not_write_unless_y(tmp_path, capsys):
    """A folder's contact-sheet.png (the user's) was replaced without a word."""
    (tmp_path / "contact-sheet.png").write_bytes(b"mine")
    assert main(["demo", "-o", str(tmp_path), "--frames", "1"]) == 1
    assert _error(capsys) == (f"livequant: error: '{tmp_path}/contact-sheet.png' exists and the demo did not write "
                              "it; give the demo another folder with -o, or use -y to overwrite\n")
    assert [p.name for p in tmp_path.iterdir()] == ["contact-sheet.png"]
    assert main(["demo", "-o", str(tmp_path), "--frames", "1", "-y"]) == 0
    assert cv2.imread(str(tmp_path / "contact-sheet.png")) is not None


def test_a_first_run_says_once_that_it_compiles_the_kernels(tmp_path, photo):
    """The first run on a machine waited 30-60 s with a progress bar at 0 and an ETA of minutes, unexplained."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "kernels")}  # an empty cache: a first run
    argv = [sys.executable, "-m", "livequant", "palette", str(photo), "-k", "2"]
    first, again = (subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300) for _ in range(2))
    assert first.returncode == again.returncode == 0 and first.stdout == again.stdout != ""
    assert first.stderr.count("compiling the pixel kernels") == 1
    assert again.stderr == ""  # compiled once, cached


@pytest.mark.parametrize("colors", ["16", "256"])
def test_runs_where_numba_has_only_its_workqueue_threading_layer(tmp_path, colors):
    """Where neither libgomp nor TBB loads (a slim container image), numba falls back on its workqueue layer,
    which aborted the process (SIGABRT) when the planner and the mapping launched parallel kernels at once."""
    source = write_clip(tmp_path / "in.mp4", size=(320, 240), frames=24)
    out = tmp_path / "out.gif"
    argv = [sys.executable, "-m", "livequant", "transcode", str(source.path), str(out), "-k", colors, "-q"]
    done = subprocess.run(argv, env={**os.environ, "NUMBA_THREADING_LAYER": "workqueue"}, capture_output=True,
                          text=True, timeout=300)
    assert (done.returncode, done.stderr) == (0, "")
    assert len(_decode(out)[0]) == source.frames


# errors


def test_existing_output_is_left_alone_without_y(tmp_path, clip, capsys):
    out = tmp_path / "taken.mp4"
    out.write_bytes(b"keep me")
    assert main(["transcode", str(clip.path), str(out)]) == 1
    assert out.read_bytes() == b"keep me"
    assert "taken.mp4' exists; use -y to overwrite" in _error(capsys)
    assert main(["transcode", str(clip.path), str(out), "-y", "-q"]) == 0
    assert len(_decode(out)[0]) == clip.frames


@pytest.mark.parametrize(("args", "status", "message"), [
    (["transcode", "{clip}", "{clip}"], 1, "is the input '.*clip.mp4'; give another output name"),
    (["transcode", "{tmp}/missing.mp4", "{tmp}/out.mp4"], 1, "missing.mp4': No such file"),
    (["transcode", "{clip}", "{tmp}/no/dir/out.mp4"], 1, "directory '.*dir' does not exist"),
    (["transcode", "{clip}", "{tmp}/out.avi"], 2, "cannot tell what to write from the suffix of '.*out.avi'"),
    (["transcode", "{clip}", "{tmp}/out.mp4", "--colors", "0"], 2, "--colors: must be in 1..256, got 0"),
    (["transcode", "{clip}", "{tmp}/out.mp4", "--palette", "nope"], 2, "unknown palette 'nope'.*gameboy"),
    (["transcode", "{clip}", "{tmp}/out.mp4", "--dither", "nope"], 2, "--dither: invalid choice: 'nope'"),
    (["transcode", "{clip}", "{tmp}/out.mp4", "--scale", "2", "--width", "9"], 2, "not allowed with"),
    (["image", "{tmp}/missing.png", "{tmp}/out.png"], 1, "missing.png': no such file"),
    (["palette", "{clip}", "-o", "{tmp}/p.xyz"], 2, "unknown palette file type '.xyz'"),
    (["palette", "{clip}", "-o", "-"], 2, "-o names the palette file to write, not standard output; the colours are "
                                          "printed either way: give -o a file name"),
    (["palette", "{clip}", "-o", "{tmp}"], 2, "-o names the palette file to write, not '.*', a folder;"),
    (["transcode", "{tmp}/none/*.png", "{tmp}/out.gif"], 1,
     "cannot read the pictures '.*none/\\*.png': no file matches; check the pattern"),
    (["preview", "{tmp}/missing.mp4"], 1, "missing.mp4'"),
    (["preview", "test", "--size", "32x16", "--pixelate", "20"], 2,
     "--pixelate 20 makes blocks larger than the 32x16 frame; use at most 16"),
    (["preview", "test", "--record", "{tmp}/x.png"], 2,
     r"--record writes a video or an animation \(.gif .mp4 .mov .mkv .webm .webp .apng\), not '.*x.png' \(s in"),
    (["preview", "test", "--record", "{clip}"], 1, "output '.*clip.mp4' exists; use -y to overwrite"),
    (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    # an option that would do nothing, or the opposite of what it says
    (["transcode", "{clip}", "{tmp}/out.gif", "--palette", "gameboy", "-k", "8"], 2,
     "-k/--colors applies to palettes fitted to the picture, and --palette gives a fixed one; leave out one"),
    (["image", "{clip}", "{tmp}/out.png", "--palette", "pico8", "--colors", "8"], 2, "-k/--colors applies"),
    (["transcode", "{clip}", "{tmp}/out.gif", "--palette", "cga", "--refit-every", "1"], 2, "--refit-every applies"),
    (["transcode", "{clip}", "{tmp}/out.gif", "--gif-palette", "global", "--stability", "3"], 2,
     "--stability applies to a palette that follows the video, and --gif-palette global fits one"),
    (["transcode", "{clip}", "{tmp}/out.gif", "--dither-strength", "0.5"], 2,
     "--dither-strength scales a dither; add --dither NAME or leave it out"),
    (["transcode", "{clip}", "{tmp}/out.webp", "--lossless", "--quality", "50"], 2,
     "--quality makes lossy WebP and --lossless keeps every pixel; leave out one"),
    (["transcode", "{clip}", "{tmp}/f-%02d.jpg", "--lossless"], 2, "--lossless keeps every pixel and JPEG"),
    (["transcode", "{clip}", "{tmp}/out.mkv", "--codec", "ffv1", "--crf", "10"], 2,
     "--crf sets the quality of libx264, .* and ffv1 takes none; leave out --crf"),
    (["transcode", "{clip}", "{tmp}/out.mp4", "--codec", "mpeg4", "--crf", "0"], 2,
     "--crf 0 is out of mpeg4's range 1..31"),
    (["transcode", "{clip}", "{tmp}/out.mp4", "--codec", "mpeg4", "--crf", "2.5"], 2,
     "--crf sets mpeg4's quantizer, a whole number 1..31, not 2.5; round it"),
    (["transcode", "{clip}", "{tmp}/out.webm", "--codec", "libvpx", "--crf", "10"], 2, "libvpx takes none"),
    (["transcode", "{clip}", "{tmp}/out.mp4", "--loop", "1"], 2, "--loop applies to animations"),
    (["preview", "{clip}", "--reconnect"], 2, "--reconnect reopens a camera that stops, and '.*clip.mp4' is not one"),
    (["preview", "test", "--reconnect"], 2, "'test' is not one .*; leave out --reconnect"),
    (["preview", "test", "--loop", "0"], 2, "--loop plays a file again, and 'test' is a live source; leave out"),
    (["preview", "0", "--loop", "2"], 2, "'0' is a live source"),
    (["preview", "-", "--loop", "0"], 2, "is standard input, which can be read once; leave out --loop"),
    (["preview", "{tmp}/still.png", "--loop", "0"], 2, "is a picture, shown until the window closes; leave out"),
    (["transcode", "{clip}", "{tmp}/out.gif", "--loop", "65535"], 2, "--loop: must be in -1..65534"),
    (["transcode", "{tmp}/still.png", "{tmp}/out.gif", "--duration", "2"], 2,
     r"--duration times a video or an animation, and '.*still.png' is one picture \(one frame out\); leave it out"),
    (["transcode", "{tmp}/still.jpg", "{tmp}/out.mp4", "--duration", "2", "--fps", "5"], 2,
     "--duration and --fps time a video or an animation, .* leave them out, or give numbered pictures"),
])
def test_errors_are_one_line_with_a_status(tmp_path, clip, capsys, args, status, message):
    args = [a.format(clip=clip.path, tmp=tmp_path) for a in args]
    assert main(args) == status
    assert re.search(message, _error(capsys))
    assert not [p for p in tmp_path.iterdir() if p.name != "clip.mp4"]  # nothing was written


def test_fitted_palette_options_at_their_defaults_are_no_error(tmp_path, clip):
    out = tmp_path / "out.gif"
    assert main(["transcode", str(clip.path), str(out), "--palette", "gameboy", "--dither", "bayer",
                 "--dither-strength", "1", "-q"]) == 0  # given, and used
    assert main(["transcode", str(clip.path), str(out), "-y", "-k", "8", "--gif-palette", "global", "-q"]) == 0


def test_a_palette_file_is_an_input_no_output_replaces(tmp_path, clip, capsys):
    palette_file = tmp_path / "swatch.png"
    assert main(["palette", str(clip.path), "-o", str(palette_file), "-k", "4"]) == 0
    capsys.readouterr()
    kept = palette_file.read_bytes()
    assert main(["image", str(clip.path), str(palette_file), "--palette", str(palette_file), "-y"]) == 1
    assert re.search("output '.*swatch.png' is the input '.*swatch.png'", _error(capsys))
    assert main(["transcode", str(clip.path), str(tmp_path / "out.gif"), "--palette", str(palette_file),
                 "--report", str(palette_file), "-y"]) == 1
    assert "swatch.png" in _error(capsys)
    assert palette_file.read_bytes() == kept
    assert not (tmp_path / "out.gif").exists()


@pytest.mark.parametrize("loop", [-1, 3])
def test_a_gif_plays_as_often_as_the_gif_it_came_from(tmp_path, clip, loop):
    from livequant.sources import loop_count

    source, out = tmp_path / f"in{loop}.gif", tmp_path / f"out{loop}.gif"
    assert main(["transcode", str(clip.path), str(source), "-q"]) == 0
    assert loop_count(source) == 0  # from a video: loops forever
    data = source.read_bytes().replace(b"NETSCAPE2.0\x03\x01\x00\x00", b"NETSCAPE2.0\x03\x01\x03\x00")
    source.write_bytes(data.replace(b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x03\x00\x00", b"") if loop < 0 else data)
    assert loop_count(source) == loop
    assert main(["transcode", str(source), str(out), "-k", "4", "-q"]) == 0
    assert loop_count(out) == loop


def test_a_gif_plays_as_often_as_the_apng_it_came_from(tmp_path, clip):
    """An APNG's count was not read: the GIF looped forever."""
    from livequant.sources import loop_count

    source, out = tmp_path / "in.apng", tmp_path / "out.gif"
    assert main(["transcode", str(clip.path), str(source), "--loop", "2", "-q"]) == 0
    assert main(["transcode", str(source), str(out), "-k", "4", "-q"]) == 0
    assert loop_count(out) == 2


@pytest.mark.parametrize("loop", ["-1", "0", "65534"])
def test_loop_sets_how_often_an_animation_plays(tmp_path, clip, loop):
    from livequant.sources import loop_count

    assert main(["transcode", str(clip.path), str(tmp_path / "out.gif"), "--loop", loop, "-q"]) == 0
    assert loop_count(tmp_path / "out.gif") == int(loop)
    assert main(["transcode", str(clip.path), str(tmp_path / "out.webp"), "--loop", loop, "-q"]) == 0
    data = (tmp_path / "out.webp").read_bytes()
    anim = data.index(b"ANIM")
    plays = int.from_bytes(data[anim + 12:anim + 14], "little")  # after the size and the background colour
    assert plays == {"-1": 1, "0": 0}.get(loop, int(loop) + 1)


def test_audio_a_format_cannot_hold_is_left_out_with_a_note(tmp_path, clip, capsys):
    assert main(["transcode", str(clip.path), str(tmp_path / "out.gif")]) == 0
    assert "livequant: note: " in capsys.readouterr().err  # the clip has sound
    for quiet in ("-q", "--no-audio"):
        assert main(["transcode", str(clip.path), str(tmp_path / f"out{quiet}.gif"), quiet]) == 0
        assert "note" not in capsys.readouterr().err


def test_an_input_of_two_audio_tracks_is_said_to_give_the_first(tmp_path, capsys):
    path = tmp_path / "two.mkv"
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        tracks = [out.add_stream("aac", rate=48000) for _ in range(2)]
        for track in tracks:
            track.layout = "stereo"
        for i in range(5):
            out.mux(video.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * i, np.uint8), format="rgb24")))
        out.mux(video.encode(None))
        for track in tracks:
            silence = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
            silence.sample_rate, silence.pts = 48000, 0
            out.mux(track.encode(silence))
            out.mux(track.encode(None))
    assert main(["transcode", str(path), str(tmp_path / "out.mkv"), "-k", "4"]) == 0
    assert "the input has 2 audio tracks and the output carries the first" in capsys.readouterr().err
    with av.open(str(tmp_path / "out.mkv")) as written:
        assert len(written.streams.audio) == 1


def test_preview_without_a_display_says_what_to_do(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    assert main(["preview", "test"]) == 1
    assert "no display" in _error(capsys)


@pytest.mark.parametrize("command", [[], ["preview"], ["transcode"], ["image"], ["palette"], ["demo"]])
def test_help_for_every_command(command, capsys):
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: livequant {' '.join(command)}".rstrip())
    if command in (["transcode"], ["image"]):
        assert "gameboy" in out and "Game Boy" in out  # the presets, described


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"livequant {__version__}"


# a real Ctrl-C / SIGTERM to a real process


def _livequant(*args, env: dict | None = None, **options) -> subprocess.Popen:
    """Start ``python -m livequant ARGS`` from the checkout, with SIGINT handled even if we inherited it ignored;
    ``env`` adds variables, ``options`` go to Popen (text, pipes for stdout and stderr unless given)."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    options = {"text": True, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **options}
    return subprocess.Popen([sys.executable, "-m", "livequant", *map(str, args)],
                            env={**os.environ, **(env or {}), "PYTHONPATH": path},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **options)


def test_a_named_pipe_is_read_once_as_standard_input_is(tmp_path, make_clip):
    """A named pipe (as bash's <(...) gives): the GIF loop count was read from it first (it hung waiting for a
    writer, or took the first bytes from the video), and the sound was read again from it (it failed)."""
    mkv = make_clip("piped.mkv", frames=12, audio_seconds=1.0)
    fifo = tmp_path / "fifo.mkv"
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "wb") as pipe:
            pipe.write(mkv.path.read_bytes())

    writer = threading.Thread(target=feed)
    writer.start()
    process = _livequant("transcode", fifo, tmp_path / "out.mp4", "-q")
    try:
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
        writer.join(timeout=5)
    frames, _, types = _decode(tmp_path / "out.mp4")
    assert (process.returncode, err) == (0, "") and len(frames) == mkv.frames and types == ["video", "audio"]


def test_standard_input_is_read_as_a_pipe(tmp_path, make_clip, rng, capsys):
    """`-` reads standard input (FFmpeg's pipe:0), once and without seeking."""
    from livequant.sources import loop_count

    mkv = make_clip("piped.mkv", frames=12, audio_seconds=1.0)

    def piped(path, *args):
        with open(path, "rb") as stdin:
            process = _livequant(*args, cwd=tmp_path, stdin=stdin)
            out, err = process.communicate(timeout=120)
        return process.returncode, out, err

    assert piped(mkv.path, "transcode", "-", "piped.gif", "-k", "8", "-q") == (0, "", "")
    assert main(["transcode", str(mkv.path), str(tmp_path / "file.gif"), "-k", "8", "-q"]) == 0
    for a, b in zip(*(_decode(tmp_path / name)[0] for name in ("piped.gif", "file.gif")), strict=True):
        np.testing.assert_array_equal(a, b)
    # its sound is demuxed with the video (a file's is read from the file again): it was refused
    assert piped(mkv.path, "transcode", "-", "piped.mp4", "-q") == (0, "", "")
    assert main(["transcode", str(mkv.path), str(tmp_path / "file.mp4"), "-q"]) == 0
    sound = _sound(tmp_path / "piped.mp4")
    np.testing.assert_array_equal(sound, _sound(tmp_path / "file.mp4"))
    assert 0.95 < sound.shape[1] / 44100 < 1.05
    assert piped(mkv.path, "transcode", "-", "cut.mp4", "--duration", "0.5", "-q") == (0, "", "")
    assert 0.45 < _sound(tmp_path / "cut.mp4").shape[1] / 44100 < 0.55
    assert piped(mkv.path, "transcode", "-", "piped.webm", "-q") == (0, "", "")  # AAC re-encoded to Opus
    with av.open(str(tmp_path / "piped.webm")) as webm:
        assert webm.streams.audio[0].codec_context.name == "opus"
        assert 0.95 < sum(frame.samples for frame in webm.decode(audio=0)) / 48000 < 1.05
    # 5.1 PCM, which MP4 takes at its start but refuses at its end: found by a trial with copies of the packets
    surround = surround_clip(tmp_path / "surround.mkv", "pcm_s16le", "5.1")
    assert piped(surround, "transcode", "-", "surround.mp4", "-q") == (0, "", "")
    assert channel_tones(tmp_path / "surround.mp4") == ("aac", "5.1", SURROUND_TONES)
    assert piped(mkv.path, "transcode", "-", "piped.mp4", "--no-audio", "-q", "-y") == (0, "", "")
    assert _decode(tmp_path / "piped.mp4")[2] == ["video"] and len(_decode(tmp_path / "piped.mp4")[0]) == mkv.frames
    for name in ("file.mp4", "cut.mp4", "piped.webm", "surround.mkv", "surround.mp4"):
        (tmp_path / name).unlink()
    # an MP4 with its index at the end (PyAV writes it so) cannot be read from a pipe, once past FFmpeg's buffer
    noise = tmp_path / "noise.mp4"
    with av.open(str(noise), "w") as out:
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (120, 160, 3), np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    assert noise.stat().st_size > 100_000
    status, _, err = piped(noise, "transcode", "-", "out.gif")
    assert status == 1 and "a pipe cannot be seeked, so MP4 and MOV read from one need their index first" in err
    noise.unlink()
    grey = tmp_path / "grey.ts"  # from a pipe, a start is reached by reading (a seek there failed: "Operation
    with av.open(str(grey), "w") as ts:  # not permitted")
        stream = ts.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 * i, np.uint8), format="rgb24")
            frame.pts = i
            ts.mux(stream.encode(frame))
        ts.mux(stream.encode(None))
    assert piped(grey, "transcode", "-", "late.mkv", "--start", "1.5", "--lossless", "-q") == (0, "", "")
    late = _decode(tmp_path / "late.mkv")[0]
    assert len(late) == 5 and abs(int(late[0].mean()) - 150) <= 3
    for name in ("grey.ts", "late.mkv"):
        (tmp_path / name).unlink()
    (tmp_path / "text.txt").write_text("not a video\n")
    for command in ("palette", "image"):  # it named FFmpeg's 'pipe:0'; asked `image` for a video
        assert piped(tmp_path / "text.txt", command, "-", *(["out.png"] if command == "image" else [])) == (1, "", (
            "livequant: error: cannot open standard input: Invalid data found when processing input; send a "
            "picture or a video into it (MKV, MPEG-TS, or MP4 with its index first: ffmpeg -movflags +faststart); "
            "an animated PNG or WebP cannot come through a pipe: give the file\n"))
    (tmp_path / "text.txt").unlink()
    assert piped(mkv.path, "image", "-", "out.png") == (2, "", (  # it showed '-' as 'pipe:0'
        "livequant: error: '-' is a video, and `livequant image` quantizes one picture; use `livequant transcode '-' "
        "'out.gif'`\n"))
    assert main(["transcode", str(mkv.path), str(tmp_path / "thrice.gif"), "--loop", "2", "-k", "4", "-q"]) == 0
    for loop, note in ((None, True), ("2", False)):  # a pipe's GIF loops forever, said (it was silent)
        status, _, err = piped(tmp_path / "thrice.gif", "transcode", "-", "again.gif", "-y",
                               *(["--loop", loop] if loop else []))
        assert status == 0 and ("how often a GIF read from standard input plays cannot be read" in err) == note
        assert loop_count(tmp_path / "again.gif") == (int(loop) if loop else 0)
    for name in ("thrice.gif", "again.gif"):
        (tmp_path / name).unlink()
    cv2.imwrite(str(tmp_path / "photo.png"), clip_frame(3, 96, 64))
    assert piped(tmp_path / "photo.png", "image", "-", "piped.png", "-k", "6", "-q") == (0, "", "")
    assert main(["image", str(tmp_path / "photo.png"), str(tmp_path / "file.png"), "-k", "6", "-q"]) == 0
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "piped.png")), cv2.imread(str(tmp_path / "file.png")))
    for name in ("photo.png", "piped.png", "file.png"):
        (tmp_path / name).unlink()
    status, colours, _ = piped(mkv.path, "palette", "-", "-k", "4")
    assert status == 0 and len(colours.split()) == 4
    assert main(["palette", str(mkv.path), "-k", "4"]) == 0 and capsys.readouterr().out == colours
    assert main(["transcode", "-", str(tmp_path / "g.gif"), "--gif-palette", "global"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.gif", "piped.gif", "piped.mkv", "piped.mp4"]


def test_standard_output_gets_the_output_once_complete(tmp_path, clip):
    """`-` as the output writes a temporary file of --to's format and sends it out whole (as gifski's `-o -`);
    nothing is left behind, whatever happens."""
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {"TMPDIR": str(temp)}

    def out(*args, stdin=None):
        with open(stdin or os.devnull, "rb") as given:
            process = _livequant(*args, cwd=tmp_path, stdin=given, env=env, text=False)
            sent, err = process.communicate(timeout=120)
        assert list(temp.iterdir()) == []
        return process.returncode, sent, err.decode()

    status, sent, err = out("transcode", clip.path, "-", "--to", "gif", "-k", "8")
    assert status == 0 and err.splitlines()[-1].startswith("wrote 24 frames to standard output (gif) in ")
    assert main(["transcode", str(clip.path), str(tmp_path / "file.gif"), "-k", "8", "-q"]) == 0
    assert sent == (tmp_path / "file.gif").read_bytes()
    status, sent, _ = out("transcode", clip.path, "-", "--to", "MP4", "-k", "8", "-q")
    (tmp_path / "sent.mp4").write_bytes(sent)  # an MP4's index is written last: a file, then sent
    frames, _, types = _decode(tmp_path / "sent.mp4")
    assert status == 0 and len(frames) == clip.frames and types == ["video", "audio"]
    cv2.imwrite(str(tmp_path / "photo.png"), clip_frame(3, 96, 64))
    status, sent, _ = out("image", "-", "-", "--to", "png", "-k", "4", "-q", stdin=tmp_path / "photo.png")
    assert main(["image", str(tmp_path / "photo.png"), str(tmp_path / "file.png"), "-k", "4", "-q"]) == 0
    assert status == 0 and sent == (tmp_path / "file.png").read_bytes()  # standard input to standard output
    for args, message in [
        ((), "the output - is standard output: add --to with what to write there (gif mp4 mov mkv webm webp "
             "apng)"),
        (("--to", "avi"), "--to avi: standard output takes gif mp4 mov mkv webm webp apng"),
        (("--to", "png"), "--to png: standard output takes gif mp4 mov mkv webm webp apng; for one picture, use "
                          "`livequant image`"),  # it named the temporary file's path, and ways to rename it
    ]:
        assert out("transcode", clip.path, "-", *args) == (2, b"", f"livequant: error: {message}\n")
    assert out("transcode", clip.path, "x.gif", "--to", "gif") == (2, b"", (
        "livequant: error: --to says what to write to standard output (the output -), and 'x.gif' is a file, whose "
        "suffix says it; leave out --to\n"))
    # a reader that stops early: one line, no traceback
    process = _livequant("transcode", clip.path, "-", "--to", "gif", "--scale", "10", "--dither", "bluenoise",
                         "-q", cwd=tmp_path, env=env, text=False)  # some megabytes: more than a pipe holds
    with process.stdout, process.stderr:
        process.stdout.read(100)
        process.stdout.close()
        assert process.wait(timeout=120) == 1
        assert process.stderr.read().decode() == ("livequant: error: standard output was closed before all of the "
                                                  "output went out (the program reading it stopped)\n")
    assert list(temp.iterdir()) == []
    # a terminal shows no GIF
    primary, secondary = os.openpty()
    process = _livequant("transcode", clip.path, "-", "--to", "gif", cwd=tmp_path, stdout=secondary)
    _, err = process.communicate(timeout=120)
    os.close(secondary)
    os.close(primary)
    assert (process.returncode, err) == (2, "livequant: error: standard output is a terminal, which shows no .gif "
                                            "file; send it to a file (> out.gif) or a pipe\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.gif", "file.png", "photo.png", "sent.mp4", "temp"]


def test_a_finished_command_ignores_late_signals_and_puts_the_handlers_back(tmp_path, clip):
    """Once the output is complete, a signal was raised wherever Python was letting the command's objects go
    (tqdm's ``__del__``, a finalizer), which prints a traceback; in-process callers get their handlers back."""
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert main(["transcode", str(clip.path), str(tmp_path / "out.gif"), "-k", "4", "-q"]) == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """10 s of 320x240 at 30 fps, with sound."""
    return write_clip(tmp_path_factory.mktemp("long") / "long.mp4", size=(320, 240), fps=30, frames=300,
                      audio_seconds=10.0)


@pytest.mark.parametrize(("sig", "status", "word"), [(signal.SIGINT, 130, "interrupted"),
                                                    (signal.SIGTERM, 143, "terminated")])
def test_a_signal_finishes_the_output_written_so_far(tmp_path, long_clip, sig, status, word):
    out = tmp_path / "out.mp4"
    process = _livequant("transcode", long_clip.path, out, "--fps", "60")  # 600 frames to write
    deadline = time.monotonic() + 60

    def written() -> int:  # bytes in the temporary file (which first holds the one-frame trial of the output)
        return sum(p.stat().st_size for p in tmp_path.glob(".out.*.partial.mp4"))

    while written() < 40000 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # a few frames into the file
    process.send_signal(sig)
    _, err = process.communicate(timeout=10)
    assert process.returncode == status, err
    frames, times, types = _decode(out)
    assert f"{word}: wrote {len(frames)} frames to {out}" in err
    assert 1 <= len(frames) < 600 and types == ["video", "audio"]
    assert not list(tmp_path.glob(".*"))  # the partial file became the output


# the preview window, as a person uses it


# x11grab runs in a child process: with OpenCV's libxcb loaded first (as in this process), it crashes.
_GRAB = """
import sys, av
w, h, x, y = sys.argv[1:5]
options = {"video_size": f"{w}x{h}", "grab_x": x, "grab_y": y, "draw_mouse": "0"}
with av.open(sys.argv[5], format="x11grab", options=options) as grab:
    sys.stdout.buffer.write(next(grab.decode(video=0)).to_ndarray(format="rgb24").tobytes())
"""


def _screenshot(display: str, window: str) -> np.ndarray:
    """The window's pixels, RGB, grabbed from the X server with FFmpeg's x11grab (in PyAV's FFmpeg).

    A window not painted at all (every pixel black, not even the toolbar) is then unmapped and mapped again, as
    a person would minimise and restore it: with no window manager, the Qt 5.15 in opencv-python now and then
    loses the window's MapNotify on a busy machine (3 windows of 12 beside three busy processes here, none of 12
    on an idle machine) and then never paints it, though it shows frames at full rate (CI of e4dd8ea)."""
    geometry = subprocess.run(["xdotool", "getwindowgeometry", "--shell", window], capture_output=True, text=True,
                              check=True).stdout
    g = dict(line.split("=") for line in geometry.split())
    grab = subprocess.run([sys.executable, "-c", _GRAB, g["WIDTH"], g["HEIGHT"], g["X"], g["Y"], f"{display}.0"],
                          capture_output=True, check=True, timeout=10)
    shot = np.frombuffer(grab.stdout, np.uint8).reshape(int(g["HEIGHT"]), int(g["WIDTH"]), 3)
    if not shot.any():
        for action in ("windowunmap", "windowmap"):
            subprocess.run(["xdotool", action, "--sync", window], check=True, capture_output=True, timeout=10)
    return shot


def _shown(shot: np.ndarray, frame_height: int = 480, strip: int = 16):
    """``(picture, palette strip)`` in a screenshot of the preview window, found below its toolbar by the
    HUD's black bar; ``frame_height`` is the picture's height on screen. None if the picture is not there."""
    black = np.flatnonzero((shot == 0).all(axis=(1, 2)))
    if not len(black) or black[0] + frame_height + strip > len(shot):
        return None
    top = black[0] + 23  # below the HUD (rows 0..22 of the image)
    return shot[top : black[0] + frame_height], shot[black[0] + frame_height : black[0] + frame_height + strip]


def _wait_for(condition, seconds: float = 30.0):
    """Poll ``condition()`` until it returns something other than None, or ``seconds`` pass (None)."""
    deadline = time.monotonic() + seconds
    while (value := condition()) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def _busy(image: np.ndarray) -> float:
    """Fraction of horizontally adjacent pixels that differ: dithering raises it."""
    return float((image[:, 1:] != image[:, :-1]).any(axis=2).mean())


@pytest.mark.gui
@pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool is not installed")
@pytest.mark.skipif("x11grab" not in av.formats_available, reason="PyAV's FFmpeg has no x11grab")
def test_preview_window_shows_the_quantized_picture_and_takes_keys(xdisplay, tmp_path):
    process = _livequant("preview", "test", "--size", "320x240", "-k", "8", cwd=tmp_path)

    def key(name: str) -> None:  # one at a time: keys pressed within one frame may be lost by OpenCV
        subprocess.run(["xdotool", "key", "--window", window, name], check=True, capture_output=True)

    last = {"seen": "no screenshot taken"}  # what the window showed last, for a failure's message

    def palette_shown():
        """The colours of the palette strip, if the picture uses only those; else None."""
        shot = _screenshot(xdisplay, window)
        shown = _shown(shot)
        cv2.imwrite(str(tmp_path / "last-screenshot.png"), cv2.cvtColor(shot, cv2.COLOR_RGB2BGR))
        if shown is None:
            last["seen"] = f"no picture below a HUD bar in a {shot.shape[1]}x{shot.shape[0]} window"
            return None
        picture, strip = map(_colors, shown)
        last["seen"] = (f"{len(strip)} colours in the strip, {len(picture - strip)} of the picture's {len(picture)} "
                        f"not among them, mean level {shown[0].mean():.0f}")
        if not picture <= strip or shown[0].mean() < 20:
            return None  # not there yet, or black
        return strip

    def showing(colours: int):
        """The strip's colours once it has ``colours`` of them and the picture uses only those."""
        strip = palette_shown()
        return strip if strip is not None and len(strip) == colours else None

    def failed(what: str) -> str:
        return f"{what}; last seen: {last['seen']} (screenshot: {tmp_path / 'last-screenshot.png'})"

    def snapshot(number: int) -> np.ndarray:
        key("s")
        path = _wait_for(lambda: next(tmp_path.glob(f"livequant-snapshot-{number}.png"), None))
        assert path is not None, "s saved no snapshot"
        return _wait_for(lambda: cv2.imread(str(path)))

    try:
        found = subprocess.run(["xdotool", "search", "--sync", "--name", "^livequant$"], capture_output=True,
                               text=True, timeout=WINDOW_WAIT_S)
        window = found.stdout.split()[0]
        # the first frame waits for the imports and the first palette fit: seconds on a busy machine
        assert _wait_for(lambda: showing(8), WINDOW_WAIT_S), \
            failed("the window does not show an 8-colour picture")
        for colours in (4, 2):
            key("minus")
            assert _wait_for(lambda: showing(colours)), \
                failed(f"- did not go to {colours} colours")
        plain = snapshot(1)
        key("d")  # none -> bayer
        time.sleep(0.3)
        dithered = snapshot(2)
        assert len(_colors(plain)) <= 2 and len(_colors(dithered)) <= 2
        assert _busy(dithered) > 2 * _busy(plain)
        key("q")
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        print(process.communicate()[1])  # shown if the test fails


@pytest.mark.gui
@pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool is not installed")
def test_preview_pixelate_shows_blocks_records_them_and_quits_on_q(xdisplay, tmp_path):
    """The retro look live, and kept: `preview` took no --pixelate (transcode's only) and wrote nothing."""
    process = _livequant("preview", "test", "--size", "320x240", "--pixelate", "8", "-k", "8", "--record",
                         "live.mp4", cwd=tmp_path)
    try:
        found = subprocess.run(["xdotool", "search", "--sync", "--name", "^livequant$"], capture_output=True,
                               text=True, timeout=WINDOW_WAIT_S)
        window = found.stdout.split()[0]
        snapshot = None
        while snapshot is None and process.poll() is None:  # s before the first frame saves nothing
            subprocess.run(["xdotool", "key", "--window", window, "s"], check=True, capture_output=True)
            snapshot = _wait_for(lambda: next(tmp_path.glob("livequant-snapshot-1.png"), None), 1.0)
        picture = _wait_for(lambda: cv2.imread(str(snapshot)))
        assert picture.shape == (240, 320, 3)
        blocks = picture.reshape(30, 8, 40, 8, 3)
        assert (blocks == blocks[:, :1, :, :1]).all() and 2 < len(_colors(picture)) <= 8
        subprocess.run(["xdotool", "key", "--window", window, "q"], check=True, capture_output=True)
        assert process.wait(timeout=60) == 0  # q reaches the window through the enlarging sink
    finally:
        if process.poll() is None:
            process.kill()
        err = process.communicate()[1]
        print(err)  # shown if the test fails
    shown = int(re.search(r"^(\d+) frames? at", err, re.M).group(1))
    assert f"wrote {shown} frames to live.mp4" in err
    recorded, times, types = _decode(tmp_path / "live.mp4")
    assert types == ["video"] and len(recorded) == shown and recorded[0].shape == (240, 320, 3)
    assert times == sorted(times) and times[-1] > 0


@pytest.mark.gui
@pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool is not installed")
def test_ctrl_c_ends_a_recorded_preview_with_the_recording_complete(xdisplay, tmp_path):
    """As Ctrl-C ends a live stream's transcode: the frames shown so far make a whole file, and the exit is 130;
    it loops forever, as the window would have gone on."""
    from livequant.sources import loop_count

    process = _livequant("preview", "test", "--size", "160x120", "--record", "live.gif", cwd=tmp_path)
    try:
        subprocess.run(["xdotool", "search", "--sync", "--name", "^livequant$"], capture_output=True, text=True,
                       timeout=WINDOW_WAIT_S)
        time.sleep(2)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 130
    finally:
        if process.poll() is None:
            process.kill()
        print(process.communicate()[1])  # shown if the test fails
    frames, _, _ = _decode(tmp_path / "live.gif")
    assert len(frames) >= 2 and frames[0].shape == (120, 160, 3) and loop_count(tmp_path / "live.gif") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.gif"]


@pytest.mark.gui
def test_a_recorded_preview_keeps_the_transparency_the_window_shows_on_white(xdisplay, tmp_path):
    """`preview --record out.gif` of a sticker: its source was flattened on white, so the recording was too."""
    from livequant.gif import GifEncoder

    colors = np.array([(220, 30, 30), (30, 40, 210)], np.uint8)
    masks = []
    encoder = GifEncoder(48, 32, colors)
    data = encoder.header()
    for i in range(6):
        opaque = np.zeros((32, 48), bool)
        opaque[4:20, 4 + 5 * i : 20 + 5 * i] = True
        masks.append(opaque)
        data += encoder.add(np.full((32, 48), i % 2, np.uint8), colors, i / 5, opaque)
    (tmp_path / "sticker.gif").write_bytes(data + encoder.end())
    _preview_to_the_end("sticker.gif", "--loop", "-1", "-k", "2", "--record", "live.gif", cwd=tmp_path)
    with av.open(str(tmp_path / "live.gif")) as gif:
        shown = [frame.to_ndarray(format="rgba")[..., 3] >= 128 for frame in gif.decode(video=0)]
    assert shown and all(any((mask == expected).all() for expected in masks) for mask in shown)


@pytest.mark.gui
def test_a_recorded_preview_of_an_animation_that_plays_three_times_holds_them_and_plays_once(xdisplay, tmp_path):
    """The recording held the three plays and still said to repeat twice, as its source does: nine plays."""
    from PIL import Image

    from livequant.sources import loop_count

    frames = [Image.fromarray(np.full((16, 16, 3), 80 * i, np.uint8)) for i in range(3)]
    frames[0].save(tmp_path / "thrice.gif", save_all=True, append_images=frames[1:], duration=100, loop=2)
    assert loop_count(tmp_path / "thrice.gif") == 2
    shown, _, dropped = _preview_to_the_end("thrice.gif", "-k", "4", "--record", "live.gif", cwd=tmp_path)
    recorded, _, _ = _decode(tmp_path / "live.gif")  # a live preview drops frames when it falls behind (CI)
    assert shown == len(recorded) and shown + dropped == 9 and loop_count(tmp_path / "live.gif") == -1


@pytest.mark.gui
@pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool is not installed")
@pytest.mark.skipif("x11grab" not in av.formats_available, reason="PyAV's FFmpeg has no x11grab")
def test_the_preview_window_shows_transparency_on_a_checkerboard(xdisplay, tmp_path):
    """A sticker's clear pixels show grey squares of 8 window pixels (they showed white, like its own white)."""
    from livequant.frames import CHECKER_GREYS
    from livequant.gif import GifEncoder

    colors = np.array([(220, 30, 30), (30, 40, 210)], np.uint8)
    encoder = GifEncoder(48, 32, colors)
    data = encoder.header()
    for i in range(4):
        opaque = np.zeros((32, 48), bool)
        opaque[4:20, 4 + 5 * i : 20 + 5 * i] = True
        data += encoder.add(np.full((32, 48), i % 2, np.uint8), colors, i / 5, opaque)
    (tmp_path / "sticker.gif").write_bytes(data + encoder.end())
    process = _livequant("preview", "sticker.gif", "--loop", "0", "-k", "2", cwd=tmp_path)  # until q
    greys = {tuple(g) for g in CHECKER_GREYS}

    def picture():
        shown = _shown(_screenshot(xdisplay, window), frame_height=320)  # 48x32 shown 10x
        return None if shown is None or not greys <= _colors(shown[0]) else shown[0]

    try:
        found = subprocess.run(["xdotool", "search", "--sync", "--name", "^livequant$"], capture_output=True,
                               text=True, timeout=WINDOW_WAIT_S)
        window = found.stdout.split()[0]
        shown = _wait_for(picture, WINDOW_WAIT_S)
        assert shown is not None, "the window shows no checkerboard"
        assert _colors(shown) <= greys | {tuple(c) for c in colors.tolist()}
        row = shown[250 - 23]  # the picture's row 250 (below the HUD's 23), clear from end to end
        dark = (np.arange(480) // 8 + 250 // 8) % 2
        assert (row == np.asarray(CHECKER_GREYS)[dark]).all()
        subprocess.run(["xdotool", "key", "--window", window, "q"], check=True, capture_output=True)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        print(process.communicate()[1])  # shown if the test fails


def _preview_to_the_end(*args, cwd, quit_after: float | None = None) -> tuple[int, float, int]:
    """Run ``livequant preview ARGS`` until its source ends, or with ``quit_after``, until q is pressed that
    many seconds after its window opened (it must still be running then): ``(frames shown, fps, frames
    dropped)`` from the summary it prints."""
    process = _livequant("preview", *args, cwd=cwd)
    try:
        if quit_after is not None:
            found = subprocess.run(["xdotool", "search", "--sync", "--name", "^livequant$"], capture_output=True,
                                   text=True, timeout=WINDOW_WAIT_S)
            time.sleep(quit_after)
            assert process.poll() is None, "the preview ended by itself"
            subprocess.run(["xdotool", "key", "--window", found.stdout.split()[0], "q"], check=True,
                           capture_output=True)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    err = process.communicate()[1]
    shown = re.search(r"^(\d+) frames? at ([\d.]+) fps, (\d+) dropped,", err, re.M)
    assert shown, err
    return int(shown.group(1)), float(shown.group(2)), int(shown.group(3))


@pytest.mark.gui
def test_preview_plays_pictures_at_the_rate_asked(xdisplay, tmp_path):
    """Six pictures at --fps 2 in a real window: all read (a busy machine may drop one), 1/2 s apart (the
    summary's rate counts from the first frame read to the last shown: at most 6 / 2.5 s), then the preview
    ends by itself."""
    for i in range(6):
        cv2.imwrite(str(tmp_path / f"pic{i}.png"), np.full((24, 32, 3), 40 * i, np.uint8))
    frames, fps, dropped = _preview_to_the_end(tmp_path / "pic*.png", "--fps", "2", "-k", "4", cwd=tmp_path)
    assert frames + dropped == 6 and fps <= 6 / 2.5


@pytest.mark.gui
@pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool is not installed")
def test_preview_of_a_picture_stays_until_closed(xdisplay, tmp_path, photo):
    """It showed the picture as one frame and ended at once: the keys had nothing to act on. (Frames read again
    while one was still being quantized count as dropped: a slow machine shows fewer of them.)"""
    frames, _, dropped = _preview_to_the_end(photo, "-k", "4", cwd=tmp_path, quit_after=2)
    assert frames + dropped > 1


@pytest.mark.gui
@pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool is not installed")
def test_preview_of_a_looping_gif_plays_until_closed(xdisplay, tmp_path, make_qframe):
    """A GIF that loops forever (4 frames, 0.4 s) played once and the window closed: it loops as a browser
    shows it now, until q."""
    path = tmp_path / "anim.gif"
    with GifWriter(path, loop=0) as sink:
        for i in range(4):
            sink.write(make_qframe(np.full((16, 16), i), time=i / 10))
    frames, _, dropped = _preview_to_the_end(path, "-k", "4", cwd=tmp_path, quit_after=2)
    assert frames + dropped > 8


@pytest.mark.gui
def test_preview_loop_plays_pictures_again_then_ends(xdisplay, tmp_path):
    """--loop 2: three plays of six pictures at 12 fps, every frame read, then the preview ends by itself."""
    for i in range(6):
        cv2.imwrite(str(tmp_path / f"pic{i}.png"), np.full((24, 32, 3), 40 * i, np.uint8))
    frames, _, dropped = _preview_to_the_end(tmp_path / "pic*.png", "--fps", "12", "--loop", "2", "-k", "4",
                                             cwd=tmp_path)
    assert frames + dropped == 18


@pytest.mark.gui
def test_preview_shows_a_video_at_the_rate_asked(xdisplay, tmp_path, clip):
    """--fps re-times a video (it was left out without a word): 2 s of 12 fps at 4 fps is 8 frames."""
    frames, _, dropped = _preview_to_the_end(clip.path, "--fps", "4", "-k", "4", cwd=tmp_path)
    assert frames + dropped == 8  # a busy machine may drop one


@pytest.mark.gui
@pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool is not installed")
@pytest.mark.parametrize(("stop", "status"), [("q", 0), ("close", 0), ("ctrl-c", 130)])
def test_preview_of_a_slow_source_stops_at_once(xdisplay, tmp_path, stop, status):
    """A frame every 30 s: q, closing the window or Ctrl-C act within seconds, not at the next frame."""
    process = _livequant("preview", "test", "--size", "160x120", "--fps", str(1 / 30), "-k", "4", cwd=tmp_path)
    try:
        found = subprocess.run(["xdotool", "search", "--sync", "--name", "^livequant$"], capture_output=True,
                               text=True, timeout=WINDOW_WAIT_S)
        window = found.stdout.split()[0]
        time.sleep(3)  # the first frame is shown; the next is 27 s away
        if stop == "q":
            subprocess.run(["xdotool", "key", "--window", window, "q"], check=True, capture_output=True)
        elif stop == "close":
            send_wm_delete(int(window))
        else:
            process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == status  # the next frame is 27 s away
    finally:
        if process.poll() is None:
            process.kill()
        print(process.communicate()[1])  # shown if the test fails
