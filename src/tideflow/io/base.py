"""The one interface of sources and sinks: batches of records with offsets.

Every source -- a CSV or Parquet file, the local stream, a Redis stream -- hands out
:class:`Batch` es: records (``dict`` s) with the stream offsets of the first and last record
(``None`` for files, which have no offsets). A bounded source ends its ``batches()`` when the
data ends; a stream source runs until its ``stop`` event is set, or until nothing arrived for
``idle_timeout`` seconds. ``read_table()`` reads everything there is *now* into one DataFrame.

Stream sources keep a consumer position. ``batches()`` commits the previous batch when the
consumer asks for the next one (so a batch counts as handled once the loop body that got it
has finished), and on a graceful stop; ``commit()`` commits what has been handed out so far.
A consumer that crashes mid-batch sees that batch again when it restarts: at-least-once
delivery, exactly-once for jobs that stop gracefully.

Every sink takes a table (DataFrame, Arrow table or a list of records) in ``write``; stream
sinks append and answer the offset range written. Both sides keep the offset range of the
session (:meth:`Source.read_range` / :meth:`Sink.written_range`) for lineage
(:mod:`tideflow.io.lineage`).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from tideflow.domain.lineage import LineageRef
from tideflow.errors import InvalidArgumentError


@dataclass(frozen=True)
class Batch:
    """Records read together, with the offsets of the first and last (``None`` for files).

    Attributes:
        records: The records, in stream order.
        start_offset: Offset of the first record.
        end_offset: Offset of the last record.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    start_offset: int | None = None
    end_offset: int | None = None

    def __len__(self) -> int:
        return len(self.records)

    def to_frame(self) -> Any:
        """The records as a pandas DataFrame (needs the ``ml`` extra)."""
        import pandas as pd

        return pd.DataFrame.from_records(self.records)


@dataclass(frozen=True)
class OffsetRange:
    """The offsets a source read or a sink wrote in one session, for lineage.

    Attributes:
        dataset: The registered dataset's name.
        start_offset: First offset (``None`` for files).
        end_offset: Last offset (``None`` for files).
        version: The dataset version, ``None`` for the current one.
    """

    dataset: str
    start_offset: int | None = None
    end_offset: int | None = None
    version: int | None = None

    def to_lineage_ref(self) -> LineageRef:
        """The :class:`LineageRef` that records this range."""
        return LineageRef.dataset(
            self.dataset,
            self.version,
            start_offset=self.start_offset,
            end_offset=self.end_offset,
        )


@dataclass(frozen=True)
class Location:
    """Where a source or sink keeps its data, as registered for its dataset.

    Attributes:
        uri: ``file:///...`` for files and local streams, ``redis://host:port/db#key`` for Redis.
        format: ``csv``, ``parquet``, ``jsonl`` or ``redis``.
        stream: True for an unbounded stream.
    """

    uri: str
    format: str
    stream: bool


class _Ranged(ABC):
    """Tracks the first and last offset seen in a session."""

    dataset: str | None

    def __init__(self, dataset: str | None) -> None:
        self.dataset = dataset
        self._first: int | None = None
        self._last: int | None = None
        self._touched = False

    def _track(self, start: int | None, end: int | None) -> None:
        self._touched = True
        if start is not None and self._first is None:
            self._first = start
        if end is not None:
            self._last = end

    def _range(self) -> OffsetRange | None:
        if self.dataset is None or not self._touched:
            return None
        return OffsetRange(self.dataset, self._first, self._last)

    @abstractmethod
    def location(self) -> Location:
        """Where the data is (what a dataset registration records)."""


