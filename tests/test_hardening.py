"""Hardening: the bad-input corpus, bad outputs, a full disk, and live faults.

Nothing crashes, nothing the user had is lost or overwritten, and every error is one line that names the
file or argument, the cause, and what to do. The corpus (tests/corpus.py) runs in process here, and as
``python -m livequant`` child processes in the slow test, as a user would meet it.
"""

import logging
import os
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import clip_frame, write_clip
from corpus import Outcome, cases, env, problems, run, write_inputs
from livequant import presets
from livequant.cli import main
from livequant.errors import SourceError
from livequant.fit import PaletteFitter
from livequant.pipeline import run as run_pipeline
from livequant.quantizer import Quantizer, quantize
from livequant.sinks import VideoWriter
from livequant.sources import Images, Reconnecting, TestPattern, VideoFile, Webcam

NAMES = [case.name for case in cases(Path("corpus"))]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The folder holding the corpus inputs."""
    folder = tmp_path_factory.mktemp("corpus")
    write_inputs(folder)
    return folder


def _files(folder: Path) -> tuple[str, ...]:
    return tuple(sorted(p.name for p in folder.iterdir()))


def _livequant_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("livequant")]


# ------------------------------------------------------------------ the corpus

@pytest.mark.parametrize("index", range(len(NAMES)), ids=NAMES)
def test_corpus(corpus, index, tmp_path, capfd):
    case = cases(corpus)[index]
    status = main(case.argv(tmp_path / "out"))
    outcome = Outcome(status, capfd.readouterr().err, _files(tmp_path))
    assert problems(case, outcome, tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(NAMES)), ids=NAMES)
def test_corpus_through_the_command_line(corpus, index, tmp_path):
    case = cases(corpus)[index]
    outcome = run(case, tmp_path)
    print(f"{case.name}: exit {outcome.status}: {outcome.stderr.strip()}")
    assert problems(case, outcome, tmp_path) == []


@pytest.mark.parametrize(("command", "name"), [("image", "alpha.png"), ("transcode", "alpha.mov")])
def test_transparent_pixels_are_flattened_on_white(corpus, tmp_path, capsys, command, name):
    out = tmp_path / ("out.png" if command == "image" else "out-%d.png")  # transcode: one file per frame
    assert main([command, str(corpus / name), str(out), "-k", "4"]) == 0
    transparent = cv2.imread(str(sorted(tmp_path.glob("out*.png"))[-1]))[:, 16:]  # red at alpha 0 right of x = 16 (see corpus.half_transparent)
    assert (transparent >= 240).all() and len(np.unique(transparent.reshape(-1, 3), axis=0)) == 1
    assert main([command, "--help"]) == 0
    assert "flattened on white" in " ".join(capsys.readouterr().out.split())


def test_cmyk_jpeg_keeps_its_colours(corpus, tmp_path):
    if not (corpus / "cmyk.jpg").exists():
        pytest.skip("Pillow, which writes the CMYK JPEG, is not installed")
    out = tmp_path / "out.png"
    assert main(["image", str(corpus / "cmyk.jpg"), str(out), "-k", "8"]) == 0
    rgb = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB).astype(int)
    for column, expected in [(5, (255, 0, 0)), (16, (0, 255, 0)), (27, (0, 0, 0))]:
        assert np.abs(rgb[10, column] - expected).max() < 40, (column, rgb[10, column])


def test_odd_sizes_and_the_pixel_limit_are_stated_in_help(capsys):
    assert main(["transcode", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "odd width or height is padded" in text
    assert "--max-pixels" in text and "100000000" in text


@pytest.fixture(scope="module")
def tiny_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny.png"
    cv2.imwrite(str(path), np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5)
    return path


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from([".gpl", ".act", ".json", ".hex"]),
       content=st.binary(max_size=800) | st.tuples(st.sampled_from(presets.names()), st.integers(0, 3000),
                                                    st.binary(min_size=1, max_size=12)))
def test_fuzzed_palette_files_work_or_give_one_line(tmp_path_factory, tiny_png, capsys, suffix, content):
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / f"fuzzed{suffix}"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:  # a valid file with junk spliced in
        name, at, junk = content
        presets.get(name).save(path)
        data = path.read_bytes()
        path.write_bytes(data[: at % (len(data) + 1)] + junk + data[at % (len(data) + 1) :])
    status = main(["image", str(tiny_png), str(folder / "out.png"), "--palette", str(path)])
    err = capsys.readouterr().err
    if status == 0:
        assert (folder / "out.png").is_file()
    else:
        assert status == 2 and err.count("\n") == 1, err
        assert err.startswith("livequant: error: argument --palette: ") and str(path) in err
        assert _files(folder) == (path.name,)


@pytest.fixture(scope="module")
def intact(tmp_path_factory) -> dict[str, bytes]:
    """Small valid files to damage, by name: videos with and without sound, and images."""
    folder = tmp_path_factory.mktemp("intact")
    write_clip(folder / "clip.mp4", frames=12, audio_seconds=1.0)
    write_clip(folder / "clip.mkv", frames=12, audio_seconds=1.0)
    write_clip(folder / "clip.webm", frames=6, codec="libvpx-vp9")
    write_clip(folder / "clip.mov", frames=6, codec="png", pix_fmt="rgb24")
    picture = cv2.cvtColor(clip_frame(3, 40, 30), cv2.COLOR_RGB2BGR)
    for suffix in (".png", ".jpg", ".bmp", ".tif", ".webp"):
        cv2.imwrite(str(folder / f"picture{suffix}"), picture)
    return {p.name: p.read_bytes() for p in folder.iterdir()}


damage = st.lists(st.tuples(st.sampled_from(["overwrite", "cut", "insert"]), st.floats(0, 1),
                            st.binary(min_size=1, max_size=32)), min_size=1, max_size=3)


def _damaged(data: bytes, edits) -> bytes:
    """``data`` with bytes overwritten, cut out or inserted at fractions of its length."""
    for kind, where, junk in edits:
        at = int(where * len(data))
        end = at + (len(junk) if kind != "insert" else 0)
        data = data[:at] + (junk if kind != "cut" else b"") + data[end:]
    return data


@settings(max_examples=80, deadline=None)
@given(name=st.sampled_from(["clip.mp4", "clip.mkv", "clip.webm", "clip.mov"]), edits=damage)
def test_damaged_videos_decode_or_raise_one_line(intact, tmp_path_factory, name, edits):
    path = tmp_path_factory.mktemp("damaged") / name
    path.write_bytes(_damaged(intact[name], edits))
    try:
        with VideoFile(path) as video:
            for frame, _ in video:
                assert frame.dtype == np.uint8 and frame.shape[2] == 3 and frame.flags.c_contiguous
    except SourceError as e:
        assert "\n" not in str(e) and str(path) in str(e)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["picture.png", "picture.jpg", "picture.bmp", "picture.tif", "picture.webp"]),
       edits=damage)
def test_damaged_images_decode_or_raise_one_line_and_print_nothing(intact, tmp_path_factory, capfd, name, edits):
    path = tmp_path_factory.mktemp("damaged") / name
    path.write_bytes(_damaged(intact[name], edits))
    try:
        with Images(path) as image:
            frame = next(iter(image))[0]
        assert frame.dtype == np.uint8 and frame.shape[2] == 3
    except SourceError as e:
        assert "\n" not in str(e) and str(path) in str(e)
    assert capfd.readouterr().err == ""  # libpng's and libjpeg's complaints are in the error or a warning


# ------------------------------------------------------------------ outputs

def _state(folder: Path) -> dict:
    """Every entry under ``folder`` with its bytes (files) and modification time: what must not change."""
    return {p: (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


OUTPUTS = {"transcode .mp4": ("transcode", ".mp4"), "transcode .gif": ("transcode", ".gif"),
           "image .png": ("image", ".png"), "palette .gpl": ("palette", ".gpl")}


def _command(command: str, source: Path, out: Path, *extra: str) -> list[str]:
    tail = ["-o", str(out), "-k", "4"] if command == "palette" else [str(out)]
    return [command, str(source), *tail, *extra]


@pytest.fixture
def inputs(tmp_path) -> dict[str, Path]:
    """A short clip and a small image in tmp_path/in."""
    folder = tmp_path / "in"
    folder.mkdir()
    image = folder / "in.png"
    cv2.imwrite(str(image), np.arange(3 * 24 * 32, dtype=np.uint8).reshape(24, 32, 3))
    return {"transcode": write_clip(folder / "in.mp4", frames=4).path, "image": image, "palette": image}


@pytest.mark.parametrize("kind", ["a directory", "under a file", "an existing file", "the input",
                                  "the input through a link", "in a read-only folder"])
@pytest.mark.parametrize("output", OUTPUTS)
def test_bad_outputs_are_refused_and_nothing_is_touched(tmp_path, inputs, capsys, output, kind):
    command, suffix = OUTPUTS[output]
    source = inputs[command]
    out, extra = tmp_path / f"out{suffix}", []
    if kind == "a directory":
        out.mkdir()
        extra = ["-y"]  # even -y does not replace a folder
    elif kind == "under a file":
        (tmp_path / "notes.txt").write_text("keep me")
        out = tmp_path / "notes.txt" / f"out{suffix}"
    elif kind == "an existing file":
        out.write_bytes(b"keep me")
        os.utime(out, ns=(1_000_000_000, 1_000_000_000))
    elif kind == "the input":
        out = source
    elif kind == "the input through a link":
        out = tmp_path / f"link{source.suffix}"
        out.symlink_to(source)
        extra = ["-y"]
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        if os.access(locked, os.W_OK):
            pytest.skip("this user (root?) may write into a read-only folder; 'under a file' covers a failing write")
        out = locked / f"out{suffix}"
    before = _state(tmp_path)
    status = main(_command(command, source, out, *extra))
    err = capsys.readouterr().err
    assert status in (1, 2) and err.count("\n") == 1 and err.startswith("livequant: error: "), err
    assert out.name in err or out.parent.name in err
    assert _state(tmp_path) == before


def _file_size_limit(limit: int):
    """For preexec_fn: files may not grow past ``limit`` bytes; writes past it fail with EFBIG."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the writer
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.fixture(scope="module")
def compiled():
    """Compile (and cache on disk) the kernels here, so a child with a file size limit need not write them."""
    quantize(np.zeros((8, 8, 3), np.uint8), 4, dither="bayer")
    with Quantizer(4, background=True) as q:
        q.process(np.zeros((8, 8, 3), np.uint8))


