"""Periodic rules under a manual clock: cron in a time zone, intervals, persisted across restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.scheduler.conftest import Env, jobs_workflow
from tideflow.domain.rules import Periodic
from tideflow.errors import FailedPreconditionError
from tideflow.scheduler.periodic import next_fire_after
from tideflow.scheduler.timer import TimerService
from tideflow.store import list_events

T0 = datetime(2024, 1, 1, 0, 0, 30, tzinfo=UTC)


def test_next_fire_after_cron_interval_and_catch_up() -> None:
    hourly = Periodic(cron="0 * * * *")
    assert next_fire_after(hourly, T0) == datetime(2024, 1, 1, 1, tzinfo=UTC)
    nine_in_tokyo = Periodic(cron="0 9 * * *", timezone="Asia/Tokyo")
    assert next_fire_after(nine_in_tokyo, T0) == datetime(2024, 1, 1, 0, tzinfo=UTC) + timedelta(
        days=1
    )
    every = Periodic(interval_seconds=60)
    assert next_fire_after(every, T0) == T0 + timedelta(seconds=60)
    # Several missed periods: the next one after now, in phase with the previous.
    assert next_fire_after(every, T0 + timedelta(seconds=250), previous=T0) == T0 + timedelta(
        seconds=300
    )
    with pytest.raises(FailedPreconditionError, match="positive interval"):
        next_fire_after(Periodic(), T0)


def periodic_events(env: Env, execution_id: int) -> list[str]:
    return [
        e.value
        for e in env.store.run(lambda c: list_events(c, env.project, event_types=["PERIODIC"]))
        if e.context.get("execution_id") == execution_id
    ]


def starts(env: Env, execution_id: int, job: str) -> list[int]:
    return sorted(j.attempt for j in env.jobs(execution_id) if j.job == job)


@pytest.mark.parametrize(
    "periodic",
    [
        Periodic(cron="0 0 31 2 *"),
        Periodic(cron="*/0 * * * *"),
        Periodic(cron="0 0 * * *", timezone="Mars/Phobos"),
        Periodic(interval_seconds=0),
        Periodic(interval_seconds=-5),
    ],
)
def test_a_timer_that_cannot_fire_is_a_failed_precondition(periodic: Periodic) -> None:
    # Submit refuses these; a plan stored before it did gets a clear error, not INTERNAL.
    with pytest.raises(FailedPreconditionError, match="submit the workflow again"):
        next_fire_after(periodic, datetime(2024, 1, 1, tzinfo=UTC))


def test_cron_fires_on_schedule_under_a_manual_clock(env: Env) -> None:
    env.clock.set(T0)
    wf = jobs_workflow("flow", "main", "retrain", streaming=True)
    wf.periodic("retrain", cron="0 * * * *", timezone="UTC")
    env.submit(wf)
    run = env.start("flow")
    assert env.timers.fire_due() == 0
    env.clock.set(datetime(2024, 1, 1, 0, 59, 59, tzinfo=UTC))
    assert env.timers.fire_due() == 0
    env.clock.set(datetime(2024, 1, 1, 1, 0, tzinfo=UTC))
    assert env.timers.fire_due() == 1
    env.run()
    assert starts(env, run.execution_id, "retrain") == [1]
    (action,) = [a for a in env.actions(run.execution_id) if a[0] == "retrain"]
    assert action[2] == "periodic: cron '0 * * * *' (UTC)"
    # The job finishes; the next hour starts attempt 2; the execution stays RUNNING.
    env.run_job(run.execution_id, "retrain")
    assert env.status(run.execution_id) == "RUNNING"
    env.clock.set(datetime(2024, 1, 1, 2, 0, tzinfo=UTC))
    assert env.timers.fire_due() == 1
    env.run()
    assert starts(env, run.execution_id, "retrain") == [1, 2]


def test_missed_periods_fire_once_and_a_restart_neither_skips_nor_doubles(env: Env) -> None:
    env.clock.set(T0)
    wf = jobs_workflow("flow", "main", "tick", streaming=True)
    wf.periodic("tick", interval=60)
    env.submit(wf)
    run = env.start("flow")
    env.clock.advance(600)  # ten periods pass while "down"
    # A new timer service (a restarted server) sees the persisted timer: one firing.
    restarted = TimerService(env.store, env.clock, env.service.plans, env.service.config)
    assert restarted.fire_due() == 1
    assert restarted.fire_due() == 0
    assert env.timers.fire_due() == 0  # the old one does not fire it again either
    assert len(periodic_events(env, run.execution_id)) == 1
    env.clock.advance(59)
    assert restarted.fire_due() == 0
    env.clock.advance(1)
    assert restarted.fire_due() == 1
    env.run()
    assert len(periodic_events(env, run.execution_id)) == 2
    assert starts(env, run.execution_id, "tick") == [1]  # the second firing found it live


def test_a_crash_while_firing_redoes_the_firing_once(env: Env) -> None:
    from tideflow.scheduler import crash

    env.clock.set(T0)
    wf = jobs_workflow("flow", "main", "tick", streaming=True)
    wf.periodic("tick", interval=60)
    env.submit(wf)
    run = env.start("flow")
    env.clock.advance(60)

    def boom(point: str) -> None:
        if point == "timer.before_commit":
            raise RuntimeError("crash")

    crash.set_hook(boom)
    with pytest.raises(RuntimeError, match="crash"):
        env.timers.fire_due()
    crash.set_hook(None)
    assert periodic_events(env, run.execution_id) == []
    assert env.timers.fire_due() == 1
    assert len(periodic_events(env, run.execution_id)) == 1


def test_timers_go_with_the_execution(env: Env) -> None:
    env.clock.set(T0)
    wf = jobs_workflow("flow", "main", "tick", streaming=True)
    wf.periodic("tick", interval=60)
    env.submit(wf)
    run = env.start("flow")
    env.service.stop_execution(env.project, run.execution_id)
    env.clock.advance(120)
    env.timers.fire_due()
    assert periodic_events(env, run.execution_id) == []


def test_retries_wait_for_their_backoff(env: Env) -> None:
    env.clock.set(T0)
    env.submit(jobs_workflow("flow", "a", retries=2))
    run = env.start("flow")
    ours = f"{run.execution_id}:"

    def take() -> list[str]:
        return [
            c.command_id
            for c in env.service.take_commands("local", limit=1000)
            if c.command_id.startswith(ours)
        ]

    assert take() == [f"{ours}a:1:START"]
    env.run_job(run.execution_id, "a", "FAILED")
    assert take() == []  # due in 1 s
    env.clock.advance(1)
    assert take() == [f"{ours}a:2:START"]
    env.run_job(run.execution_id, "a", "FAILED")
    env.clock.advance(1.5)
    assert take() == []  # the second retry waits 2 s
    env.clock.advance(0.5)
    assert take() == [f"{ours}a:3:START"]
    env.run_job(run.execution_id, "a", "FAILED")
    assert env.status(run.execution_id) == "FAILED"
    rules = [a[2] for a in env.actions(run.execution_id)]
    assert rules[1:] == [
        "retry 1 of 2: attempt 1 FAILED (backoff 1s)",
        "retry 2 of 2: attempt 2 FAILED (backoff 2s)",
    ]


def test_a_success_resets_the_retry_count(env: Env) -> None:
    env.clock.set(T0)
    wf = jobs_workflow("flow", "main", "tick", streaming=False, retries=1)
    wf.periodic("tick", interval=60)
    env.submit(wf)
    run = env.start("flow")
    env.run_job(run.execution_id, "main")
    for _ in range(2):
        env.clock.advance(60)
        env.timers.fire_due()
        env.run()
        env.run_job(run.execution_id, "tick")
    env.clock.advance(60)
    env.timers.fire_due()
    env.run()
    env.run_job(run.execution_id, "tick", "FAILED")
    assert starts(env, run.execution_id, "tick") == [1, 2, 3, 4]  # attempt 3 failed, 4 retries
