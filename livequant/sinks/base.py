"""What every file sink shares: the target checked before anything is written, a partial file beside it moved
into place when complete (removed on failure), the frames' times and sizes, loop counts.
"""

from __future__ import annotations

import logging
import os
import re
import weakref
from dataclasses import replace
from pathlib import Path

import av

from livequant.errors import SinkError, appeared_meanwhile, write_failed
from livequant.files import move_beside, move_into_place, partial_file
from livequant.frames import QuantizedFrame, check_fps, check_frame
from livequant.sources import SEQUENCE_NUMBER

__all__ = ["FileSink", "MAX_LOOP", "NUMBERED", "check_loop", "check_same_size", "check_target", "numbered_files",
           "optional_fps", "partial_output"]

log = logging.getLogger("livequant")
#: The most repeats an animation's loop count holds (GIF and WebP store the plays in 16 bits).
MAX_LOOP = 65534
#: A number's place in an image-sequence pattern: ``{}``, ``{:04d}``, ``%d`` or ``%04d``.
NUMBERED = re.compile(r"\{[^{}]*\}|" + SEQUENCE_NUMBER.pattern)  # Python's {} or FFmpeg's %04d


def partial_output(path: Path) -> Path:
    """`partial_file` beside ``path``, its failure a `SinkError` naming ``path``."""
    try:
        return partial_file(path)
    except OSError as e:
        raise write_failed("write", path, e) from e