class Source(_Ranged, ABC):
    """Where records come from: a file (bounded) or a stream (unbounded)."""

    def batches(
        self,
        *,
        max_records: int = 1000,
        max_wait: float = 1.0,
        stop: threading.Event | None = None,
        idle_timeout: float | None = None,
        auto_commit: bool = True,
    ) -> Iterator[Batch]:
        """Micro-batches in order until the data ends, ``stop`` is set or the source idles.

        Args:
            max_records: A batch holds at most this many records.
            max_wait: Seconds to wait for a batch to fill before handing out what there is.
            stop: Set it (from another thread, a signal handler, a job's stop) to end the
                iteration after the current batch.
            idle_timeout: End when no record arrived for this long; ``None`` waits for ever
                (streams), ``0`` reads what is there and ends.
            auto_commit: Commit each batch when the next one is asked for, and at the end.
        """
        if max_records < 1:
            raise InvalidArgumentError("max_records must be >= 1", field="max_records")
        stop = stop or threading.Event()
        idle_since = time.monotonic()
        while not stop.is_set():
            deadline = time.monotonic() + max_wait
            records, start, end = self._poll(max_records)
            while len(records) < max_records and not self.exhausted() and not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or idle_timeout == 0:  # 0: take what is there now
                    break
                self._wait(min(remaining, self.poll_interval), stop)
                more, more_start, more_end = self._poll(max_records - len(records))
                if more:
                    start = start if records else more_start
                    records.extend(more)
                    end = more_end
            if records:
                self._track(start, end)
                yield Batch(records, start, end)
                # Resumed: the consumer asks for the next batch, so it has handled this one.
                idle_since = time.monotonic()
                if auto_commit:
                    self.commit()
            elif self.exhausted() or (
                idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout
            ):
                return

    def records(self, **options: Any) -> Iterator[dict[str, Any]]:
        """The records one by one (same options as :meth:`batches`)."""
        for batch in self.batches(**options):
            yield from batch.records

    def read_table(self) -> Any:
        """Everything readable now as one pandas DataFrame (commits it for streams)."""
        import pandas as pd

        rows = [row for batch in self.batches(idle_timeout=0, max_wait=0) for row in batch.records]
        return pd.DataFrame.from_records(rows)

    def read_range(self) -> OffsetRange | None:
        """Offsets handed out in this session (``None`` if nothing, or no dataset name)."""
        return self._range()

    #: Seconds between looks for new data while a batch fills (streams without push).
    poll_interval: float = 0.05

    def commit(self) -> None:
        """Store the position after the last record handed out (streams only)."""

    def exhausted(self) -> bool:
        """True when a bounded source has nothing more to give (streams: never)."""
        return False

    @abstractmethod
    def _poll(self, max_records: int) -> tuple[list[dict[str, Any]], int | None, int | None]:
        """Up to ``max_records`` records available now, with first and last offset."""

    def _wait(self, seconds: float, stop: threading.Event) -> None:
        """Wait for new data up to ``seconds`` (returns early when ``stop`` is set)."""
        stop.wait(seconds)

    def close(self) -> None:
        """Release the source's resources."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Sink(_Ranged, ABC):
    """Where records go: a file or a stream."""

    @abstractmethod
    def write(self, table: Any) -> OffsetRange | None:
        """Append ``table`` (DataFrame, Arrow table or records); the offsets written, if any."""

    def written_range(self) -> OffsetRange | None:
        """Offsets written in this session (``None`` if nothing, or no dataset name)."""
        return self._range()

    def close(self) -> None:
        """Flush and release the sink's resources."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def records_of(table: Any) -> list[dict[str, Any]]:
    """``table`` (DataFrame, Arrow table, records) as a list of records.

    Raises:
        InvalidArgumentError: Not one of those.
    """
    if isinstance(table, Sequence) and not isinstance(table, str | bytes):
        if all(isinstance(record, Mapping) for record in table):
            return [dict(record) for record in table]
    elif hasattr(table, "to_pylist"):  # pyarrow.Table
        rows: list[dict[str, Any]] = table.to_pylist()
        return rows
    elif hasattr(table, "to_dict"):  # pandas.DataFrame
        frame_rows: list[dict[str, Any]] = table.to_dict(orient="records")
        return frame_rows
    raise InvalidArgumentError(
        f"expected a DataFrame, an Arrow table or a list of records, got {type(table).__name__}",
        field="table",
    )
