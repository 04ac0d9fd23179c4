"""The bad-input corpus: inputs that break naive tools, generated in code, and what livequant must do with each.

`write_inputs(folder)` writes every input into ``folder``; `cases(folder)` lists the command lines to run
over them and the outcome each must have. `run(case, folder)` runs one case as the user would, as
``python -m livequant ...`` in a child process with a memory limit (``RLIMIT_AS``; forked from a process that
has imported livequant, so a case does not pay the imports), and
`problems(case, outcome, folder)` says what went wrong. Run this file to try every case and print each
message and the totals (tracebacks, signals, partial files, inputs touched, outputs of the wrong length), for
the notes::

    python tests/corpus.py
"""

from __future__ import annotations

import hashlib
import importlib.util
import multiprocessing
import os
import re
import resource
import shutil
import signal
import socket
import struct
import sys
import tempfile
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":  # run as a script: make livequant and conftest importable
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import cv2  # before av (PyAV#978)
import av  # isort: skip
import numpy as np

from conftest import clip_frame, write_clip

HAVE_PILLOW = importlib.util.find_spec("PIL") is not None
ERROR_LINE = re.compile(r"livequant: error: .+")
DAMAGE = re.compile(r"\b(\d+) frames? (?:could not be decoded|had decoding errors)\b")
MEMORY_LIMIT = 6 << 30  # bytes of address space for each child: a runaway allocation fails there, not the machine
BAD = os.fsdecode(b"bad\xffname")  # a name the OS allows that is not UTF-8
TIMING_RATES = (1, 5, 10, 12, 15, Fraction(24000, 1001), 24, 25, Fraction(30000, 1001), 30, 48, 50,
                Fraction(60000, 1001), 60, 72, 90, 100, 120, 144, 240)


@dataclass(frozen=True)
class Case:
    """One command line over a corpus input, and what must come of it.

    ``args`` are livequant's arguments, with ``{out}`` standing for the output path. ``expect`` is
    ``"ok"`` (exit 0 and a readable output), ``"partial"`` (the same, and stderr says how many frames could
    not be decoded or had decoding errors) or ``"error"`` (exit 1 or 2, one ``livequant: error:`` line that
    contains ``names``, no output). ``frames`` and ``size`` (W, H), when given, are checked on the output; ``duration``
    (seconds) is checked as a player shows it: the container's duration for video, the sum of the frame
    delays for a GIF, whose every delay must also be at least 2/100 s (players show shorter ones as 10/100 s).
    ``quick`` cases also run in process in the fast tests; all run through the command line in the slow one.
    """

    name: str
    args: tuple[str, ...]
    expect: str
    names: str = ""
    frames: int | None = None
    size: tuple[int, int] | None = None
    duration: float | None = None
    quick: bool = False

    @property
    def output_arg(self) -> str:
        return next((a for a in self.args if a.startswith("{out}")), "{out}")

    @property
    def suffix(self) -> str:
        return Path(self.output_arg).suffix

    def output(self, out_dir: Path) -> Path:
        """The output file the case asks for, in ``out_dir``."""
        return Path(self.output_arg.replace("{out}", str(out_dir / "out")))

    def argv(self, out: Path) -> list[str]:
        """The arguments with the output path filled in."""
        return [a.replace("{out}", str(out)) for a in self.args]


@dataclass(frozen=True)
class Outcome:
    """What one run did: exit status (negative: killed by that signal), stderr, the files left in the output
    folder, and the inputs it changed (the corpus folder compared before and after)."""

    status: int
    stderr: str
    files: tuple[str, ...]
    touched: tuple[str, ...] = ()


# ------------------------------------------------------------------ writing the inputs

def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bytes(width: int, height: int, color_type: int, rows: bytes, *, depth: int = 8, plte: bytes = b"") -> bytes:
    """A PNG written by hand: ``rows`` are the raw scanlines (filter bytes included), so the header may lie."""
    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    chunks = [_chunk(b"IHDR", header)] + ([_chunk(b"PLTE", plte)] if plte else [])
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b"")


def _mux_pictures(out, stream, pictures, first: int = 0, format: str = "rgb24") -> None:
    """Encode ``pictures`` (arrays in ``format``) into ``stream`` of ``out``, pts from ``first`` on, and flush it."""
    for i, picture in enumerate(pictures):
        frame = av.VideoFrame.from_ndarray(picture, format=format)
        frame.pts = first + i
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def _h264(path: Path, frames: int = 48, size=(64, 48), first: int = 0, keyframes: int | None = 12, **container) -> None:
    """A ``size`` H.264 clip of ``frames`` `clip_frame` pictures, numbered from ``first`` (which sets their times),
    a keyframe every ``keyframes`` frames (None: x264's choice); ``container`` goes to ``av.open`` (a format,
    options)."""
    with av.open(str(path), "w", **container) as out:
        stream = out.add_stream("libx264", rate=12, options={} if keyframes is None else {"g": str(keyframes)})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        _mux_pictures(out, stream, (clip_frame(i, *size) for i in range(frames)), first)


