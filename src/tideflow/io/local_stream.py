"""The local stream: a directory of append-only JSON Lines part files (the embedded default).

Layout -- the one a Flink ``FileSink`` produces with ``OutputFileConfig`` suffix ``.jsonl`` and
the base-path bucket assigner, so a Flink job can write a stream that Tideflow reads and back
(Flink's filesystem *table* sink with ``'format' = 'json'`` names its parts
``part-<uuid>-<subtask>-<n>``, read the same way; docs/engines.md)::

    <dir>/
      part-<uuid>-0.jsonl                        closed: complete, never changes again
      part-<uuid>-1.jsonl
      .part-<uuid>-2.jsonl.inprogress.<uuid2>    being written (hidden); renamed when closed
      _writer.lock                               held (flock) by the one live writer
      _offsets/<consumer>.json                   each consumer's committed position
      <bucket>/part-...                          bucket subdirectories (e.g. Flink's date-time
                                                 buckets) are read too, in name order

One record per line, a JSON object. Names starting with ``.`` or ``_`` are hidden from Flink
and Hadoop readers, so the bookkeeping files never look like data.

**Order.** Parts are read in order of (bucket, counter ``<n>``, uuid), each from its first line
to its last. A writer continues the counter of the parts already there (a restarted writer gets
a new uuid but the next counter), so the order is the order of writing. (A Flink sink writing
with parallelism > 1 interleaves several counters; give it parallelism 1 or read each bucket as
its own stream.)

**Offsets.** A record's offset is its 1-based position in that order: the first record ever
written is offset 1, and a consumer's committed offset ``N`` means "records 1..N are handled",
like ``after_offset`` on the event log. The stored position also keeps the part and the byte
after the last handled line, so resuming seeks straight there instead of rescanning.

**Where offsets live.** In ``<dir>/_offsets/<consumer>.json`` (written atomically: temp file +
rename), not in the event log's consumer offsets: those are positions *in the event log* (the
store refuses an offset beyond its end, and compaction keeps every event a consumer has not
passed), so a stream's record counts cannot be stored there. A consumer name is the workflow, the
job and the dataset (:func:`consumer_name`), so a restarted job finds its position again.

**Tailing.** Readers also read the complete lines of the part in progress (an incomplete last
line waits for its newline), and follow the part when the writer renames it. A writer that
crashed leaves its part in progress; the next writer truncates a torn last line and closes it.
Pass ``read_in_progress=False`` to read only closed parts (a Flink sink may roll back its
in-progress part on recovery; its closed parts are final).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

from tideflow.errors import FailedPreconditionError, InvalidArgumentError
from tideflow.io.base import Location, OffsetRange, Sink, Source, records_of
from tideflow.io.offsets import FileOffsetStore, OffsetStore, StreamPosition

logger = logging.getLogger(__name__)

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# ``part-<uuid>-<n><suffix>`` (this writer, Flink's DataStream FileSink) or
# ``part-<uuid>-<subtask>-<n>`` (Flink's filesystem table sink: the subtask joins the uid).
_CLOSED = re.compile(rf"^part-(?P<uid>{_UUID}(?:-\d+)?)-(?P<n>\d+)(?P<suffix>.*)$")
_IN_PROGRESS = re.compile(r"^\.(?P<base>part-.+)\.inprogress\.[0-9a-fA-F-]+$")
_CHUNK = 1 << 16


@dataclass(frozen=True)
class PartFile:
    """One part file of a local stream.

    Attributes:
        bucket: Its bucket subdirectory ("" for the stream directory itself).
        base: Its closed file name (``part-<uuid>-<n><suffix>``).
        counter: ``<n>``.
        uid: ``<uuid>``.
        path: Where it is now (the in-progress name while it is written).
        closed: True once renamed to its final name.
    """

    bucket: str
    base: str
    counter: int
    uid: str
    path: Path
    closed: bool

    @property
    def name(self) -> str:
        """``<bucket>/<base>``, or ``<base>`` in the stream directory itself."""
        return f"{self.bucket}/{self.base}" if self.bucket else self.base

    @property
    def key(self) -> tuple[str, int, str]:
        """Its place in stream order."""
        return (self.bucket, self.counter, self.uid)


def part_key(name: str) -> tuple[str, int, str] | None:
    """The order key of a part's ``name`` (as in :attr:`PartFile.name`), or None if not a part."""
    bucket, _, base = name.rpartition("/")
    match = _CLOSED.match(base)
    return (bucket, int(match["n"]), match["uid"]) if match else None


