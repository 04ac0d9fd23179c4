"""What the commands share: the files an input names, the output that goes to standard output once complete, the
quality report, one way to open an input, and the end of a command's output (signals ignored from there).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from livequant.errors import SinkError, UsageError, appeared_meanwhile, write_failed
from livequant.report import QualityReport, check_path
from livequant.sinks import NUMBERED, VIDEO_SUFFIXES, check_target, numbered_files
from livequant.sources import IMAGE_SUFFIXES, damage_note, is_animated, is_picture_sequence, is_pipe, open_video


__all__ = ["IMAGE_FORMATS", "STDOUT", "TRANSCODE_FORMATS", "Terminated", "check_gif_palette", "input_files", "is_still",
           "is_streamed", "open_input", "output_complete", "output_name", "quality_report", "read_files", "save_report",
           "standard_output", "warn_damage"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is (the sinks finish their files), then exit status 143."""
#: ``-`` as an output: standard output.
STDOUT = "-"


def input_files(spec: str) -> list[str]:
    """The files an input names (outputs must be none of them): itself (also without FFmpeg's ``file:``
    prefix), the files its glob pattern matches, or those its image-sequence pattern numbers."""
    path = spec.removeprefix("file:")
    found = [spec, path, *(glob.glob(path) if any(c in path for c in "*?[") else ())]
    numbered = numbered_files(path)
    if numbered:
        anything = "*".join(glob.escape(part) for part in NUMBERED.split(path))
        found += [name for name in glob.glob(anything) if numbered.fullmatch(os.path.abspath(name))]
    return found


def read_files(args) -> list[str]:
    """The files a command reads, which no output may replace: the input's (`input_files`) and the
    ``--palette`` file."""
    return input_files(args.input) + ([args.palette_file] if args.palette_file else [])


def quality_report(args, inputs) -> QualityReport | None:
    """A `QualityReport` when ``--report`` asks for one; its file is checked before any work (as an output:
    not one of ``inputs``, nor the output itself)."""
    if not args.report:
        return None
    try:
        path = check_path(args.report)
    except ValueError as e:
        raise UsageError(str(e)) from None
    numbered = numbered_files(args.output)
    if os.path.abspath(path) == os.path.abspath(args.output) or numbered and numbered.fullmatch(os.path.abspath(path)):
        raise UsageError(f"--report '{args.report}' is the output; give the report another name")
    check_target(path, args.overwrite, inputs)
    return QualityReport()


def save_report(report: QualityReport | None, args) -> None:
    if report is not None:
        try:
            report.save(args.report, overwrite=args.overwrite)
        except FileExistsError:
            raise appeared_meanwhile(args.report, "report") from None
        except OSError as e:
            raise write_failed("write the report", args.report, e) from e
        if not getattr(args, "quiet", False):
            print(f"wrote {args.report}: {report.summary()}", file=sys.stderr)


def open_input(path: str, fps: float | None, max_pixels: int, carry_audio: bool = False, **options):
    """``path`` as a `VideoFile`, or an `AnimatedWebP` (`open_video`; ``options``: its start, duration, alpha,
    background); pictures (numbered or a glob) play at ``fps`` (else FFmpeg's 25), a video at its own times.
    With ``carry_audio``, a URL's or standard input's sound is demuxed with the video."""
    return open_video(path, **options, fps=fps if is_picture_sequence(path) else None, max_pixels=max_pixels,
                      carry_audio=carry_audio and is_streamed(path))


def is_still(path: str) -> bool:
    """Whether ``path`` is one picture file (not numbered ones, a glob, an animation, a URL or a pipe)."""
    return (Path(path).suffix.lower() in IMAGE_SUFFIXES and not is_streamed(path)
            and not is_picture_sequence(path) and not is_animated(path))


def is_streamed(path: str) -> bool:
    """Whether ``path`` is a URL or standard input, which FFmpeg reads (a picture there too)."""
    return "://" in path or is_pipe(path)
#: What `livequant transcode` and `livequant image` write to standard output (``--to``).
TRANSCODE_FORMATS = (".gif", *VIDEO_SUFFIXES, ".webp", ".apng")  # one picture: `livequant image`
IMAGE_FORMATS = (".png", ".gif", ".jpg", ".webp", ".bmp", ".tif")


@contextlib.contextmanager
def standard_output(args, formats: tuple[str, ...]):
    """Within, ``args.output`` is the output file; for ``-``, a temporary file of --to's format (one of
    ``formats``), which goes to standard output once the command has written it: complete, as muxers go back
    to fill in what they could not know at the start (an MP4's index, a WebP's size)."""
    if args.output != STDOUT:
        if args.to is not None:
            raise UsageError(f"--to says what to write to standard output (the output -), and '{args.output}' is a "
                             "file, whose suffix says it; leave out --to")
        yield
        return
    names = " ".join(suffix.lstrip(".") for suffix in formats)
    if args.to is None:
        raise UsageError(f"the output - is standard output: add --to with what to write there ({names})")
    suffix = "." + args.to.lower().lstrip(".")
    if suffix not in formats:
        one = "; for one picture, use `livequant image`" if suffix in IMAGE_FORMATS else ""
        raise UsageError(f"--to {args.to}: standard output takes {names}{one}")
    if sys.stdout.isatty():
        raise UsageError(f"standard output is a terminal, which shows no {suffix} file; send it to a file (> "
                         f"out{suffix}) or a pipe")
    with tempfile.TemporaryDirectory(prefix="livequant-") as folder:
        args.output = os.path.join(folder, "output" + suffix)
        try:
            yield
            if os.path.exists(args.output):
                _send(args.output)
        finally:
            args.output = STDOUT


def _send(path: str) -> None:
    """Copy the file at ``path`` to standard output."""
    try:
        with open(path, "rb") as written:
            shutil.copyfileobj(written, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        nowhere = os.open(os.devnull, os.O_WRONLY)
        os.dup2(nowhere, sys.stdout.fileno())  # else Python's last flush of it fails again, with a traceback
        os.close(nowhere)
        raise SinkError("standard output was closed before all of the output went out (the program reading it "
                        "stopped)") from None


def output_name(args, name) -> str:
    """The output as messages name it: ``name``, or standard output and its format."""
    return f"standard output ({args.to.lower().lstrip('.')})" if args.to else str(name)


def check_gif_palette(args) -> None:
    """Refuse --palette with --gif-palette global, which fits its own."""
    if args.gif_palette == "global" and args.palette is not None:
        raise UsageError("--gif-palette global fits its own palette; leave out --palette")


def warn_damage(undecodable: int, damaged: int) -> None:
    if note := damage_note(undecodable, damaged):
        print(f"livequant: warning: {note}", file=sys.stderr)


def output_complete() -> None:
    """The command's output is complete: a Ctrl-C or SIGTERM from now on is ignored (`main` puts the handlers
    back). The command's objects are let go after this, and a signal raised in a finalizer or ``__del__`` is
    not raised but printed, with a traceback."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            if callable(signal.getsignal(signum)):
                signal.signal(signum, signal.SIG_IGN)
