"""The ``livequant`` command: preview, transcode, batch, image, palette and demo.

Each command parses its options, opens the source and sinks (which check the
output before any work), and hands them to `livequant.pipeline.run`. Errors a
user can fix print one line, ``livequant: error: ...``, and exit 2 (bad usage)
or 1; Ctrl-C and SIGTERM finish the output written so far and exit 130 / 143.

`main` and the demo command are here; the other commands have a module each:
`~livequant.cli.transcode` (transcode and batch), `~livequant.cli.preview`,
`~livequant.cli.pictures` (image and palette); `~livequant.cli.parser` makes
the options, and `~livequant.cli.common` holds what the commands share.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time

from numba.core.event import Listener, install_listener

from livequant.cli.common import Terminated
from livequant.cli.parser import build_parser, check_colour_options
from livequant.cli.pictures import image_command, palette_command
from livequant.cli.preview import PreviewKeys, preview_command
from livequant.cli.transcode import batch_command, transcode_command
from livequant.demo import run_demo
from livequant.errors import LivequantError, UsageError
from livequant.sources import STDIN

__all__ = ["PreviewKeys", "main"]


def demo_command(args) -> int:
    existing = next(p for p in (args.output, *args.output.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise UsageError(f"demo output '{args.output}': '{existing}' is a file, not a folder; give a folder name "
                          "with -o (it is created if missing)")
    start = time.perf_counter()
    run_demo(args.output, args.frames, overwrite=args.overwrite)
    print(f"done in {time.perf_counter() - start:.1f} s; open {args.output / 'contact-sheet.png'} first")
    return 0


def _terminate(signum, frame):
    raise Terminated()


class _Warnings(logging.Handler):
    """Shows the ``livequant`` logger's records (a reconnecting camera, a failed refit: the run goes on) as
    ``livequant: warning: ...`` lines on the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"livequant: warning: {record.getMessage()}", file=sys.stderr)


class _CompileNotice(Listener):
    """Says once, on stderr, that livequant's kernels are being compiled: on the first run on a machine
    (numba's cache empty) a transcode waited 30-60 s for its first frame, with nothing else to show."""

    def __init__(self):
        super().__init__()
        self.said = False

    def on_start(self, event) -> None:
        if not self.said and event.data["dispatcher"].py_func.__module__.startswith("livequant."):
            self.said = True
            print("livequant: note: compiling the pixel kernels for this machine: the first run only, up to a "
                  "minute (then they are cached)", file=sys.stderr, flush=True)

    def on_end(self, event) -> None:
        pass
#: Each command's function, by the name the parser gives it (``args.command``).
_COMMANDS = {"preview": preview_command, "transcode": transcode_command, "batch": batch_command,
             "image": image_command, "palette": palette_command, "demo": demo_command}


def main(argv: list[str] | None = None) -> int:
    """Run the ``livequant`` command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 success, 1 error, 2 bad usage, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
    """
    in_main_thread = threading.current_thread() is threading.main_thread()
    interrupt = signal.getsignal(signal.SIGINT) if in_main_thread else None
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    warnings = _Warnings(logging.WARNING)
    logging.getLogger("livequant").addHandler(warnings)
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as done:  # --help and --version
            return done.code or 0
        if hasattr(args, "dither"):
            check_colour_options(args)
        for name in ("input", "source"):  # `-`: standard input, as FFmpeg names it
            if getattr(args, name, None) == "-":
                setattr(args, name, STDIN)
        quiet = getattr(args, "quiet", False)
        with contextlib.nullcontext() if quiet else install_listener("numba:compile", _CompileNotice()):
            return _COMMANDS[args.command](args)
    except UsageError as e:
        print(f"livequant: error: {e}", file=sys.stderr)
        return 2
    except (LivequantError, FileNotFoundError) as e:
        print(f"livequant: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:
        print("terminated" if isinstance(stop, Terminated) else "interrupted", file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130
    finally:
        logging.getLogger("livequant").removeHandler(warnings)
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
            if interrupt is not None:  # None: not set from Python, nothing to put back
                signal.signal(signal.SIGINT, interrupt)
