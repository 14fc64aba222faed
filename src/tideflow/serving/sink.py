"""Where the predictor writes every prediction: a pluggable :class:`PredictionSink`.

Each prediction is one record ``{request_id, model, version, offset, features, score, time}``
(``time`` in ISO 8601 UTC), so labels arriving later can be joined to it by ``request_id``.
``tideflow serve`` writes to a local stream (:class:`tideflow.io.local_stream.LocalStreamWriter`,
which is a sink as it is: part files with offsets, readable by ``LocalStreamReader``), or to a
:class:`JsonLinesSink` file when the path ends in ``.jsonl``; anything with ``write(records)``
and ``close()`` will do.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)


class PredictionSink(Protocol):
    """Receives the predictions of each batch, in serving order."""

    def write(self, records: Sequence[Mapping[str, Any]]) -> object:
        """Append ``records`` (durably enough for the sink's purpose); the result is ignored."""

    def close(self) -> None:
        """Flush and release."""


class JsonLinesSink:
    """Appends predictions to a JSON Lines file, flushed after every batch.

    Args:
        path: The file (its directory is created).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Append one line per record and flush."""
        text = "".join(json.dumps(r, separators=(",", ":"), default=str) + "\n" for r in records)
        with self._lock:
            self._file.write(text)
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._file.close()


class MemorySink:
    """Keeps predictions in a list (tests, notebooks)."""

    def __init__(self) -> None:
        self.records: list[Mapping[str, Any]] = []
        self._lock = threading.Lock()

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Append ``records``."""
        with self._lock:
            self.records.extend(records)

    def close(self) -> None:
        """Nothing to release."""


class BackgroundSink:
    """Writes to ``sink`` from its own thread, so a slow disk never holds an answer.

    A local stream fsyncs each part it closes; on a busy disk one fsync can take seconds, and
    writing from the scoring thread made every request wait for it (seen as a 10 s stall of
    the quickstart's predictor while a retrained job started). Batches are handed over in
    order and written in order. Up to ``max_records`` wait; beyond that, :meth:`write` blocks
    (back-pressure) rather than drop predictions that monitors join labels to.

    Args:
        sink: The sink written to.
        max_records: Records that may wait before writers block.
    """

    def __init__(self, sink: PredictionSink, *, max_records: int = 200_000) -> None:
        self.sink = sink
        self.max_records = max(1, max_records)
        self._pending: deque[Sequence[Mapping[str, Any]]] = deque()
        self._waiting = 0
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._drain, name="prediction-sink", daemon=True)
        self._thread.start()

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Queue ``records`` for writing (blocks only while ``max_records`` already wait)."""
        if not records:
            return
        with self._changed:
            while self._waiting >= self.max_records and not self._closed:
                self._changed.wait()
            if self._closed:
                raise RuntimeError("the prediction sink is closed")
            self._pending.append(records)
            self._waiting += len(records)
            self._changed.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued record is written; whether that happened in ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: self._waiting == 0, timeout)

    def close(self) -> None:
        """Write what is queued, then close the sink."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join()
        self.sink.close()

    def _drain(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return  # closed and empty
                batches = list(self._pending)
                self._pending.clear()
            for records in batches:
                try:
                    self.sink.write(records)
                except Exception:  # one failed write must not stop the next ones
                    log.exception("writing %d predictions failed", len(records))
            with self._changed:
                self._waiting -= sum(len(r) for r in batches)
                self._changed.notify_all()
