"""The event log and its offset counter.

``event_sequence`` has exactly one row. Every transaction that appends events first runs
``UPDATE event_sequence SET last = last + n`` and then reads ``last``: the row lock it takes is
held until commit, so appenders are serialised and offsets are handed out gap-free in commit
order on every backend (a rolled-back transaction returns its numbers with it). A reader that has
seen offset N can therefore never later see a newly committed event with an offset <= N.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, PrimaryKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tideflow.domain.events import Event
from tideflow.domain.limits import MAX_KEY_LENGTH, MAX_TYPE_LENGTH
from tideflow.store.rows.base import NAME_LENGTH, Base, RowData
from tideflow.store.types import LONG_TEXT, JSONText, UTCDateTime


class EventSequenceRow(Base):
    """The single-row counter of event offsets."""

    __tablename__ = "event_sequence"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(BigInteger, nullable=False)


class EventRow(Base):
    """One event of the log."""

    __tablename__ = "event"
    __table_args__ = (
        UniqueConstraint("namespace", "idempotency_key"),
        Index(None, "namespace", "offset"),
        Index(None, "namespace", "key", "offset"),
    )

    offset: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    namespace: Mapped[str] = mapped_column(String(NAME_LENGTH))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    value: Mapped[str] = mapped_column(LONG_TEXT)
    event_type: Mapped[str] = mapped_column(String(MAX_TYPE_LENGTH))
    sender: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    context: Mapped[Any] = mapped_column(JSONText)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(MAX_KEY_LENGTH))

    @classmethod
    def to_domain(cls, row: RowData) -> Event:
        """The :class:`Event` of a result row of this table."""
        return Event(
            key=row["key"],
            value=row["value"],
            event_type=row["event_type"],
            sender=row["sender"],
            namespace=row["namespace"],
            context=row["context"] or {},
            offset=row["offset"],
            create_time=row["create_time"],
            idempotency_key=row["idempotency_key"],
        )


class EventConsumerRow(Base):
    """The offset a named consumer has committed: everything up to it is handled.

    ``namespace`` is a project, or ``"*"`` for a consumer of every project (the scheduler).
    Compaction never deletes events a consumer has not committed yet.
    """

    __tablename__ = "event_consumer"
    __table_args__ = (PrimaryKeyConstraint("namespace", "name"),)

    namespace: Mapped[str] = mapped_column(String(NAME_LENGTH))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    offset: Mapped[int] = mapped_column(BigInteger)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime)
