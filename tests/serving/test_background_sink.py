"""The predictor's sink is written from its own thread: a stalled disk holds no answer."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tideflow.serving.sink import BackgroundSink, MemorySink


class GatedSink(MemorySink):
    """A sink whose writes wait until the gate opens (a disk stuck in fsync)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.closed = False

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        super().write(records)

    def close(self) -> None:
        self.closed = True


def test_writes_return_while_the_sink_is_stuck_and_land_in_order() -> None:
    inner = GatedSink()
    sink = BackgroundSink(inner)
    sink.write([{"n": 0}])
    assert inner.entered.wait(10)
    for n in range(1, 50):  # the first write is stuck; these must not wait for it
        sink.write([{"n": n}])
    assert inner.records == []
    inner.gate.set()
    assert sink.flush(timeout=30)
    assert [r["n"] for r in inner.records] == list(range(50))
    sink.close()
    assert inner.closed


def test_close_writes_what_is_queued_first() -> None:
    inner = GatedSink()
    sink = BackgroundSink(inner)
    sink.write([{"n": 1}, {"n": 2}])
    assert inner.entered.wait(10)
    sink.write([{"n": 3}])
    closer = threading.Thread(target=sink.close)
    closer.start()
    inner.gate.set()
    closer.join(30)
    assert not closer.is_alive()
    assert [r["n"] for r in inner.records] == [1, 2, 3]
    assert inner.closed
    with pytest.raises(RuntimeError, match="closed"):
        sink.write([{"n": 4}])


def test_a_full_queue_blocks_the_writer_instead_of_dropping() -> None:
    inner = GatedSink()
    sink = BackgroundSink(inner, max_records=3)
    sink.write([{"n": 0}])
    assert inner.entered.wait(10)  # taken by the writer thread: the queue counts it still
    sink.write([{"n": 1}, {"n": 2}])
    blocked = threading.Thread(target=sink.write, args=([{"n": 3}],))
    blocked.start()
    blocked.join(0.2)  # bounded look: it must still be waiting
    assert blocked.is_alive()
    inner.gate.set()
    blocked.join(30)
    assert not blocked.is_alive()
    sink.close()
    assert [r["n"] for r in inner.records] == [0, 1, 2, 3]


def test_a_failing_write_does_not_stop_the_next_ones() -> None:
    class Flaky(MemorySink):
        def write(self, records: Sequence[Mapping[str, Any]]) -> None:
            if records[0]["n"] == 1:
                raise OSError("disk full")
            super().write(records)

    inner = Flaky()
    sink = BackgroundSink(inner)
    for n in range(3):
        sink.write([{"n": n}])
    sink.close()
    assert [r["n"] for r in inner.records] == [0, 2]
