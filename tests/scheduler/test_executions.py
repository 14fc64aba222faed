"""Starting executions, control edges end to end (with a fake executor), routing, end states."""

from __future__ import annotations

import pytest

import tideflow as tide
from tests.scheduler.conftest import Env, jobs_workflow
from tideflow.domain.events import DATASET_UPDATED
from tideflow.errors import FailedPreconditionError, IllegalTransitionError, NotFoundError


def test_start_execution_starts_exactly_the_jobs_with_no_start_rule(env: Env) -> None:
    wf = jobs_workflow("flow", "a", "b", "c", "d")
    wf.after("b", "a")
    wf.on_event("c", "go", action=tide.JobAction.RESTART)
    wf.on_event("d", "halt", action=tide.JobAction.STOP)  # STOP rules do not hold a job back
    env.submit(wf)
    run = env.start("flow", params={"lr": 0.1})
    assert run.status.value == "RUNNING"
    assert run.params == {"lr": 0.1}
    assert env.attempts(run.execution_id) == [("a", 1, "INIT"), ("d", 1, "INIT")]
    assert env.command_ids(run.execution_id) == [
        f"{run.execution_id}:a:1:START",
        f"{run.execution_id}:d:1:START",
    ]
    assert [
        (job, action, rule, offset) for job, action, rule, offset in env.actions(run.execution_id)
    ] == [
        ("a", "START", "start of execution", None),
        ("d", "START", "start of execution", None),
    ]
    commands = env.service.take_commands("local")
    assert {c.job for c in commands} == {"a", "d"}
    assert all(c.snapshot_id == run.snapshot_id and c.project == env.project for c in commands)


def test_unknown_workflow_and_job_are_not_found(env: Env) -> None:
    with pytest.raises(NotFoundError, match="workflow 'nope' not found"):
        env.start("nope")
    env.submit(jobs_workflow("flow", "a"))
    run = env.start("flow")
    with pytest.raises(NotFoundError, match="has no job 'zzz'"):
        env.service.stop_job(env.project, run.execution_id, "zzz")


def test_after_with_two_upstreams_needs_both(env: Env) -> None:
    wf = jobs_workflow("flow", "a", "b", "report")
    wf.after("report", "a", "b")
    env.submit(wf)
    run = env.start("flow")
    env.run_job(run.execution_id, "a")
    assert ("report", 1, "INIT") not in env.attempts(run.execution_id)
    env.run_job(run.execution_id, "b")
    assert ("report", 1, "INIT") in env.attempts(run.execution_id)
    (action,) = [a for a in env.actions(run.execution_id) if a[0] == "report"]
    assert action[1:3] == ("START", "after a, b FINISHED")
    assert action[3] is not None
    env.run_job(run.execution_id, "report")
    assert env.status(run.execution_id) == "FINISHED"


def test_with_start_starts_when_upstream_runs(env: Env) -> None:
    wf = jobs_workflow("flow", "predict", "monitor", streaming=True)
    wf.with_start("monitor", "predict")
    env.submit(wf)
    run = env.start("flow")
    env.move(run.execution_id, "predict", "STARTING")
    env.run()
    assert ("monitor", 1, "INIT") not in env.attempts(run.execution_id)
    env.move(run.execution_id, "predict", "RUNNING")
    env.run()
    assert ("monitor", 1, "INIT") in env.attempts(run.execution_id)


def test_on_event_model_version_and_dataset_reach_running_executions(env: Env) -> None:
    wf = jobs_workflow("flow", "main", "ev", "mv", "ds", streaming=True)
    wf.on_event("ev", "signal", event_type="GO")
    wf.on_model_version("mv", model="ctr", event=tide.ModelVersionEvent.VALIDATED)
    wf.on_dataset("ds", "clicks")
    env.submit(wf)
    run = env.start("flow")
    env.send("signal", event_type="OTHER")
    env.send("unrelated", event_type="GO")
    env.run()
    assert [j for j, *_ in env.attempts(run.execution_id)] == ["main"]
    env.send("signal", event_type="GO")
    env.send("ctr", '{"version": 1}', event_type="MODEL_VALIDATED")
    env.send("clicks", "2", event_type=DATASET_UPDATED)
    env.run()
    assert sorted(j for j, *_ in env.attempts(run.execution_id)) == ["ds", "ev", "main", "mv"]
    rules = {a[0]: a[2] for a in env.actions(run.execution_id)}
    assert rules["mv"] == "on MODEL_VALIDATED of model ctr"
    assert rules["ds"] == "on update of dataset clicks"


