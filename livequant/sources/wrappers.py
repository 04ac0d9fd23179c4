"""Sources around another: `Looping` plays a file again when it ends, `Reconnecting` reopens a live source that
fails.
"""

from __future__ import annotations

import logging
import time

from livequant.errors import SourceError
from livequant.sources.base import BaseSource

__all__ = ["Looping", "Reconnecting"]

log = logging.getLogger("livequant")


class Looping(BaseSource):
    """A file played again from its start when it ends, as an animation loops.

    Each play is a new source from ``opener()``. Times never go back: each
    play's frames follow on from when the play before ended (its `end_time`,
    else its last frame's time plus one frame at its rate).

    Parameters
    ----------
    opener : callable
        Returns an open source that ends, such as ``lambda: VideoFile("anim.gif")``; called once here.
    loop : int
        As the sinks' ``loop`` (and an animation's own count, `loop_count`): 0 plays until the stream is closed,
        n > 0 repeats n times (n + 1 plays), -1 plays once.
    """

    def __init__(self, opener, loop: int = 0):
        if isinstance(loop, bool) or not isinstance(loop, int) or loop < -1:
            raise ValueError(f"loop must be 0 (forever), a number of repeats, or -1 (once), got {loop!r}")
        self._opener, self._loop = opener, loop
        self._source = opener()
        self.path, self.size, self.fps = self._source.path, self._source.size, self._source.fps
        self.has_alpha = getattr(self._source, "has_alpha", False)
        self.end_time = None
        self._undecodable = self._damaged = 0
        self._closed = False

    @property
    def undecodable(self) -> int:
        """Frames that could not be decoded, over all plays."""
        return self._undecodable + getattr(self._source, "undecodable", 0)

    @property
    def damaged(self) -> int:
        """Frames the decoder patched over errors, over all plays."""
        return self._damaged + getattr(self._source, "damaged", 0)

    def __iter__(self):
        shift, plays = 0.0, 0
        total = {-1: 1, 0: None}.get(self._loop, self._loop + 1)  # None: until closed
        while True:
            first = last = None
            for frame, t, *opaque in self._source:  # (frame, time) or, keeping transparency, (frame, time, opaque)
                first = t if first is None else first
                last = t
                yield frame, shift + t - first, *opaque
            plays += 1
            if self._closed:
                return
            ended = getattr(self._source, "end_time", None)
            if first is None or plays == total:  # a play of no frames would loop for nothing
                self.end_time = None if ended is None or first is None else shift + ended - first
                return
            if ended is None or ended <= last:
                ended = last + 1 / (self.fps or 25.0)
            shift += ended - first
            self._undecodable += getattr(self._source, "undecodable", 0)
            self._damaged += getattr(self._source, "damaged", 0)
            self._source.close()
            self._source = self._opener()

    def close(self) -> None:
        """Close the play in progress; no other starts."""
        self._closed = True
        self._source.close()


class Reconnecting(BaseSource):
    """A live source reopened when it fails, rather than ending the stream.

    When the source raises `SourceError` (a camera unplugged, a stream cut),
    it is closed and ``opener()`` is tried again every ``interval`` seconds, up
    to ``attempts`` times; each try is logged (logger ``"livequant"``, shown on
    stderr). Meanwhile the last frame is repeated, so a preview window stays
    responsive. Times never go back: from the last frame's time they advance
    with the wall clock while the source is away, and the reopened source's
    times follow on. A source that ends without an error ends the stream.

    Parameters
    ----------
    opener : callable
        Returns an open source, such as ``lambda: Webcam(0)``; called once here.
    attempts : int
        Tries after each failure before giving up (then `SourceError`).
    interval : float
        Seconds between tries.
    """

    live = True

    def __init__(self, opener, *, attempts: int = 30, interval: float = 1.0):
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"attempts must be a positive integer, got {attempts!r}")
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self._opener, self._attempts, self._interval = opener, attempts, interval
        self._source = opener()
        self.path, self.size, self.fps = self._source.path, self._source.size, self._source.fps
        self.reconnects = 0
        self._dropped = 0

    @property
    def dropped(self) -> int:
        """Frames the cameras replaced before they were read, over all connections."""
        return self._dropped + getattr(self._source, "dropped", 0)

    def __iter__(self):
        offset, last, last_time = 0.0, None, 0.0
        while self._source is not None:
            try:
                for frame, t in self._source:
                    last, last_time = frame, offset + t
                    yield frame, last_time
                return
            except SourceError as error:
                lost = error
            lost_at = time.monotonic()
            self._dropped += getattr(self._source, "dropped", 0)
            self._source.close()
            self._source = None
            for attempt in range(1, self._attempts + 1):
                log.warning("%s; reconnecting (try %d of %d)", lost, attempt, self._attempts)
                wake = time.monotonic() + self._interval
                while (now := time.monotonic()) < wake:
                    if last is not None:
                        yield last, last_time + (now - lost_at)
                    time.sleep(min(0.1, max(0.0, wake - now)))
                try:
                    self._source = self._opener()
                except SourceError as error:
                    lost = error
                    continue
                self.reconnects += 1
                log.warning("reconnected (try %d of %d)", attempt, self._attempts)
                offset = last_time + (time.monotonic() - lost_at)
                break
            else:
                raise SourceError(f"{lost}; gave up after {self._attempts} tries to reconnect")

    def close(self) -> None:
        """Close the source in use."""
        if self._source is not None:
            self._source.close()
