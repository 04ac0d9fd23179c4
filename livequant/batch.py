"""Many files, and long files cut into chunks, transcoded on a Dask cluster: ``livequant batch``.

The client (this process) finds the inputs, refuses name clashes and existing
outputs, reads the manifest, then submits the work to Dask workers:

- a short file is one task, the same transcode as ``livequant transcode``;
- a long file is first planned (one decode, scene cuts found by
  `livequant.track.scene_cuts`), then cut into chunks of about
  ``chunk_seconds`` at those cuts, each chunk one task (longest first),
  and the encoded chunks are joined without re-encoding, with the audio
  copied once from the source.

A chunk that starts at a scene cut gives exactly the frames the sequential
transcode gives from that cut on, because the palette track starts afresh
there. A shot longer than a chunk is cut at a keyframe instead. A chunk that
starts within ``replay_seconds`` of its shot's start first runs the quantizer
over the shot from its start, without writing those frames: it is then again
exactly the sequential transcode, and the seam moves to the frame of the next
`SEAM_WINDOW_SECONDS` where the output changes least where the picture stands
still (both chunks beside it find the same frame, since both reproduce the
sequential frames there). A chunk further in warms up over the `WARM_SECONDS`
before it, which brings its palette only close to the sequential one.

Every task writes under a temporary folder in OUTDIR and renames its output
into place only when complete. A worker that dies has its task run again
elsewhere, up to `ALLOWED_FAILURES` times (Dask's ``allowed-failures``); a task
that raises (a broken input) fails only its file, at once. Each finished or
failed file adds a line to the manifest ``OUTDIR/livequant-manifest.jsonl``,
which ``resume`` reads to skip finished work.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import dataclasses
import glob
import hashlib
import json
import logging
import multiprocessing.forkserver
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from itertools import islice
from multiprocessing import resource_tracker
from pathlib import Path

import cv2  # noqa: F401  # before av: see livequant/sinks.py
import av  # isort: skip
import dask
from distributed import Client, KilledWorker, LocalCluster, WorkerPlugin, as_completed, get_worker
from distributed.utils import get_mp_context
from tqdm import tqdm

from livequant import __version__
from livequant.adapters import adapt, enlarge
from livequant.errors import LivequantError, SourceError, UsageError, appeared_meanwhile, write_failed
from livequant.files import move_into_place
from livequant.frames import QuantizedFrame
from livequant.gif import split_file_parts
from livequant.interrupts import interrupts_held
from livequant.options import animation_loop, frame_size, global_palette, make_quantizer, open_output, transparency
from livequant.pipeline import end_at, run
from livequant.report import QualityReport, still_change
from livequant.sinks import VIDEO_SUFFIXES as VIDEO_OUTPUTS
from livequant.sinks import AudioTrack, GifWriter, OneBehind, check_target, muxer_options
from livequant.sources import VideoFile, damage_note, is_animated, open_video
from livequant.track import scene_cuts

__all__ = ["BatchError", "Chunk", "Item", "find_inputs", "plan_chunks", "run_batch", "settings_hash"]

#: Suffixes of the files taken from a folder.
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif", ".mpg", ".mpeg", ".ts",
                            ".flv", ".wmv", ".ogv"})
#: Suffixes of picture files taken from a folder when they are animated (`is_animated`); stills are left out.
ANIMATION_SUFFIXES = frozenset({".webp", ".png", ".apng"})
#: Output suffixes batch writes: --to's, else each input's own.
OUTPUT_SUFFIXES = frozenset({*VIDEO_OUTPUTS, ".gif", ".webp", ".apng"})
MANIFEST = "livequant-manifest.jsonl"
#: Outputs whose chunks join by stream copy; others (APNG: one frame count and numbering over the file) are
#: encoded whole.
JOINABLE = frozenset({".mp4", ".mov", ".mkv", ".webm", ".gif"})
#: Default seconds from a shot's start within which a chunk replays the shot before it (and is exact).
REPLAY_SECONDS = 30.0
#: Seconds before a keyframe cut that a chunk further into its shot quantizes without writing them.
WARM_SECONDS = 2.0
#: Seconds after a keyframe cut inside a shot in which the seam moves to the quietest frame.
SEAM_WINDOW_SECONDS = 1.0
#: Times a task is started again after the worker running it died (then it fails with `KilledWorker`).
ALLOWED_FAILURES = 2
#: Seconds between two progress reports of a task.
REPORT_EVERY = 0.5
_TOPIC = "livequant-progress"


class BatchError(LivequantError):
    """The inputs or outputs of a batch cannot be used as given."""


class Cancelled(Exception):
    """Raised in a task when the batch was interrupted; its partial output is removed."""


@dataclass(frozen=True)
class Item:
    """One input and where its output goes: ``outdir / name``."""

    input: Path
    name: str  # the output's path relative to OUTDIR


@dataclass(frozen=True)
class Chunk:
    """Frames ``first .. first + count - 1`` of a file, after ``warm`` frames quantized but not written.

    A seam with a window (``window`` at the start, ``next_window`` at the end)
    moves to the quietest of the window's frames: the chunk then writes from
    that frame of its first window, and up to that frame of its last.
    """

    first: int
    count: int
    warm: int
    start: float  # time of frame ``first - warm`` (where decoding starts), from the file's start (its origin)
    offset: float  # time of frame ``first`` after the file's first frame
    window: int = 0  # frames from ``first`` where the chunk's first written frame may be
    next_window: int = 0  # frames from ``first + count`` where the next chunk's first frame may be
    end: float | None = None  # the last chunk's: when its last frame stops showing (the file's end), if known


# ------------------------------------------------------------------ inputs and outputs

def find_inputs(specs, *, to: str | None = None, outdir=None) -> list[Item]:
    """Expand files, folders and globs into `Item` s whose output names keep the relative names.

    A file keeps its name; a folder's files (any depth) keep their path under
    the folder; a glob's matches keep their path under the glob's fixed part.
    ``to`` (a suffix such as ``"gif"``) replaces each suffix. Files that folders
    and globs find under ``outdir`` (the outputs of an earlier run) are left out,
    as are those a folder holds under another batch's output folder (one with
    its `MANIFEST`); a file named under ``outdir`` is refused.

    Raises
    ------
    BatchError
        A spec that matches nothing, two inputs that would write the same output, a file named under
        ``outdir``, or no input outside it.
    """
    items, seen = [], {}
    skipped = Path(outdir).resolve() if outdir is not None else None
    for spec in specs:
        for path, name in _expand(str(spec)):
            if skipped is not None and path.resolve().is_relative_to(skipped):
                if Path(spec).is_file():  # named, not found in a folder: not an earlier output to pass over
                    raise BatchError(f"input '{spec}' is inside the output folder '{outdir}'; move it out, or give "
                                     "another output folder")
                continue
            name = Path(name).with_suffix(f".{to.lstrip('.').lower()}") if to else Path(name)
            item = Item(path, name.as_posix())
            if item.name in seen and seen[item.name].input.resolve() != path.resolve():
                raise BatchError(f"'{seen[item.name].input}' and '{path}' would both write '{item.name}'; "
                                 "rename one, or give them in separate runs with different output folders")
            if item.name not in seen:
                seen[item.name] = item
                items.append(item)
    if not items:
        raise BatchError(f"every input is under the output folder '{outdir}'; give another output folder")
    return items


def _expand(spec: str):
    """``(path, relative name)`` pairs of one command-line input."""
    if "://" in spec:
        raise BatchError(f"input '{spec}' is a URL, and batch quantizes files (its workers read them in chunks); "
                         "use `livequant transcode URL OUTPUT` for a URL")
    path = Path(spec)
    if path.is_dir():
        outputs = {manifest.parent for manifest in path.rglob(MANIFEST)} - {path}  # earlier batches' folders
        found = sorted(p for p in path.rglob("*")
                       if p.is_file() and _taken_from_folder(p) and not outputs.intersection(p.parents))
        if not found:
            raise BatchError(f"folder '{spec}' holds no video files ({' '.join(sorted(VIDEO_SUFFIXES))}) and no "
                             f"animated {' '.join(sorted(ANIMATION_SUFFIXES))} pictures")
        return [(p, p.relative_to(path)) for p in found]
    if path.is_file():
        return [(path, path.name)]
    if glob.has_magic(spec):
        parts = Path(spec).parts
        fixed = Path(*[p for p in parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))]] or ["."])
        found = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        if not found:
            raise BatchError(f"no files match '{spec}'")
        return [(p, p.relative_to(fixed) if fixed != Path(".") else p) for p in found]
    raise BatchError(f"input '{spec}' is not a file, a folder or a glob that matches files; check the path")


def _taken_from_folder(path: Path) -> bool:
    """Whether a folder's file is taken: a video by its suffix, or an animated picture."""
    suffix = path.suffix.lower()
    return suffix in VIDEO_SUFFIXES or (suffix in ANIMATION_SUFFIXES and is_animated(path))