def test_events_naming_an_execution_reach_only_it(env: Env) -> None:
    wf = jobs_workflow("flow", "main", "j", streaming=True)
    wf.on_event("j", "go")
    env.submit(wf)
    first, second = env.start("flow"), env.start("flow")
    env.send("go", execution_id=second.execution_id)
    env.run()
    assert [j for j, *_ in env.attempts(first.execution_id)] == ["main"]
    assert ("j", 1, "INIT") in env.attempts(second.execution_id)
    # Without an execution id, both running executions get it.
    env.send("go")
    env.run()
    assert ("j", 1, "INIT") in env.attempts(first.execution_id)


def test_job_status_changes_of_one_execution_do_not_reach_another(env: Env) -> None:
    wf = jobs_workflow("flow", "a", "b")
    wf.after("b", "a")
    env.submit(wf)
    first, second = env.start("flow"), env.start("flow")
    env.run_job(first.execution_id, "a")
    assert ("b", 1, "INIT") in env.attempts(first.execution_id)
    assert env.attempts(second.execution_id) == [("a", 1, "INIT")]


def test_other_projects_events_never_reach(env: Env) -> None:
    from tideflow.metadata import ProjectService

    wf = jobs_workflow("flow", "main", "j", streaming=True)
    wf.on_event("j", "go")
    env.submit(wf)
    run = env.start("flow")
    other = env.project + "_x"
    ProjectService(env.store).create_project(other)
    env.events.send(other, "go", "v")
    env.events.send(other, "go", "v", context={"execution_id": run.execution_id})
    env.run()
    assert env.attempts(run.execution_id) == [("main", 1, "INIT")]


def test_snapshot_pinning(env: Env) -> None:
    env.submit(jobs_workflow("flow", "a"))
    run = env.start("flow")
    env.submit(jobs_workflow("flow", "x", "y"))
    env.run_job(run.execution_id, "a")
    assert env.status(run.execution_id) == "FINISHED"
    assert env.attempts(run.execution_id) == [("a", 1, "FINISHED")]
    later = env.start("flow")
    assert later.snapshot_id != run.snapshot_id
    assert [j for j, *_ in env.attempts(later.execution_id)] == ["x", "y"]


def test_end_states(env: Env) -> None:
    env.submit(jobs_workflow("ok", "a"))
    env.submit(jobs_workflow("bad", "a", retries=1))
    periodic = jobs_workflow("tick", "a", "p")
    periodic.periodic("p", interval=60)
    env.submit(periodic)
    ok, bad, tick = env.start("ok"), env.start("bad"), env.start("tick")
    env.run_job(ok.execution_id, "a")
    assert env.status(ok.execution_id) == "FINISHED"
    env.run_job(bad.execution_id, "a", "FAILED")
    assert env.status(bad.execution_id) == "RUNNING"  # a retry is queued
    assert ("a", 2, "INIT") in env.attempts(bad.execution_id)
    env.run_job(bad.execution_id, "a", "FAILED")
    assert env.status(bad.execution_id) == "FAILED"
    assert len(env.jobs(bad.execution_id)) == 2
    env.run_job(tick.execution_id, "a")
    assert env.status(tick.execution_id) == "RUNNING"  # periodic rules keep it running
    ended = env.service.get_execution(env.project, ok.execution_id)
    assert ended.end_time is not None


def test_execution_waits_until_every_job_ran(env: Env) -> None:
    wf = jobs_workflow("flow", "a", "b")
    wf.on_event("b", "go")
    env.submit(wf)
    run = env.start("flow")
    env.run_job(run.execution_id, "a")
    assert env.status(run.execution_id) == "RUNNING"
    waits = env.service.waiting_on(env.project, run.execution_id)
    assert list(waits) == ["b"]
    assert waits["b"][0].startswith("event: event(key=go)")
    env.send("go")
    env.run()
    env.run_job(run.execution_id, "b")
    assert env.status(run.execution_id) == "FINISHED"


