"""Workflow schedules under a manual clock: ticks, catch-up, pause and cap, backfill."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.scheduler.conftest import Env, jobs_workflow
from tideflow.domain.schedule import Schedule
from tideflow.errors import FailedPreconditionError
from tideflow.scheduler.schedule import ScheduleService, ticks_between
from tideflow.store.repositories.schedule import ScheduleRepository
from tideflow.store.repositories.scheduler import SchedulerRepository

T0 = datetime(2024, 1, 1, 0, 0, 30, tzinfo=UTC)


@pytest.fixture
def schedules(env: Env) -> Iterator[ScheduleService]:
    env.clock.set(T0)
    service = ScheduleService(env.store, env.clock, env.service.plans, env.service.config)
    service.fire_due()  # follow the snapshots other tests left in the shared store
    yield service
    # The store outlives the test: this project's schedules never tick in another one.
    for name in env.submitted:

        def stop(c, name=name):  # type: ignore[no-untyped-def]
            ref = SchedulerRepository(c).workflow(env.project, name)
            ScheduleRepository(c).set_timer(ref.workflow_id, ref.latest_snapshot_id, None)

        env.store.run(stop)


def scheduled(env: Env, workflow: str = "flow") -> list[str]:
    """The ``schedule_time`` params of the workflow's executions, in start order."""
    runs = env.service.list_executions(env.project, workflow=workflow, limit=1000)
    return sorted(run.params["schedule_time"] for run in runs)


def ticks(env: Env, workflow: str = "flow") -> list[tuple[str, str, str | None]]:
    def read(c):  # type: ignore[no-untyped-def]
        ref = SchedulerRepository(c).workflow(env.project, workflow)
        return ScheduleRepository(c).ticks(ref.workflow_id, 1000)

    return sorted(
        (t.tick_time.isoformat(), t.status, t.reason) for t in env.store.run(read, write=False)
    )


def iso(minutes: float, hours: int = 0) -> str:
    return (datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=hours, minutes=minutes)).isoformat()


def test_ticks_between_cron_interval_and_bounds() -> None:
    hourly = Schedule(cron="0 * * * *")
    start = datetime(2024, 1, 1, 1, tzinfo=UTC)
    end = datetime(2024, 1, 1, 4, 30, tzinfo=UTC)
    assert ticks_between(hourly, start, end, limit=10) == [
        start + timedelta(hours=h) for h in range(4)
    ]
    assert ticks_between(hourly, start, end, limit=2) == [
        start + timedelta(hours=h) for h in (2, 3)
    ]
    assert ticks_between(hourly, start, end, limit=2, newest=False) == [
        start,
        start + timedelta(hours=1),
    ]
    every = Schedule(interval_seconds=60)
    assert ticks_between(every, start, start + timedelta(seconds=150), limit=10) == [
        start,
        start + timedelta(seconds=60),
        start + timedelta(seconds=120),
    ]
    assert ticks_between(every, start, start - timedelta(seconds=1), limit=10) == []


def test_each_tick_starts_one_execution_with_its_time_even_across_a_restart(
    env: Env, schedules: ScheduleService
) -> None:
    wf = jobs_workflow("flow", "main")
    wf.schedule(interval=timedelta(minutes=1))
    env.submit(wf)
    assert schedules.fire_due() == 0
    assert schedules.next_tick() == T0 + timedelta(minutes=1)
    env.clock.set(T0 + timedelta(minutes=1))
    assert schedules.fire_due() == 1
    assert schedules.fire_due() == 0  # the same tick never starts twice
    # A restart: a new service on the same store sees the tick done.
    again = ScheduleService(env.store, env.clock, env.service.plans, env.service.config)
    assert again.fire_due() == 0
    env.clock.set(T0 + timedelta(minutes=2))
    assert again.fire_due() == 1
    assert scheduled(env) == [iso(1.5), iso(2.5)]
    (run, _) = env.service.list_executions(env.project, workflow="flow", limit=10)
    assert [a[2] for a in env.actions(run.execution_id)] == ["schedule: every 60s, catchup=False"]


def test_a_tick_due_while_the_server_was_down_is_not_lost(
    env: Env, schedules: ScheduleService
) -> None:
    wf = jobs_workflow("flow", "main")
    wf.schedule(cron="0 * * * *")
    env.submit(wf)
    schedules.fire_due()
    env.clock.set(datetime(2024, 1, 1, 1, 0, 5, tzinfo=UTC))
    # No scheduler ran at 01:00; the one started now still starts the 01:00 tick, once.
    ScheduleService(env.store, env.clock, env.service.plans, env.service.config).fire_due()
    assert scheduled(env) == [iso(0, hours=1)]


