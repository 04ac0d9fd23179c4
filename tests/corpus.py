"""The bad-input corpus: inputs that break naive tools, generated in code, and what livequant must do with each.

`write_inputs(folder)` writes every input into ``folder``; `cases(folder)` lists the command lines to run
over them and the outcome each must have. `run(case, folder)` runs one case as the user would, as
``python -m livequant ...`` in a child process, and `problems(case, outcome, folder)` says what went
wrong. Run this file to try every case and print each message and the totals, for the notes::

    python tests/corpus.py
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import struct
import subprocess
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
UNDECODABLE = re.compile(r"\b(\d+) frames? could not be decoded\b")


@dataclass(frozen=True)
class Case:
    """One command line over a corpus input, and what must come of it.

    ``args`` are livequant's arguments, with ``{out}`` standing for the output path. ``expect`` is
    ``"ok"`` (exit 0 and a readable output), ``"partial"`` (the same, and stderr says how many frames
    could not be decoded) or ``"error"`` (exit 1 or 2, one ``livequant: error:`` line that contains
    ``names``, no output). ``frames`` and ``size`` (W, H), when given, are checked on a video output.
    """

    name: str
    args: tuple[str, ...]
    expect: str
    names: str = ""
    frames: int | None = None
    size: tuple[int, int] | None = None

    @property
    def suffix(self) -> str:
        return next(Path(a).suffix for a in self.args if a.startswith("{out}"))

    def argv(self, out: Path) -> list[str]:
        """The arguments with the output path filled in."""
        return [a.replace("{out}", str(out)) for a in self.args]


@dataclass(frozen=True)
class Outcome:
    """What one run did: exit status, stderr, and the files left in the output folder."""

    status: int
    stderr: str
    files: tuple[str, ...]


# ------------------------------------------------------------------ writing the inputs

def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bytes(width: int, height: int, color_type: int, rows: bytes, *, depth: int = 8, plte: bytes = b"") -> bytes:
    """A PNG written by hand: ``rows`` are the raw scanlines (filter bytes included), so the header may lie."""
    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    chunks = [_chunk(b"IHDR", header)] + ([_chunk(b"PLTE", plte)] if plte else [])
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b"")


def _h264(path: Path, frames: int = 48, **container) -> None:
    """A 64x48 H.264 clip, a keyframe every 12 frames; ``container`` goes to ``av.open`` (a format, options)."""
    with av.open(str(path), "w", **container) as out:
        stream = out.add_stream("libx264", rate=12, options={"g": "12"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(clip_frame(i, 64, 48), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


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
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(half_transparent(), format="rgba")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


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


def _flip(data: bytes, start: int, length: int) -> bytes:
    """``data`` with every 7th byte of ``[start, start + length)`` inverted."""
    out = bytearray(data)
    for i in range(start, start + length, 7):
        out[i] ^= 0xFF
    return bytes(out)


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
    raw = (folder / "stream.h264").read_bytes()
    (folder / "flipped.h264").write_bytes(_flip(raw, len(raw) // 2, 200))
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


def cases(folder: Path) -> list[Case]:
    """The command lines to run over the corpus in ``folder`` (written by `write_inputs`)."""
    f = lambda name: str(folder / name)  # noqa: E731
    found: list[Case] = []

    def video(name, expect, *options, names=None, label=None, **checks):
        found.append(Case(label or f"transcode {name}", ("transcode", f(name), "{out}.mp4", "-q", *options), expect,
                          names=name if names is None else names, **checks))

    def image(name, expect, *options, names=None, label=None):
        found.append(Case(label or f"image {name}", ("image", f(name), "{out}.png", *options), expect,
                          names=name if names is None else names))

    def palette(name, expect):
        found.append(Case(f"palette {name}", ("palette", f(name), "-o", "{out}.gpl", "-k", "4"), expect, names=name))

    for name in ("empty.mp4", "random.mp4", "folder.mp4", "missing.mp4", "truncated-10.mp4", "truncated-50.mp4",
                 "truncated-90.mp4", "faststart-truncated-10.mp4", "audio-only.m4a"):
        video(name, "error")
    video("faststart-truncated-50.mp4", "partial")
    video("faststart-truncated-90.mp4", "partial")
    video("flipped.h264", "partial")
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
    return found


# ------------------------------------------------------------------ running and judging

def env() -> dict[str, str]:
    """The environment for a child ``python -m livequant``: this checkout importable."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def run(case: Case, out_dir: Path, timeout: float = 120) -> Outcome:
    """Run ``python -m livequant`` on ``case`` with its output in ``out_dir`` (which should be empty)."""
    done = subprocess.run([sys.executable, "-m", "livequant", *case.argv(out_dir / "out")], capture_output=True,
                          text=True, timeout=timeout, env=env(), cwd=out_dir)
    return Outcome(done.returncode, done.stderr, tuple(sorted(p.name for p in out_dir.iterdir())))


