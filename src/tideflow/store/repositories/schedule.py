"""SQL of workflow schedules: each workflow's next tick and the ticks already handled."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, or_, select, update

from tideflow.store.rows.base import table_of
from tideflow.store.rows.execution import WorkflowRow
from tideflow.store.rows.schedule import ScheduleTickRow, ScheduleTimerRow
from tideflow.store.types import utcnow

TIMER = table_of(ScheduleTimerRow)
TICK = table_of(ScheduleTickRow)
WORKFLOW = table_of(WorkflowRow)


@dataclass(frozen=True)
class ScheduleTimer:
    """A workflow's schedule timer: the snapshot it follows and its next tick (or none)."""

    workflow_id: int
    snapshot_id: int
    next_tick_time: datetime | None


@dataclass(frozen=True)
class Tick:
    """A handled tick: ``STARTED`` (with its execution) or ``SKIPPED`` (with the reason)."""

    tick_time: datetime
    status: str
    execution_id: int | None
    reason: str | None
    backfill: bool


class ScheduleRepository:
    """Schedule timers and ticks on one connection (the caller's transaction)."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def stale(self, limit: int) -> list[tuple[int, int]]:
        """Up to ``limit`` (workflow id, latest snapshot id) whose timer follows another one."""
        query = (
            select(WORKFLOW.c.id, WORKFLOW.c.latest_snapshot_id)
            .outerjoin(TIMER, TIMER.c.workflow_id == WORKFLOW.c.id)
            .where(
                WORKFLOW.c.latest_snapshot_id.is_not(None),
                or_(
                    TIMER.c.workflow_id.is_(None),
                    TIMER.c.snapshot_id != WORKFLOW.c.latest_snapshot_id,
                ),
            )
            .order_by(WORKFLOW.c.id)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in self._c.execute(query)]

    def timer(self, workflow_id: int, *, lock: bool = False) -> ScheduleTimer | None:
        """The timer of a workflow, if it has a row (locked for update when ``lock``)."""
        query = select(TIMER).where(TIMER.c.workflow_id == workflow_id)
        row = self._c.execute(query.with_for_update() if lock else query).first()
        if row is None:
            return None
        return ScheduleTimer(row.workflow_id, row.snapshot_id, row.next_tick_time)

    def set_timer(self, workflow_id: int, snapshot_id: int, next_tick: datetime | None) -> None:
        """Make the workflow's timer follow ``snapshot_id``, ticking next at ``next_tick``."""
        self._c.execute(delete(TIMER).where(TIMER.c.workflow_id == workflow_id))
        self._c.execute(
            TIMER.insert(),
            {"workflow_id": workflow_id, "snapshot_id": snapshot_id, "next_tick_time": next_tick},
        )

    def move(self, workflow_id: int, next_tick: datetime) -> None:
        """Set when a workflow's schedule ticks next."""
        self._c.execute(
            update(TIMER).where(TIMER.c.workflow_id == workflow_id).values(next_tick_time=next_tick)
        )

    def next_tick(self) -> datetime | None:
        """The earliest next tick of any workflow."""
        value: datetime | None = self._c.execute(select(func.min(TIMER.c.next_tick_time))).scalar()
        return value

    def due(self, now: datetime, limit: int) -> list[int]:
        """Up to ``limit`` workflows whose next tick is due at ``now``, earliest first."""
        query = (
            select(TIMER.c.workflow_id)
            .where(TIMER.c.next_tick_time <= now)
            .order_by(TIMER.c.next_tick_time, TIMER.c.workflow_id)
            .limit(limit)
        )
        return list(self._c.execute(query).scalars())

    def handled(self, workflow_id: int, ticks: Iterable[datetime]) -> set[datetime]:
        """Which of ``ticks`` the workflow already has a record of."""
        wanted = list(ticks)
        if not wanted:
            return set()
        query = select(TICK.c.tick_time).where(
            TICK.c.workflow_id == workflow_id, TICK.c.tick_time.in_(wanted)
        )
        return set(self._c.execute(query).scalars())

    def record(
        self,
        workflow_id: int,
        tick: datetime,
        *,
        status: str,
        execution_id: int | None = None,
        reason: str | None = None,
        backfill: bool = False,
    ) -> None:
        """Record a tick handled (the caller holds the workflow's lock and checked it is new)."""
        self._c.execute(
            TICK.insert(),
            {
                "workflow_id": workflow_id,
                "tick_time": tick,
                "status": status,
                "execution_id": execution_id,
                "reason": reason,
                "backfill": backfill,
                "create_time": utcnow(),
            },
        )

    def ticks(self, workflow_id: int, limit: int) -> list[Tick]:
        """The latest ``limit`` ticks of a workflow, newest first."""
        query = (
            select(TICK)
            .where(TICK.c.workflow_id == workflow_id)
            .order_by(TICK.c.tick_time.desc())
            .limit(limit)
        )
        return [
            Tick(row.tick_time, row.status, row.execution_id, row.reason, bool(row.backfill))
            for row in self._c.execute(query)
        ]