@pytest.mark.parametrize(("output", "limit"), [("transcode .mp4", 4096), ("transcode .gif", 4096),
                                               ("image .png", 1024), ("palette .gpl", 64)])
def test_a_full_disk_gives_a_clear_error_and_keeps_the_existing_file(tmp_path, compiled, output, limit):
    command, suffix = OUTPUTS[output]
    source = tmp_path / f"in{'.mp4' if command == 'transcode' else '.png'}"
    if command == "transcode":
        write_clip(source, size=(96, 72), frames=8)
    else:
        cv2.imwrite(str(source), np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8))
    out = tmp_path / f"out{suffix}"
    out.write_bytes(b"keep me")
    before = _state(tmp_path)
    args = _command(command, source, out, "-y", *(["--dither", "bayer"] if command != "palette" else []))
    done = subprocess.run([sys.executable, "-m", "livequant", *args], capture_output=True, text=True, timeout=60,
                          env=env(), preexec_fn=_file_size_limit(limit))
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("livequant: error: "), done.stderr
    assert str(out) in done.stderr and "File too large; free some space" in done.stderr
    assert _state(tmp_path) == before


class _InterruptedWhileFinishing(VideoWriter):
    """A writer that gets Ctrl-C while it flushes the encoder, or just after (before the rename)."""

    def __init__(self, path, when: str):
        super().__init__(path, 12)
        self._when = when

    def _finish(self):
        if self._when == "after":
            super()._finish()
        raise KeyboardInterrupt