@pytest.mark.parametrize(
    ("catchup", "expected"),
    [(False, [iso(0, hours=5)]), (True, [iso(0, hours=h) for h in range(1, 6)])],
)
def test_catchup_after_downtime(
    env: Env, schedules: ScheduleService, catchup: bool, expected: list[str]
) -> None:
    wf = jobs_workflow("flow", "main")
    wf.schedule(cron="0 * * * *", timezone="UTC", catchup=catchup)
    env.submit(wf)
    schedules.fire_due()
    env.clock.set(datetime(2024, 1, 1, 5, 30, tzinfo=UTC))  # down from 00:00:30 to 05:30
    schedules.fire_due()
    assert scheduled(env) == expected
    assert schedules.next_tick() == datetime(2024, 1, 1, 6, tzinfo=UTC)


def test_catchup_is_bounded(env: Env, schedules: ScheduleService) -> None:
    wf = jobs_workflow("flow", "main")
    wf.schedule(interval=1, catchup=True)
    env.submit(wf)
    schedules.fire_due()
    env.clock.set(T0 + timedelta(seconds=250.5))
    assert schedules.fire_due() == 100
    starts = scheduled(env)
    assert len(starts) == 100
    assert starts[-1] == (T0 + timedelta(seconds=250)).isoformat()


def test_paused_and_capped_ticks_are_skipped_not_caught_up(
    env: Env, schedules: ScheduleService
) -> None:
    wf = jobs_workflow("flow", "main")
    wf.schedule(interval=timedelta(minutes=1), catchup=True)
    env.submit(wf)
    schedules.fire_due()
    env.service.pause_workflow(env.project, "flow")
    env.clock.set(T0 + timedelta(minutes=1))
    schedules.fire_due()
    env.service.resume_workflow(env.project, "flow")
    schedules.fire_due()
    assert scheduled(env) == []  # resuming does not catch the skipped tick up
    env.service.set_max_active_executions(env.project, "flow", 1)
    env.clock.set(T0 + timedelta(minutes=2))
    schedules.fire_due()
    env.clock.set(T0 + timedelta(minutes=3))  # the minute-2 execution still runs
    schedules.fire_due()
    assert scheduled(env) == [iso(2.5)]
    assert ticks(env) == [
        (iso(1.5), "SKIPPED", "the workflow is paused"),
        (iso(2.5), "STARTED", None),
        (iso(3.5), "SKIPPED", "the workflow is at max_active_executions (1)"),
    ]


def test_resubmitting_the_same_schedule_keeps_the_due_tick(
    env: Env, schedules: ScheduleService
) -> None:
    wf = jobs_workflow("flow", "main")
    wf.schedule(cron="0 * * * *")
    env.submit(wf)
    schedules.fire_due()
    env.clock.set(datetime(2024, 1, 1, 1, 0, 5, tzinfo=UTC))
    other = jobs_workflow("flow", "main", "extra")
    other.schedule(cron="0 * * * *")
    env.submit(other)
    schedules.fire_due()
    assert scheduled(env) == [iso(0, hours=1)]
    # A workflow resubmitted without a schedule stops ticking.
    env.submit(jobs_workflow("flow", "main"))
    schedules.fire_due()
    env.clock.set(datetime(2024, 1, 1, 3, tzinfo=UTC))
    schedules.fire_due()
    assert scheduled(env) == [iso(0, hours=1)]


def test_backfill_starts_each_tick_once(env: Env, schedules: ScheduleService) -> None:
    wf = jobs_workflow("flow", "main")
    wf.schedule(cron="0 0 * * *")
    env.submit(wf)
    seen = []
    done = schedules.backfill(
        env.project,
        "flow",
        datetime(2023, 12, 1, tzinfo=UTC),
        datetime(2023, 12, 3, 12, tzinfo=UTC),
        progress=seen.append,
    )
    assert [r.tick_time.day for r in done] == [1, 2, 3]
    assert seen == done
    assert all(r.status == "STARTED" and r.execution_id for r in done)
    again = schedules.backfill(
        env.project, "flow", datetime(2023, 11, 30, tzinfo=UTC), datetime(2023, 12, 3, tzinfo=UTC)
    )
    assert [r.tick_time.day for r in again] == [30]
    assert len(scheduled(env)) == 4


def test_backfill_needs_a_schedule(env: Env, schedules: ScheduleService) -> None:
    env.submit(jobs_workflow("flow", "main"))
    with pytest.raises(FailedPreconditionError, match="has no schedule to backfill"):
        schedules.backfill(env.project, "flow", T0, T0 + timedelta(days=1))


def test_the_scheduler_threads_tick_schedules(env: Env, schedules: ScheduleService) -> None:
    import time

    from tideflow.scheduler.runtime import Scheduler

    wf = jobs_workflow("flow", "main")
    wf.schedule(interval=timedelta(minutes=1))
    env.submit(wf)
    scheduler = Scheduler(env.store, env.service)
    scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while scheduler.schedules.next_tick() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # the timer thread follows the new snapshot on its first look
        env.clock.set(T0 + timedelta(minutes=1))  # a jump wakes the timer thread
        while not scheduled(env) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        scheduler.stop()
    assert scheduled(env) == [iso(1.5)]