def half_transparent(width: int = 33, height: int = 21) -> np.ndarray:
    """An RGBA picture: the test clip's frame 3 left of x = 16, and red at alpha 0 from there on."""
    rgba = np.dstack([clip_frame(3, width, height), np.full((height, width), 255, np.uint8)])
    rgba[:, 16:] = (255, 0, 0, 0)
    return rgba


def _alpha_video(path: Path, frames: int = 4) -> None:
    """A MOV of RGBA PNG frames, half transparent (see `half_transparent`)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("png", rate=12)
        stream.width, stream.height, stream.pix_fmt = 33, 21, "rgba"
        _mux_pictures(out, stream, [half_transparent()] * frames, format="rgba")


def _audio_only(path: Path) -> None:
    """One second of a 440 Hz AAC tone in MP4, and no video."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=44100)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)).astype(np.float32)
        for start in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, start : start + 1024].copy(), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _png_video_bomb(path: Path, side: int = 12000) -> None:
    """A MOV of PNG frames whose headers (container and IHDR) claim ``side`` x ``side`` pixels; the data is
    tiny, so a decoder that believes the header allocates ``side**2 * 3`` bytes a frame."""
    picture = png_bytes(side, side, 2, b"\0" * 64)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = side, side, "rgb24"
        for i in range(2):
            packet = av.Packet(picture)
            packet.stream, packet.pts, packet.dts, packet.time_base = stream, i, i, Fraction(1, 1)
            out.mux(packet)


def _jpeg_bomb(path: Path) -> None:
    """A real 16x16 JPEG whose start-of-frame header is changed to claim 65000x65000 pixels."""
    ok, data = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    data = bytearray(data.tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)
    path.write_bytes(bytes(data))


def _cmyk_jpeg(path: Path) -> None:
    """A CMYK JPEG, as print workflows save them (OpenCV and PyAV cannot write one; Pillow can)."""
    from PIL import Image

    cmyk = np.zeros((21, 33, 4), np.uint8)
    cmyk[:, :11] = (0, 255, 255, 0)  # red
    cmyk[:, 11:22] = (255, 0, 255, 0)  # green
    cmyk[:, 22:] = (0, 0, 0, 255)  # black
    Image.fromarray(cmyk, "CMYK").save(path, quality=95)


def refused_url() -> str:
    """A loopback URL on a port where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/clip.mp4"


def _cut_pictures(stream: bytes, first: int, count: int) -> bytes:
    """An H.264 Annex B ``stream`` with the back half of pictures ``first`` to ``first + count - 1`` (its
    slice NAL units, in stream order) cut away, as a dropped network packet leaves them. The decoder patches
    or refuses each, whatever bits the encoder chose (garbled bits can decode silently as other pictures)."""
    starts = [m.start() for m in re.finditer(b"\x00\x00\x01", stream)] + [len(stream)]
    units, pictures = [], 0
    for unit in (stream[start:end] for start, end in zip(starts, starts[1:])):
        if unit[3] & 0x1F in (1, 5):  # a slice, of a picture or of a keyframe
            if first <= pictures < first + count:
                unit = unit[: len(unit) // 2]
            pictures += 1
        units.append(unit)
    return b"".join(units)


def write_cut_h264(path: Path) -> None:
    """An H.264 elementary stream of 48 frames with the back half of pictures 14 to 17 cut away (see
    `_cut_pictures`): its decoder logs errors from FFmpeg's threads."""
    _h264(path, format="h264")
    path.write_bytes(_cut_pictures(path.read_bytes(), 14, 4))


def _size_change_ts(path: Path) -> None:
    """An MPEG-TS whose picture changes from 64x48 to 48x64 half way (as a broadcast may): two streams cat'ed."""
    parts = []
    for first, size in ((0, (64, 48)), (12, (48, 64))):
        buffer = path.with_suffix(f".{size[0]}.ts")
        _h264(buffer, 12, size, first, keyframes=None, format="mpegts")
        parts.append(buffer.read_bytes())
        buffer.unlink()
    path.write_bytes(b"".join(parts))