def _same_file(a, b) -> bool:
    """Whether ``a`` and ``b`` are one file (device and inode: links and other spellings included)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def numbered_files(pattern: str) -> re.Pattern | None:
    """A regular expression the absolute path of every file an image-sequence ``pattern`` numbers matches
    in full (``frame-%04d.png``: ``/here/frame-0001.png`` ...); None for a plain path."""
    parts = NUMBERED.split(os.path.abspath(pattern))
    return re.compile(r"\d+".join(map(re.escape, parts))) if len(parts) > 1 else None


def check_target(path: Path, overwrite: bool, inputs=()) -> None:
    """Raise `SinkError` unless ``path`` can be written: not one of ``inputs``, in a writable folder, not a
    folder itself, and absent unless ``overwrite``."""
    for given in inputs:
        if _same_file(path, given):
            raise SinkError(f"output '{path}' is the input '{os.fspath(given)}'; give another output name")
    try:
        os.stat(path)
    except FileNotFoundError:
        pass
    except OSError as e:  # a name too long, a loop of links
        raise SinkError(f"cannot write '{path}': {e.strerror}; give another output name") from None
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise SinkError(f"cannot write '{path}': '{parent}' is a file, not a directory; write elsewhere")
    if not parent.is_dir():
        raise SinkError(f"cannot write '{path}': directory '{parent}' does not exist; create it or write elsewhere")
    if not os.access(parent, os.W_OK):
        raise SinkError(f"cannot write '{path}': directory '{parent}' is not writable; write elsewhere")
    if path.is_dir():
        raise SinkError(f"output '{path}' is a directory; give a file name, such as '{path / 'out'}{path.suffix}'")
    if os.path.lexists(path) and not overwrite:  # a link to a missing file is there too
        raise SinkError(f"output '{path}' exists; use -y to overwrite")


def check_same_size(qframe: QuantizedFrame, size: tuple[int, int], sink) -> None:
    """Raise `SinkError` unless ``qframe`` is ``size`` (H, W): a video or animation holds one frame size."""
    if qframe.indices.shape != size:
        (h, w), (height, width) = qframe.indices.shape, size
        raise SinkError(f"frame {sink.frames + 1} is {w}x{h} but '{sink.path}' holds {width}x{height} frames; "
                        "give every frame the first one's size (livequant.adapters.adapt(source, size=...))")


class FileSink:
    """Partial file, rename on success, cleanup on failure; subclasses fill in `_write`, `_finish`, `_release`.

    A frame without a time (`QuantizedFrame.time` None) is shown ``1 / fps`` after the frame before, the first
    at 0; a sink of pictures (``timed`` False) needs no times.
    """

    interactive = False
    timed = True
    fps: float | None = None
    _tmp: Path | None = None
    _late_frame = "it is shown just after that one"  # what becomes of a frame timed before the one written last

    def __init__(self, path, overwrite: bool, inputs=()):
        self.path = Path(path)
        self._inputs = tuple(inputs)
        self._overwrite = overwrite
        check_target(self.path, overwrite, self._inputs)
        self.kept: Path | None = None  # the file -y would have replaced, left as it was by an interrupt
        if not getattr(self, "_pattern", None):
            self._replacing = os.path.lexists(self.path)
            self._tmp = partial_output(self.path)
            weakref.finalize(self, self._tmp.unlink, missing_ok=True)  # a sink dropped unclosed leaves nothing
        self.frames = 0
        self.finished = False  # the output is complete and in place
        self._done = False
        self._end: float | None = None  # when the last frame stops showing (`end_at`); None: not said
        self._last_time: float | None = None  # the time the last frame written was shown at
        self._out_of_order = False  # a frame timed before the one written last came, and was warned of

    @property
    def written(self) -> str:
        """The output's name as a summary gives it."""
        return str(self.path)

    def end_at(self, time: float) -> None:
        """Show the last frame until ``time`` (seconds, on the frames' clock) instead of for as long as the
        frame interval before it (GIF and video; a picture has no duration)."""
        self._end = time

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None or (issubclass(exc_type, KeyboardInterrupt) and self.frames):
            self.close(cut_short=exc_type is not None)
        else:
            self.abort()

    def write(self, qframe: QuantizedFrame) -> None:
        """Append one quantized frame."""
        if not isinstance(qframe, QuantizedFrame):
            raise TypeError(f"write takes a QuantizedFrame (from Quantizer.process), got {type(qframe).__name__}")
        if self._done:
            raise SinkError(f"'{self.path}' is {'finished' if self.finished else 'closed'}; open a new writer "
                            "to write more")
        check_frame(qframe.rgb, "qframe.rgb")
        if qframe.time is None and self.timed:
            qframe = replace(qframe, time=self._untimed_frame_time())
        elif self.timed and self._last_time is not None and qframe.time < self._last_time and not self._out_of_order:
            self._out_of_order = True
            log.warning(f"'{self.path}': a frame timed {qframe.time:.3f} s came after one timed {self._last_time:.3f} "
                        f"s; {self._late_frame} (said once a file)")
        try:
            self._write(qframe)
        except SinkError:
            raise
        except (av.error.FFmpegError, OSError) as e:
            raise write_failed("write", self.path, e) from e
        self.frames += 1
        self._last_time = qframe.time

    def _untimed_frame_time(self) -> float:
        """When a frame without a time shows: at 0 if it is the first, else ``1 / fps`` after the frame before."""
        if self._last_time is None:
            return 0.0
        if self.fps is None:
            raise SinkError(f"frame {self.frames + 1} has no time and '{self.path}' no frame rate to place it by; "
                            "pass each frame's time (Quantizer.process(frame, time)) or the writer's fps=")
        return self._last_time + 1 / self.fps

    def close(self, cut_short: bool = False) -> None:
        """Finish the output and move it into place; raises `SinkError` if no frame was written.

        Output ``cut_short`` (by an interrupt) never replaces a file: where one was there (-y), it stays and
        the output goes beside it (`livequant.files.move_beside`), named in ``path`` (the file kept in
        ``kept``). If finishing fails or is interrupted (a second Ctrl-C), the partial file is removed.
        """
        if self._done:
            return
        if not self.frames:
            self.abort()
            raise SinkError(f"nothing was written to '{self.path}': no frames arrived")
        try:
            self._finish()
            if self._tmp is not None and cut_short and self._replacing:
                self.kept, self.path = self.path, move_beside(self._tmp, self.path, "interrupted")
            elif self._tmp is not None:
                move_into_place(self._tmp, self.path, replace=self._overwrite)
        except BaseException as e:
            self.abort()
            if isinstance(e, FileExistsError):
                raise appeared_meanwhile(self.path) from None
            if isinstance(e, (av.error.FFmpegError, OSError)) and not isinstance(e, SinkError):
                raise write_failed("finish", self.path, e) from e
            raise
        self._done = self.finished = True

    def abort(self) -> None:
        """Stop writing and remove the partial output."""
        if self._done:
            return
        self._done = True
        self._release()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)

    def _release(self) -> None:
        """Free resources without finishing the output."""


def optional_fps(fps: float | None) -> float | None:
    """``fps`` once `check_fps` has passed it, or None."""
    if fps is not None:
        check_fps(fps)
    return fps


def check_loop(loop) -> None:
    if not isinstance(loop, int) or isinstance(loop, bool) or not -1 <= loop <= MAX_LOOP:
        raise ValueError(f"loop must be an int in -1..{MAX_LOOP} (0 loops forever, -1 plays once), got {loop!r}")
