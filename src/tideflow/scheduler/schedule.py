"""Workflow schedules (``wf.schedule``): one execution per tick, each tick exactly once.

Each workflow has a ``schedule_timer`` row following its latest snapshot: the next tick, or
none when that snapshot has no schedule. The scheduler (re)computes the row when it sees a new
latest snapshot -- the next tick strictly after *now*; a resubmission with the same schedule
keeps the tick it had, so nothing due is lost.

When the tick is due, **one transaction** locks the workflow, records the tick in
``schedule_tick`` (keyed by workflow and tick time), starts the execution -- on the latest
snapshot, with the param ``schedule_time``, the tick as an ISO 8601 UTC string -- and moves the
timer past *now*. A restart therefore neither skips a tick (the row is still due) nor doubles
one (tick, execution and move commit together).

Choices, made explicit (Airflow's ``catchup``):

* After downtime, ``catchup=False`` starts only the **latest** missed tick; ``catchup=True``
  starts every missed tick, oldest first, at most :data:`MAX_CATCHUP_TICKS` (the newest ones;
  older ones are dropped).
* A tick while the workflow is **paused** or at its ``max_active_executions`` is recorded as
  ``SKIPPED`` with the reason; it is not caught up later.
* :meth:`ScheduleService.backfill` starts one execution per tick in a range; a tick already
  recorded (scheduled or backfilled) is left alone, so a second backfill starts nothing new.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from tideflow.domain.schedule import MAX_CATCHUP_TICKS, SCHEDULE_TIME_PARAM, Schedule
from tideflow.errors import FailedPreconditionError, InvalidArgumentError
from tideflow.scheduler.actions import Actor, Effects, Fence, PlanCache, SchedulerConfig
from tideflow.scheduler.clock import Clock
from tideflow.scheduler.periodic import next_fire_after
from tideflow.store import Store, append_events
from tideflow.store.repositories.schedule import ScheduleRepository
from tideflow.store.repositories.scheduler import SchedulerRepository, WorkflowRef

log = logging.getLogger(__name__)

STARTED = "STARTED"
SKIPPED = "SKIPPED"
MAX_BACKFILL_TICKS = 10_000
"""The most ticks one backfill may cover (a typo in a range should not start a million)."""


@dataclass(frozen=True)
class TickResult:
    """What one tick did: the execution it started, or why it was skipped."""

    tick_time: datetime
    status: str
    execution_id: int | None = None
    reason: str | None = None


def ticks_between(
    schedule: Schedule, first: datetime, last: datetime, *, limit: int, newest: bool = True
) -> list[datetime]:
    """Ticks of ``schedule`` in ``[first, last]``, oldest first, at most ``limit`` of them.

    Args:
        schedule: The schedule.
        first: The earliest tick wanted (for an interval, a tick: its phase).
        last: The latest time.
        limit: The most ticks returned.
        newest: Keep the newest ``limit`` ticks (catch-up) rather than the oldest (backfill).
    """
    if last < first or limit <= 0:
        return []
    if schedule.cron is None:
        step = timedelta(seconds=float(schedule.interval_seconds or 0))
        count = math.floor((last - first) / step) + 1
        start = max(0, count - limit) if newest else 0
        return [first + k * step for k in range(start, min(count, start + limit))]
    from croniter import croniter  # imported on use: only schedules and periodic rules need it

    zone = ZoneInfo(schedule.timezone)
    found: list[datetime] = []
    if newest:
        # Walk back from just after ``last`` (cron has minute resolution).
        it = croniter(schedule.cron, (last + timedelta(seconds=1)).astimezone(zone))
        while len(found) < limit:
            tick = it.get_prev(datetime).astimezone(UTC)
            if tick < first:
                break
            if tick <= last:
                found.append(tick)
        return sorted(found)
    it = croniter(schedule.cron, (first - timedelta(seconds=1)).astimezone(zone))
    while len(found) < limit:
        tick = it.get_next(datetime).astimezone(UTC)
        if tick > last:
            break
        if tick >= first:
            found.append(tick)
    return found


class ScheduleService:
    """Starts the executions of workflow schedules (see the module docstring).

    Args:
        store: The store.
        clock: The scheduler's clock.
        plans: Parsed plans.
        config: Tunables.
        on_effects: Called after each commit with what it did (wakes executors).
        fence: Called first in every transaction of the timer loop's ticks (a cluster
            leader's fencing check); backfills are users' requests and are not fenced.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        plans: PlanCache,
        config: SchedulerConfig,
        *,
        on_effects: Callable[[Effects], None] | None = None,
        fence: Fence | None = None,
    ) -> None:
        self._store = store
        self._fence = fence
        self._clock = clock
        self._plans = plans
        self._config = config
        self._on_effects = on_effects

    # -- the timer loop ------------------------------------------------------------------------

    def fire_due(self) -> int:
        """Follow new latest snapshots, then handle every due tick; return how many ticks."""
        while self._store.run(self._sync_batch):
            pass
        handled = 0
        while True:
            due = self._store.run(
                lambda c: ScheduleRepository(c).due(self._clock.now(), 1), write=False
            )
            if not due:
                return handled
            handled += self._fire(due[0])

    def next_tick(self) -> datetime | None:
        """The earliest next tick of any workflow."""
        return self._store.run(lambda c: ScheduleRepository(c).next_tick(), write=False)

    def _sync_batch(self, c: Connection) -> int:
        if self._fence is not None:
            self._fence(c)
        repo = ScheduleRepository(c)
        stale = repo.stale(self._config.timer_batch_size)
        now = self._clock.now()
        for workflow_id, snapshot_id in stale:
            SchedulerRepository(c).workflow_by_id(workflow_id, lock=True)
            old = repo.timer(workflow_id, lock=True)
            schedule = self._schedule(c, snapshot_id)
            next_tick: datetime | None = None
            if schedule is not None:
                if old is not None and old.next_tick_time is not None:
                    before = self._schedule(c, old.snapshot_id)
                    if before is not None and before.timer == schedule.timer:
                        next_tick = old.next_tick_time  # unchanged: keep the tick it had
                if next_tick is None:
                    try:
                        next_tick = next_fire_after(schedule.timer, now)
                    except FailedPreconditionError:  # a plan stored unchecked: never ticks
                        log.exception("workflow %s: its schedule cannot tick", workflow_id)
            repo.set_timer(workflow_id, snapshot_id, next_tick)
        return len(stale)

    def _schedule(self, c: Connection, snapshot_id: int) -> Schedule | None:
        try:
            return self._plans.get(c, snapshot_id).schedule
        except InvalidArgumentError:  # an unreadable plan starts nothing by itself
            log.exception("snapshot %s: its plan cannot be read", snapshot_id)
            return None

    def _fire(self, workflow_id: int) -> int:
        """Handle the due ticks of one workflow in one transaction."""

        def work(c: Connection) -> tuple[int, Effects]:
            if self._fence is not None:
                self._fence(c)
            actor = Actor(c, self._clock, self._plans, self._config, stage="schedule")
            ref = actor.scheduling.workflow_by_id(workflow_id, lock=True)
            repo = ScheduleRepository(c)
            timer = repo.timer(workflow_id, lock=True)
            now = self._clock.now()
            if timer is None or timer.next_tick_time is None or timer.next_tick_time > now:
                return 0, actor.effects  # handled meanwhile
            schedule = self._schedule(c, timer.snapshot_id)
            if schedule is None:  # pragma: no cover - a timer row with a tick has a schedule
                return 0, actor.effects
            limit = MAX_CATCHUP_TICKS if schedule.catchup else 1
            ticks = ticks_between(schedule, timer.next_tick_time, now, limit=limit)
            done = repo.handled(workflow_id, ticks)  # e.g. backfilled ahead of time
            for tick in ticks:
                if tick not in done:
                    self._start(actor, repo, ref, schedule, tick, backfill=False)
            last = ticks[-1] if ticks else timer.next_tick_time
            repo.move(workflow_id, next_fire_after(schedule.timer, now, previous=last))
            if actor.effects.events:
                append_events(c, actor.effects.events)
            return len(ticks), actor.effects

        count, effects = self._store.run(work)
        if self._on_effects is not None:
            self._on_effects(effects)
        return count

    def _start(
        self,
        actor: Actor,
        repo: ScheduleRepository,
        ref: WorkflowRef,
        schedule: Schedule,
        tick: datetime,
        *,
        backfill: bool,
    ) -> TickResult:
        """Start the execution of one tick, or record it skipped (paused / at the cap)."""
        settings = actor.scheduling.settings(ref.workflow_id)
        cap = settings.max_active_executions
        reason: str | None = None
        if settings.paused:
            reason = "the workflow is paused"
        elif cap is not None and actor.scheduling.running_count(ref.workflow_id) >= cap:
            reason = f"the workflow is at max_active_executions ({cap})"
        if reason is not None:
            repo.record(ref.workflow_id, tick, status=SKIPPED, reason=reason, backfill=backfill)
            return TickResult(tick, SKIPPED, reason=reason)
        view = actor.launch(
            ref,
            params={SCHEDULE_TIME_PARAM: tick.isoformat()},
            context=None,
            rule=f"{'backfill' if backfill else 'schedule'}: {schedule.describe()}",
            event_offset=None,
        )
        repo.record(
            ref.workflow_id, tick, status=STARTED, execution_id=view.execution_id, backfill=backfill
        )
        return TickResult(tick, STARTED, execution_id=view.execution_id)

    # -- backfill ------------------------------------------------------------------------------

    def backfill(
        self,
        project: str,
        workflow: str,
        start: datetime,
        end: datetime,
        *,
        progress: Callable[[TickResult], None] | None = None,
    ) -> list[TickResult]:
        """Start one execution per tick of the workflow's schedule in ``[start, end]``.

        Each tick is its own transaction; a tick already recorded is left alone (not in the
        result), so running the same backfill twice starts nothing the second time.

        Raises:
            NotFoundError: No such workflow.
            FailedPreconditionError: Its latest snapshot has no schedule.
            InvalidArgumentError: ``end`` is before ``start``, or the range holds more than
                :data:`MAX_BACKFILL_TICKS` ticks.
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise InvalidArgumentError("backfill times must be timezone-aware", field="start")
        if end < start:
            raise InvalidArgumentError(
                f"backfill range ends ({end.isoformat()}) before it starts ({start.isoformat()})",
                field="end",
            )

        def plan(c: Connection) -> tuple[int, Schedule]:
            ref = SchedulerRepository(c).workflow(project, workflow)
            schedule = None
            if ref.latest_snapshot_id is not None:
                schedule = self._plans.get(c, ref.latest_snapshot_id).schedule
            if schedule is None:
                raise FailedPreconditionError(
                    f"workflow {workflow!r} has no schedule to backfill: declare one with "
                    "wf.schedule(cron=... | interval=...) and submit it"
                )
            return ref.workflow_id, schedule

        workflow_id, schedule = self._store.run(plan, write=False)
        # Interval ticks are counted from the range's start.
        ticks = ticks_between(
            schedule,
            start.astimezone(UTC),
            end.astimezone(UTC),
            limit=MAX_BACKFILL_TICKS + 1,
            newest=False,
        )
        if len(ticks) > MAX_BACKFILL_TICKS:
            raise InvalidArgumentError(
                f"backfill range holds more than {MAX_BACKFILL_TICKS} ticks; split it",
                field="end",
            )
        results = []
        for tick in ticks:
            result = self._backfill_tick(workflow_id, schedule, tick)
            if result is not None:
                results.append(result)
                if progress is not None:
                    progress(result)
        return results

    def _backfill_tick(
        self, workflow_id: int, schedule: Schedule, tick: datetime
    ) -> TickResult | None:
        def work(c: Connection) -> tuple[TickResult | None, Effects]:
            actor = Actor(c, self._clock, self._plans, self._config, stage="backfill")
            ref = actor.scheduling.workflow_by_id(workflow_id, lock=True)
            repo = ScheduleRepository(c)
            if repo.handled(workflow_id, [tick]):
                return None, actor.effects
            result = self._start(actor, repo, ref, schedule, tick, backfill=True)
            if actor.effects.events:
                append_events(c, actor.effects.events)
            return result, actor.effects

        result, effects = self._store.run(work)
        if self._on_effects is not None:
            self._on_effects(effects)
        return result
