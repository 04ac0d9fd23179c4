"""Exceptions raised by livequant.

Every error a user can cause is a `LivequantError`; its message names the
value or file, the cause, and what to do next. The CLI prints it on one line.
"""

__all__ = ["LivequantError", "SinkError", "SourceError"]


class LivequantError(Exception):
    """Base class of the errors livequant raises for bad input or devices."""


class SourceError(LivequantError, OSError):
    """A camera, file or stream cannot be opened or read."""


class SinkError(LivequantError, OSError):
    """A window, encoder or output file cannot be opened or written."""