def _surround(path: Path, layout: str = "5.1") -> None:
    """A MKV with H.264 video and 1 s of PCM sound (5.1 by default), which MP4 cannot hold as it is (read back,
    Matroska's PCM names no channel layout: "2 channels", not "stereo")."""
    channels = av.AudioLayout(layout).nb_channels
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("pcm_s16le", rate=48000, layout=layout)
        _mux_pictures(out, video, (clip_frame(i, 64, 48) for i in range(12)))
        for start in range(0, 48000, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024 * channels), np.int16), format="s16", layout=layout)
            frame.sample_rate, frame.pts = 48000, start
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))


def _rotated_jpeg(path: Path) -> None:
    """A 40x20 JPEG with a red left quarter and EXIF orientation 6 (shown turned 90 degrees clockwise)."""
    from PIL import Image

    picture = np.zeros((20, 40, 3), np.uint8)
    picture[:, :10] = (255, 0, 0)
    image = Image.fromarray(picture)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(path, exif=exif)


def timing_frames(rate) -> int:
    """Frames of the timing clip at ``rate`` fps: about a second, at least three."""
    return max(3, round(rate))


BROKEN_PALETTES = {
    "broken.gpl": "GIMP Palette\n300 0 0 too red\n",
    "broken.act": "short",
    "broken.json": '["#ff0000", 7',
    "broken.hex": "#ff0000\nnot a colour\n",
    "broken.png": "not a png",
}


