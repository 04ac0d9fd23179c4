"""A bounded hand-over of items between two threads: the one queue class of the package.

The producer `Mailbox.put`s items and finally `Mailbox.close`s it, with the
error it failed with, if any. The consumer iterates it (or calls
`Mailbox.get`) until it ends, and raises the producer's error there; a
consumer that stops early, or fails, `Mailbox.cancel`s it, which releases a
producer waiting for room (and hands it the consumer's error).

A full mailbox makes the producer wait: a file is read no faster than it is
quantized and nothing is lost. With ``keep_newest`` it drops its oldest item
instead and counts it: a camera's stale frames are replaced by newer ones.
"""

from __future__ import annotations

import collections
import threading

__all__ = ["END", "Mailbox"]

#: What `Mailbox.get` returns once the producer has closed the mailbox and it is empty.
END = object()


class Mailbox:
    """A bounded queue between one producer thread and one consumer thread.

    Parameters
    ----------
    capacity : int
        Most items held.
    keep_newest : bool
        When full, drop the oldest item (counted in `dropped`) instead of
        making the producer wait.
    """

    def __init__(self, capacity: int, *, keep_newest: bool = False):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.keep_newest = keep_newest
        self.dropped = 0
        self.error: BaseException | None = None  # the producer's (on close) or the consumer's (on cancel)
        self._items: collections.deque = collections.deque()
        self._closed = False
        self._cancelled = False
        self._cond = threading.Condition()

    def put(self, item) -> bool:
        """Hand over ``item``, waiting for room unless ``keep_newest``.

        Returns
        -------
        bool
            False once the consumer has cancelled: stop producing.

        Raises
        ------
        BaseException
            The error the consumer cancelled with, if any.
        """
        with self._cond:
            if self.keep_newest and len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
            self._cond.wait_for(lambda: len(self._items) < self.capacity or self._cancelled)
            if self._cancelled:
                if self.error is not None:
                    raise self.error
                return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self):
        """The next item, waiting for one; `END` once closed and empty.

        Raises
        ------
        BaseException
            The error the producer closed the mailbox with, once its items are taken.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed or self._cancelled)
            if self._items and not self._cancelled:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            if self._closed and self.error is not None and not self._cancelled:
                raise self.error
            return END

    def __iter__(self):
        while (item := self.get()) is not END:
            yield item

    def close(self, error: BaseException | None = None) -> None:
        """The producer is done (or failed with ``error``); the consumer takes what is left."""
        with self._cond:
            self._closed = True
            if error is not None and self.error is None:
                self.error = error
            self._cond.notify_all()

    def cancel(self, error: BaseException | None = None) -> None:
        """The consumer stops (or failed with ``error``): items are discarded and the producer released."""
        with self._cond:
            self._cancelled = True
            self._items.clear()
            if error is not None and self.error is None:
                self.error = error
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
