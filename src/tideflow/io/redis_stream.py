"""Redis Streams: a networked stream (the ``redis`` extra).

Each record is one stream entry with a single field (``data`` by default) holding the record
as JSON, appended with ``XADD``. Readers use a **consumer group** (one per consuming job, named
like :func:`~tideflow.io.local_stream.consumer_name`): Redis keeps the group's position and
each member's delivered-but-unacknowledged entries. A batch is acknowledged (``XACK``) when it
is committed -- when the consumer asks for the next batch, on a graceful stop, or by
``commit()`` -- so a restarted job first gets the entries it was handed and never
acknowledged (its pending list), then new ones: nothing lost, and nothing repeated after a
graceful stop.

**Offsets.** Redis entry ids are ``<milliseconds>-<sequence>``; lineage wants integers, so an
id maps to ``milliseconds * 1_000_000 + sequence`` (:func:`redis_offset`, and back with
:func:`redis_id`). The map keeps the order and fits a signed 64-bit integer for the next
few hundred thousand years (a sequence must stay below a million within one millisecond).

Waiting for new entries uses ``XREADGROUP ... BLOCK``: the server wakes the reader when an
entry arrives, no polling.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from tideflow.errors import InvalidArgumentError, UnavailableError
from tideflow.io.base import Location, OffsetRange, Sink, Source, records_of

DEFAULT_URL = "redis://127.0.0.1:6379/0"
_SEQUENCE = 1_000_000

T = TypeVar("T")


def redis_offset(entry_id: str | bytes) -> int:
    """The integer offset of a Redis stream entry id (``ms-seq``)."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    milliseconds, _, sequence = text.partition("-")
    if int(sequence) >= _SEQUENCE:
        raise InvalidArgumentError(
            f"Redis entry id {text!r} has a sequence >= {_SEQUENCE}; it has no integer offset"
        )
    return int(milliseconds) * _SEQUENCE + int(sequence)


def redis_id(offset: int) -> str:
    """The Redis stream entry id of an integer offset (inverse of :func:`redis_offset`)."""
    return f"{offset // _SEQUENCE}-{offset % _SEQUENCE}"


def connect_redis(url: str = DEFAULT_URL) -> Any:
    """A redis-py client for ``url`` (strings decoded)."""
    import redis

    return redis.Redis.from_url(url, decode_responses=True)


def _call(action: str, function: Callable[[], T]) -> T:
    """Run a Redis call, translating connection failures to :class:`UnavailableError`."""
    import redis

    try:
        return function()
    except (redis.ConnectionError, redis.TimeoutError) as e:
        raise UnavailableError(f"Redis is unavailable ({action}): {e}") from e


class RedisStreamWriter(Sink):
    """Appends records to the Redis stream ``key`` (one pipelined ``XADD`` per record).

    Args:
        key: The stream's key.
        url: The Redis server (ignored when ``client`` is given).
        client: A redis-py client to use instead of opening one.
        dataset: The registered dataset's name (for lineage).
        maxlen: Trim the stream to about this many entries (``MAXLEN ~``); None keeps all.
        field: The entry field holding the JSON record.
    """

    def __init__(
        self,
        key: str,
        *,
        url: str = DEFAULT_URL,
        client: Any = None,
        dataset: str | None = None,
        maxlen: int | None = None,
        field: str = "data",
    ) -> None:
        super().__init__(dataset)
        self.key = key
        self.url = url
        self.field = field
        self.maxlen = maxlen
        self._owned = client is None
        self._client = client if client is not None else connect_redis(url)

    def location(self) -> Location:
        """``<url>#<key>``; format ``redis``; a stream."""
        return Location(f"{self.url}#{self.key}", "redis", True)

    def write(self, table: Any) -> OffsetRange | None:
        """Append the records of ``table``; the offset range of the new entries."""
        records = records_of(table)
        if not records:
            return None
        pipeline = self._client.pipeline(transaction=False)
        for record in records:
            pipeline.xadd(
                self.key,
                {self.field: json.dumps(record, default=str)},
                maxlen=self.maxlen,
                approximate=True,
            )
        ids = _call(f"XADD {self.key}", pipeline.execute)
        start, end = redis_offset(ids[0]), redis_offset(ids[-1])
        self._track(start, end)
        return OffsetRange(self.dataset or self.key, start, end)

    def close(self) -> None:
        """Close the connection if this writer opened it."""
        if self._owned:
            self._client.close()