@pytest.mark.parametrize("when", ["before", "after"])
def test_an_interrupt_while_finishing_leaves_no_partial_file(tmp_path, make_qframe, when):
    with pytest.raises(KeyboardInterrupt), _InterruptedWhileFinishing(tmp_path / "out.mp4", when) as sink:
        for i in range(3):
            sink.write(make_qframe(np.full((16, 16), i % 4), time=i / 12))
    assert list(tmp_path.iterdir()) == [] and not sink.finished


# ------------------------------------------------------------------ live faults

class _Collect:
    """A sink that keeps the quantized frames it is given."""

    def __init__(self):
        self.frames = []

    def write(self, qframe) -> None:
        self.frames.append(qframe)


class _Unplugged:
    """A live camera stand-in: ``frames`` test-pattern frames, then it is unplugged (raises `SourceError`)
    or, with ``unplug=False``, the stream ends."""

    live = True
    path = "camera 9"

    def __init__(self, frames: int, unplug: bool = True):
        self._pattern = TestPattern((64, 48), frames=frames)
        self.size, self.fps = self._pattern.size, self._pattern.fps
        self._unplug = unplug
        self.closed = False

    def __iter__(self):
        yield from self._pattern
        if self._unplug:
            raise SourceError("camera 9 stopped delivering frames (nothing for 2 s); check that it is connected")

    def close(self) -> None:
        self.closed = True


