"""Shared fixtures: a seeded rng, tiny clips written with PyAV, quantized frames, stand-in sources and sinks,
an X display."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2  # noqa: F401  # before av, or OpenCV windows hang (PyAV#978; see livequant/sinks.py)
import av  # isort: skip
import numpy as np
import pytest

from livequant.errors import SourceError
from livequant.frames import QuantizedFrame
from livequant.palette import Palette

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FOUR_COLORS = np.array([[0, 0, 0], [255, 255, 255], [220, 40, 40], [30, 90, 200]], np.uint8)


def clip_frame(i: int, width: int, height: int) -> np.ndarray:
    """Frame ``i`` of the test clips: gradients, a red top-left marker, a moving white bar."""
    y, x = np.mgrid[:height, :width]
    frame = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), np.full_like(x, i * 10 % 256)], -1)
    frame = frame.astype(np.uint8)
    frame[: height // 4, : width // 4] = (255, 0, 0)
    frame[:, i * 3 % width] = 255
    return frame


@dataclass(frozen=True)
class Clip:
    """A clip written by `write_clip` and what it holds."""

    path: Path
    fps: float
    frames: int
    size: tuple[int, int]  # (W, H)

    @property
    def duration(self) -> float:
        return self.frames / self.fps

    def expected(self, i: int) -> np.ndarray:
        """The picture encoded as frame ``i``."""
        return clip_frame(i, *self.size)


def write_clip(path: Path, *, size=(64, 48), fps=12, frames=24, times=None, audio_seconds=None, rotation=0,
               codec="libx264", pix_fmt="yuv420p", gop=None) -> Clip:
    """Write a clip with PyAV: ``clip_frame`` pictures at ``times`` (default ``i / fps``), and a stereo
    440 Hz AAC tone of ``audio_seconds`` when given; ``rotation`` sets the display matrix; ``gop``, the
    frames from one keyframe to the next (the encoder's default: None)."""
    times = [i / fps for i in range(frames)] if times is None else times
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = size[0], size[1], pix_fmt
        video.codec_context.time_base = Fraction(1, 90000)
        if gop:
            video.codec_context.gop_size = gop
        if rotation:
            video.set_display_rotation(rotation)
        audio = out.add_stream("aac", rate=44100) if audio_seconds else None
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(clip_frame(i, *size), format="rgb24")
            frame.pts, frame.time_base = round(t * 90000), Fraction(1, 90000)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            n = int(audio_seconds * 44100)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / 44100)).astype(np.float32)
            for start in range(0, n, 1024):
                chunk = np.ascontiguousarray(np.stack([tone[start : start + 1024]] * 2))
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = 44100, start
                out.mux(audio.encode(frame))
            out.mux(audio.encode(None))
    return Clip(path=path, fps=fps, frames=len(times), size=size)


#: A tone of its own for each channel of 5.1 (the LFE's low: AAC and Opus keep only the bass there).
SURROUND_TONES = [500, 700, 900, 80, 1100, 1300]


#: Adobe RGB (1998)'s primaries adapted to D50, as its ICC profile holds them (X, Y, Z of red, green, blue).
ADOBE_RGB_COLORANTS = ((0.6097, 0.3111, 0.0195), (0.2053, 0.6257, 0.0609), (0.1492, 0.0632, 0.7446))
#: Adobe RGB's tone curve: a gamma of 563/256 (2.2).
ADOBE_RGB_GAMMA = 563 / 256


def icc_profile(colorants=ADOBE_RGB_COLORANTS, gamma: float = ADOBE_RGB_GAMMA, name: str = "test RGB") -> bytes:
    """An ICC v2 display profile of an RGB space: its ``colorants`` (D50 XYZ of red, green, blue) and one
    ``gamma`` for every channel."""
    def s15(x: float) -> bytes:
        return struct.pack(">i", round(x * 65536))

    def xyz(values) -> bytes:
        return b"XYZ " + bytes(4) + b"".join(s15(v) for v in values)

    text = name.encode() + b"\0"
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)
    tags = {b"desc": b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(78),
            b"wtpt": xyz((0.9642, 1.0, 0.8249)), b"rXYZ": xyz(colorants[0]), b"gXYZ": xyz(colorants[1]),
            b"bXYZ": xyz(colorants[2]), b"rTRC": curve, b"gTRC": curve, b"bTRC": curve, b"cprt": b"text" + bytes(5)}
    at, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for signature, data in tags.items():
        data += bytes(-len(data) % 4)
        table += struct.pack(">4sII", signature, at + len(body), len(data))
        body += data
    header = (struct.pack(">I4sI", 128 + 4 + len(table) + len(body), bytes(4), 0x02100000) + b"mntrRGB XYZ "
              + bytes(12) + b"acsp" + bytes(28) + s15(0.9642) + s15(1.0) + s15(0.8249) + bytes(48))
    return header + struct.pack(">I", len(tags)) + table + body