def write_inputs(folder: Path) -> None:
    """Write every corpus input that `cases` names into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    f = lambda name: str(folder / name)  # noqa: E731

    # Broken and wrong files given as videos
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "random.mp4").write_bytes(np.random.default_rng(7).bytes(20000))
    (folder / "folder.mp4").mkdir(exist_ok=True)
    whole = write_clip(folder / "whole.mp4", frames=24).path.read_bytes()  # index (moov) at the end
    _h264(folder / "faststart.mp4", options={"movflags": "+faststart"})  # the index (moov) first, as sites serve
    fast = (folder / "faststart.mp4").read_bytes()
    for percent in (10, 50, 90):
        (folder / f"truncated-{percent}.mp4").write_bytes(whole[: len(whole) * percent // 100])
        (folder / f"faststart-truncated-{percent}.mp4").write_bytes(fast[: len(fast) * percent // 100])
    _h264(folder / "stream.h264", format="h264")  # an Annex B elementary stream, no container
    write_cut_h264(folder / "cut.h264")
    _audio_only(folder / "audio-only.m4a")
    _png_video_bomb(folder / "bomb.mov")

    # Unusual but valid videos: odd and tiny sizes, one frame, variable rate, rotation
    write_clip(folder / "odd-33x21.mp4", size=(33, 21), frames=6, pix_fmt="yuv444p")
    write_clip(folder / "one-pixel.mkv", size=(1, 1), frames=6, codec="ffv1", pix_fmt="yuv444p")
    write_clip(folder / "one-frame.mp4", frames=1)
    write_clip(folder / "variable-rate.mp4", times=[0.0, 0.1, 0.15, 0.5, 0.55, 1.0, 1.02, 1.5])
    write_clip(folder / "rotated-90.mp4", frames=6, rotation=90)
    _alpha_video(folder / "alpha.mov")

    # Images: wrong, broken, bombs, and every layout a decoder hands back
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("this is not a picture\n")
    (folder / "folder.png").mkdir(exist_ok=True)
    (folder / "truncated.png").write_bytes(png_bytes(64, 48, 2, np.zeros(48 * 193, np.uint8).tobytes())[:60])
    (folder / "bomb.png").write_bytes(png_bytes(100000, 100000, 2, b"\0" * 301))
    _jpeg_bomb(folder / "bomb.jpg")
    (folder / "zero-length-segment.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x00" + b"\x00" * 64)
    picture = clip_frame(3, 33, 21)
    cv2.imwrite(f("alpha.png"), cv2.cvtColor(half_transparent(), cv2.COLOR_RGBA2BGRA))
    cv2.imwrite(f("16-bit.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    cv2.imwrite(f("gray.png"), picture[..., 1])
    cv2.imwrite(f("odd-33x21.jpg"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    cv2.imwrite(f("one-pixel.png"), np.full((1, 1, 3), 200, np.uint8))
    indices = (np.arange(33 * 21) % 4).astype(np.uint8).reshape(21, 33)
    rows = np.hstack([np.zeros((21, 1), np.uint8), indices]).tobytes()
    (folder / "palette.png").write_bytes(png_bytes(33, 21, 3, rows, plte=bytes(range(12))))
    if HAVE_PILLOW:
        _cmyk_jpeg(folder / "cmyk.jpg")

    # Palette files that are not what their suffix says
    for name, content in BROKEN_PALETTES.items():
        (folder / name).write_text(content)

    # Names the OS allows but tools trip on: not UTF-8, pattern characters, long, links and loops
    shutil.copy(folder / "odd-33x21.jpg", folder / f"{BAD}.jpg")
    shutil.copy(folder / "whole.mp4", folder / f"{BAD}.mp4")
    shutil.copy(folder / "odd-33x21.jpg", folder / "weird[1]*?.jpg")
    shutil.copy(folder / "odd-33x21.jpg", folder / ("x" * 250 + ".jpg"))
    shutil.copy(folder / "whole.mp4", folder / ".out.partial.mp4")  # the name of an old partial file
    (folder / "link.mp4").symlink_to(folder / "whole.mp4")
    (folder / "loop.mp4").symlink_to(folder / "loop.mp4")
    (folder / "dangling.mp4").symlink_to(folder / "nothing-here.mp4")

    # Streams that change shape mid-way, and sound an MP4 cannot hold as it is
    _size_change_ts(folder / "size-change.ts")
    (folder / "seq").mkdir(exist_ok=True)
    for i, size in enumerate([(64, 48)] * 3 + [(48, 64), (80, 40)]):
        picture = np.full((size[1], size[0], 3), 40 * i, np.uint8)
        picture[..., i % 3] = 255  # each image its own colour: the palette must show all five
        cv2.imwrite(f(f"seq/{i + 1:03d}.png"), picture)
    _surround(folder / "surround.mkv")
    if HAVE_PILLOW:
        _rotated_jpeg(folder / "exif-rotated.jpg")

    # Timing: sources at 1 to 240 fps
    for rate in TIMING_RATES:
        write_clip(folder / f"rate-{float(rate):g}.mp4", size=(32, 24), fps=rate, frames=timing_frames(rate))


def cases(folder: Path) -> list[Case]:
    """The command lines to run over the corpus in ``folder`` (written by `write_inputs`)."""
    f = lambda name: str(folder / name)  # noqa: E731
    found: list[Case] = []

    def video(name, expect, *options, names=None, label=None, out="{out}.mp4", quick=True, **checks):
        found.append(Case(label or f"transcode {name}", ("transcode", f(name), out, "-q", *options), expect,
                          names=name if names is None else names, quick=quick, **checks))

    def image(name, expect, *options, names=None, label=None, out="{out}.png", quick=True, **checks):
        found.append(Case(label or f"image {name}", ("image", f(name), out, *options), expect,
                          names=name if names is None else names, quick=quick, **checks))

    def palette(name, expect, names=None, quick=True):
        found.append(Case(f"palette {name}", ("palette", f(name), "-o", "{out}.gpl", "-k", "4"), expect,
                          names=name if names is None else names, quick=quick))

    for name in ("empty.mp4", "random.mp4", "folder.mp4", "missing.mp4", "truncated-10.mp4", "truncated-50.mp4",
                 "truncated-90.mp4", "faststart-truncated-10.mp4", "audio-only.m4a"):
        video(name, "error")
    video("faststart-truncated-50.mp4", "partial")
    video("faststart-truncated-90.mp4", "partial")
    video("cut.h264", "partial")
    limit = "raise the limit with --max-pixels"
    video("bomb.mov", "error", names=limit)
    url = refused_url()
    found.append(Case("transcode refused URL", ("transcode", url, "{out}.mp4", "-q"), "error", names=url))
    video("odd-33x21.mp4", "ok", frames=6, size=(34, 22))  # padded to even for 4:2:0
    video("one-pixel.mkv", "ok", frames=6, size=(2, 2))
    video("one-frame.mp4", "ok", frames=1)
    video("variable-rate.mp4", "ok", frames=8)
    video("rotated-90.mp4", "ok", frames=6, size=(48, 64))
    video("alpha.mov", "ok", frames=4, size=(34, 22))
    for suffix in (".gif", ".apng"):  # transparency kept
        video("alpha.mov", "ok", frames=4, size=(33, 21), out=f"{{out}}{suffix}",
              label=f"transcode alpha.mov to {suffix}")
    video("alpha.mov", "error", "--background", "teal-ish", names="teal-ish", label="transcode --background teal-ish")
    video("whole.mp4", "error", "--max-pixels", "1000", names=limit, label="transcode --max-pixels 1000")

    for name in ("empty.png", "text.png", "folder.png", "missing.png", "truncated.png", "zero-length-segment.jpg"):
        image(name, "error")
    image("bomb.png", "error", names=limit)
    image("bomb.jpg", "error", names=limit)
    image("alpha.png", "ok", "-k", "4")
    for name in ("16-bit.png", "gray.png", "palette.png", "odd-33x21.jpg", "one-pixel.png"):
        image(name, "ok")
    if HAVE_PILLOW:
        image("cmyk.jpg", "ok", "-k", "3")
    image("odd-33x21.jpg", "error", "--max-pixels", "600", names=limit, label="image --max-pixels 600")

    for name in (*BROKEN_PALETTES, "missing.gpl"):
        image("one-pixel.png", "error", "--palette", f(name), names=name, label=f"image --palette {name}")

    for name in ("empty.mp4", "random.mp4", "truncated-50.mp4", "folder.mp4", "missing.mp4", "bomb.png", "text.png"):
        palette(name, "error")
    palette("faststart-truncated-50.mp4", "partial")
    for name in ("alpha.png", "one-pixel.png"):
        palette(name, "ok")

    # Names the OS allows but tools trip on
    shown = ascii(BAD)[1:-1]
    image(f"{BAD}.jpg", "ok", label=f"image {shown}.jpg", size=(33, 21), quick=False)
    image("odd-33x21.jpg", "ok", label=f"image to {shown}.png", out=f"{{out}}{BAD}.png", size=(33, 21), quick=False)
    image("odd-33x21.jpg", "ok", label=f"image to {shown}.jpg", out=f"{{out}}{BAD}.jpg", quick=False)
    video(f"{BAD}.mp4", "ok", label=f"transcode {shown}.mp4", frames=24, quick=False)
    video("whole.mp4", "error", label=f"transcode to {shown}.png", out=f"{{out}}{BAD}.png", names=".apng",
          quick=False)  # one picture cannot hold a video: the error names the animated formats
    video("whole.mp4", "ok", label=f"transcode to {shown}.apng", out=f"{{out}}{BAD}.apng", frames=24, quick=False)
    video("whole.mp4", "ok", label=f"transcode to {shown}.webp", out=f"{{out}}{BAD}.webp", frames=24, quick=False)
    video("whole.mp4", "ok", label=f"transcode to {shown}-%03d.png", out=f"{{out}}{BAD}-%03d.png", quick=False,
          frames=None)
    palette(f"{BAD}.jpg", "ok", names=BAD, quick=False)
    image("weird[1]*?.jpg", "ok", size=(33, 21), quick=False)
    image("odd-33x21.jpg", "ok", label="image to [x]*?.png", out="{out}[x]*?.png", quick=False)
    image("odd-33x21.jpg", "error", label="image to a{b}.png", out="{out}a{b}.png", names="a{b}.png", quick=False)
    image("x" * 250 + ".jpg", "ok", label="image x*250.jpg", quick=False)
    image("odd-33x21.jpg", "ok", label="image to a 240-character name", out="{out}" + "y" * 233 + ".png", quick=False)
    image("odd-33x21.jpg", "error", label="image to a 300-character name", out="{out}" + "y" * 300 + ".png",
          names="File name too long", quick=False)
    video(".out.partial.mp4", "ok", label="transcode .out.partial.mp4", frames=24, quick=False)
    video("link.mp4", "ok", frames=24, quick=False)
    video("loop.mp4", "error", quick=False)
    video("dangling.mp4", "error", quick=False)

    # Numbers at and beyond their limits, on a small clip
    limits = {  # option: outcome for 0, -1, nan, inf and a huge value
        "--dither-strength": ("ok", "error", "error", "error", "error"),
        "--stability": ("ok", "error", "error", "error", "ok"),
        "--start": ("ok", "error", "error", "error", "error"),
        "--duration": ("error", "error", "error", "error", "ok"),
        "--scale": ("error", "error", "error", "error", "error"),
        "--fps": ("error", "error", "error", "error", "error"),
        "--crf": ("ok", "error", "error", "error", "error"),
        "--refit-every": ("ok", "error", "error", "error", "ok"),
        "--colors": ("error", "error", "error", "error", "error"),
        "--pixelate": ("error", "error", "error", "error", "error"),
        "--width": ("error", "error", "error", "error", "error"),
        "--max-pixels": ("error", "error", "error", "error", "error"),
    }
    for option, outcomes in limits.items():
        huge = "1e308" if option in ("--dither-strength", "--stability", "--start", "--duration", "--scale", "--fps",
                                     "--crf") else str(10**30)
        needs = ("--dither", "bayer") if option == "--dither-strength" else ()  # a strength without a dither is refused
        for value, expect in zip(("0", "-1", "nan", "inf", huge), outcomes):
            frames = 24 if expect == "ok" and option not in ("--start",) else None
            video("whole.mp4", expect, *needs, f"{option}={value}", label=f"transcode {option}={value}", names=option,
                  quick=False, frames=frames)
    for args, names in [(("--size", "16x99999999"), "--size 16x99999999"), (("--size", "0x0"), "--size"),
                        (("--fps", "nan"), "--fps"), (("--fps", "inf"), "--fps"),
                        (("--dither-strength", "nan"), "--dither-strength")]:
        found.append(Case(f"preview test {' '.join(args)}", ("preview", "test", *args), "error", names=names))
    found.append(Case("demo --frames 0", ("demo", "-o", "{out}", "--frames", "0"), "error", names="--frames"))
    found.append(Case("demo --frames nan", ("demo", "-o", "{out}", "--frames", "nan"), "error", names="--frames"))
    found.append(Case("demo -o onto a file", ("demo", "-o", f("whole.mp4")), "error", names="is a file"))

    # Every output suffix without --codec, then every --codec in each video container
    # (a picture format holds one frame: a video into it is refused, naming the animated formats)
    outputs = {".mp4": "ok", ".mov": "ok", ".mkv": "ok", ".webm": "ok", ".gif": "ok", ".webp": "ok", ".apng": "ok",
               ".png": "error", ".jpg": "error", ".bmp": "error", ".tif": "error", ".ppm": "error", ".pgm": "error",
               ".exr": "error", ".jxl": "error", ".heic": "error", ".avi": "error", ".txt": "error", "": "error"}
    for suffix, expect in outputs.items():
        frames = 24 if expect == "ok" else None
        video("whole.mp4", expect, label=f"transcode to '{suffix}'", out=f"{{out}}{suffix}", names="out",
              quick=False, frames=frames)
    for suffix in (".pgm", ".exr", ".jxl", ".heic", ".mp4", ""):
        image("odd-33x21.jpg", "error", label=f"image to '{suffix}'", out=f"{{out}}{suffix}", names="out",
              quick=False)
    image("odd-33x21.jpg", "ok", label="image to '.gif'", out="{out}.gif", size=(33, 21), frames=1, quick=False)
    holds = {".mp4": {"libx264", "libx264rgb", "libvpx-vp9", "ffv1", "mpeg4"},
             ".mov": {"libx264", "libx264rgb", "mpeg4"},  # FFmpeg's mov muxer refuses VP9; gif (rgb8) is refused
             ".mkv": {"libx264", "libx264rgb", "libvpx-vp9", "ffv1", "mpeg4"},
             ".webm": {"libvpx-vp9"}}
    for suffix, codecs in holds.items():
        for codec in ("libx264", "libx264rgb", "libvpx-vp9", "ffv1", "mpeg4", "gif", "aac", "nonsense"):
            video("whole.mp4", "ok" if codec in codecs else "error", "--codec", codec, out=f"{{out}}{suffix}",
                  label=f"transcode to {suffix} --codec {codec}", names=codec, quick=False,
                  frames=24 if codec in codecs else None)
    video("whole.mp4", "error", "--codec", "libx264", out="{out}", label="transcode --codec libx264, no suffix",
          names="suffix", quick=False)
    video("whole.mp4", "ok", "--codec", "mpeg4", out="{out}.avi", label="transcode to .avi --codec mpeg4",
          frames=24, quick=False)
    for suffix in (".gif", ".png"):
        video("whole.mp4", "error", "--codec", "libx264", out=f"{{out}}{suffix}",
              label=f"transcode to {suffix} --codec libx264", names="--codec", quick=False)
    video("surround.mkv", "ok", label="transcode 5.1 PCM to .mp4", frames=12, quick=False)
    video("surround.mkv", "ok", label="transcode 5.1 PCM to .webm", out="{out}.webm", frames=12, quick=False)

    # Streams that change shape mid-way: every frame at the first frame's size
    video("size-change.ts", "ok", frames=24, size=(64, 48), quick=False)
    video("size-change.ts", "ok", label="transcode size-change.ts to .gif", out="{out}.gif", size=(64, 48),
          quick=False)  # frames under 2/100 s apart where the streams join are left out
    video("seq/%03d.png", "ok", label="transcode seq/%03d.png", frames=5, size=(64, 48), quick=False)
    palette("seq/*.png", "ok", quick=False)
    if HAVE_PILLOW:
        image("exif-rotated.jpg", "ok", size=(20, 40), quick=False)

    # Timing: delays as a player shows them, from 1 to 240 fps
    for rate in TIMING_RATES:
        n = timing_frames(rate)
        name = f"rate-{float(rate):g}.mp4"
        video(name, "ok", frames=n, duration=n / rate, quick=False)
        video(name, "ok", label=f"transcode {name} to .gif", out="{out}.gif", duration=n / rate, quick=False,
              frames=n if rate <= 50 else None)
    video("rate-60.mp4", "ok", "--fps", "25", label="transcode rate-60.mp4 --fps 25", frames=25, duration=1.0,
          quick=False)
    video("rate-24.mp4", "ok", "--fps", "100", label="transcode rate-24.mp4 --fps 100 to .gif", out="{out}.gif",
          duration=1.0, quick=False)
    return found


# ------------------------------------------------------------------ running and judging

def env() -> dict[str, str]:
    """The environment for a child ``python -m livequant``: this checkout importable."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder`` (links not followed): its kind, bytes' SHA-256 and modification time."""
    found = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else None
        found[os.fsencode(path.relative_to(folder)).hex()] = (info.st_mode, info.st_size, info.st_mtime_ns, digest)
    return found


