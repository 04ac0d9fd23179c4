"""Every script in samples/ runs as a user would run it, on the test pattern or a generated clip, and its
output is decoded and checked."""

import subprocess
import sys
from pathlib import Path

import cv2
import av  # isort: skip
import numpy as np
import pytest

from livequant import presets
from livequant.palette import Palette

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def run_sample(name: str, *args, cwd: Path) -> str:
    """Run ``samples/name`` with ``args`` in ``cwd``; its stdout, after checking it exited 0."""
    done = subprocess.run([sys.executable, str(SAMPLES / name), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def colours(rgb: np.ndarray) -> set:
    return {tuple(c) for c in np.unique(rgb.reshape(-1, 3), axis=0).tolist()}


def test_every_sample_is_short_and_tested():
    scripts = sorted(path.name for path in SAMPLES.glob("*.py"))
    assert scripts == ["palette_from_photo.py", "pyav_loop.py", "video_to_gif.py", "virtual_camera.py",
                       "webcam_retro.py"]
    assert all(len((SAMPLES / name).read_text().splitlines()) < 60 for name in scripts)


def test_webcam_retro(tmp_path):
    out = run_sample("webcam_retro.py", "--source", "test", "--frames", "5", "--no-window", "--save", "last.png",
                     cwd=tmp_path)
    assert out.startswith("5 frames")
    last = cv2.cvtColor(cv2.imread(str(tmp_path / "last.png")), cv2.COLOR_BGR2RGB)
    assert last.shape == (360, 640, 3)
    assert colours(last) <= {tuple(c) for c in presets.get("cga").colors.tolist()}


def test_video_to_gif_with_a_gpl_palette(tmp_path):
    gameboy = presets.get("gameboy")
    gameboy.save(tmp_path / "gb.gpl")
    run_sample("video_to_gif.py", "--source", "test", "--palette", "gb.gpl", "--width", "160", "-o", "out.gif",
               cwd=tmp_path)
    with av.open(str(tmp_path / "out.gif")) as gif:
        frames = [frame.to_ndarray(format="rgb24") for frame in gif.decode(video=0)]
    assert len(frames) == 24 and frames[0].shape == (90, 160, 3)  # 2 s at 12 fps, 320x180 -> 160 wide
    assert set().union(*map(colours, frames)) <= {tuple(c) for c in gameboy.colors.tolist()}


def test_palette_from_photo_finds_the_colours_of_a_four_colour_picture(tmp_path):
    four = np.array([[200, 30, 30], [20, 20, 20], [240, 240, 240], [30, 90, 200]], np.uint8)
    photo = four[np.arange(64 * 48).reshape(48, 64) * 4 // (64 * 48)]
    cv2.imwrite(str(tmp_path / "photo.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    run_sample("palette_from_photo.py", "--source", "photo.png", "-k", "4", "-o", "photo.gpl", cwd=tmp_path)
    assert colours(Palette.from_file(tmp_path / "photo.gpl").colors) == colours(four)


def test_palette_from_photo_on_the_test_pattern(tmp_path):
    out = run_sample("palette_from_photo.py", "--source", "test", "-k", "8", "-o", "test.gpl", cwd=tmp_path)
    palette = Palette.from_file(tmp_path / "test.gpl")
    assert len(palette) == 8 and palette.name == "test" and out.split("\n")[0].split() == palette.to_hex()


def test_pyav_loop_quantizes_the_video_and_copies_the_audio(tmp_path, make_clip):
    clip = make_clip("in.mp4", audio_seconds=2.0)
    run_sample("pyav_loop.py", clip.path, "out.mkv", "--palette", "gameboy", cwd=tmp_path)
    with av.open(str(clip.path)) as original:
        audio_in = [bytes(p) for p in original.demux(audio=0) if p.size]
    with av.open(str(tmp_path / "out.mkv")) as out:
        assert out.streams.audio[0].codec_context.name == "aac"
        frames = [frame.to_ndarray(format="rgb24") for frame in out.decode(video=0)]
    with av.open(str(tmp_path / "out.mkv")) as out:
        audio_out = [bytes(p) for p in out.demux(audio=0) if p.size]
    assert len(frames) == clip.frames and frames[0].shape == (48, 64, 3)
    assert set().union(*map(colours, frames)) <= {tuple(c) for c in presets.get("gameboy").colors.tolist()}
    assert audio_out == audio_in  # copied packet for packet


def test_virtual_camera_sends_frames_or_skips_cleanly(tmp_path):
    out = run_sample("virtual_camera.py", "--source", "test", "--frames", "3", cwd=tmp_path)
    if out.startswith("skipped:"):
        assert "\n" not in out.strip() and "virtual-camera driver" in out
        pytest.skip(out.strip())
    assert out.startswith("sent 3 frames")
