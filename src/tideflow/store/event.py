"""Appending to and reading the event log, for every service that emits or reads events.

:func:`append_events` must run inside the transaction of the change that caused the events
(transactional outbox) and should be its last statement: it takes the ``event_sequence`` row
lock (see :mod:`tideflow.store.rows.event`), and holding that lock for the shortest time keeps
appenders from queueing behind each other's unrelated work. Every transaction locks the entity
rows it changes first and the sequence last, so the lock order is the same everywhere and
appenders cannot deadlock.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, Integer, Select, bindparam, select, text, tuple_, update

from tideflow.domain.events import Event
from tideflow.domain.limits import (
    MAX_KEY_LENGTH,
    MAX_TYPE_LENGTH,
    check_name,
    check_optional_text,
    check_text,
    dump_json,
)
from tideflow.errors import InvalidArgumentError
from tideflow.store.driver import DriverStatement, run_driver_sql
from tideflow.store.engine import APPENDED_OFFSET
from tideflow.store.rows.base import table_of
from tideflow.store.rows.event import EventRow, EventSequenceRow
from tideflow.store.types import utcnow

MAX_LIST_LIMIT = 10_000
MAX_EVENT_VALUE_BYTES = 1_048_576
"""Default size limit of an event's value: events are signals, not a data channel."""
NOTIFY_CHANNEL = "tideflow_events"
"""The PostgreSQL channel that carries the last appended offset to other processes at commit."""

_EVENT = table_of(EventRow)
_SEQ = table_of(EventSequenceRow)
_BUMP = (
    update(_SEQ)
    .where(_SEQ.c.id == 1)
    .values(last=_SEQ.c.last + bindparam("n", type_=_SEQ.c.last.type))
)
_READ_LAST = select(_SEQ.c.last).where(_SEQ.c.id == 1)
_BUMP_RETURNING = DriverStatement(_BUMP.returning(_SEQ.c.last))
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def check_event_value(value: object, limit: int = MAX_EVENT_VALUE_BYTES) -> str:
    """Return ``value`` if it is a string of at most ``limit`` bytes in UTF-8, else raise.

    Raises:
        InvalidArgumentError: Not a string, or larger than the limit (which it names).
    """
    if not isinstance(value, str):
        raise InvalidArgumentError(
            f"event value must be a string, got {type(value).__name__}", field="value"
        )
    # Cheap bound first: a UTF-8 character takes at most 4 bytes.
    if len(value) * 4 > limit and (size := len(value.encode("utf-8"))) > limit:
        raise InvalidArgumentError(
            f"event value is {size} bytes; the limit is {limit} bytes (send a reference, such "
            "as a blob URI, for larger payloads)",
            field="value",
        )
    if "\x00" in value:
        # PostgreSQL refuses NUL in text; refusing it everywhere keeps the backends alike.
        raise InvalidArgumentError("event value must not contain NUL characters", field="value")
    return value


def check_event(event: Event, max_value_bytes: int = MAX_EVENT_VALUE_BYTES) -> str:
    """Validate ``event`` before it is stored; return its context as JSON text.

    Raises:
        InvalidArgumentError: A field is missing, of the wrong type or too long.
    """
    check_name(event.namespace, "event namespace")
    check_text(event.key, "event key", MAX_KEY_LENGTH, empty=False)
    check_event_value(event.value, max_value_bytes)
    check_text(event.event_type, "event type", MAX_TYPE_LENGTH, empty=False)
    check_text(event.sender, "event sender", MAX_KEY_LENGTH)
    if check_optional_text(event.idempotency_key, "idempotency key", MAX_KEY_LENGTH) == "":
        raise InvalidArgumentError("idempotency key must not be empty", field="idempotency key")
    return dump_json(event.context, "event context")


@dataclasses.dataclass(frozen=True)
class Appended:
    """What :func:`append_batch` stored, without rebuilding every event.

    Attributes:
        first_offset: The offset of the first event stored (0 when none was).
        count: How many events were stored.
        create_time: Their commit time (one for the whole batch).
        events: The events as stored, only when some carried idempotency keys (a known key's
            event is the stored one, so offsets need not follow ``first_offset``); ``None``
            means event ``i`` got ``first_offset + i``.
    """

    first_offset: int
    count: int
    create_time: datetime | None
    events: list[Event] | None = None


def append_batch(
    connection: Connection,
    events: Sequence[Event],
    *,
    max_value_bytes: int = MAX_EVENT_VALUE_BYTES,
) -> Appended:
    """Store ``events`` as :func:`append_events` does, answering compactly.

    A batch without idempotency keys gets consecutive offsets: the answer is the first one and
    the commit time, and no event is copied to carry them (the sender has the rest). Batches
    with keys take :func:`append_events`' path and carry the stored events.

    Raises:
        InvalidArgumentError: An event is invalid; nothing is stored.
    """
    if any(event.idempotency_key is not None for event in events):
        stored = append_events(connection, events, max_value_bytes=max_value_bytes)
        first = stored[0].offset if stored else 0
        when = stored[0].create_time if stored else None
        return Appended(first, len(stored), when, stored)
    contexts = [check_event(event, max_value_bytes) for event in events]
    if not events:
        return Appended(0, 0, None)
    last = _bump(connection, len(events))
    now = utcnow()
    first = last - len(events) + 1
    _insert_fresh(connection, events, first, now, contexts)
    _announce(connection, last)
    return Appended(first, len(events), now)


