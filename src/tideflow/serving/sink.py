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
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol


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
