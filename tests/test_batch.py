"""``livequant batch`` on real Dask clusters (worker processes, no mocks) and generated clips."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import cv2  # noqa: F401  # before av (see conftest)
import av  # isort: skip
import numpy as np
import psutil
import pytest

from conftest import clip_frame, garble_pictures, gif_blocks, write_clip
from livequant.batch import MANIFEST, BatchError, find_inputs, plan_chunks
from livequant.cli import main
from livequant.quantizer import Quantizer
from livequant.sources import VideoFile, loop_count

REPO = Path(__file__).resolve().parents[1]
METRICS = REPO.parent / "shared" / "quality"


def _decode(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _write(path: Path, frames, fps: int = 10, gop: int = 10) -> Path:
    """Encode RGB frames to H.264 with a keyframe every ``gop`` frames."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"g": str(gop), "keyint_min": str(gop),
                                                              "sc_threshold": "0", "crf": "18"})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts, picture.time_base = i, Fraction(1, fps)
            out.mux(stream.encode(picture))
        out.mux(stream.encode(None))
    return path


def _shot(n: int, hue: int, rng, size=(80, 48)) -> list[np.ndarray]:
    """``n`` frames of a still scene in one hue with a moving square and a little noise."""
    w, h = size
    y, x = np.mgrid[:h, :w]
    base = cv2.cvtColor(np.stack([np.full_like(x, hue), 80 + x * 170 // w, 60 + y * 190 // h], -1).astype(np.uint8),
                        cv2.COLOR_HSV2RGB)
    frames = []
    for i in range(n):
        frame = np.clip(base.astype(np.int16) + rng.integers(-2, 3, base.shape), 0, 255).astype(np.uint8)
        frame[10:22, (3 * i) % (w - 12):(3 * i) % (w - 12) + 12] = (255, 255, 255)
        frames.append(frame)
    return frames


def _hidden(folder: Path) -> list[Path]:
    """Partial files and temporary folders a run may have left."""
    return [p for p in folder.rglob("*") if p.name.startswith(".") or "partial" in p.name]


def _manifest(outdir: Path) -> list[dict]:
    return [json.loads(line) for line in (outdir / MANIFEST).read_text().splitlines()]


# ------------------------------------------------------------------ inputs, outputs, plans (fast)

def test_inputs_keep_relative_names_and_clashes_are_refused(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ("a/x.mp4", "a/deep/y.mov", "a/notes.txt", "b.mkv", "c/x.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    names = [i.name for i in find_inputs([tmp_path / "a", tmp_path / "b.mkv"], to="gif")]
    assert names == ["deep/y.gif", "x.gif", "b.gif"]
    assert [i.name for i in find_inputs([tmp_path / "b.mkv"], to=".GIF")] == ["b.gif"]  # was b.GIF
    assert [i.name for i in find_inputs([str(tmp_path / "*" / "x.mp4")])] == ["a/x.mp4", "c/x.mp4"]
    with pytest.raises(BatchError, match="would both write 'x.mp4'"):
        find_inputs([tmp_path / "a" / "x.mp4", tmp_path / "c" / "x.mp4"])
    with pytest.raises(BatchError, match="no files match"):
        find_inputs([str(tmp_path / "*.webm")])
    with pytest.raises(BatchError, match="is a URL, and batch quantizes files .*; use `livequant transcode URL"):
        find_inputs(["https://example.com/film.mp4"])


def test_a_folder_gives_its_videos_and_animated_pictures_and_leaves_its_stills(tmp_path, capsys):
    """Stickers (animated WebP, APNG named .png or .apng) are videos to batch; stills beside them are not."""
    from PIL import Image

    pictures = [Image.fromarray(clip_frame(i, 48, 32)) for i in range(5)]
    folder = tmp_path / "in"
    (folder / "deep").mkdir(parents=True)
    for name in ("sticker.webp", "deep/spinner.png", "badge.apng"):
        pictures[0].save(folder / name, save_all=True, append_images=pictures[1:], duration=100, loop=0,
                         **({"lossless": True} if name.endswith(".webp") else {}))
    for name in ("still.png", "still.webp", "deep/one.apng"):
        pictures[0].save(folder / name, **({"format": "PNG"} if name.endswith(".apng") else {}))
    write_clip(folder / "clip.mp4", size=(48, 32), frames=3)
    names = [i.name for i in find_inputs([folder], to="gif")]
    assert names == ["badge.gif", "clip.gif", "deep/spinner.gif", "sticker.gif"]
    for name in ("clip.mp4", "sticker.webp", "deep/spinner.png", "badge.apng"):
        (folder / name).unlink()
    with pytest.raises(BatchError, match=r"holds no video files \(.*\) and no animated .apng .png .webp pictures"):
        find_inputs([folder])

    pictures[0].save(folder / "sticker.webp", save_all=True, append_images=pictures[1:], duration=100, lossless=True)
    assert main(["batch", str(folder), "-o", str(tmp_path / "out"), "--to", "gif", "--workers", "1", "-q"]) == 0
    with Image.open(tmp_path / "out" / "sticker.gif") as gif:
        assert gif.n_frames == 5
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.gif")) == ["sticker.gif"]


def test_earlier_outputs_are_not_inputs_and_an_output_that_is_an_input_is_refused(tmp_path, capsys):
    clip = write_clip(tmp_path / "a.mp4", size=(32, 32), frames=2).path
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.mp4").write_bytes(b"")  # an earlier run's output, inside the input folder
    assert [i.name for i in find_inputs([tmp_path], outdir=tmp_path / "out")] == ["a.mp4"]
    (tmp_path / "out" / MANIFEST).write_text("")  # another run's output folder, into another: passed over too
    assert [i.name for i in find_inputs([tmp_path], outdir=tmp_path / "out2")] == ["a.mp4"]
    assert [i.name for i in find_inputs([tmp_path / "out"], outdir=tmp_path / "out2")] == ["a.mp4"]  # named
    with pytest.raises(BatchError, match="every input is under the output folder"):
        find_inputs([tmp_path / "out"], outdir=tmp_path / "out")
    named = tmp_path / "out" / "a.mp4"
    with pytest.raises(BatchError, match=f"input '{named}' is inside the output folder"):  # was dropped unsaid
        find_inputs([named, clip], outdir=tmp_path / "out")
    linked = tmp_path / "linked"
    linked.mkdir()
    os.link(clip, linked / "a.mp4")
    before = clip.read_bytes()
    assert main(["batch", str(clip), "-o", str(linked), "-y", "-q"]) == 1  # before any cluster starts
    assert "is the input" in capsys.readouterr().err and clip.read_bytes() == before


def test_an_input_whose_suffix_is_not_written_asks_for_to(tmp_path, capsys):
    """An .avi keeps its suffix by default, which no writer takes: the error named the suffixes, not --to."""
    clip = write_clip(tmp_path / "a.mp4", size=(48, 32), frames=4).path
    clip.rename(tmp_path / "a.avi")
    assert main(["batch", str(tmp_path / "a.avi"), "-o", str(tmp_path / "out"), "-q"]) == 2
    assert capsys.readouterr().err == (f"livequant: error: '{tmp_path / 'a.avi'}' would be written as .avi, which "
                                       "livequant does not write; give --to mp4 (or mkv, webm, gif)\n")
    assert not (tmp_path / "out").exists()
    assert main(["batch", str(tmp_path / "a.avi"), "-o", str(tmp_path / "out"), "--to", "png", "-q"]) == 2
    assert capsys.readouterr().err == ("livequant: error: --to takes one of apng gif mkv mov mp4 webm webp, got "
                                       "'png'\n")  # webp was refused with apng taken, and suggested for txt


def test_an_output_folder_that_is_or_is_under_a_file_or_a_scheduler_that_does_not_answer_is_one_line(tmp_path, capsys):
    import dask

    clip = write_clip(tmp_path / "a.mp4", size=(48, 32), frames=4)
    (tmp_path / "afile").write_bytes(b"mine")
    assert main(["batch", str(clip.path), "-o", str(tmp_path / "afile"), "-q"]) == 1
    assert capsys.readouterr().err == f"livequant: error: output folder '{tmp_path / 'afile'}' is a file; give a " \
                                      "folder (it is created if missing)\n"
    under_a_file = tmp_path / "afile" / "out"
    assert main(["batch", str(clip.path), "-o", str(under_a_file), "-q"]) == 1
    assert capsys.readouterr().err == f"livequant: error: cannot write to the folder '{under_a_file}': Not a " \
                                      "directory; a part of the path is a file, not a folder: write elsewhere\n"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert main(["batch", str(clip.path), "-o", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9",
                     "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("livequant: error: cannot reach the Dask scheduler at 'tcp://127.0.0.1:9': ")
    assert err.count("\n") == 1 and (tmp_path / "afile").read_bytes() == b"mine"


def test_an_encoding_ffmpeg_refuses_stops_the_batch_before_any_work(tmp_path, capsys):
    clip = write_clip(tmp_path / "a.mp4", size=(32, 32), frames=2).path
    out = tmp_path / "out"
    assert main(["batch", str(clip), "-o", str(out), "--to", "webm", "--codec", "libx264", "-q"]) == 2
    assert f"cannot hold libx264 video ('{out / 'a.webm'}')" in capsys.readouterr().err
    assert not out.exists()


def test_chunks_start_at_cuts_and_long_shots_are_cut_at_keyframes_with_warm_up():
    times = [i / 10 for i in range(100)]
    keyframes = list(range(0, 100, 10))
    chunks = plan_chunks(times, [12, 25, 30], keyframes, chunk_frames=20, warm_frames=5)
    firsts = [c.first for c in chunks]
    # shots 0-11 | 12-24 + 25-29 (18 frames) | 30-99 cut at the keyframes nearest 50 and 70
    assert firsts == [0, 12, 30, 50, 70]
    assert sum(c.count for c in chunks) == 100 and [c.first + c.count for c in chunks][:-1] == firsts[1:]
    assert [c.warm for c in chunks] == [0, 0, 0, 5, 5]
    assert chunks[3].start == times[45] and chunks[3].offset == times[50]
    assert [c.window for c in chunks] == [0] * 5  # the warm-ups do not reach the shot's start: seams stay
    replayed = plan_chunks(times, [12, 25, 30], keyframes, chunk_frames=20, warm_frames=5, replay_frames=40,
                           window_frames=12)
    assert [c.warm for c in replayed] == [0, 0, 0, 20, 40]  # from the shot's start at 30
    assert [c.window for c in replayed] == [0, 0, 0, 10, 10]  # at most half a chunk
    assert [c.next_window for c in replayed] == [0, 0, 10, 10, 0]
    further = plan_chunks(times, [12, 25, 30], keyframes, chunk_frames=20, warm_frames=5, replay_frames=30,
                          window_frames=12)
    assert [c.warm for c in further] == [0, 0, 0, 20, 5] and [c.window for c in further] == [0, 0, 0, 10, 0]


# ------------------------------------------------------------------ whole files on a local cluster

@pytest.mark.slow
def test_broken_input_fails_alone_and_resume_touches_nothing(tmp_path, capsys):
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    clips = [write_clip(inputs / name, size=(48, 32), frames=12) for name in ("a.mp4", "b.mp4", "sub/c.mp4")]
    (inputs / "broken.mp4").write_bytes(b"\x00" * 4096)
    garble_pictures(write_clip(inputs / "damaged.mp4", size=(48, 32), frames=12).path)
    out = tmp_path / "out"
    assert main(["batch", str(inputs), "-o", str(out), "--workers", "2", "-q"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[1].startswith("livequant: error: ") and "broken.mp4: cannot open video" in err[1]
    assert err[0].startswith("livequant: warning: ") and "damaged.mp4: " in err[0] and "decoding errors" in err[0]
    for clip in clips:
        output = out / clip.path.relative_to(inputs)
        assert len(_decode(output)) == clip.frames
    assert sorted(p.name for p in out.rglob("*.mp4")) == ["a.mp4", "b.mp4", "c.mp4", "damaged.mp4"]
    assert not _hidden(out)
    records = {r["output"]: r for r in _manifest(out)}
    assert "decoding errors" in records["damaged.mp4"]["warning"] and "warning" not in records["a.mp4"]
    assert records["broken.mp4"]["status"] == "failed" and records["a.mp4"]["frames"] == 12
    assert records["a.mp4"]["seconds"] > 0 and records["a.mp4"]["settings"] == records["b.mp4"]["settings"]
    assert all(records[name]["status"] == "done" for name in ("a.mp4", "b.mp4", "sub/c.mp4"))

    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}
    assert main(["batch", str(inputs / "a.mp4"), str(inputs / "b.mp4"), "-o", str(out), "-q"]) == 1  # exists
    assert "exists; use -y" in capsys.readouterr().err
    assert main(["batch", str(inputs), "-o", str(out), "--workers", "2", "--resume", "-q"]) == 1  # broken again
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == before
    assert not _hidden(out)


@pytest.mark.slow
def test_a_report_beside_each_output_and_files_stay_whole(tmp_path, cluster, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    clips = [write_clip(inputs / name, size=(48, 32), frames=12) for name in ("a.mp4", "b.mp4")]
    out = tmp_path / "out"
    assert main(["batch", str(inputs), "-o", str(out), "--to", "gif", "--report", "json", "--chunk-seconds", "0.2",
                 "--scheduler", cluster, "-q"]) == 0
    for clip in clips:
        report = json.loads((out / f"{clip.path.stem}.gif.report.json").read_text())
        assert report["totals"]["frames"] == clip.frames == len(report["frames"])
        assert report["frames"][0]["event"] == "fresh" and report["totals"]["psnr"] > 20
    assert all(record["chunks"] == 1 for record in _manifest(out))  # a report measures a whole file
    assert not _hidden(out)
    assert main(["batch", str(inputs), "-o", str(out), "--to", "gif", "--report", "json", "-q"]) == 1  # exists

    # --resume redoes an output whose report is gone, and a line torn by a crash does not swallow the next record
    (out / "a.gif.report.json").unlink()
    with open(out / MANIFEST, "a") as manifest:
        manifest.write('{"input": "/x/y.mp4", "sett')
    again = ["batch", str(inputs), "-o", str(out), "--to", "gif", "--report", "json", "--chunk-seconds", "0.2",
             "--scheduler", cluster, "--resume", "-q"]
    assert main(again) == 0
    assert (out / "a.gif.report.json").is_file()
    lines = (out / MANIFEST).read_text().splitlines()
    assert lines[2] == '{"input": "/x/y.mp4", "sett' and json.loads(lines[3])["output"] == "a.gif"
    capsys.readouterr()
    assert main(again[:-1]) == 0 and "nothing to do: all 2 outputs are done" in capsys.readouterr().out


@pytest.mark.slow
def test_a_killed_worker_loses_nothing(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    clips = [write_clip(inputs / f"{i}.mp4", size=(64, 48), frames=40) for i in range(4)]
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.Popen([sys.executable, "-m", "livequant", "batch", str(inputs), "-o", str(out), "--workers", "2",
                            "-q"], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not any(out.rglob("*partial*")) and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.05)  # a worker is writing an output
    workers = _workers(psutil.Process(run.pid))
    assert run.poll() is None and workers, "the batch ended before a worker could be killed"
    os.kill(workers[0].pid, signal.SIGKILL)
    _, err = run.communicate(timeout=600)
    assert run.returncode == 0, err
    for clip in clips:
        assert len(_decode(out / clip.path.name)) == clip.frames
    assert not _hidden(out)
    assert sorted(r["output"] for r in _manifest(out) if r["status"] == "done") == [f"{i}.mp4" for i in range(4)]


@pytest.mark.slow
def test_an_output_another_program_writes_meanwhile_is_kept(tmp_path, cluster, capsys):
    """Outputs that were not there at the start are linked into place, never renamed over a file another
    program wrote meanwhile; that output fails alone, and --resume does not take the file for the batch's."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    clips = [write_clip(inputs / name, size=(96, 64), frames=48) for name in ("a.mp4", "b.mp4")]
    theirs = out / "a.gif"

    def write_theirs():  # as soon as the batch has checked its outputs and begun
        deadline = time.monotonic() + 60
        while not any(out.glob(".livequant-batch-*")) and time.monotonic() < deadline:
            time.sleep(0.001)
        theirs.write_bytes(b"theirs")

    writer = threading.Thread(target=write_theirs)
    writer.start()
    code = main(["batch", str(inputs), "-o", str(out), "--to", "gif", "--scheduler", cluster, "-q"])
    writer.join()
    err = capsys.readouterr().err
    assert code == 1 and f"output '{theirs}' appeared while this was being written" in err, err
    assert theirs.read_bytes() == b"theirs"
    assert len(_decode(out / "b.gif")) == clips[1].frames
    assert not _hidden(out)
    again = ["batch", str(inputs), "-o", str(out), "--to", "gif", "--scheduler", cluster, "--resume", "-q"]
    assert main(again) == 1 and f"output '{theirs}' exists; use -y" in capsys.readouterr().err
    assert theirs.read_bytes() == b"theirs"
    assert main([*again, "-y"]) == 0 and len(_decode(theirs)) == clips[0].frames


# ------------------------------------------------------------------ chunks

@pytest.mark.parametrize("options, refused", [
    (["--to", "mp4", "--gif-lossy", "8"], "--gif-lossy applies to GIF (.gif) only, not '{out}/a.mp4'; write a .gif, "
                                            "or leave it out"),
    (["--to", "mp4", "--loop", "2"], "--loop applies to animations (.gif .webp .apng), not to '{out}/a.mp4'; leave "
                                     "it out"),
    (["--to", "gif", "--quality", "80"], "--quality applies to animated WebP (.webp) only, not '{out}/a.gif'"),
    (["--to", "gif", "--gif-palette", "global", "--palette", "pico8"], "--gif-palette global fits its own palette; "
                                                                        "leave out --palette"),
])
def test_animation_options_an_output_cannot_take_stop_the_batch_before_any_work(tmp_path, capsys, options, refused):
    clip = write_clip(tmp_path / "a.mp4", size=(32, 32), frames=2).path
    out = tmp_path / "out"
    assert main(["batch", str(clip), "-o", str(out), *options, "-q"]) == 2
    assert capsys.readouterr().err == f"livequant: error: {refused.format(out=out)}\n"
    assert not out.exists()


@pytest.mark.slow
def test_batch_writes_lossy_and_global_palette_gifs_as_transcode_does(tmp_path, cluster, rng):
    """--gif-lossy and --loop reach the chunks of a long file; --gif-palette global fits one palette to each
    file, which is then written whole, and makes the frames `livequant transcode` makes with it."""
    shots = [(14, 0), (12, 60), (15, 120), (10, 170)]
    (tmp_path / "in").mkdir()
    source = _write(tmp_path / "in" / "cuts.mp4", [f for n, hue in shots for f in _shot(n, hue, rng)], gop=5)
    lossy, exact = tmp_path / "lossy", tmp_path / "exact"
    for out, extra in ((lossy, ["--gif-lossy", "16", "--loop", "2"]), (exact, [])):
        assert main(["batch", str(source), "-o", str(out), "--to", "gif", "--chunk-seconds", "1.5", *extra,
                     "--scheduler", cluster, "-q"]) == 0
        assert _manifest(out)[-1]["chunks"] >= 3
    shown, wanted = (np.stack(_decode(out / "cuts.gif")).astype(int) for out in (lossy, exact))
    assert shown.shape == wanted.shape and np.sqrt(((shown - wanted) ** 2).sum(-1)).max() <= 16
    assert (lossy / "cuts.gif").stat().st_size < (exact / "cuts.gif").stat().st_size
    assert loop_count(lossy / "cuts.gif") == 2 and loop_count(exact / "cuts.gif") == 0
    # --resume redoes a file written with other animation options, and only then
    again = ["batch", str(source), "-o", str(exact), "--to", "gif", "--chunk-seconds", "1.5", "--resume",
             "--scheduler", cluster, "-q"]
    assert main([*again, "--gif-lossy", "16", "--loop", "2"]) == 0
    assert (exact / "cuts.gif").read_bytes() == (lossy / "cuts.gif").read_bytes()
    written = (exact / "cuts.gif").stat().st_mtime_ns
    assert main([*again, "--gif-lossy", "16", "--loop", "2"]) == 0
    assert (exact / "cuts.gif").stat().st_mtime_ns == written

    out = tmp_path / "global"
    assert main(["batch", str(source), "-o", str(out), "--to", "gif", "--chunk-seconds", "1.5", "--gif-palette",
                 "global", "-k", "8", "--scheduler", cluster, "-q"]) == 0
    assert _manifest(out)[-1]["chunks"] == 1
    assert main(["transcode", str(source), str(tmp_path / "one.gif"), "--gif-palette", "global", "-k", "8", "-q"]) == 0
    frames, alone = _decode(out / "cuts.gif"), _decode(tmp_path / "one.gif")
    assert len(frames) == len(alone) and all(np.array_equal(a, b) for a, b in zip(frames, alone))
    assert len(np.unique(np.concatenate(frames).reshape(-1, 3), axis=0)) <= 8


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as local:
        yield local.scheduler_address


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a 150 kB tmpfs; skips where mounting is not allowed."""
    folder = tmp_path / "small"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=150k", "tmpfs", str(folder)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.slow
def test_a_full_disk_on_a_worker_is_one_line_naming_the_output(tmp_path, small_disk, cluster, capsys):
    """The worker's SinkError, raised from FFmpeg's error, came back as "Exception: SinkError(...)" naming the
    work folder's copy: Dask could not unpickle the cause."""
    clip = write_clip(tmp_path / "big.mp4", size=(320, 240), frames=60)
    out = small_disk / "out"
    assert main(["batch", str(clip.path), "-o", str(out), "--scheduler", cluster, "-q"]) == 1
    assert capsys.readouterr().err == (f"livequant: error: {clip.path}: cannot finish '{out / 'big.mp4'}': No "
                                       "space left on device; free some space (or lift the file size limit), or "
                                       "write to another disk\n")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST]


@pytest.mark.slow
def test_ctrl_c_from_a_terminal_stops_the_batch_without_a_traceback(tmp_path):
    """A terminal's Ctrl-C goes to the whole process group, workers included, here once their tasks run: each
    worker printed "Exception ignored in: Client.__del__ ... IOLoop is closed" as it shut down (the stop was a
    Dask event, which made a client on each worker). Dask's usual port, 8787, is taken meanwhile: the cluster
    warned that it served on another."""
    import socket

    taken = socket.socket()
    try:
        taken.bind(("0.0.0.0", 8787))
        taken.listen()
    except OSError:  # another program has it: as good
        pass
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in "abcd":
        write_clip(inputs / f"{name}.mp4", size=(320, 240), frames=150)
    out = tmp_path / "out"
    process = _start_batch(inputs, out)
    deadline = time.monotonic() + 120
    while not _task_started(out) and time.monotonic() < deadline:  # the workers have imported and work
        time.sleep(0.1)
    time.sleep(1.5)
    _interrupt_and_check(process, out)
    taken.close()


@pytest.mark.slow
@pytest.mark.parametrize("started", [1, 2])
def test_ctrl_c_while_the_workers_start_stops_the_batch_without_a_traceback(tmp_path, started):
    """Ctrl-C as soon as the first, or the second, of the processes behind the workers runs (the workers, or
    the fork server they come from): each worker took it while it imported and printed a traceback, about 100
    lines in all."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_clip(inputs / "a.mp4", size=(160, 120), frames=30)
    out = tmp_path / "out"
    process = _start_batch(inputs, out)
    deadline = time.monotonic() + 120
    while len(_worker_processes(psutil.Process(process.pid))) < started:
        assert time.monotonic() < deadline, f"{started} worker processes not started within 120 s"
        time.sleep(0.005)
    _interrupt_and_check(process, out)


def _start_batch(inputs: Path, out: Path) -> subprocess.Popen:
    """``livequant batch INPUTS -o OUT`` on two workers, in a process group of its own, Ctrl-C at its default."""
    return subprocess.Popen([sys.executable, "-m", "livequant", "batch", str(inputs), "-o", str(out),
                             "--workers", "2", "-q"], stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _interrupt_and_check(process: subprocess.Popen, out: Path) -> None:
    """Ctrl-C as a terminal sends it, to the batch's whole process group: it ends with exit status 130 and the
    one line "interrupted", leaving no output, no partial file and no process behind."""
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and err.strip() == "interrupted", err
    assert not _hidden(out) and not list(out.glob("*.mp4"))
    time.sleep(1)
    assert not [p for p in psutil.process_iter(["pid"]) if _in_group(p, process.pid)]


def _worker_processes(parent: psutil.Process) -> list[psutil.Process]:
    """The processes multiprocessing started under ``parent`` for the workers (not its resource tracker): the
    workers, and the fork server they are forked from."""
    found = []
    for process in parent.children(recursive=True):
        try:
            line = " ".join(process.cmdline())
        except psutil.Error:  # gone meanwhile
            continue
        if "multiprocessing" in line and "resource_tracker" not in line:
            found.append(process)
    return found


def _workers(parent: psutil.Process) -> list[psutil.Process]:
    """The worker processes under ``parent``: those of `_worker_processes` that started none of the others."""
    behind = _worker_processes(parent)
    parents = set()
    for process in behind:
        try:
            parents.add(process.ppid())
        except psutil.Error:
            pass
    return [p for p in behind if p.pid not in parents]


def _task_started(out: Path) -> bool:
    """Whether a task has opened its partial output in the batch's work folder (a fixed wait after the folder
    appeared was too short on a machine running 5-9x slower: workers still importing printed tracebacks)."""
    return any(p.is_file() and p.parent != out for p in _hidden(out))


def _in_group(process, group: int) -> bool:
    """Whether ``process`` runs in process group ``group`` (an exited one waiting to be reaped does not)."""
    try:
        return os.getpgid(process.pid) == group and process.status() != psutil.STATUS_ZOMBIE
    except (OSError, psutil.Error):
        return False


@pytest.mark.slow
def test_relative_paths_reach_workers_that_run_in_another_folder(tmp_path, monkeypatch):
    """A scheduler's workers run where they were started: the inputs and the work folder go to them as absolute
    paths (they were sent as given, and every file failed: "No such file or directory")."""
    from distributed import LocalCluster

    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    (here / "clips").mkdir(parents=True)
    elsewhere.mkdir()
    clip = write_clip(here / "clips" / "a.mp4", size=(48, 32), frames=6)
    monkeypatch.chdir(elsewhere)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as local:
        monkeypatch.chdir(here)
        assert main(["batch", "clips/a.mp4", "-o", "out", "--scheduler", local.scheduler_address, "-q"]) == 0
    assert len(_decode(here / "out" / "a.mp4")) == clip.frames
    assert not list(elsewhere.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("to, kind", [(["mkv", "--lossless"], "mp4"), (["gif"], "mp4"), (["mkv", "--lossless"], "ts")],
                         ids=["lossless video", "gif", "from MPEG-TS"])
def test_chunked_equals_sequential_on_a_clip_with_cuts(tmp_path, cluster, rng, to, kind):
    """GIF chunks are joined by copying their frames, each with its own colour table: the same pictures. An
    MPEG-TS clock starts after 0, and its demuxer seeks by bytes: each chunk still starts where planned."""
    shots = [(14, 0), (12, 60), (15, 120), (10, 170), (13, 30)]
    frames = [f for n, hue in shots for f in _shot(n, hue, rng)]
    source = _write(tmp_path / f"cuts.{kind}", frames, gop=5)
    out = tmp_path / "out"
    assert main(["batch", str(source), "-o", str(out), "--to", *to, "--chunk-seconds", "1.5",
                 "--scheduler", cluster, "-q"]) == 0
    assert _manifest(out)[-1]["chunks"] >= 4
    with VideoFile(source) as video:
        decoded = [frame for frame, _ in video]
    quantizer = Quantizer(16)
    expected = [quantizer.quantize(frame) for frame in decoded]
    got = _decode(out / f"cuts.{to[0]}")
    assert len(got) == len(expected)
    if to[0] == "gif":  # one file header, then frame after frame (FFmpeg reads past a second; browsers stop)
        assert len(gif_blocks((out / "cuts.gif").read_bytes())[1]) == len(expected)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


@pytest.mark.slow
@pytest.mark.parametrize("loop", [-1, 3])
def test_a_chunked_gif_plays_as_often_as_the_gif_it_came_from(tmp_path, cluster, make_qframe, loop):
    from livequant.sinks import GifWriter

    (tmp_path / "in").mkdir()
    source = tmp_path / "in" / "plays.gif"
    with GifWriter(source, loop=loop) as sink:  # 4 s: 4 shots of 1 s
        for i in range(40):
            sink.write(make_qframe(np.full((48, 64), (i // 10 + i % 2) % 4), time=i / 10))
    out = tmp_path / "out"
    assert main(["batch", str(source), "-o", str(out), "--to", "gif", "--chunk-seconds", "1",
                 "--scheduler", cluster, "-q"]) == 0
    assert _manifest(out)[-1]["chunks"] >= 2
    assert loop_count(out / "plays.gif") == loop  # the join's GIF muxer wrote its own loop count (forever)


@pytest.mark.slow
def test_a_chunked_file_with_damaged_frames_is_reported_once(tmp_path, cluster, capsys):
    source = write_clip(tmp_path / "damaged.mp4", frames=36).path
    garble_pictures(source)
    with VideoFile(source) as video:
        list(video)
    out = tmp_path / "out"
    assert main(["batch", str(source), "-o", str(out), "--chunk-seconds", "0.5", "--scheduler", cluster, "-q"]) == 0
    record = _manifest(out)[-1]
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("livequant: warning: ")]
    assert record["chunks"] >= 2 and warnings == [f"livequant: warning: {source}: {record['warning']}"]
    # FFmpeg's threaded H.264 decoder flags a garbled stream's frames corrupt a little differently from one
    # decoding to the next (up to 3 of 40 frames here), so the planner's count is near this one, not equal:
    # counted once over the file, not once a chunk.
    damaged = int(re.search(r"(\d+) frames? had decoding errors", record["warning"]).group(1))
    assert video.damaged > 0 and abs(damaged - video.damaged) <= video.damaged / 4


@pytest.mark.slow
@pytest.mark.parametrize("to", ["mkv", "apng"])
def test_every_output_of_a_long_file_holds_its_frames_once(tmp_path, cluster, rng, to):
    """Matroska gives a piece's first packets no dts; APNG counts and numbers its frames over the whole
    file, so it is encoded whole."""
    source = _write(tmp_path / "shots.mp4", [f for hue in (0, 90) for f in _shot(15, hue, rng)], gop=5)
    out = tmp_path / "out"
    assert main(["batch", str(source), "-o", str(out), "--to", to, "--chunk-seconds", "0.5",
                 "--scheduler", cluster, "-q"]) == 0
    assert _manifest(out)[-1]["chunks"] == (1 if to == "apng" else 6)
    output = (out / f"shots.{to}")
    assert len(_decode(output)) == 30
    if to == "apng":
        data = output.read_bytes()
        assert int.from_bytes(data[data.index(b"acTL") + 4 : data.index(b"acTL") + 8], "big") == 30


@pytest.mark.slow
def test_a_chunked_variable_rate_mp4_keeps_its_sound_to_the_end_of_its_picture(tmp_path, cluster):
    """The MP4 muxer ends the picture at its last packet in decode order (B-frames), and packets copied from
    the pieces carry decode-time steps as durations: the picture ends where its last frame does, and the
    sound with it. One shot, cut into chunks at its keyframes."""
    steps = np.resize([0.05, 0.3, 0.1, 0.02, 0.2], 24)
    times = [0.0, *np.cumsum(steps[:-1]).tolist()]
    times.append(times[-1] + 0.2)
    source = write_clip(tmp_path / "vfr.mp4", times=times, audio_seconds=times[-1] + 2, gop=6).path
    with VideoFile(source) as video:
        list(video)
    file_end = video.end_time
    assert times[-1] < file_end < times[-1] + 0.2  # as the file says: not the decode-time step after it
    out = tmp_path / "out"
    assert main(["batch", str(source), "-o", str(out), "--chunk-seconds", "1", "--scheduler", cluster, "-q"]) == 0
    assert _manifest(out)[-1]["chunks"] >= 2
    with av.open(str(out / "vfr.mp4")) as container:
        video = container.streams.video[0]
        shown = [float(f.time) for f in container.decode(video)]
        picture_end = float(video.duration * video.time_base)
    with av.open(str(out / "vfr.mp4")) as container:
        audio = container.streams.audio[0]
        sound = sum(f.samples for f in container.decode(audio)) / audio.rate
    np.testing.assert_allclose(shown, times, atol=2e-3)
    assert picture_end == pytest.approx(file_end, abs=2e-3)  # the last chunk ends where the file does
    assert sound == pytest.approx(picture_end, abs=0.05)


@pytest.mark.slow
def test_seams_inside_a_shot_are_the_sequential_frames_and_flicker_no_more_than_the_clip(tmp_path, cluster, rng):
    if not METRICS.is_dir():
        pytest.skip(f"quality metrics not found at {METRICS}")
    sys.path.insert(0, str(METRICS))
    from metrics import static_flicker

    frames = _shot(60, 100, rng)
    source = _write(tmp_path / "long.mp4", frames, gop=10)
    out = tmp_path / "out"
    assert main(["batch", str(source), "-o", str(out), "--to", "mkv", "--lossless", "--chunk-seconds", "2",
                 "--scheduler", cluster, "-q"]) == 0
    record = _manifest(out)[-1]
    assert record["chunks"] == 3
    seams = record["seams"]
    assert [20 <= seams[0] < 30, 40 <= seams[1] < 50] == [True, True]  # each in the second after its keyframe
    with VideoFile(source) as video:
        decoded = [frame for frame, _ in video]
    got = _decode(out / "long.mkv")
    sequential = tmp_path / "sequential.mkv"
    assert main(["transcode", str(source), str(sequential), "--lossless", "-q"]) == 0
    assert len(got) == len(decoded)
    assert all(np.array_equal(a, b) for a, b in zip(got, _decode(sequential)))
    flicker = [static_flicker(decoded[i - 1], decoded[i], got[i - 1], got[i])[0] for i in range(1, len(got))]
    median = float(np.median(flicker))
    for seam in seams:
        assert flicker[seam - 1] <= median, (seam, flicker[seam - 1], median)


@pytest.mark.slow
def test_batch_keeps_transparency_and_encodes_such_a_file_whole(tmp_path, cluster):
    """A 4 s sticker GIF, which 1 s chunks would cut, comes out whole with every frame's transparency; an
    opaque GIF beside it is still cut into chunks."""
    from livequant.gif import GifEncoder

    (tmp_path / "in").mkdir()
    colors = np.array([(0, 0, 0), (220, 30, 30), (30, 40, 210), (240, 240, 240)], np.uint8)
    masks = []
    for name, clear in (("sticker.gif", True), ("plain.gif", False)):
        encoder = GifEncoder(64, 48, colors)
        data = encoder.header()
        for i in range(40):  # 4 shots of 1 s
            indices = np.full((48, 64), 1 + (i // 10) % 3, np.uint8)
            opaque = np.zeros((48, 64), bool)
            opaque[8:40, i : i + 20] = True
            data += encoder.add(indices, colors, i / 10, opaque if clear else None)
            if clear:
                masks.append(opaque)
        (tmp_path / "in" / name).write_bytes(data + encoder.end())
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "in"), "-o", str(out), "--to", "gif", "--chunk-seconds", "1",
                 "--scheduler", cluster, "-q"]) == 0
    done = {record["input"].rsplit("/", 1)[-1]: record for record in _manifest(out) if record.get("status") == "done"}
    assert done["sticker.gif"]["chunks"] == 1 and done["plain.gif"]["chunks"] >= 2
    with av.open(str(out / "sticker.gif")) as gif:
        shown = [frame.to_ndarray(format="rgba")[..., 3] >= 128 for frame in gif.decode(video=0)]
    assert len(shown) == len(masks) and all((a == b).all() for a, b in zip(shown, masks))
