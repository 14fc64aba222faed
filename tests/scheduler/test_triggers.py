"""start_on rules: new executions from events, per_context executions started on demand."""

from __future__ import annotations

import tideflow as tide
from tests.scheduler.conftest import Env, jobs_workflow


def executions(env: Env, workflow: str) -> list[tuple[str | None, str]]:
    return sorted(
        (e.context, e.status.value)
        for e in env.service.list_executions(env.project, workflow=workflow)
    )


def test_start_on_starts_a_new_execution_per_firing(env: Env) -> None:
    wf = jobs_workflow("flow", "a")
    wf.start_on(tide.EventMatch(key="kick"))
    env.submit(wf)
    offset = env.send("kick")
    env.run()
    (run,) = env.service.list_executions(env.project, workflow="flow")
    assert env.attempts(run.execution_id) == [("a", 1, "INIT")]
    assert env.actions(run.execution_id) == [("a", "START", "start_on: event(key=kick)", offset)]
    env.send("kick")
    env.send("other")
    env.run()
    assert len(env.service.list_executions(env.project, workflow="flow")) == 2


def test_start_on_respects_pause_and_the_latest_snapshot(env: Env) -> None:
    wf = jobs_workflow("flow", "a")
    wf.start_on(tide.EventMatch(key="kick"))
    env.submit(wf)
    env.service.pause_workflow(env.project, "flow")
    env.send("kick")
    env.run()
    assert executions(env, "flow") == []
    env.service.resume_workflow(env.project, "flow")
    changed = jobs_workflow("flow", "a")
    changed.start_on(tide.EventMatch(key="go"))
    env.submit(changed)  # the new snapshot listens to "go" only
    env.send("kick")
    env.run()
    assert executions(env, "flow") == []
    env.send("go")
    env.run()
    assert executions(env, "flow") == [(None, "RUNNING")]


def test_start_on_all_of_keeps_state_between_events(env: Env) -> None:
    wf = jobs_workflow("flow", "a")
    wf.start_on(tide.all_of(tide.EventMatch(key="x"), tide.EventMatch(key="y")))
    env.submit(wf)
    env.send("x")
    env.run()
    assert executions(env, "flow") == []
    env.send("y")
    env.run()
    assert executions(env, "flow") == [(None, "RUNNING")]


def test_per_context_executions_are_started_on_demand(env: Env) -> None:
    wf = jobs_workflow("flow", "main", "j", per_context=True, streaming=True)
    wf.start_on(tide.EventMatch(key="order"))
    wf.on_event("j", "order")
    env.submit(wf)
    env.send("order", context="c1")
    env.send("order", context="c2")
    env.send("order")  # no context string: a per_context workflow ignores it
    env.run()
    runs = {e.context: e for e in env.service.list_executions(env.project, workflow="flow")}
    assert sorted(runs) == ["c1", "c2"]
    # The starting event is not delivered to the execution it started.
    assert env.attempts(runs["c1"].execution_id) == [("main", 1, "INIT")]
    env.send("order", context="c1")
    env.run()
    assert ("j", 1, "INIT") in env.attempts(runs["c1"].execution_id)
    assert env.attempts(runs["c2"].execution_id) == [("main", 1, "INIT")]
    assert len(env.service.list_executions(env.project, workflow="flow")) == 2
    # When c1's execution has ended, the next c1 event starts a new one.
    env.service.stop_execution(env.project, runs["c1"].execution_id)
    env.send("order", context="c1")
    env.run()
    assert executions(env, "flow") == [("c1", "RUNNING"), ("c1", "STOPPED"), ("c2", "RUNNING")]


def test_start_on_a_model_version_event(env: Env) -> None:
    wf = jobs_workflow("flow", "a")
    wf.start_on(tide.EventMatch(key="ctr", event_type="MODEL_VALIDATED"))
    env.submit(wf)
    env.send("ctr", event_type="MODEL_GENERATED")
    env.send("ctr", event_type="MODEL_VALIDATED")
    env.run()
    assert executions(env, "flow") == [(None, "RUNNING")]
