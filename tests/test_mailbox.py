"""The one hand-over between threads: waits when full, or keeps the newest; errors cross in both directions."""

import threading
import time

import pytest

from livequant.mailbox import END, Mailbox


def test_a_full_mailbox_makes_the_producer_wait_and_loses_nothing():
    box = Mailbox(2)
    producer = threading.Thread(target=box.fill, args=(range(50),))
    producer.start()
    time.sleep(0.05)
    assert len(box) == 2 and producer.is_alive()  # waiting for room
    assert list(box) == list(range(50)) and box.dropped == 0
    producer.join(1)
    assert not producer.is_alive()


def test_keep_newest_replaces_the_oldest_and_counts_it():
    box = Mailbox(1, keep_newest=True)
    box.fill(range(10))  # never waits
    assert box.dropped == 9 and list(box) == [9]


def test_the_producers_error_reaches_the_consumer_after_its_items():
    def items():
        yield 1
        raise ValueError("broken")

    box = Mailbox(4)
    box.fill(items())
    assert box.get() == 1
    with pytest.raises(ValueError, match="broken"):
        box.get()


def test_cancel_releases_a_waiting_producer_with_the_consumers_error():
    box = Mailbox(1)
    box.put(0)
    caught = []

    def produce():
        try:
            box.put(1)
        except RuntimeError as e:
            caught.append(e)

    producer = threading.Thread(target=produce)
    producer.start()
    box.cancel(RuntimeError("sink failed"))
    producer.join(1)
    assert [str(e) for e in caught] == ["sink failed"] and box.cancelled
    assert box.get() is END and len(box) == 0


def test_fill_stops_once_cancelled_and_closes_the_generator():
    closed = []

    def items():
        try:
            yield from range(1000)
        finally:
            closed.append(True)

    box = Mailbox(1)
    producer = threading.Thread(target=box.fill, args=(items(),))
    producer.start()
    assert box.get() == 0
    box.cancel()
    producer.join(1)
    assert not producer.is_alive() and closed == [True]


def test_get_gives_up_after_its_timeout():
    box = Mailbox(1)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="nothing arrived in 0.1 s"):
        box.get(0.1)
    assert time.monotonic() - start >= 0.1
    box.put("x")
    assert box.get(0.1) == "x"


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="capacity must be >= 1, got 0"):
        Mailbox(0)
