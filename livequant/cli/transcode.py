"""`livequant transcode` (a video, an animation or pictures to a video or an animation, with a progress bar) and
`livequant batch` (many files, through `livequant.batch`).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from livequant.adapters import adapt, enlarge
from livequant.cli.common import (TRANSCODE_FORMATS, Terminated, check_gif_palette, is_still, open_input,
                                  output_complete, output_name, quality_report, read_files, save_report,
                                  standard_output, warn_damage)
from livequant.errors import UsageError, counted
from livequant.interrupts import interrupts_held
from livequant.options import (ANIMATIONS, carries_audio, frame_size, global_palette, make_quantizer, open_output,
                               transparency)
from livequant.palette import Palette
from livequant.pipeline import run
from livequant.report import check_path
from livequant.sinks import VIDEO_SUFFIXES, VideoWriter
from livequant.sources import is_pipe

__all__ = ["batch_command", "transcode_command"]


class _Progress:
    """``on_frame`` for `run`: frames, fps and ETA as a tqdm bar on stderr, from 0.5 s into the run (redrawn
    every 0.25 s on a terminal, else a line every 5 s)."""

    def __init__(self, total: int | None, enabled: bool = True):
        from tqdm import tqdm  # 25 ms of imports, not paid by --help and errors

        tty = sys.stderr.isatty()
        self._bar = tqdm(total=total, unit="frame", disable=not enabled, dynamic_ncols=True, smoothing=0.1,
                         mininterval=0.25 if tty else 5.0, delay=0.5 if tty else 5.0)

    def __call__(self, qframe, stats) -> None:
        self._bar.update(stats.frames - self._bar.n)

    def close(self) -> None:
        """End the bar."""
        self._bar.close()


def _expected_frames(source, args) -> int | None:
    """How many frames the output will have, if it can be told (for the ETA)."""
    if source.frame_count and not args.fps:
        return source.frame_count
    rate = args.fps or source.fps
    length = (source.frame_count / source.fps if source.frame_count and source.fps
              else getattr(source, "seconds_left", None))
    seconds = min(filter(None, (args.duration, length)), default=None)  # --duration may outlast the input
    return round(seconds * rate) if seconds and rate and math.isfinite(seconds * rate) else None


def _global_palette(args, timing: dict) -> Palette:
    """``--gif-palette global``: one palette fitted to frames sampled over the input (a first reading)."""
    with open_input(args.input, args.fps, args.max_pixels, **timing, **transparency(args)) as video:
        if video.endless and "duration" not in timing:
            raise UsageError(f"--gif-palette global reads the input through before writing, and '{args.input}' "
                             "does not say how long it lasts (a live stream?); add --duration, or leave out "
                             "--gif-palette global")
        return global_palette(args, video)


def transcode_command(args) -> int:
    with standard_output(args, TRANSCODE_FORMATS):
        return _transcode_file(args)


def _transcode_file(args) -> int:
    inputs = read_files(args)
    timing = {k: v for k, v in (("start", args.start), ("duration", args.duration)) if v is not None}
    check_gif_palette(args)
    if args.gif_palette == "global" and is_pipe(args.input):
        raise UsageError("--gif-palette global reads the input twice, and a pipe can be read once; leave out "
                         "--gif-palette global, or give a file")
    timed = [flag for flag, value in (("--duration", args.duration), ("--fps", args.fps)) if value is not None]
    if timed and is_still(args.input):
        raise UsageError(f"{' and '.join(timed)} time{'s' if len(timed) == 1 else ''} a video or an animation, and "
                         f"'{args.input}' is one picture (one frame out); leave {'it' if len(timed) == 1 else 'them'} "
                         "out, or give numbered pictures ('frames/%04d.png') to play as a video")
    report = quality_report(args, inputs)
    sink = None
    try:
        with open_input(args.input, args.fps, args.max_pixels, carries_audio(args), **timing,
                         **transparency(args)) as source:
            size, n, shown = frame_size(source.size, args)
            with open_output(args, source, inputs) as sink:
                if getattr(source, "has_audio", False) and not (args.no_audio or args.quiet or
                                                                isinstance(sink, VideoWriter)):
                    named = output_name(args, f"'{args.output}'")
                    print(f"livequant: note: {named} cannot hold sound, so the input's audio is left out (write "
                          f"{' '.join(VIDEO_SUFFIXES)} to keep it; --no-audio or -q silences this)", file=sys.stderr)
                elif getattr(source, "audio_tracks", 0) > 1 and not (args.no_audio or args.quiet):
                    print(f"livequant: note: the input has {source.audio_tracks} audio tracks and the output carries "
                          "the first (for another, pick it with ffmpeg -map first; -q silences this)", file=sys.stderr)
                if (is_pipe(args.input) and getattr(source, "codec", None) == "gif" and args.loop is None
                        and Path(args.output).suffix.lower() in ANIMATIONS and not args.quiet):
                    print("livequant: note: how often a GIF read from standard input plays cannot be read, so the "
                          "output loops forever; --loop N sets it (-q silences this)", file=sys.stderr)
                if args.gif_palette == "global":
                    args.palette = _global_palette(args, timing)
                with make_quantizer(args) as quantizer:
                    progress = _Progress(_expected_frames(source, args), enabled=not args.quiet)
                    try:
                        stats = run(adapt(source, size=size, fps=args.fps), quantizer,
                                    [enlarge(sink, n, shown)] + ([report] if report else []), on_frame=progress)
                    finally:
                        progress.close()
    except KeyboardInterrupt as stop:
        if sink is None:
            raise
        done = (f"wrote {counted(sink.frames, 'frame')} to {output_name(args, sink.written)}" if sink.finished
                else f"nothing written to {output_name(args, sink.path)}")
        if sink.finished and getattr(sink, "kept", None):
            done += f"; '{sink.kept}', which -y replaces with a whole output only, is left as it was"
        print(f"{'terminated' if isinstance(stop, Terminated) else 'interrupted'}: {done}", file=sys.stderr)
        output_complete()
        return 143 if isinstance(stop, Terminated) else 130
    warn_damage(stats.undecodable, stats.damaged)
    if not args.quiet:
        dropped = getattr(sink, "dropped", 0)
        shown = f" ({dropped} under 2/100 s apart left out: GIF players show at most 50 fps)" if dropped else ""
        print(f"wrote {counted(sink.frames, 'frame')} to {output_name(args, sink.written)}{shown} in "
              f"{stats.seconds:.1f} s ({stats.fps:.1f} fps)", file=sys.stderr)
    save_report(report, args)
    output_complete()
    return 0


def batch_command(args) -> int:
    with interrupts_held() as interrupted:  # see `interrupts_held`
        from livequant import batch  # Dask loads only for this command
    if interrupted:
        raise KeyboardInterrupt

    if args.to and f".{args.to.lstrip('.').lower()}" not in batch.OUTPUT_SUFFIXES:
        names = " ".join(sorted(suffix.lstrip(".") for suffix in batch.OUTPUT_SUFFIXES))
        raise UsageError(f"--to takes one of {names}, got {args.to!r}")
    check_gif_palette(args)
    items = batch.find_inputs(args.inputs, to=args.to, outdir=args.output)
    settings = {k: getattr(args, k) for k in ("colors", "dither", "dither_strength", "color_space", "refit_every",
                                              "stability", "scale", "width", "pixelate", "crf", "codec",
                                              "lossless", "no_audio", "quality", "loop", "gif_palette",
                                              "gif_lossy")}
    settings["palette"] = None if args.palette is None else args.palette.to_hex()
    settings["report"] = args.report
    if args.report:
        try:
            check_path(f"report.{args.report}")  # a .png report needs matplotlib
        except ValueError as e:
            raise UsageError(str(e).replace("'report.png'", "--report png")) from None
    whole = args.report or args.gif_palette == "global"  # each measured, or fitted, over the whole file
    failures, warnings = batch.run_batch(items, args.output, args, settings, workers=args.workers,
                                         scheduler=args.scheduler, resume=args.resume, overwrite=args.overwrite,
                                         chunk_seconds=0 if whole else args.chunk_seconds,
                                         replay_seconds=args.replay_seconds, quiet=args.quiet)
    for line in warnings:
        print(f"livequant: warning: {line}", file=sys.stderr)
    for line in failures:
        print(f"livequant: error: {line}", file=sys.stderr)
    if not args.quiet:
        print(f"{len(items) - len(failures)} of {len(items)} files done in {args.output}", file=sys.stderr)
    return 1 if failures else 0