def settings_hash(settings: dict) -> str:
    """A short hash of the settings that decide the output bytes (and of the livequant version)."""
    text = json.dumps({**settings, "livequant": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fingerprint(path: Path) -> list[int]:
    status = path.stat()
    return [status.st_size, status.st_mtime_ns]


def read_manifest(outdir: Path) -> dict[str, dict]:
    """The last manifest record of each output name; unreadable lines (a crash mid-write) are skipped."""
    records = {}
    path = outdir / MANIFEST
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
                records[record["output"]] = record
            except (ValueError, KeyError, TypeError):
                continue
    return records


# ------------------------------------------------------------------ chunk planning (pure)

def plan_chunks(times, cuts, keyframes, *, chunk_frames: int, warm_frames: int, replay_frames: int = 0,
                window_frames: int = 0) -> list[Chunk]:
    """Group the shots between scene cuts into chunks of about ``chunk_frames`` frames.

    Whole shots are grouped while they fit; a shot longer than ``chunk_frames``
    is cut at the keyframes nearest each multiple of ``chunk_frames`` into it.
    A chunk that starts at such a keyframe at most ``replay_frames`` into its
    shot replays the shot from its start, and its seam gets a window of
    ``window_frames`` (at most half of ``chunk_frames``) to move in; one further
    in warms up over the ``warm_frames`` frames before it.

    Parameters
    ----------
    times : sequence of float
        Each frame's time, in decoding order.
    cuts : sequence of int
        Scene-cut frame indices (> 0, ascending).
    keyframes : sequence of int
        Frame indices of the keyframes (ascending).
    chunk_frames, warm_frames, replay_frames, window_frames : int

    Returns
    -------
    list of Chunk
        In frame order, covering every frame once.
    """
    n = len(times)
    bounds = [0, *[c for c in cuts if 0 < c < n], n]
    starts = []  # (first frame, first frame of its shot)
    group = None  # first frame of the chunk that short shots are added to
    for a, b in zip(bounds, bounds[1:]):
        if b - a > chunk_frames:
            starts.append((a, a))
            s = a
            while b - s > chunk_frames + chunk_frames // 2:
                target = s + chunk_frames
                near = [k for k in keyframes if s + chunk_frames // 2 <= k <= b - chunk_frames // 2]
                if not near:
                    break
                s = min(near, key=lambda k: (abs(k - target), k))
                starts.append((s, a))
            group = None
        elif group is None or b - group > chunk_frames:
            starts.append((a, a))
            group = a
    ends = [first for first, _ in starts[1:]] + [n]
    t0 = times[0]
    window_frames = max(0, min(window_frames, chunk_frames // 2))
    windows = [min(window_frames, end - first) if shot < first <= shot + replay_frames else 0
               for (first, shot), end in zip(starts, ends)]
    chunks = []
    for (first, shot), end, window, next_window in zip(starts, ends, windows, windows[1:] + [0]):
        warm = first - shot if first - shot <= replay_frames else min(warm_frames, first - shot)
        chunks.append(Chunk(first, end - first, warm, times[first - warm], times[first] - t0, window, next_window))
    return chunks


def quietest_seam(before: QuantizedFrame, window: list[QuantizedFrame]) -> int:
    """Where in ``window`` (frames following ``before``) a seam shows least.

    Returns
    -------
    int
        The index of the frame whose output changes least, summed over the pixels
        where its source stands still, from the frame before it; the first on a tie.
    """
    changes = [still_change(a.source, b.source, a.rgb, b.rgb)[0] for a, b in zip([before, *window], window)]
    return changes.index(min(changes))


# ------------------------------------------------------------------ tasks (run on workers)

class _Reporter:
    """``on_frame`` for `run` in a task: reports the frames done every `REPORT_EVERY` s as a Dask event,
    and raises `Cancelled` once the batch's work folder is gone (the client removes it when it stops: a
    Dask event made a client on each worker, whose ``__del__`` printed a traceback as the worker shut down)."""

    def __init__(self, key: str, work: str):
        self._key, self._work = key, work
        self._sent = time.monotonic()
        self.last = None  # the last frame handed to the sinks
        try:
            self._worker = get_worker()
        except ValueError:  # not on a worker
            self._worker = None

    def __call__(self, qframe, stats) -> None:
        self.last = qframe
        now = time.monotonic()
        if self._worker is None or now - self._sent < REPORT_EVERY:
            return
        self._sent = now
        self._worker.log_event(_TOPIC, (self._key, stats.frames))
        if not os.path.isdir(self._work):
            raise Cancelled()


def _check_encoding(items: list[Item], outdir: Path, options: argparse.Namespace) -> None:
    """Open each kind of output once, in a temporary folder, so that a suffix, codec or option FFmpeg
    refuses stops the batch before any work (`UsageError`, naming an output), not once per file on the workers."""
    with tempfile.TemporaryDirectory() as folder:
        for suffix, item in {Path(item.name).suffix.lower(): item for item in items}.items():
            if not options.to and suffix not in OUTPUT_SUFFIXES:
                raise UsageError(f"'{item.input}' would be written as {suffix}, which livequant does not write; "
                                 "give --to mp4 (or mkv, webm, gif)")
            trial = Path(folder) / Path(item.name).name
            try:
                open_output(_task_options(options, "", trial, audio=False), argparse.Namespace(fps=None), ()).abort()
            except UsageError as e:
                raise UsageError(str(e).replace(str(trial), str(outdir / item.name))) from None


def _task_options(options: argparse.Namespace, source_path, output, *, audio: bool) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(options), "input": str(source_path), "output": str(output),
                                 "overwrite": True, "fps": None, "no_audio": options.no_audio or not audio})


def encode_task(source_path: str, output: str, options: argparse.Namespace, key: str, work: str,
                chunk: Chunk | None = None) -> tuple[int, str] | tuple[int, int, float]:
    """Transcode a file, or one chunk of it, to ``output`` (a piece without audio for a chunk).

    Returns
    -------
    (int, str) or (int, int, float)
        The number of frames written; for a whole file, also what to tell of
        its damaged frames (`damage_note`); for a chunk, the index of its first
        written frame and that frame's time after the file's first frame.
    """
    output = Path(output)
    if not os.path.isdir(work):  # the batch stopped
        raise Cancelled()
    shutil.rmtree(output.parent, ignore_errors=True)  # what a worker that died here left
    output.parent.mkdir(parents=True)
    start = None if chunk is None else chunk.start
    task_options = _task_options(options, source_path, output, audio=chunk is None)
    kept = transparency(task_options)
    if chunk is not None:  # files whose transparency is kept are not cut into chunks (`_Run`)
        kept["alpha"] = False
    if options.gif_palette == "global":  # files are then not cut into chunks (`livequant.cli`)
        with open_video(source_path, max_pixels=options.max_pixels, **kept) as video:
            task_options.palette = global_palette(task_options, video)
    with open_video(source_path, start=start, max_pixels=options.max_pixels, **kept) as source:
        size, n, shown = frame_size(source.size, options)
        sink = (GifWriter(output, loop=animation_loop(task_options), overwrite=True, local_palettes=True,
                          lossy=options.gif_lossy)
                if chunk and output.suffix == ".gif" else open_output(task_options, source, [source_path]))
        report = QualityReport() if options.report and chunk is None else None
        reporter = _Reporter(key, work)
        with make_quantizer(task_options) as quantizer, sink:
            frames = adapt(source, size=size)
            sinks = [enlarge(sink, n, shown)] + ([report] if report else [])
            if chunk is not None:
                return _encode_chunk(frames, chunk, quantizer, sinks, reporter)
            stats = run(frames, quantizer, sinks, on_frame=reporter)
    if report is not None:
        report.save(report_path(output, options.report))
    return stats.frames, damage_note(stats.undecodable, stats.damaged)


def _encode_chunk(frames, chunk: Chunk, quantizer, sinks, reporter: _Reporter) -> tuple[int, int, float]:
    """Warm up, then write the chunk's frames from the seam chosen in its first window to the seam
    chosen in its last; returns what `encode_task` does for a chunk."""
    frames = islice(frames, chunk.warm + chunk.count + chunk.next_window)
    before = None
    for frame, t in islice(frames, chunk.warm):
        before = quantizer.process(frame, t)
    head = [quantizer.process(frame, t) for frame, t in islice(frames, chunk.window)]
    skip = quietest_seam(before, head) if head and before is not None else 0
    _write_frames(sinks, head[skip:])
    if head:
        reporter.last = head[-1]
    written = len(head) - skip + run(islice(frames, chunk.count - len(head)), quantizer, sinks,
                                      on_frame=reporter).frames
    tail = [quantizer.process(frame, t) for frame, t in frames]
    stop = quietest_seam(reporter.last, tail) if tail and reporter.last is not None else 0
    _write_frames(sinks, tail[:stop])
    if chunk.end is not None:
        end_at(sinks, chunk.end)
    offset = chunk.offset + (head[skip].time - head[0].time if head else 0.0)
    return written + stop, chunk.first + skip, offset


def _write_frames(sinks, qframes) -> None:
    """Hand frames quantized outside `run` to the sinks."""
    for qframe in qframes:
        for sink in sinks:
            sink.write(qframe)


def report_path(output: Path, kind: str) -> Path:
    """Where the quality report of ``output`` goes: beside it, ``NAME.report.json`` or ``.png``."""
    return output.with_name(f"{output.name}.report.{kind}")


def plan_task(source_path: str, options: argparse.Namespace, chunk_seconds: float, suffix: str,
              replay_seconds: float = REPLAY_SECONDS) -> tuple[list[Chunk], str]:
    """Decode a file once, find its scene cuts and keyframes, and plan its chunks; returns them and what
    to tell of its damaged frames (`damage_note`). No chunks for a file with transparent pixels that its output
    (of ``suffix``) keeps, read up to its first such frame: a GIF frame clears what the next one shows
    transparent, which a chunk's last frame cannot know."""
    times = []
    transparent = []
    task_options = _task_options(options, source_path, Path("out").with_suffix(suffix), audio=False)
    with VideoFile(source_path, max_pixels=options.max_pixels, **transparency(task_options)) as source:
        size, _, _ = frame_size(source.size, options)
        fps = source.fps or 25.0

        def frames():
            for frame, t, *opaque in adapt(source, size=size):
                times.append(t)
                transparent.append(bool(opaque) and opaque[0] is not None)
                if transparent[-1]:
                    return  # encoded whole: nothing more to plan
                yield frame

        cuts = scene_cuts(frames(), n_colors=options.colors)  # the sample size and seed the Quantizer uses
    damage = damage_note(source.undecodable, source.damaged)
    if any(transparent):
        return [], damage
    keyframes = []
    with av.open(source_path) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.is_keyframe and packet.pts is not None:
                t = float(packet.pts * packet.time_base)
                keyframes.append(bisect.bisect_left(times, t - 1e-6))
    chunks = plan_chunks(times, cuts, sorted(set(keyframes)), chunk_frames=max(1, round(chunk_seconds * fps)),
                         warm_frames=round(WARM_SECONDS * fps), replay_frames=round(replay_seconds * fps),
                         window_frames=round(SEAM_WINDOW_SECONDS * fps))
    if chunks:
        chunks[-1] = dataclasses.replace(chunks[-1], end=source.end_time)
    # a chunk's VideoFile starts from the file's start, and the times here are on the file's clock
    chunks = [dataclasses.replace(chunk, start=max(chunk.start - source.origin, 0.0)) for chunk in chunks]
    return chunks, damage


def join_task(pieces: list[str], offsets: list[float], output: str, source_path: str,
              options: argparse.Namespace) -> int:
    """Join encoded chunks into ``output`` by stream copy, each shifted to its time, with the source's audio.

    Returns the number of frames (packets) written.
    """
    output = Path(output)
    frames = 0
    audio_in = None
    gif = output.suffix.lower() == ".gif"
    plays = {"loop": str(animation_loop(_task_options(options, source_path, output, audio=False)))} if gif else {}
    try:
        with av.open(pieces[0]) as first, av.open(str(output), "w", container_options={**plays, **muxer_options(
                output.suffix)}) as out:
            stream = out.add_stream_from_template(first.streams.video[0])
            if not gif and not options.no_audio:
                audio_in = av.open(source_path)
                sound = audio_in.streams.audio[0] if audio_in.streams.audio else None
                audio = None if sound is None else AudioTrack(sound, audio_in.demux(sound), out, output.suffix.lower())
                with VideoFile(source_path, max_pixels=options.max_pixels) as source:
                    t0 = next(iter(source))[1]
            else:
                audio = None
            with av.open(pieces[-1]) as last:
                end = offsets[-1] + last.duration / 1e6  # where the picture ends
            end_ticks = round(end / first.streams.video[0].time_base)
            muxer = OneBehind(out)
            for packet in _joined_packets(pieces, offsets, gif=gif):
                if audio is not None:
                    audio.mux_until(t0 + float(packet.pts * packet.time_base), t0)
                # an MP4 piece's packets come with decode-time steps as durations: none may show past the end
                if packet.duration:
                    packet.duration = max(1, min(packet.duration, end_ticks - packet.pts))
                packet.stream = stream
                muxer.mux(packet)
                frames += 1
            muxer.finish(end_ticks)
            if audio is not None:
                audio.finish(t0 + end, t0)
    except BaseException:
        output.unlink(missing_ok=True)
        raise
    finally:
        if audio_in is not None:
            audio_in.close()
    return frames


def _joined_packets(pieces: list[str], offsets: list[float], gif: bool):
    """The video packets of ``pieces`` in order, each piece shifted by its offset (seconds) onto one
    timeline, with a dts on every packet that rises from one to the next: a piece of one or two frames
    has less decoder delay (B-frames) than the next, and a Matroska piece's first packets come without
    a dts. GIF packets lose the pieces' file headers but the first, and their trailers."""
    last_dts = None
    for number, (piece, offset) in enumerate(zip(pieces, offsets)):
        with av.open(piece) as container:
            video = container.streams.video[0]
            shift = round(offset / video.time_base)
            waiting = []  # the piece's first packets, while the demuxer gives no dts
            for packet in container.demux(video):
                if packet.pts is None:
                    continue
                if gif:
                    packet = _gif_frame(packet, keep_header=number == 0)
                packet.pts += shift
                if packet.dts is None:
                    waiting.append(packet)
                    continue
                dts = packet.dts + shift
                if last_dts is not None:
                    dts = max(dts, last_dts + 1 + len(waiting))
                for i, early in enumerate(waiting):  # just before the first dts given
                    early.dts = dts - len(waiting) + i
                    yield early
                waiting = []
                packet.dts = last_dts = dts
                yield packet
            for early in waiting:  # no dts given at all: frames without reordering, in presentation order
                early.dts = last_dts = early.pts if last_dts is None else max(early.pts, last_dts + 1)
                yield early


def _gif_frame(packet: av.Packet, keep_header: bool) -> av.Packet:
    """``packet`` of a GIF piece without the piece's trailer, and without its header unless ``keep_header``."""
    header, frame = split_file_parts(bytes(packet))
    part = av.Packet(header + frame if keep_header else frame)
    part.pts, part.dts, part.duration, part.time_base = packet.pts, packet.dts, packet.duration, packet.time_base
    return part


def _timed(function, *args):
    """``(function(*args), seconds it took)``: what the client submits, so the manifest can record each
    file's working time (not its time in the queue). A livequant error goes back without its cause: an FFmpeg
    error does not survive the trip (Dask then sent ``Exception(repr(error))``)."""
    start = time.perf_counter()
    try:
        result = function(*args)
    except LivequantError as error:
        error.__cause__ = error.__context__ = None
        raise
    return result, time.perf_counter() - start


def _probe(path: Path) -> tuple[int, float] | None:
    """``(frames, seconds)`` of a video from its header, or None if the header does not tell; for an animated
    WebP, which FFmpeg here cannot read, its frames and 0 s (it is encoded whole)."""
    if path.suffix.lower() == ".webp" and is_animated(path):
        try:
            with open_video(path) as animation:
                return animation.frame_count, 0.0
        except SourceError:
            return None  # the task opens it again and says what is wrong
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            seconds = (float(stream.duration * stream.time_base) if stream.duration
                       else container.duration / 1e6 if container.duration else None)
            rate = stream.average_rate or stream.guessed_rate
            frames = stream.frames or (round(seconds * rate) if seconds and rate else 0)
            return (frames, seconds) if seconds else None
    except (av.error.FFmpegError, IndexError, OSError):
        return None  # the task opens it again and says what is wrong


# ------------------------------------------------------------------ the client

@dataclass
class _File:
    """The client's view of one item while the batch runs."""

    item: Item
    output: Path
    expected: int
    fingerprint: list[int]
    seconds: float = 0.0  # working time of its finished tasks
    chunks: list[Chunk] | None = None
    pieces: dict | None = None  # chunk index -> (piece path, first frame, its time), as they finish
    damage: str = ""  # what to tell of its damaged frames, from the task that decoded it whole
    failed: bool = False

    @property
    def source(self) -> str:
        """The input's absolute path, as the workers open it: a scheduler's workers run in other folders."""
        return str(self.item.input.absolute())


def run_batch(items: list[Item], outdir, options: argparse.Namespace, settings: dict, *,
              workers: int | None = None, scheduler: str | None = None, resume: bool = False,
              overwrite: bool = False, chunk_seconds: float = 20.0, replay_seconds: float = REPLAY_SECONDS,
              quiet: bool = False) -> tuple[list[str], list[str]]:
    """Transcode every item into ``outdir`` on a Dask cluster; return one line per failed input, and one
    per input done with damaged frames (skipped or patched by the decoder).

    Parameters
    ----------
    items : list of Item
    outdir : str or os.PathLike
        Created if missing.
    options : argparse.Namespace
        The colour, size and encoding options, as ``livequant transcode`` takes them.
    settings : dict
        What decides the output bytes; its `settings_hash` goes in the manifest.
    workers : int, optional
        Worker processes of the local cluster (default: the cores). They
        are forked from multiprocessing's fork server, started with Ctrl-C
        blocked if none runs yet in this process (other processes forked
        from it later keep Ctrl-C blocked too).
    scheduler : str, optional
        Address of a running Dask scheduler to use instead of a local cluster.
    resume : bool
        Skip the items the manifest records as done with the same settings and input.
    overwrite : bool
        Replace outputs that exist.
    chunk_seconds : float
        Cut files longer than 1.5 times this into chunks; 0 never cuts.
    replay_seconds : float
        A chunk that starts within this of its shot's start replays the shot first (and is exact).
    quiet : bool
        No progress bar.

    Raises
    ------
    BatchError
        An output exists (and neither ``overwrite`` nor ``resume`` covers it), before any work.
    SinkError
        An existing output is one of the inputs (by device and inode), a folder, or in a read-only folder.
    UsageError
        An output suffix, codec or encoder option that FFmpeg refuses, before any work.
    """
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise BatchError(f"output folder '{outdir}' is a file; give a folder (it is created if missing)")
    digest = settings_hash({**settings, "chunk_seconds": chunk_seconds, "replay_seconds": replay_seconds})
    records = read_manifest(outdir) if resume else {}
    todo, replaceable = [], set()  # outputs that may be replaced: existing ones allowed here, or all with -y
    inputs = [item.input for item in items]
    for item in items:
        output = outdir / item.name
        record = records.get(item.name)
        if output.exists():
            check_target(output, True, inputs)  # not an input (by inode), not a folder, in a writable folder
        same = (record is not None and record.get("settings") == digest
                and record.get("input") == str(item.input.resolve())
                and record.get("fingerprint") == _fingerprint(item.input))
        report = report_path(output, options.report) if options.report else None
        if same and record.get("status") == "done" and output.is_file() and (report is None or report.is_file()):
            continue
        finished = record is not None and record.get("status") == "done"  # only then are its outputs the batch's
        for made in [output] + ([report] if report else []):
            exists = os.path.lexists(made)  # a link to nothing is a file there too
            if exists and not (overwrite or finished):
                raise BatchError(f"output '{made}' exists; use -y to overwrite it, or --resume to skip finished work")
            if exists or overwrite:
                replaceable.add(made)
        todo.append(item)
    if not todo:
        if not quiet:
            print(f"nothing to do: all {len(items)} outputs are done", flush=True)
        return [], []
    _check_encoding(todo, outdir, options)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=outdir.absolute(), prefix=".livequant-batch-"))  # workers run elsewhere
    except OSError as e:
        raise write_failed("write to the folder", outdir, e) from None
    try:
        with _client(workers, scheduler) as client:
            return _Run(client, todo, outdir, work, options, digest, chunk_seconds, replay_seconds, quiet,
                        replaceable).loop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _client(workers: int | None, scheduler: str | None):
    """A Client on ``scheduler``, or on a `LocalCluster` of ``workers`` one-thread processes started here
    and shut down on exit."""
    if scheduler:
        try:
            client = Client(scheduler)
        except (OSError, ValueError) as e:  # no answer in Dask's connect timeout; an address it cannot parse
            raise BatchError(f"cannot reach the Dask scheduler at '{scheduler}': {e}; check the address and that "
                             "the scheduler runs (dask scheduler)") from None
        with client:
            yield client
        return
    with interrupts_held() as interrupted, dask.config.set({
            "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
            "distributed.worker.multiprocessing-method": "forkserver"}):
        _start_forkserver_deaf_to_interrupts()
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.CRITICAL)  # None: port 8787,
        # with a warning where another program has it
        with contextlib.ExitStack() as on_failure:
            on_failure.callback(cluster.close)
            client = on_failure.enter_context(Client(cluster))
            client.register_plugin(_IgnoreInterrupts())
            on_failure.pop_all()
    with cluster, client:
        if interrupted:
            raise KeyboardInterrupt
        yield client