def problems(case: Case, outcome: Outcome, out_dir: Path) -> list[str]:
    """What is wrong with ``outcome`` for ``case``; empty when it behaved."""
    found = []
    lines = outcome.stderr.strip().splitlines()
    if "Traceback" in outcome.stderr:
        found.append("a traceback reached the user")
    output = out_dir / ("out" + case.suffix)
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
    if outcome.files != (output.name,):
        found.append(f"expected only {output.name}, found {outcome.files}")
        return found
    said = UNDECODABLE.search(outcome.stderr)
    if case.expect == "partial" and not (said and int(said[1]) > 0):
        found.append(f"expected 'N frames could not be decoded' on stderr, got {outcome.stderr.strip()!r}")
    if case.expect == "ok" and said:
        found.append(f"a complete input was reported as damaged: {said[0]}")
    found += _unreadable(output, case)
    return found


def _unreadable(path: Path, case: Case) -> list[str]:
    """Why the output at ``path`` is not a complete file of its kind (empty when it is)."""
    if path.suffix == ".gpl":
        from livequant.palette import Palette

        return [] if len(Palette.from_file(path)) else ["empty palette"]
    if path.suffix == ".png":
        return [] if cv2.imread(str(path)) is not None else ["the PNG cannot be read"]
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    except av.error.FFmpegError as e:
        return [f"the output does not decode: {e}"]
    found = []
    if case.frames is not None and len(frames) != case.frames:
        found.append(f"{len(frames)} frames decoded, expected {case.frames}")
    if case.size is not None and frames and frames[0].shape[1::-1] != case.size:
        found.append(f"output size {frames[0].shape[1::-1]}, expected {case.size}")
    return found


def inputs(todo: list[Case], folder: Path) -> set[str]:
    """The distinct corpus inputs (files, folders, missing paths, URLs) that ``todo`` uses."""
    return {a for case in todo for a in case.args if a.startswith(str(folder)) or "://" in a}


def main() -> int:
    """Run every case in a child process; print each message and the totals."""
    with tempfile.TemporaryDirectory(prefix="livequant-corpus-") as tmp:
        folder = Path(tmp) / "inputs"
        write_inputs(folder)
        todo = cases(folder)
        failures = tracebacks = leftovers = 0
        for number, case in enumerate(todo):
            out_dir = Path(tmp) / f"out-{number}"
            out_dir.mkdir()
            outcome = run(case, out_dir)
            found = problems(case, outcome, out_dir)
            failures += bool(found)
            tracebacks += "Traceback" in outcome.stderr
            leftovers += any("partial" in name or name.startswith(".") for name in outcome.files)
            said = [line for line in outcome.stderr.splitlines() if line.strip()]
            message = (said[-1] if said else "").replace(tmp + os.sep, "")
            print(f"{case.name:<40} exit {outcome.status}  {message}")
            for problem in found:
                print(f"{'':<40} PROBLEM: {problem}")
        print(f"\n{len(todo)} command lines over {len(inputs(todo, folder))} inputs: {failures} misbehaved, "
              f"{tracebacks} tracebacks, {leftovers} partial or temporary files left behind")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