def surround_clip(path, codec, layout):
    """A 1 s 10 fps clip with ``codec`` audio in ``layout``: channel i a sine of ``SURROUND_TONES[i]`` Hz."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream(codec, rate=48000)
        audio.layout = layout
        audio.format = audio.codec_context.codec.audio_formats[0]
        for i in range(10):
            out.mux(video.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24")))
        out.mux(video.encode(None))
        count = av.AudioLayout(layout).nb_channels
        tones = 0.2 * np.sin(2 * np.pi * np.outer(SURROUND_TONES[:count], np.arange(48000) / 48000))
        resampler = av.AudioResampler(format=audio.format, layout=layout, rate=48000)
        step = audio.codec_context.frame_size or 1024
        for start in range(0, 48000, step):
            frame = av.AudioFrame.from_ndarray(tones[:, start : start + step].astype(np.float32), format="fltp",
                                               layout=layout)
            frame.sample_rate, frame.pts = 48000, start
            for piece in resampler.resample(frame):
                out.mux(audio.encode(piece))
        out.mux(audio.encode(None))
    return path


def channel_tones(path):
    """``(codec, layout name, [the loudest frequency of each channel, Hz])`` of the first audio stream."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp")
        frames = [piece for frame in container.decode(stream) for piece in resampler.resample(frame)]
        codec, rate = stream.codec_context.name, stream.rate
    samples = np.concatenate([frame.to_ndarray() for frame in frames], axis=1)
    peaks = np.fft.rfftfreq(samples.shape[1], 1 / rate)[np.abs(np.fft.rfft(samples, axis=1)).argmax(axis=1)]
    return codec, frames[0].layout.name, [round(peak) for peak in peaks]


# ------------------------------------------------- stand-in sources and sinks

class Collect:
    """A sink that keeps what it is given, optionally slowly, and where it was called from."""

    interactive = False

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.qframes = []
        self.threads = set()

    def write(self, qframe) -> None:
        time.sleep(self.delay)
        self.threads.add(threading.current_thread().name)
        self.qframes.append(qframe)


class Window(Collect):
    """An interactive sink: asks to quit after ``quit_after`` frames, like a Preview's q key."""

    interactive = True

    def __init__(self, quit_after: int):
        super().__init__()
        self.quit_after = quit_after
        self.quit_requested = False

    def write(self, qframe) -> None:
        super().write(qframe)
        self.quit_requested = len(self.qframes) >= self.quit_after


class Broken:
    """A source that fails after three frames, as a camera that is unplugged."""

    live = False

    def __iter__(self):
        for i in range(3):
            yield np.full((16, 16, 3), 40 * i, np.uint8), i / 10
        raise SourceError("camera 0 stopped delivering frames; check that it is connected")


class Frames:
    """A file-like source of given times (frame i is filled with i)."""

    live = False

    def __init__(self, times, size=(8, 6)):
        self.times = times
        self.size = size
        self.closed = False

    def __iter__(self):
        for i, t in enumerate(self.times):
            yield np.full((self.size[1], self.size[0], 3), i, np.uint8), t

    def close(self):
        self.closed = True


@pytest.fixture
def shared_data():
    """``shared_data(name)``: the path of a file in ../shared/data, or skip the test where it is absent."""

    def path(name: str) -> Path:
        if not (SHARED_DATA / name).is_file():
            pytest.skip(f"{SHARED_DATA / name} is not here")
        return SHARED_DATA / name

    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Clip:
    """A 2 s 64x48 12 fps H.264 clip with 2 s of AAC stereo audio, in MP4."""
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", audio_seconds=2.0)


