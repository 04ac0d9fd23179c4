"""What the Dask workers run: a file or a chunk transcoded (`encode_task`), a file planned into chunks
(`plan_task`), the encoded chunks joined without re-encoding (`join_task`), each reporting its progress.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import os
import shutil
import time
from itertools import islice
from pathlib import Path

import av
from distributed import get_worker

from livequant.adapters import adapt, enlarge
from livequant.batch.chunks import REPLAY_SECONDS, SEAM_WINDOW_SECONDS, WARM_SECONDS, Chunk, plan_chunks, quietest_seam
from livequant.errors import LivequantError
from livequant.gif import split_file_parts
from livequant.options import animation_loop, frame_size, global_palette, make_quantizer, open_output, transparency
from livequant.pipeline import end_at, run
from livequant.report import QualityReport
from livequant.sinks import AudioTrack, GifWriter, OneBehind, muxer_options
from livequant.sources import VideoFile, damage_note, open_video
from livequant.track import scene_cuts

__all__ = ["Cancelled", "PROGRESS_TOPIC", "REPORT_EVERY", "encode_task", "join_task", "options_for_task", "plan_task",
           "report_path", "timed_call"]

#: Seconds between two progress reports of a task.
REPORT_EVERY = 0.5
PROGRESS_TOPIC = "livequant-progress"


class Cancelled(Exception):
    """Raised in a task when the batch was interrupted; its partial output is removed."""


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
        self._worker.log_event(PROGRESS_TOPIC, (self._key, stats.frames))
        if not os.path.isdir(self._work):
            raise Cancelled()


def options_for_task(options: argparse.Namespace, source_path, output, *, audio: bool) -> argparse.Namespace:
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
    task_options = options_for_task(options, source_path, output, audio=chunk is None)
    kept = transparency(task_options)
    if chunk is not None:  # files whose transparency is kept are not cut into chunks (`livequant.batch.client`)
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
    task_options = options_for_task(options, source_path, Path("out").with_suffix(suffix), audio=False)
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
    plays = {"loop": str(animation_loop(options_for_task(options, source_path, output, audio=False)))} if gif else {}
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


def timed_call(function, *args):
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
