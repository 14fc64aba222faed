"""Tables of workflow schedules (``wf.schedule``).

* ``schedule_timer`` -- per workflow: the snapshot whose schedule it follows (the latest one when
  the scheduler last looked) and the next tick, ``NULL`` when that snapshot has no schedule.
* ``schedule_tick`` -- every tick handled, by (workflow, tick time): the execution it started or
  why it was skipped. Its primary key is what makes a tick -- scheduled or backfilled -- start
  at most once; it is written in the transaction that starts the execution.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tideflow.store.rows.base import ID, STATUS_LENGTH, Base
from tideflow.store.types import UTCDateTime


class ScheduleTimerRow(Base):
    """When a workflow's schedule ticks next."""

    __tablename__ = "schedule_timer"

    workflow_id: Mapped[int] = mapped_column(
        ID, ForeignKey("workflow.id", ondelete="CASCADE"), primary_key=True
    )
    snapshot_id: Mapped[int] = mapped_column(ID)
    next_tick_time: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class ScheduleTickRow(Base):
    """One tick of a workflow's schedule, started or skipped."""

    __tablename__ = "schedule_tick"

    workflow_id: Mapped[int] = mapped_column(
        ID, ForeignKey("workflow.id", ondelete="CASCADE"), primary_key=True
    )
    tick_time: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    status: Mapped[str] = mapped_column(String(STATUS_LENGTH))
    execution_id: Mapped[int | None] = mapped_column(ID)
    reason: Mapped[str | None] = mapped_column(Text)
    backfill: Mapped[bool] = mapped_column(Boolean)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
