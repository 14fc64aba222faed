"""A long execution is decided from its recent attempts, not from all of them.

An execution that restarts a job per event keeps one ended attempt per event. The scheduler's
view of it (``Actor.view``) holds each job's live attempts and its newest ``retries + 1``: what
every decision reads. These tests build long, mixed histories and check that the view agrees
with the full history on everything a decision reads, and that the decisions themselves
(attempt numbers, retries, stops) come out as they would with the whole history.
"""

from __future__ import annotations

from sqlalchemy import Connection

from tests.scheduler.conftest import Env, jobs_workflow
from tideflow.domain.metadata import JobExecution
from tideflow.domain.status import JobStatus
from tideflow.scheduler.actions import Actor
from tideflow.scheduler.execution import ExecutionView, consecutive_failures


def view_of(env: Env, execution_id: int) -> ExecutionView:
    def read(c: Connection) -> ExecutionView:
        actor = Actor(c, env.clock, env.service.plans, env.service.config)
        return actor.view(env.project, execution_id)

    return env.store.run(read)


def newest_first(attempts: list[JobExecution], job: str) -> list[JobExecution]:
    return sorted((a for a in attempts if a.job == job), key=lambda a: -a.attempt)


def restarting_flow(env: Env, *, retries: int) -> int:
    """A running execution whose job ``j`` restarts on every ``go`` event; its id."""
    wf = jobs_workflow("flow", "main", "j", streaming=True, retries=retries)
    wf.on_event("j", "go", action="RESTART", life="repeated")
    env.submit(wf)
    run = env.start("flow")
    env.move(run.execution_id, "main", "STARTING", "RUNNING")
    return run.execution_id


def send_go(env: Env, times: int) -> None:
    for _ in range(times):
        env.send("go")
        env.run()


def test_restarts_per_event_keep_the_view_short_and_the_numbers_right(env: Env) -> None:
    execution_id = restarting_flow(env, retries=2)
    send_go(env, 40)

    full = env.jobs(execution_id)
    js = newest_first(full, "j")
    assert [a.attempt for a in js] == list(range(40, 0, -1))  # numbered on, none reused
    assert [a.status for a in js[1:]] == [JobStatus.STOPPED] * 39  # each START withdrawn
    view = view_of(env, execution_id)
    # j: its one live attempt (the newest) and the two before it -- not forty.
    assert [a.attempt for a in view.attempts["j"]] == [38, 39, 40]
    assert view.latest("j") == js[0]
    assert [a.attempt for a in view.live("main")] == [1]

    env.send("go")  # one more: the next attempt follows the newest, as before
    env.run()
    assert newest_first(env.jobs(execution_id), "j")[0].attempt == 41


def test_an_old_attempt_that_never_stopped_stays_in_the_view(env: Env) -> None:
    execution_id = restarting_flow(env, retries=0)  # the newest 1 is kept
    send_go(env, 1)
    env.move(execution_id, "j", "STARTING", "RUNNING")  # attempt 1 runs; its STOP is ignored
    send_go(env, 10)

    full = env.jobs(execution_id)
    live = [a for a in full if a.job == "j" and not a.status.is_terminal]
    assert [a.attempt for a in live] == [1, 11]  # 2..10 withdrawn, 1 still RUNNING
    view = view_of(env, execution_id)
    assert [a.attempt for a in view.live("j")] == [1, 11]
    assert [a.attempt for a in view.attempts["j"]] == [1, 11]
    # Every RESTART asked attempt 1 to stop again: it was live in each view.
    stops = [c for c in env.command_ids(execution_id) if c.endswith(":j:1:STOP")]
    assert stops == [f"{execution_id}:j:1:STOP"]


def test_retries_count_the_failures_in_a_row_after_a_long_history(env: Env) -> None:
    execution_id = restarting_flow(env, retries=2)
    send_go(env, 12)  # a long history: attempts 1-11 withdrawn, 12 waiting
    env.run_job(execution_id, "j", "FAILED")  # attempt 12 fails: retry 1 of 2 (attempt 13)
    env.clock.advance(10)
    env.run_job(execution_id, "j", "FAILED")  # retry 2 of 2 (attempt 14)
    env.clock.advance(10)
    env.run_job(execution_id, "j", "FAILED")  # three in a row: no retry left
    js = newest_first(env.jobs(execution_id), "j")
    assert js[0].attempt == 14
    assert [a.status for a in js[:3]] == [JobStatus.FAILED] * 3
    assert js[3].status is JobStatus.STOPPED
    rules = [a[2] for a in env.actions(execution_id) if a[0] == "j"]
    assert [r for r in rules if r.startswith("retry")] == [
        "retry 1 of 2: attempt 12 FAILED (backoff 1s)",
        "retry 2 of 2: attempt 13 FAILED (backoff 2s)",
    ]
    view = view_of(env, execution_id)
    assert consecutive_failures(view.attempts["j"]) == 3
    assert len(view.attempts["j"]) == 3


def test_a_plan_with_more_jobs_than_one_statement_takes(env: Env) -> None:
    """The view reads jobs in chunks: SQLite allows 500 parts in one compound SELECT."""
    names = [f"j{i}" for i in range(510)]
    env.submit(jobs_workflow("wide", *names))
    run = env.start("wide")  # every job starts: the view covers all 510
    view = view_of(env, run.execution_id)
    assert sorted(view.attempts) == sorted(names)
    assert all([a.attempt for a in view.attempts[name]] == [1] for name in names)
    env.service.stop_job(env.project, run.execution_id, "j509")
    assert view_of(env, run.execution_id).latest("j509").status is JobStatus.STOPPED  # type: ignore[union-attr]
