"""Consumers' committed offsets and the compaction that respects them.

A consumer (the scheduler, a monitor, a user's pipeline) commits the offset of the last event it
handled -- in the same transaction as its effects, when it has any -- and resumes after it when
restarted, so nothing is lost or handled twice. Compaction keeps every event some consumer still
has to read.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, func, select, update
from sqlalchemy.sql.elements import ColumnElement

from tideflow.domain.limits import check_name
from tideflow.errors import InvalidArgumentError
from tideflow.store.event import last_offset
from tideflow.store.rows.base import table_of
from tideflow.store.rows.event import EventConsumerRow, EventRow
from tideflow.store.types import utcnow

ALL_NAMESPACES = "*"
"""The namespace of a consumer that reads every project's events."""

_CONSUMER = table_of(EventConsumerRow)
_EVENT = table_of(EventRow)

# Built once with bound parameters: the scheduler commits and reads its offset in every
# batch, and building the statement anew cost ~4x running it (its cache key, its operators).
_IS_CONSUMER = (
    _CONSUMER.c.namespace == bindparam("consumer_namespace"),
    _CONSUMER.c.name == bindparam("consumer_name"),
)
_COMMITTED = select(_CONSUMER.c.offset).where(*_IS_CONSUMER)
_COMMITTED_FOR_UPDATE = _COMMITTED.with_for_update()
_MOVE = (
    update(_CONSUMER)
    .where(*_IS_CONSUMER)
    .values(offset=bindparam("new_offset"), update_time=bindparam("new_time"))
)


def commit_offset(connection: Connection, namespace: str, consumer: str, offset: int) -> None:
    """Record that ``consumer`` has handled every event up to ``offset``.

    Raises:
        InvalidArgumentError: Bad name, or an offset below the one already committed (a
            consumer never goes back: that would replay handled events).
    """
    if namespace != ALL_NAMESPACES:
        check_name(namespace, "namespace")
    check_name(consumer, "consumer name")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidArgumentError(
            f"offset must be a whole number >= 0, got {offset!r}", field="offset"
        )
    key = {"consumer_namespace": namespace, "consumer_name": consumer}
    end = last_offset(connection)
    if offset > end:
        # A typo here could never be undone (offsets only move forward) and would let
        # compaction delete events the consumer has not read.
        raise InvalidArgumentError(
            f"offset {offset} is beyond the end of the event log (latest offset {end})",
            field="offset",
        )
    current = connection.execute(_COMMITTED_FOR_UPDATE, key).scalar()
    now = utcnow()
    if current is None:
        connection.execute(
            _CONSUMER.insert().values(
                namespace=namespace, name=consumer, offset=offset, update_time=now
            )
        )
    elif offset < current:
        raise InvalidArgumentError(
            f"consumer {consumer!r} already committed offset {current}; it cannot go back to {offset}",
            field="offset",
        )
    else:
        connection.execute(_MOVE, {**key, "new_offset": offset, "new_time": now})


def committed_offset(connection: Connection, namespace: str, consumer: str) -> int:
    """The offset ``consumer`` committed last, or 0 when it never committed."""
    key = {"consumer_namespace": namespace, "consumer_name": consumer}
    value = connection.execute(_COMMITTED, key).scalar()
    return 0 if value is None else int(value)


def compact_events(connection: Connection, namespace: str | None, older_than: datetime) -> int:
    """Delete old events that are superseded and that every consumer has handled.

    An event goes when it was created before ``older_than``, a later event of the same key
    exists, and no consumer of its namespace (or of all namespaces) still has to read it.

    Args:
        connection: A connection in a write transaction.
        namespace: One project, or ``None`` for all.
        older_than: Only events created before this time are candidates.

    Returns:
        How many events were deleted.
    """
    guards = [_CONSUMER.c.namespace == ALL_NAMESPACES]
    if namespace is not None:
        guards.append(_CONSUMER.c.namespace == namespace)
        bound = connection.execute(
            select(func.min(_CONSUMER.c.offset)).where(guards[0] | guards[1])
        ).scalar()
    else:
        # Across all projects the slowest consumer of any project bounds everything.
        bound = connection.execute(select(func.min(_CONSUMER.c.offset))).scalar()
    newer = _EVENT.alias("newer")
    superseded = (
        select(newer.c.offset)
        .where(
            newer.c.namespace == _EVENT.c.namespace,
            newer.c.key == _EVENT.c.key,
            newer.c.offset > _EVENT.c.offset,
        )
        .exists()
    )
    conditions: list[ColumnElement[bool]] = [_EVENT.c.create_time < older_than, superseded]
    if namespace is not None:
        conditions.append(_EVENT.c.namespace == namespace)
    if bound is not None:
        conditions.append(_EVENT.c.offset <= bound)
    # MariaDB refuses a DELETE whose subquery reads the same table; pick the offsets first.
    doomed = [row[0] for row in connection.execute(select(_EVENT.c.offset).where(*conditions))]
    deleted = 0
    for start in range(0, len(doomed), 1000):
        chunk = doomed[start : start + 1000]
        deleted += connection.execute(delete(_EVENT).where(_EVENT.c.offset.in_(chunk))).rowcount
    return deleted
