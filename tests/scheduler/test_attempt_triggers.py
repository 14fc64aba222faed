"""The events a rule fired on are stored with the attempt it starts and with its action."""

from __future__ import annotations

from datetime import UTC, datetime

import tideflow as tide
from tests.scheduler.conftest import Env, jobs_workflow
from tideflow.domain.metadata import ExecutionAction, JobExecution
from tideflow.notification.filters import EventFilter


def attempt(env: Env, execution_id: int, job: str, number: int = 1) -> JobExecution:
    (found,) = [j for j in env.jobs(execution_id) if j.job == job and j.attempt == number]
    return found


def actions_on(env: Env, execution_id: int, job: str) -> list[ExecutionAction]:
    return [a for a in env.service.list_actions(env.project, execution_id) if a.job == job]


def test_an_event_rule_stores_its_event_with_the_attempt_and_the_action(env: Env) -> None:
    wf = jobs_workflow("flow", "main", "j", streaming=True)
    wf.on_event("j", "go")
    env.submit(wf)
    run = env.start("flow")
    offset = env.send("go", "payload")
    env.run()
    assert attempt(env, run.execution_id, "j").trigger_offsets == (offset,)
    (action,) = actions_on(env, run.execution_id, "j")
    assert (action.event_offset, action.trigger_offsets) == (offset, (offset,))
    (event,) = env.executions.attempt_triggers(
        env.project, attempt(env, run.execution_id, "j").job_execution_id
    )
    assert event == env.events.get_many(env.project, [offset])[offset]
    assert event.value == "payload"


def test_after_two_upstreams_stores_both_finished_events(env: Env) -> None:
    wf = jobs_workflow("flow", "a", "b", "c")
    wf.after("c", "a", "b")
    env.submit(wf)
    run = env.start("flow")
    env.run_job(run.execution_id, "a")
    env.run_job(run.execution_id, "b")
    finished = [
        e.offset
        for e in env.events.list(env.project, EventFilter(keys=("flow.a", "flow.b"))).items
        if e.value == "FINISHED"
    ]
    assert len(finished) == 2
    assert attempt(env, run.execution_id, "c").trigger_offsets == tuple(sorted(finished))


def test_nothing_fired_means_no_triggers(env: Env) -> None:
    wf = jobs_workflow("flow", "a", "b", streaming=True)
    wf.on_event("b", "go")
    env.submit(wf)
    run = env.start("flow")  # a user's start: "a" starts with the execution
    assert attempt(env, run.execution_id, "a").trigger_offsets == ()
    env.send("go")
    env.run()
    env.service.restart_job(env.project, run.execution_id, "b")  # a user's restart
    assert attempt(env, run.execution_id, "b", 2).trigger_offsets == ()
    assert actions_on(env, run.execution_id, "b")[-1].trigger_offsets == ()
    restarted = attempt(env, run.execution_id, "b", 2).job_execution_id
    assert env.executions.attempt_triggers(env.project, restarted) == ()


def test_jobs_of_an_execution_a_start_on_rule_started_get_its_events(env: Env) -> None:
    wf = jobs_workflow("flow", "a", "b")
    wf.start_on(tide.all_of(tide.EventMatch(key="x"), tide.EventMatch(key="y")))
    env.submit(wf)
    x, y = env.send("x"), env.send("y")
    env.run()
    (run,) = env.service.list_executions(env.project, workflow="flow")
    for job in ("a", "b"):
        assert attempt(env, run.execution_id, job).trigger_offsets == (x, y)


def test_a_retry_keeps_the_trigger_of_the_attempt_it_retries(env: Env) -> None:
    wf = jobs_workflow("flow", "main", "j", streaming=True, retries=1)
    wf.on_event("j", "go")
    env.submit(wf)
    run = env.start("flow")
    offset = env.send("go")
    env.run()
    env.run_job(run.execution_id, "j", "FAILED")
    assert attempt(env, run.execution_id, "j", 2).trigger_offsets == (offset,)
    retry = actions_on(env, run.execution_id, "j")[-1]
    assert retry.rule.startswith("retry 1 of 1")
    assert retry.trigger_offsets == (offset,)


def test_a_skipped_start_records_its_events_on_the_action_only(env: Env) -> None:
    wf = jobs_workflow("flow", "main", "j", streaming=True)
    wf.on_event("j", "go", on_busy="skip")
    env.submit(wf)
    run = env.start("flow")
    first, second = env.send("go"), env.send("go")
    env.run()
    started, skipped = actions_on(env, run.execution_id, "j")
    assert "(skipped" in skipped.rule
    assert (started.trigger_offsets, skipped.trigger_offsets) == ((first,), (second,))
    assert [j.trigger_offsets for j in env.jobs(run.execution_id) if j.job == "j"] == [(first,)]


def test_a_periodic_rule_stores_its_timer_event(env: Env) -> None:
    env.clock.set(datetime(2024, 1, 1, tzinfo=UTC))
    wf = jobs_workflow("flow", "main", "tick", streaming=True)
    wf.periodic("tick", interval=60)
    env.submit(wf)
    run = env.start("flow")
    env.clock.advance(60)
    assert env.timers.fire_due() == 1
    env.run()
    (event,) = env.executions.attempt_triggers(
        env.project, attempt(env, run.execution_id, "tick").job_execution_id
    )
    assert (event.event_type, event.key, event.context["execution_id"]) == (
        "PERIODIC",
        "flow.tick",
        run.execution_id,
    )