def append_events(
    connection: Connection,
    events: Sequence[Event],
    *,
    max_value_bytes: int = MAX_EVENT_VALUE_BYTES,
) -> list[Event]:
    """Store ``events`` with the next offsets, in the caller's transaction.

    An event whose ``(namespace, idempotency_key)`` is already stored (or repeated earlier in
    ``events``) is not stored again; the stored one is returned in its place.

    Returns:
        The events as stored (offset and create_time set), in the order given.

    Raises:
        InvalidArgumentError: An event is invalid; nothing is stored.
    """
    contexts = [check_event(event, max_value_bytes) for event in events]
    if not events:
        return []
    known: dict[tuple[str, str | None], Event] = {}
    keyed = [(e.namespace, e.idempotency_key) for e in events if e.idempotency_key is not None]
    if keyed:
        # Lock the sequence before looking: a concurrent sender of the same key then either
        # committed before (we see its event) or waits for us (and sees ours).
        connection.execute(_READ_LAST.with_for_update()).scalar_one()
        rows = connection.execute(
            select(_EVENT).where(tuple_(_EVENT.c.namespace, _EVENT.c.idempotency_key).in_(keyed))
        )
        known = {(r.namespace, r.idempotency_key): EventRow.to_domain(r._mapping) for r in rows}
    result: list[Event | None] = [None] * len(events)
    fresh: list[int] = []
    first_of: dict[tuple[str, str | None], int] = {}
    for index, event in enumerate(events):
        key = (event.namespace, event.idempotency_key)
        if event.idempotency_key is None:
            fresh.append(index)
        elif key in known:
            result[index] = known[key]
        elif key not in first_of:
            first_of[key] = index
            fresh.append(index)
    if fresh:
        last = _bump(connection, len(fresh))
        now = utcnow()
        first = last - len(fresh) + 1
        _insert_fresh(
            connection, [events[i] for i in fresh], first, now, [contexts[i] for i in fresh]
        )
        _announce(connection, last)
        for n, i in enumerate(fresh):
            result[i] = dataclasses.replace(events[i], offset=first + n, create_time=now)
    # Repeats of a key inside this batch get the event stored for its first occurrence.
    for index, event in enumerate(events):
        if result[index] is None:
            result[index] = result[first_of[(event.namespace, event.idempotency_key)]]
    return [event for event in result if event is not None]


_COLUMNS = (
    "offset",
    "namespace",
    "key",
    "value",
    "event_type",
    "sender",
    "context",
    "create_time",
    "idempotency_key",
)


_INSERT_SQL: dict[tuple[str, str], str] = {}


def _insert_sql(dialect: Dialect) -> str:
    """``INSERT INTO event (...) VALUES (...)`` in the driver's own parameter style."""
    key = (dialect.name, dialect.paramstyle)
    if key not in _INSERT_SQL:
        _INSERT_SQL[key] = _make_insert_sql(dialect)
    return _INSERT_SQL[key]


def _make_insert_sql(dialect: Dialect) -> str:
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name in _COLUMNS)
    if dialect.paramstyle == "qmark":
        marks = ", ".join("?" for _ in _COLUMNS)
    elif dialect.paramstyle == "pyformat":
        marks = ", ".join(f"%({name})s" for name in _COLUMNS)
    else:  # pragma: no cover - the three supported drivers use one of the two
        raise NotImplementedError(dialect.paramstyle)
    return f"INSERT INTO {quote(_EVENT.name)} ({columns}) VALUES ({marks})"


def _insert_fresh(
    connection: Connection,
    events: Sequence[Event],
    first: int,
    now: datetime,
    contexts: Sequence[str],
) -> None:
    """Insert validated events at offsets ``first``, ``first + 1``, ... (committed at ``now``).

    Straight to the driver's ``executemany`` (:func:`~tideflow.store.driver.run_driver_sql`):
    compiled through SQLAlchemy, each row's parameters were built and processed one by one
    (~4 us a row, a quarter of a 1,000-event ``send_many``), though every row has the same
    commit time and only plain strings and integers besides. That time is converted once, by
    the column type's own processor.
    """
    dialect = connection.dialect
    stamp_type = _EVENT.c.create_time.type.dialect_impl(dialect)
    to_stamp = stamp_type.bind_processor(dialect)
    stamp = to_stamp(now) if to_stamp is not None else now
    rows = [
        (
            first + n,
            e.namespace,
            e.key,
            e.value,
            e.event_type,
            e.sender,
            contexts[n],
            stamp,
            e.idempotency_key,
        )
        for n, e in enumerate(events)
    ]
    if dialect.paramstyle == "pyformat":
        parameters: list[Any] = [dict(zip(_COLUMNS, r, strict=True)) for r in rows]
    else:
        parameters = rows
    run_driver_sql(connection, _insert_sql(dialect), parameters, many=True)


