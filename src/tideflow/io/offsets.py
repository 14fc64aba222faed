"""Stored consumer positions of local streams.

A :class:`StreamPosition` says how far a consumer got: the offset of the last record it
handled (records are numbered from 1 in stream order; 0 = nothing yet), the part file that
record was in and the byte after its line (so a resumed reader seeks there directly).

:class:`FileOffsetStore` keeps one small JSON file per consumer, replaced atomically (written
to a temporary file, fsynced, renamed over the old one), so a crash leaves either the old or
the new position, never a torn one.
"""

from __future__ import annotations

import json
import os
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from tideflow.domain.names import name_problem
from tideflow.errors import InvalidArgumentError


@dataclass(frozen=True)
class StreamPosition:
    """A consumer's place in a local stream.

    Attributes:
        offset: The offset of the last record handled (0: none yet).
        part: The part that record is in (``<bucket>/<name>`` or ``<name>``), ``None`` before
            the first part.
        byte: The byte of ``part`` after that record's line.
    """

    offset: int = 0
    part: str | None = None
    byte: int = 0


class OffsetStore(ABC):
    """Where consumers' positions are kept."""

    @abstractmethod
    def load(self, consumer: str) -> StreamPosition | None:
        """The position ``consumer`` committed last, or None if never."""

    @abstractmethod
    def save(self, consumer: str, position: StreamPosition) -> None:
        """Commit ``position`` for ``consumer``."""


class FileOffsetStore(OffsetStore):
    """Positions as ``<directory>/<consumer>.json`` files, replaced atomically."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def load(self, consumer: str) -> StreamPosition | None:
        """The committed position, or None if ``consumer`` never committed."""
        path = self._path(consumer)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except ValueError as e:
            raise InvalidArgumentError(f"offset file {str(path)!r} is not valid JSON") from e
        return StreamPosition(int(data["offset"]), data.get("part"), int(data.get("byte", 0)))

    def save(self, consumer: str, position: StreamPosition) -> None:
        """Replace ``consumer``'s position atomically."""
        path = self._path(consumer)
        self.directory.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(
            {"offset": position.offset, "part": position.part, "byte": position.byte}
        )
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{consumer}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as file:
                file.write(payload)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _path(self, consumer: str) -> Path:
        problem = name_problem(consumer, "consumer name")
        if problem:
            raise InvalidArgumentError(problem, field="consumer")
        return self.directory / f"{consumer}.json"