def gif_blocks(data: bytes):
    """``(global table size, [(x, y, w, h, local table size or 0, transparent index or None, delay)])`` of a
    GIF file's bytes, walked block by block: anything else where a block should start fails the test."""
    assert data[:6] == b"GIF89a" and data[-1:] == b";"
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    global_size = 1 << ((flags & 7) + 1) if flags & 0x80 else 0
    images, control = [], (None, 0)
    while data[pos] != 0x3B:
        if data[pos] == 0x21:
            label = data[pos + 1]
            if label == 0xF9:
                packed, delay, index = data[pos + 3], *struct.unpack("<HB", data[pos + 4 : pos + 7])
                control = (index if packed & 1 else None, delay)
            pos += 2
            while data[pos]:
                pos += data[pos] + 1
            pos += 1
        else:
            assert data[pos] == 0x2C
            x, y, w, h, packed = struct.unpack("<HHHHB", data[pos + 1 : pos + 10])
            local = 1 << ((packed & 7) + 1) if packed & 0x80 else 0
            images.append((x, y, w, h, local, *control))
            pos += 10 + 3 * local + 1
            while data[pos]:
                pos += data[pos] + 1
            pos += 1
    return global_size, images


def garble_pictures(path: Path) -> None:
    """Garble the back half of every picture after the first in the video file at ``path``, in place: the
    decoder patches them (and flags them corrupt) or refuses them, whatever bits the encoder chose."""
    with av.open(str(path)) as container:
        after_the_first = [(p.pos, p.size) for p in container.demux(video=0) if p.size][1:]
    data = bytearray(path.read_bytes())
    for start, size in after_the_first:
        for i in range(start + size // 2, start + size):
            data[i] ^= 0x55
    path.write_bytes(data)


@pytest.fixture
def make_clip(tmp_path):
    """``make_clip(name, **options)``: `write_clip` into the test's tmp_path."""
    return lambda name, **options: write_clip(tmp_path / name, **options)


def _make_qframe(indices, colors=FOUR_COLORS, time: float = 0.0, name: str = "") -> QuantizedFrame:
    indices = np.ascontiguousarray(indices, dtype=np.uint8)
    palette = Palette(colors, name=name)
    return QuantizedFrame(rgb=palette.colors[indices], indices=indices, palette=palette, time=time)


@pytest.fixture
def make_qframe():
    """``make_qframe(indices, colors=FOUR_COLORS, time=0.0, name="")``: a `QuantizedFrame` from an index map."""
    return _make_qframe


@pytest.fixture(scope="session")
def xdisplay():
    """An Xvfb display for the session; sets ``$DISPLAY``. Skips if Xvfb is not installed.

    ``-noreset``: a server resets when its last client leaves, and a client that connects meanwhile is refused
    (145 of 2,000 connections here); between two tests that is a helper's (xdotool, x11grab) failing at random,
    and it was Qt aborting a test worker (CI of 36d050e)."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1024x768x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as r:
        number = r.readline().strip()
    if not number:
        server.kill()
        server.wait()
        pytest.skip("Xvfb did not start")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISPLAY", f":{number}")
        yield f":{number}"
    server.terminate()
    server.wait()


def send_wm_delete(window: int) -> None:
    """Ask the window to close as a window manager's close button does (WM_DELETE_WINDOW)."""
    name = ctypes.util.find_library("X11")
    if name is None:
        pytest.skip("libX11 is not installed")
    x11 = ctypes.CDLL(name)
    x11.XOpenDisplay.restype = x11.XInternAtom.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = x11.XOpenDisplay(None)
    event = (ctypes.c_long * 24)()  # an XClientMessageEvent in an XEvent-sized buffer
    event[0] = 33  # ClientMessage
    event[4] = window
    event[5] = x11.XInternAtom(display, b"WM_PROTOCOLS", 0)
    event[6] = 32  # format
    event[7] = x11.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
    x11.XSendEvent(display, window, 0, 0, event)
    x11.XCloseDisplay(display)


def write_gif_ending_on_a_pause(path) -> None:
    """Write a 16 x 16 GIF with our encoder: 4 frames 0.1 s apart, the last shown for 1 s (1.3 s in all)."""
    from livequant.gif import GifEncoder

    colors = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255]], np.uint8)
    encoder = GifEncoder(16, 16, colors)
    data = encoder.header() + b"".join(encoder.add(np.full((16, 16), i, np.uint8), colors, i / 10) for i in range(4))
    Path(path).write_bytes(data + encoder.end(1.3))