def _bump(connection: Connection, count: int) -> int:
    """Take ``count`` offsets from the counter; return the last one taken.

    One statement where the database can return what an UPDATE wrote (SQLite, PostgreSQL):
    every append pays it, and on PostgreSQL the second statement was a second round trip.
    """
    if connection.dialect.update_returning:
        return int(_BUMP_RETURNING.execute(connection, {"n": count}).scalar_one())
    connection.execute(_BUMP, {"n": count})
    return int(connection.execute(_READ_LAST).scalar_one())


def _announce(connection: Connection, last: int) -> None:
    """Tell listeners about ``last`` once this transaction commits.

    In this process through the store's commit hook; on PostgreSQL also to every other process
    LISTENing on :data:`NOTIFY_CHANNEL` -- ``pg_notify`` is delivered at commit, never before.
    """
    connection.info[APPENDED_OFFSET] = max(last, connection.info.get(APPENDED_OFFSET, 0))
    if connection.dialect.name == "postgresql":
        connection.execute(_NOTIFY, {"channel": NOTIFY_CHANNEL, "payload": str(last)})


def list_events(
    connection: Connection,
    namespace: str | None,
    *,
    keys: Sequence[str] | None = None,
    event_types: Sequence[str] | None = None,
    sender: str | None = None,
    after_offset: int = 0,
    limit: int = 100,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Event]:
    """Events with ``offset > after_offset`` that match every given filter, oldest first.

    Args:
        connection: Any connection of the store.
        namespace: The project, or ``None`` for every project.
        keys: Keep events with one of these keys.
        event_types: Keep events of one of these types.
        sender: Keep events of this sender.
        after_offset: Resume after this offset (the last one already handled).
        limit: At most this many events (1 to :data:`MAX_LIST_LIMIT`).
        since: Keep events created at or after this time.
        until: Keep events created before this time.
    """
    # A page of MAX_LIST_LIMIT fetches one row more, to know whether another page follows.
    if (
        not isinstance(limit, int)
        or isinstance(limit, bool)
        or not 1 <= limit <= MAX_LIST_LIMIT + 1
    ):
        raise InvalidArgumentError(
            f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit!r}", field="limit"
        )
    if not isinstance(after_offset, int) or isinstance(after_offset, bool) or after_offset < 0:
        raise InvalidArgumentError(
            f"after_offset must be a whole number >= 0, got {after_offset!r}", field="after_offset"
        )
    query = _events_query(
        namespace is not None,
        keys is not None,
        event_types is not None,
        sender is not None,
        since is not None,
        until is not None,
    )
    values = {
        "after_offset": after_offset,
        "namespace": namespace,
        "keys": list(keys or ()),
        "event_types": list(event_types or ()),
        "sender": sender,
        "since": since,
        "until": until,
        "limit": limit,
    }
    return [EventRow.to_domain(row._mapping) for row in connection.execute(query, values)]


@functools.cache
def _events_query(
    namespace: bool, keys: bool, event_types: bool, sender: bool, since: bool, until: bool
) -> Select[Any]:
    """The statement of :func:`list_events` for the filters given (each flag: given or not).

    Built once per set of filters with bound parameters: the scheduler lists the events after
    its offset in every batch, and building the statement anew cost several times running it.
    """
    query = select(_EVENT).where(_EVENT.c.offset > bindparam("after_offset"))
    if namespace:
        query = query.where(_EVENT.c.namespace == bindparam("namespace"))
    if keys:
        query = query.where(_EVENT.c.key.in_(bindparam("keys", expanding=True)))
    if event_types:
        query = query.where(_EVENT.c.event_type.in_(bindparam("event_types", expanding=True)))
    if sender:
        query = query.where(_EVENT.c.sender == bindparam("sender"))
    if since:
        query = query.where(_EVENT.c.create_time >= bindparam("since"))
    if until:
        query = query.where(_EVENT.c.create_time < bindparam("until"))
    return query.order_by(_EVENT.c.offset).limit(bindparam("limit", type_=Integer))


def events_at(connection: Connection, namespace: str, offsets: Sequence[int]) -> list[Event]:
    """The events of ``namespace`` at ``offsets`` (those still stored), by offset."""
    wanted = sorted(set(offsets))
    if not wanted:
        return []
    query = (
        select(_EVENT)
        .where(_EVENT.c.namespace == namespace, _EVENT.c.offset.in_(wanted))
        .order_by(_EVENT.c.offset)
    )
    return [EventRow.to_domain(row._mapping) for row in connection.execute(query)]


def last_offset(connection: Connection) -> int:
    """The highest offset handed out so far (committed, as seen by ``connection``)."""
    return int(connection.execute(_READ_LAST).scalar_one())