def touched(before: dict, after: dict) -> tuple[str, ...]:
    """The entries that differ between two `snapshot`s, as names."""
    return tuple(os.fsdecode(bytes.fromhex(k)) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k))


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


# Each case runs in a process forked from a server that has already imported livequant, scikit-learn and what
# they load: the command line as a child process runs it, without paying the 3-10 s of imports a case.
_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload(["corpus", "livequant.__main__", "livequant.cli", "sklearn.cluster",
                               "scipy.optimize", "scipy.spatial.distance", "tqdm"])


def _command(argv: list[str], cwd: Path, stdout: Path, stderr: Path) -> None:
    """In the forked child: ``python -m livequant ARGV`` in ``cwd``, its output streams in files, under the
    memory limit."""
    _limit_memory()
    os.environ.update(env())
    os.chdir(cwd)
    for fd, path in ((1, stdout), (2, stderr)):
        opened = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])  # a server a batch started keeps it blocked
    sys.argv = ["livequant", *argv]
    from livequant.__main__ import console

    raise SystemExit(console())


def run(case: Case, out_dir: Path, inputs: Path | None = None, timeout: float = 180) -> Outcome:
    """Run ``livequant`` on ``case`` as a child process does, with its output in ``out_dir`` (which should be
    empty) and at most `MEMORY_LIMIT` bytes of address space; ``inputs``, when given, is the corpus folder to
    watch."""
    before = snapshot(inputs) if inputs is not None else {}
    with tempfile.TemporaryDirectory() as streams:
        stderr = Path(streams, "stderr")
        child = _FORKS.Process(target=_command, args=(case.argv(out_dir / "out"), out_dir, Path(streams, "stdout"),
                                                      stderr))
        child.start()
        child.join(timeout)
        if child.exitcode is None:
            child.kill()
            child.join()
            raise TimeoutError(f"{case.name} ran over {timeout} s")
        status, text = child.exitcode, stderr.read_bytes().decode(errors="backslashreplace")
    after = snapshot(inputs) if inputs is not None else {}
    return Outcome(status, text, tuple(sorted(p.name for p in out_dir.iterdir())), touched(before, after))