def list_parts(directory: str | os.PathLike[str], *, in_progress: bool = True) -> list[PartFile]:
    """The stream's part files in stream order (the part in progress last, if asked for)."""
    root = Path(directory)
    if not root.is_dir():
        return []
    found: dict[str, PartFile] = {}
    buckets = [
        ("", root),
        *sorted(
            (entry.name, Path(entry.path))
            for entry in os.scandir(root)
            if entry.is_dir() and not entry.name.startswith((".", "_"))
        ),
    ]
    for bucket, path in buckets:
        for entry in os.scandir(path):
            closed = _CLOSED.match(entry.name)
            progress = None if closed else _IN_PROGRESS.match(entry.name)
            base = entry.name if closed else (progress["base"] if progress else None)
            if base is None or (progress and not in_progress):
                continue
            match = _CLOSED.match(base)
            if match is None:
                continue
            part = PartFile(
                bucket, base, int(match["n"]), match["uid"], Path(entry.path), bool(closed)
            )
            # A closed part wins over a stale listing of its in-progress name.
            if part.name not in found or part.closed:
                found[part.name] = part
    return sorted(found.values(), key=lambda part: part.key)


def consumer_name(dataset: str, job: str, *, workflow: str | None = None) -> str:
    """The consumer name of a job reading ``dataset``: ``[<workflow>-]<job>-<dataset>``.

    Every execution of the job shares it, so a restarted job resumes where the last one
    stopped. (Names keep to the portable alphabet of :mod:`tideflow.domain.names`.)
    """
    return "-".join(part for part in (workflow, job, dataset) if part)


class LocalStreamReader(Source):
    """Reads a local stream in order, from a consumer's committed position, following the writer.

    Args:
        directory: The stream directory.
        consumer: Whose position to resume from and commit to; ``None`` reads from the start
            and stores nothing.
        dataset: The registered dataset's name (for lineage).
        offsets: Where positions are stored; by default ``<directory>/_offsets``.
        read_in_progress: Also read the complete lines of the part being written.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        consumer: str | None = None,
        dataset: str | None = None,
        offsets: OffsetStore | None = None,
        read_in_progress: bool = True,
    ) -> None:
        super().__init__(dataset)
        self.directory = Path(directory)
        self.consumer = consumer
        self.read_in_progress = read_in_progress
        self._offsets = offsets or FileOffsetStore(self.directory / "_offsets")
        stored = self._offsets.load(consumer) if consumer else None
        self._committed = stored or StreamPosition()
        self._position = self._committed
        self._parts: list[PartFile] = []

    def location(self) -> Location:
        """The stream directory's URI; JSON Lines; a stream."""
        return Location(self.directory.resolve().as_uri(), "jsonl", True)

    @property
    def position(self) -> StreamPosition:
        """The position after the last record handed out."""
        return self._position

    @property
    def committed(self) -> StreamPosition:
        """The position last committed."""
        return self._committed

    def commit(self) -> None:
        """Store the position after the last record handed out (if there is a consumer)."""
        if self.consumer is not None and self._position != self._committed:
            self._offsets.save(self.consumer, self._position)
            self._committed = self._position

    def _poll(self, max_records: int) -> tuple[list[dict[str, Any]], int | None, int | None]:
        records: list[dict[str, Any]] = []
        first = self._position.offset + 1
        self._parts = self._list()
        retried = False
        while len(records) < max_records:
            part = self._current_part()
            if part is None:
                break
            try:
                lines, byte = _read_lines(
                    part.path, self._position.byte, max_records - len(records), part.closed
                )
            except FileNotFoundError:
                # Renamed (closed) since the listing: look again, once per poll.
                if retried:
                    break
                retried = True
                self._parts = self._list()
                continue
            records.extend(_decode(line, part) for line in lines)
            self._position = StreamPosition(self._position.offset + len(lines), part.name, byte)
            if len(records) >= max_records or not part.closed:
                break  # full, or caught up with the writer
            following = self._first_after(part.key)
            if following is None:
                break
            self._position = StreamPosition(self._position.offset, following.name, 0)
        if not records:
            return [], None, None
        return records, first, first + len(records) - 1

    def _list(self) -> list[PartFile]:
        return list_parts(self.directory, in_progress=self.read_in_progress)

    def _first_after(self, key: tuple[str, int, str] | None) -> PartFile | None:
        """The first part after ``key``, from a listing taken after one that showed a part.

        A directory scan may miss an entry renamed while it runs; the next part is only
        created after the previous one was closed, so a second scan, started after the first
        one showed that a later part exists, sees every part before it.
        """
        if not any(key is None or part.key > key for part in self._parts):
            return None
        self._parts = self._list()
        return next((p for p in self._parts if key is None or p.key > key), None)

    def _current_part(self) -> PartFile | None:
        name = self._position.part
        if name is None:
            return self._first_after(None)
        for part in self._parts:
            if part.name == name:
                return part
        # Not in this listing: renamed under the scan, or really gone.
        bucket, _, base = name.rpartition("/")
        key = part_key(name)
        folder = self.directory / bucket if bucket else self.directory
        if (folder / base).is_file() and key is not None:
            return PartFile(bucket, base, key[1], key[2], folder / base, True)
        if self.read_in_progress:
            for path in folder.glob(f".{glob_escape(base)}.inprogress.*"):
                if key is not None:
                    return PartFile(bucket, base, key[1], key[2], path, False)
        following = self._first_after(key)
        if following is not None:
            # Removed (by retention, by hand): go on with the next part that exists.
            logger.warning(
                "local stream %s: part %s is gone; continuing with %s",
                self.directory,
                name,
                following.name,
            )
            self._position = StreamPosition(self._position.offset, following.name, 0)
        return following