def test_a_camera_that_stops_ends_the_stream_with_its_message(clip):
    sink = _Collect()
    with Webcam(str(clip.path), timeout=0.3) as camera, Quantizer(4, background=True) as quantizer:
        with pytest.raises(SourceError, match=r"camera '.*clip\.mp4' stopped delivering frames .*check that"):
            run_pipeline(camera, quantizer, [sink])
    assert sink.frames
    assert _livequant_threads() == []


def test_reconnect_picks_the_stream_up_again(caplog):
    opened = []

    def opener():
        opened.append(len(opened))
        if len(opened) == 2:  # not back yet at the first try
            raise SourceError("cannot open camera 9: no such device")
        return _Unplugged(5, unplug=len(opened) == 1)

    sink = _Collect()
    with caplog.at_level(logging.WARNING, logger="livequant"), \
            Reconnecting(opener, attempts=3, interval=0.2) as source, Quantizer(4, background=True) as quantizer:
        stats = run_pipeline(source, quantizer, [sink])
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "camera 9 stopped delivering frames (nothing for 2 s); check that it is connected; reconnecting (try 1 of 3)",
        "cannot open camera 9: no such device; reconnecting (try 2 of 3)",
        "reconnected (try 2 of 3)",
    ]
    assert source.reconnects == 1 and len(opened) == 3
    assert stats.frames == len(sink.frames) >= 2
    assert np.all(np.diff([q.time for q in sink.frames]) > 0)
    assert _livequant_threads() == []


def test_reconnect_gives_up_after_its_tries(tmp_path, clip):
    path = tmp_path / "camera.mp4"
    path.write_bytes(clip.path.read_bytes())
    source = Reconnecting(lambda: Webcam(str(path), timeout=0.3), attempts=2, interval=0.1)
    path.unlink()  # the device goes away for good; the open capture plays to its end
    with source, Quantizer(4, background=True) as quantizer, \
            pytest.raises(SourceError, match=r"cannot open camera '.*camera\.mp4': no such device; .*"
                                             r"gave up after 2 tries to reconnect"):
        run_pipeline(source, quantizer, [_Collect()])
    assert _livequant_threads() == []


def test_a_missing_camera_is_one_line_with_or_without_reconnect(capsys):
    assert main(["preview", "7", "--reconnect"]) == 1
    err = capsys.readouterr().err
    assert err == "livequant: error: cannot open camera 7: no such device; list cameras with " \
                  "`livequant preview --list-cameras`\n"
    assert main(["preview", "--help"]) == 0
    assert "--reconnect" in capsys.readouterr().out


class _FailingFitter(PaletteFitter):
    """Fits the first palette, then fails every refit (as a library bug or an out-of-memory would)."""

    def fit(self, *args, **kwargs):
        if getattr(self, "_fitted_once", False):
            raise RuntimeError("k-means blew up")
        self._fitted_once = True
        return super().fit(*args, **kwargs)


def test_a_failing_refit_keeps_the_last_palette_and_is_reported_once(caplog):
    sink = _Collect()
    with caplog.at_level(logging.ERROR, logger="livequant"), Quantizer(8, background=True, refit_every=1) as q:
        q._fitter.__class__ = _FailingFitter  # the quantizer's own fitter, failing from its second fit on
        stats = run_pipeline(TestPattern((96, 64), frames=40), q, [sink])
    assert stats.frames == 40 and stats.refits == 1  # the first fit only
    assert len({qframe.palette for qframe in sink.frames}) == 1
    failures = [r.getMessage() for r in caplog.records if "refit" in r.getMessage()]
    assert failures == ["palette refit failed, keeping the current palette: k-means blew up"]