def problems(case: Case, outcome: Outcome, out_dir: Path) -> list[str]:
    """What is wrong with ``outcome`` for ``case``; empty when it behaved."""
    found = []
    lines = outcome.stderr.strip().splitlines()
    if "Traceback" in outcome.stderr:
        found.append("a traceback reached the user")
    if outcome.status < 0:
        found.append(f"killed by signal {-outcome.status}")
    if outcome.touched:
        found.append(f"inputs changed: {outcome.touched}")
    if any(".partial" in name for name in outcome.files):
        found.append(f"a partial file was left behind: {outcome.files}")
    output = case.output(out_dir)
    if case.expect == "error":
        errors = [line for line in lines if line.startswith("livequant: error:")]
        if outcome.status not in (1, 2):
            found.append(f"exit status {outcome.status}, expected 1 or 2")
        if len(errors) != 1 or not ERROR_LINE.fullmatch(errors[0]):
            found.append(f"expected one 'livequant: error:' line, got {lines}")
        elif case.names not in errors[0]:
            found.append(f"the error does not name {case.names!r}: {errors[0]}")
        if outcome.files:
            found.append(f"files left behind: {outcome.files}")
        return found
    if outcome.status != 0:
        found.append(f"exit status {outcome.status}, expected 0; stderr: {outcome.stderr.strip()}")
        return found
    if "%" in output.name:  # one file per frame: out-001.png ...
        named = re.compile(re.escape(output.name).replace("%03d", r"\d{3}"))
        if not outcome.files or not all(named.fullmatch(name) for name in outcome.files):
            found.append(f"expected files named like {output.name}, found {outcome.files}")
        return found
    if outcome.files != (output.name,):
        found.append(f"expected only {output.name}, found {outcome.files}")
        return found
    said = DAMAGE.findall(outcome.stderr)
    if case.expect == "partial" and not any(int(count) > 0 for count in said):
        found.append(f"expected 'N frames could not be decoded' or 'had decoding errors' on stderr, "
                     f"got {outcome.stderr.strip()!r}; the output holds {_frame_count(output)} frames")
    if case.expect == "ok" and said:
        found.append(f"a complete input was reported as damaged: {said[0]}")
    found += _unreadable(output, case)
    return found


