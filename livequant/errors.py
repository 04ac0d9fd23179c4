"""Exceptions raised by livequant, and the wording its messages and summaries share.

Every error a user can cause is a `LivequantError`; its message names the
value or file, the cause, and what to do next. The CLI prints it on one line.
"""

import errno

__all__ = ["LivequantError", "SinkError", "SourceError", "UsageError", "appeared_meanwhile", "counted",
           "write_failed", "write_hint"]


class LivequantError(Exception):
    """Base class of the errors livequant raises for bad input or devices."""


class UsageError(LivequantError):
    """An option or value given on the command line cannot be used; the CLI exits with status 2."""


class SourceError(LivequantError, OSError):
    """A camera, file or stream cannot be opened or read."""


class SinkError(LivequantError, OSError):
    """A window, encoder or output file cannot be opened or written."""


def write_hint(error: BaseException) -> str:
    """What to do about an OS (or FFmpeg) error writing a file, going by its errno."""
    code = getattr(error, "errno", None)
    if code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return "free some space (or lift the file size limit), or write to another disk"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "write to a folder you have permission to write to"
    if code == errno.ENOTDIR:
        return "a part of the path is a file, not a folder: write elsewhere"
    if code is not None and code not in errno.errorcode:  # FFmpeg's own codes: its encoder or muxer refused
        return "FFmpeg's encoder refused the frames: try another output format or --codec"
    return "check the disk and the folder"


def write_failed(action: str, path, error: BaseException) -> SinkError:
    """A `SinkError` for an OS (or FFmpeg) error on ``action`` of ``path`` ("write", "create the folder"),
    with what to do about it."""
    return SinkError(f"cannot {action} '{path}': {getattr(error, 'strerror', None) or error}; {write_hint(error)}")


def appeared_meanwhile(path, what: str = "output") -> SinkError:
    """A `SinkError` for an output (``what``: "output", "report") another program wrote while this one was
    being written: it is kept."""
    return SinkError(f"{what} '{path}' appeared while this was being written (another program made it) and is "
                     "kept; write another name, or use -y to overwrite")


def counted(n: int, thing: str) -> str:
    """``n`` things, in words: "1 colour", "2 colours"."""
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"