class LocalStreamWriter(Sink):
    """Appends records to a local stream: one writer at a time, parts rolled by size or age.

    Args:
        directory: The stream directory (created).
        dataset: The registered dataset's name (for lineage).
        roll_records: Close the part after this many records.
        roll_bytes: ... or after this many bytes.
        roll_interval: ... or when a write comes this many seconds after the part was opened.
        suffix: The part file suffix.
        fsync: fsync each write (survives a machine crash, slower); parts are always fsynced
            when closed.

    Raises:
        FailedPreconditionError: Another live writer holds the stream.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        dataset: str | None = None,
        roll_records: int = 10_000,
        roll_bytes: int = 64 << 20,
        roll_interval: float | None = 60.0,
        suffix: str = ".jsonl",
        fsync: bool = False,
    ) -> None:
        super().__init__(dataset)
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.roll_records = roll_records
        self.roll_bytes = roll_bytes
        self.roll_interval = roll_interval
        self.suffix = suffix
        self.fsync = fsync
        self._lock_file = _lock(self.directory / "_writer.lock")
        self._mutex = threading.Lock()
        self._recover()
        parts = list_parts(self.directory, in_progress=False)
        self._offset = sum(_count_lines(part.path) for part in parts)
        self._counter = max((p.counter for p in parts if not p.bucket), default=-1) + 1
        self._uid = str(uuid.uuid4())
        self._file: Any = None
        self._part_records = 0
        self._part_bytes = 0
        self._opened = 0.0

    def location(self) -> Location:
        """The stream directory's URI; JSON Lines; a stream."""
        return Location(self.directory.resolve().as_uri(), "jsonl", True)

    @property
    def offset(self) -> int:
        """The offset of the last record written (0 for an empty stream)."""
        return self._offset

    def write(self, table: Any) -> OffsetRange | None:
        """Append the records of ``table``; the offset range they got."""
        records = records_of(table)
        if not records:
            return None
        lines = [(json.dumps(r, default=_json_default) + "\n").encode() for r in records]
        with self._mutex:
            start = self._offset + 1
            while lines:
                if self._file is None:
                    self._open_part()
                # A part never holds more than roll_records records.
                room = max(1, self.roll_records - self._part_records)
                chunk, lines = lines[:room], lines[room:]
                data = b"".join(chunk)
                self._file.write(data)
                self._file.flush()
                if self.fsync:
                    os.fsync(self._file.fileno())
                self._offset += len(chunk)
                self._part_records += len(chunk)
                self._part_bytes += len(data)
                if (
                    self._part_records >= self.roll_records
                    or self._part_bytes >= self.roll_bytes
                    or (
                        self.roll_interval is not None
                        and time.monotonic() - self._opened >= self.roll_interval
                    )
                ):
                    self._close_part()
        self._track(start, self._offset)
        return OffsetRange(self.dataset or str(self.directory), start, self._offset)

    def roll(self) -> None:
        """Close the part in progress now (the next write opens a new one)."""
        with self._mutex:
            self._close_part()

    def close(self) -> None:
        """Close the part in progress and let another writer take the stream."""
        with self._mutex:
            self._close_part()
            if self._lock_file is not None:
                self._lock_file.close()  # releases the flock
                self._lock_file = None

    def _open_part(self) -> None:
        base = f"part-{self._uid}-{self._counter}{self.suffix}"
        self._base = base
        self._path = self.directory / f".{base}.inprogress.{uuid.uuid4()}"
        self._file = self._path.open("xb")
        self._counter += 1
        self._part_records = 0
        self._part_bytes = 0
        self._opened = time.monotonic()

    def _close_part(self) -> None:
        if self._file is None:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        os.rename(self._path, self.directory / self._base)
        _fsync_directory(self.directory)

    def _recover(self) -> None:
        """Close parts a crashed writer left in progress, without a torn last line."""
        for part in list_parts(self.directory):
            if part.closed or part.bucket:
                continue
            with part.path.open("rb+") as file:
                data = file.read()
                keep = data.rfind(b"\n") + 1
                if keep < len(data):
                    file.truncate(keep)
            # Kept even when empty: part counters stay contiguous.
            os.rename(part.path, self.directory / part.base)
            logger.warning(
                "local stream %s: closed part %s left by a dead writer", self.directory, part.base
            )
        _fsync_directory(self.directory)