def _frame_count(path: Path) -> int | str:
    """Frames in the video at ``path``, or why it cannot be read."""
    try:
        with av.open(str(path)) as container:
            return sum(1 for _ in container.decode(video=0))
    except (av.error.FFmpegError, IndexError) as e:
        return f"none readable ({e})"


def _unreadable(path: Path, case: Case) -> list[str]:
    """Why the output at ``path`` is not a complete file of its kind (empty when it is)."""
    if path.suffix == ".gpl":
        from livequant.palette import Palette

        return [] if len(Palette.from_file(path)) else ["empty palette"]
    if path.suffix.lower() in (".png", ".jpg", ".bmp", ".tif", ".webp", ".ppm"):
        picture = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        if picture is None:
            return [f"the {path.suffix} cannot be read"]
        size = picture.shape[1::-1]
        return [] if case.size is None or size == case.size else [f"output size {size}, expected {case.size}"]
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
            seconds = container.duration / 1e6 if container.duration else None
    except av.error.FFmpegError as e:
        return [f"the output does not decode: {e}"]
    found = []
    if case.frames is not None and len(frames) != case.frames:
        found.append(f"{len(frames)} frames decoded, expected {case.frames}")
    if case.size is not None and frames and frames[0].shape[1::-1] != case.size:
        found.append(f"output size {frames[0].shape[1::-1]}, expected {case.size}")
    if path.suffix == ".gif":
        delays = gif_delays(path.read_bytes())
        if len(delays) != len(frames):
            found.append(f"{len(delays)} frame delays for {len(frames)} frames")
        if delays and min(delays) < 2:
            found.append(f"delays under 2/100 s, which players show as 10/100 s: {sorted(set(delays))}")
        seconds = sum(delays) / 100
    if case.duration is not None and (seconds is None or abs(seconds - case.duration) > 0.011):
        found.append(f"plays for {seconds} s, expected {case.duration:.4f} s")
    return found