def test_stop_on_stops_the_execution(env: Env) -> None:
    wf = jobs_workflow("flow", "s", streaming=True)
    wf.stop_on(tide.EventMatch(key="shutdown"))
    env.submit(wf)
    run = env.start("flow")
    env.move(run.execution_id, "s", "STARTING", "RUNNING")
    env.send("shutdown")
    env.run()
    assert env.status(run.execution_id) == "STOPPED"
    assert f"{run.execution_id}:s:1:STOP" in env.command_ids(run.execution_id)
    assert (None, "STOP") in [(a[0], a[1]) for a in env.actions(run.execution_id)]


def test_stop_execution_and_jobs(env: Env) -> None:
    env.submit(jobs_workflow("flow", "a", "b", streaming=True))
    run = env.start("flow")
    env.move(run.execution_id, "a", "STARTING", "RUNNING")
    stopped = env.service.stop_job(env.project, run.execution_id, "b")
    # b's START was never taken: withdrawn, and the attempt is STOPPED at once.
    assert stopped is not None
    assert stopped.status.value == "STOPPED"
    restarted = env.service.restart_job(env.project, run.execution_id, "a")
    assert restarted.attempt == 2
    ids = env.command_ids(run.execution_id)
    assert f"{run.execution_id}:a:1:STOP" in ids
    assert f"{run.execution_id}:a:2:START" in ids
    # The START of attempt 2 waits for attempt 1 to end.
    assert [c.command_id for c in env.service.take_commands("local")] == [
        f"{run.execution_id}:a:1:START",
        f"{run.execution_id}:a:1:STOP",
    ]
    assert env.service.take_commands("local") == []
    first = next(j for j in env.jobs(run.execution_id) if j.job == "a" and j.attempt == 1)
    env.executions.set_job_status(env.project, first.job_execution_id, "STOPPED")
    assert [c.command_id for c in env.service.take_commands("local")] == [
        f"{run.execution_id}:a:2:START"
    ]
    ended = env.service.stop_execution(env.project, run.execution_id)
    assert ended.status.value == "STOPPED"
    with pytest.raises(IllegalTransitionError, match="STOPPED"):
        env.service.stop_execution(env.project, run.execution_id)
    with pytest.raises(IllegalTransitionError):
        env.service.restart_job(env.project, run.execution_id, "a")


def test_start_skipped_when_the_job_is_live(env: Env) -> None:
    wf = jobs_workflow("flow", "main", "j", streaming=True)
    wf.on_event("j", "go", life="once", on_busy="skip")
    env.submit(wf)
    run = env.start("flow")
    env.send("go")
    env.run()
    env.send("go")
    env.run()
    assert [a for a in env.attempts(run.execution_id) if a[0] == "j"] == [("j", 1, "INIT")]
    (_, second) = [a for a in env.actions(run.execution_id) if a[0] == "j"]
    assert second[2].endswith("(skipped: attempt 1 is INIT)")


def test_pause_resume_and_max_active(env: Env) -> None:
    env.submit(jobs_workflow("flow", "a"))
    env.service.pause_workflow(env.project, "flow")
    with pytest.raises(FailedPreconditionError, match="'flow' is paused"):
        env.start("flow")
    assert env.service.get_workflow_settings(env.project, "flow").paused
    env.service.resume_workflow(env.project, "flow")
    env.service.set_max_active_executions(env.project, "flow", 1)
    first = env.start("flow")
    with pytest.raises(FailedPreconditionError, match="already has 1 running execution"):
        env.start("flow")
    env.run_job(first.execution_id, "a")
    env.start("flow")
    env.service.set_max_active_executions(env.project, "flow", None)
    env.start("flow")
    with pytest.raises(tide.TideflowError, match="max_active_executions must be"):
        env.service.set_max_active_executions(env.project, "flow", 0)