class RedisStreamReader(Source):
    """Reads the Redis stream ``key`` through consumer group ``group``.

    Args:
        key: The stream's key.
        group: The consumer group (created at ``start`` if missing): the job's consumer name.
        member: This reader's name inside the group; a restarted reader must use the same one
            to get back the entries it was handed and did not acknowledge.
        url: The Redis server (ignored when ``client`` is given).
        client: A redis-py client to use instead of opening one.
        dataset: The registered dataset's name (for lineage).
        start: Where a new group starts: ``"0"`` the beginning, ``"$"`` only new entries.
        field: The entry field holding the JSON record.
    """

    def __init__(
        self,
        key: str,
        *,
        group: str,
        member: str = "0",
        url: str = DEFAULT_URL,
        client: Any = None,
        dataset: str | None = None,
        start: str = "0",
        field: str = "data",
    ) -> None:
        super().__init__(dataset)
        self.key = key
        self.group = group
        self.member = member
        self.url = url
        self.field = field
        self._owned = client is None
        self._client = client if client is not None else connect_redis(url)
        self._pending_after: str | None = "0"  # walk our pending list first, then new entries
        self._buffer: list[tuple[str, Any]] = []
        self._unacked: list[str] = []
        self._create_group(start)

    def location(self) -> Location:
        """``<url>#<key>``; format ``redis``; a stream."""
        return Location(f"{self.url}#{self.key}", "redis", True)

    def _create_group(self, start: str) -> None:
        import redis

        try:
            _call(
                f"XGROUP CREATE {self.key}",
                lambda: self._client.xgroup_create(self.key, self.group, id=start, mkstream=True),
            )
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise InvalidArgumentError(
                    f"cannot create consumer group {self.group!r}: {e}"
                ) from e

    def commit(self) -> None:
        """Acknowledge every entry handed out so far (``XACK``)."""
        if self._unacked:
            ids = self._unacked
            _call(f"XACK {self.key}", lambda: self._client.xack(self.key, self.group, *ids))
            self._unacked = []

    def pending(self) -> int:
        """How many entries the group delivered and nobody acknowledged yet."""
        summary = _call("XPENDING", lambda: self._client.xpending(self.key, self.group))
        return int(summary["pending"])

    def _poll(self, max_records: int) -> tuple[list[dict[str, Any]], int | None, int | None]:
        entries = self._buffer[:max_records]
        self._buffer = self._buffer[max_records:]
        if len(entries) < max_records:
            entries += self._read(max_records - len(entries), block_ms=None)
        records = []
        for entry_id, fields in entries:
            self._unacked.append(entry_id)
            if fields:  # entries deleted after delivery come back without fields
                value = fields.get(self.field)
                records.append(json.loads(value) if value is not None else dict(fields))
        if not entries:
            return [], None, None
        return records, redis_offset(entries[0][0]), redis_offset(entries[-1][0])

    def _wait(self, seconds: float, stop: threading.Event) -> None:
        """Block in Redis until an entry arrives (or ``seconds`` pass)."""
        if self._buffer or stop.is_set():
            return
        if self._pending_after is not None:
            return  # pending entries are read without waiting
        self._buffer += self._read(1000, block_ms=max(1, int(seconds * 1000)))

    def _read(self, count: int, *, block_ms: int | None) -> list[tuple[str, Any]]:
        if self._pending_after is not None:
            after = self._pending_after
            response = _call(
                "XREADGROUP",
                lambda: self._client.xreadgroup(
                    self.group, self.member, {self.key: after}, count=count
                ),
            )
            entries = _entries(response)
            if entries:
                self._pending_after = entries[-1][0]
                return entries
            self._pending_after = None  # the pending list is drained: on to new entries
        response = _call(
            "XREADGROUP",
            lambda: self._client.xreadgroup(
                self.group, self.member, {self.key: ">"}, count=count, block=block_ms
            ),
        )
        return _entries(response)

    poll_interval = 0.5

    def close(self) -> None:
        """Close the connection if this reader opened it (unacknowledged entries stay pending)."""
        if self._owned:
            self._client.close()


def _entries(response: Any) -> list[tuple[str, Any]]:
    """The ``(id, fields)`` pairs of an ``XREADGROUP`` answer for one stream."""
    if not response:
        return []
    if isinstance(response, dict):  # RESP3
        streams = list(response.values())
        batch = streams[0][0] if streams and streams[0] else []
    else:
        batch = response[0][1]
    return [
        (entry_id.decode() if isinstance(entry_id, bytes) else entry_id, _decode(fields))
        for entry_id, fields in batch
    ]


def _decode(fields: Any) -> dict[str, Any]:
    if not fields:
        return {}
    return {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in fields.items()
    }


def redis_url_from_env() -> str:
    """``$TIDEFLOW_REDIS_URL``, or the local default."""
    return os.environ.get("TIDEFLOW_REDIS_URL", DEFAULT_URL)