def gif_delays(data: bytes) -> list[int]:
    """The delay of every frame of a GIF, in 1/100 s, from its graphic control extensions."""
    delays, at = [], 0
    while (at := data.find(b"\x21\xf9\x04", at)) >= 0:
        delays.append(int.from_bytes(data[at + 4 : at + 6], "little"))
        at += 8
    return delays


def inputs(todo: list[Case], folder: Path) -> set[str]:
    """The distinct corpus inputs (files, folders, missing paths, URLs) that ``todo`` uses."""
    return {a for case in todo for a in case.args if a.startswith(str(folder)) or "://" in a}


def main() -> int:
    """Run every case in a child process; print each message and the totals."""
    with tempfile.TemporaryDirectory(prefix="livequant-corpus-") as tmp:
        folder = Path(tmp) / "inputs"
        write_inputs(folder)
        todo = cases(folder)
        start = snapshot(folder)
        tally = dict.fromkeys(["misbehaved", "tracebacks", "signals", "partial files", "inputs touched",
                               "wrong frame count or duration"], 0)
        for number, case in enumerate(todo):
            out_dir = Path(tmp) / f"out-{number}"
            out_dir.mkdir()
            outcome = run(case, out_dir, folder)
            found = problems(case, outcome, out_dir)
            tally["misbehaved"] += bool(found)
            tally["tracebacks"] += "Traceback" in outcome.stderr
            tally["signals"] += outcome.status < 0
            tally["partial files"] += any(".partial" in name for name in outcome.files)
            tally["inputs touched"] += bool(outcome.touched)
            tally["wrong frame count or duration"] += any(re.search(r"frames decoded|plays for|delays", p)
                                                          for p in found)
            said = [line for line in outcome.stderr.splitlines() if line.strip()]
            message = (said[-1] if said else "").replace(tmp + os.sep, "")
            print(f"{case.name[:60]:<60} exit {outcome.status}  {message}", flush=True)
            for problem in found:
                print(f"{'':<60} PROBLEM: {problem.replace(tmp + os.sep, '')}", flush=True)
        tally["inputs touched"] += bool(touched(start, snapshot(folder)))
        print(f"\n{len(todo)} command lines over {len(inputs(todo, folder))} inputs: "
              + ", ".join(f"{count} {what}" for what, count in tally.items()))
    return 1 if tally["misbehaved"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