def _start_forkserver_deaf_to_interrupts() -> None:
    """Start multiprocessing's fork server, from which the local workers are forked, with Ctrl-C blocked.

    A terminal's Ctrl-C reaches the workers too, and while they imported,
    before `_IgnoreInterrupts` ran, each printed a traceback. A process
    inherits the signal mask of the thread that starts it (Python's resource
    tracker starts so, bpo-33613): the server keeps Ctrl-C blocked, and so
    do the workers forked from it. Here it is blocked only while the server
    starts, and a Ctrl-C meanwhile is taken after. A server already running
    (started elsewhere in this process) is used as it is.
    """
    get_mp_context()  # the modules Dask preloads in the server
    resource_tracker.ensure_running()  # first: starting its process unblocks Ctrl-C in this thread
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


class _IgnoreInterrupts(WorkerPlugin):
    """Local workers ignore Ctrl-C (a terminal sends it to them too): the client cancels their tasks and
    stops them."""

    def setup(self, worker) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Run:
    """One batch on a client: submit, follow, record."""

    def __init__(self, client, items, outdir, work, options, digest, chunk_seconds, replay_seconds, quiet,
                 replaceable):
        self.client, self.outdir, self.work, self.replaceable = client, outdir, work, replaceable
        self.options, self.digest = options, digest
        self.files: dict[str, _File] = {}
        self.tasks = {}  # future -> (file key, what, chunk index)
        self.progress: dict[str, int] = {}
        self.failures: list[str] = []
        self.warnings: list[str] = []
        self.done = 0
        self.pending = as_completed()
        probes = {item.name: _probe(item.input) for item in items}
        total = sum(p[0] for p in probes.values() if p)
        self.bar = tqdm(total=total, unit="frame", disable=quiet, dynamic_ncols=True, smoothing=0.1,
                        mininterval=0.25 if sys.stderr.isatty() else 5.0)
        client.subscribe_topic(_TOPIC, self._on_report)
        for item in sorted(items, key=lambda i: -(probes[i.name] or (0, 0))[0]):  # longest first
            probe = probes[item.name]
            output = outdir / item.name
            output.parent.mkdir(parents=True, exist_ok=True)
            file = self.files[item.name] = _File(item, output, probe[0] if probe else 0, _fingerprint(item.input))
            if probe and chunk_seconds and probe[1] > 1.5 * chunk_seconds and output.suffix.lower() in JOINABLE:
                self._submit(item.name, "plan", None, plan_task, file.source, options, chunk_seconds, output.suffix,
                             replay_seconds, priority=probe[0])
            else:
                self._submit(item.name, "whole", None, encode_task, file.source,
                             str(self._temp(item.name, "whole", output.name)), options, item.name, str(work),
                             priority=probe[0] if probe else 0)

    def _temp(self, name: str, what: str, filename: str) -> Path:
        return self.work / hashlib.sha1(name.encode()).hexdigest()[:12] / what / filename

    def _submit(self, name, what, index, function, *args, priority: int = 0) -> None:
        future = self.client.submit(_timed, function, *args, key=f"{what}-{index}-{name}-{self.work.name}",
                                    priority=priority, pure=False, retries=0)
        self.tasks[future] = (name, what, index)
        self.pending.add(future)

    def _on_report(self, event) -> None:
        key, frames = event[1]
        self.progress[key] = frames

    def loop(self) -> tuple[list[str], list[str]]:
        try:
            while self.tasks:
                batch = self.pending.next_batch(block=False)
                if not batch:
                    self._draw()
                    time.sleep(0.2)
                    continue
                for future in batch:
                    self._finished(future)
            self._draw()
        except BaseException:
            shutil.rmtree(self.work, ignore_errors=True)  # running tasks stop (`_Reporter`)
            self.client.cancel(list(self.tasks))
            raise
        finally:
            self.bar.close()
        return self.failures, self.warnings

    def _draw(self) -> None:
        self.bar.set_postfix_str(f"files {self.done} done, {len(self.failures)} failed of {len(self.files)}",
                                 refresh=False)
        self.bar.update(sum(self.progress.values()) - self.bar.n)

    def _finished(self, future) -> None:
        name, what, index = self.tasks.pop(future)
        file = self.files[name]
        if file.failed:
            return
        if future.status == "cancelled":
            self._fail(file, Cancelled("cancelled"))
            return
        if future.status != "finished":
            self._fail(file, future.exception())
            return
        result, seconds = future.result()
        file.seconds += seconds
        if what == "plan":
            (file.chunks, file.damage), file.pieces = result, {}
            if not file.chunks:  # it has transparent pixels that its output keeps: encoded whole (`plan_task`)
                self._submit(name, "whole", None, encode_task, file.source,
                             str(self._temp(name, "whole", file.output.name)), self.options, name, str(self.work),
                             priority=file.expected)
                return
            suffix = file.output.suffix
            for i, chunk in enumerate(file.chunks):
                piece = self._temp(name, f"chunk{i:05d}", f"piece{suffix}")
                key = f"{name}#{i}"
                self._submit(name, "chunk", i, encode_task, file.source, str(piece), self.options, key,
                             str(self.work), chunk, priority=chunk.warm + chunk.count)
            return
        if what == "chunk":
            _, first, offset = result
            file.pieces[index] = (str(self._temp(name, f"chunk{index:05d}", f"piece{file.output.suffix}")), first,
                                  offset)
            if len(file.pieces) == len(file.chunks):
                pieces = [file.pieces[i] for i in range(len(file.chunks))]
                temp = self._temp(name, "join", file.output.name)
                temp.parent.mkdir(parents=True, exist_ok=True)
                self._submit(name, "join", None, join_task, [p for p, _, _ in pieces], [t for _, _, t in pieces],
                             str(temp), file.source, self.options, priority=10**9)
            return
        temp = self._temp(name, what, file.output.name)
        moves = [(temp, file.output)]
        if self.options.report:
            moves.append((report_path(temp, self.options.report), report_path(file.output, self.options.report)))
        for made, path in moves:
            try:
                move_into_place(made, path, replace=path in self.replaceable)
            except FileExistsError:  # another program wrote it after the start's check
                self._fail(file, appeared_meanwhile(path, "output" if path == file.output else "report"))
                return
        if what == "whole":
            frames, file.damage = result
        else:
            frames = result
        if file.damage:
            self.warnings.append(f"{file.item.input}: {file.damage}")
        for key in [k for k in self.progress if k == name or k.startswith(f"{name}#")]:
            del self.progress[key]
        self.progress[name] = frames
        self.done += 1
        seams = [file.pieces[i][1] for i in range(1, len(file.chunks))] if file.chunks else []
        self._record(file, "done", frames, chunks=len(file.chunks) if file.chunks else 1, seams=seams,
                     **({"warning": file.damage} if file.damage else {}))
        if file.chunks:
            shutil.rmtree(temp.parent.parent, ignore_errors=True)

    def _fail(self, file: _File, error: BaseException) -> None:
        file.failed = True
        if isinstance(error, KilledWorker):
            message = (f"a worker died each of the {ALLOWED_FAILURES + 1} times it ran this input (a crash in "
                       "the decoder, or out of memory?)")
        elif isinstance(error, LivequantError):  # named by the output, not by the work folder's copy of it
            message = re.sub(rf"{re.escape(str(self.work))}/[^/']+/[^/']+/{re.escape(file.output.name)}",
                             lambda _: str(file.output), str(error))
        else:
            message = f"{type(error).__name__}: {error}"
        self.failures.append(f"{file.item.input}: {message}")
        for future, (name, _, _) in list(self.tasks.items()):
            if name == file.item.name:
                future.cancel()
        self.bar.total = max(0, self.bar.total - file.expected)
        for key in [k for k in self.progress if k == file.item.name or k.startswith(f"{file.item.name}#")]:
            del self.progress[key]
        self._record(file, "failed", 0, error=message)

    def _record(self, file: _File, status: str, frames: int, **extra) -> None:
        record = {"input": str(file.item.input.resolve()), "settings": self.digest, "output": file.item.name,
                  "status": status, "frames": frames, "seconds": round(file.seconds, 3),
                  "fingerprint": file.fingerprint, **extra}
        with open(self.outdir / MANIFEST, "ab+") as manifest:  # appending: the position starts at the end
            if manifest.tell():
                manifest.seek(-1, os.SEEK_END)
                if manifest.read(1) != b"\n":  # a line torn by a crash: end it, or this record joins it
                    manifest.write(b"\n")
            manifest.write(json.dumps(record).encode() + b"\n")