def _read_lines(path: Path, byte: int, max_lines: int, closed: bool) -> tuple[list[bytes], int]:
    """Up to ``max_lines`` complete non-blank lines from ``byte``; the byte after the last."""
    lines: list[bytes] = []
    with path.open("rb") as file:
        file.seek(byte)
        pending = b""
        while len(lines) < max_lines:
            chunk = file.read(_CHUNK)
            if not chunk:
                # A closed part may end without a newline: its last line is complete.
                if closed and pending:
                    if pending.strip():
                        lines.append(pending)
                    byte += len(pending)
                break
            pending += chunk
            while len(lines) < max_lines:
                end = pending.find(b"\n")
                if end < 0:
                    break
                line, pending = pending[:end], pending[end + 1 :]
                byte += end + 1
                if line.strip():
                    lines.append(line)
    return lines, byte


def _count_lines(path: Path) -> int:
    """Records in a closed part: non-blank lines (a last line without newline counts)."""
    with path.open("rb") as file:
        return sum(1 for line in file if line.strip())


def _decode(line: bytes, part: PartFile) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError as e:
        raise InvalidArgumentError(
            f"local stream part {str(part.path)!r} holds a line that is not JSON: {line[:80]!r}"
        ) from e
    if not isinstance(record, dict):
        raise InvalidArgumentError(
            f"local stream part {str(part.path)!r} holds a line that is not a JSON object"
        )
    return record


def _lock(path: Path) -> Any:
    import fcntl

    file = path.open("a+")
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        file.close()
        raise FailedPreconditionError(
            f"another writer holds the local stream {str(path.parent)!r} (close it first)"
        ) from e
    return file


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # NumPy scalars
        return value.item()
    if hasattr(value, "isoformat"):  # datetimes, pandas Timestamps
        return value.isoformat()
    return str(value)
