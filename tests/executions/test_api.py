"""Executions, jobs, logs and workflow settings through a real server, over gRPC.

Every Scheduler Service RPC added for executions and jobs is called through the remote client
(``c.workflows``, ``c.executions``, ``c.jobs``), with its error mapping.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import tideflow as tide
from tests.executions.conftest import WAIT, submit, wait_for_job
from tideflow.client import Client, connect
from tideflow.client.default import set_default_client
from tideflow.domain.status import ExecutionStatus, JobAction, JobStatus
from tideflow.errors import (
    FailedPreconditionError,
    IllegalTransitionError,
    InvalidArgumentError,
    NotFoundError,
)

UNKNOWN = 987654


def test_an_after_chain_runs_to_finished_with_params_actions_and_logs(
    client: Client, flows: Path
) -> None:
    assert client.url.startswith("grpc://")
    submit(client, flows, "chain")
    run = client.workflows.start("chain", params={"greeting": "bonjour"})
    assert run.status is ExecutionStatus.RUNNING
    assert dict(run.params) == {"greeting": "bonjour"}

    done = client.executions.wait(run.execution_id, timeout=WAIT)

    assert done.status is ExecutionStatus.FINISHED
    assert done.end_time is not None
    jobs = client.jobs.list(run.execution_id)
    assert [(j.job, j.attempt, j.status) for j in jobs] == [
        ("first", 1, JobStatus.FINISHED),
        ("second", 1, JobStatus.FINISHED),
    ]
    actions = client.executions.actions(run.execution_id)
    assert [(a.job, a.action, a.rule) for a in actions] == [
        ("first", JobAction.START, "start of execution"),
        ("second", JobAction.START, "after first FINISHED"),
    ]
    assert actions[0].event_offset is None
    (finished,) = client.events.list(key="chain.first", event_type="JOB_STATUS_CHANGED").items[-1:]
    assert finished.value == "FINISHED"
    assert actions[1].event_offset == finished.offset
    assert client.executions.waiting_on(run.execution_id) == {}

    assert "first says bonjour" in client.jobs.logs(run.execution_id, "first")
    assert "second runs" in client.jobs.logs(run.execution_id, "second", attempt=1)
    tail = client.jobs.logs(run.execution_id, "first", tail=1)
    assert tail.count("\n") == 1
    assert "ended FINISHED" in tail
    # Following an ended attempt yields its log and returns.
    assert "second runs" in "".join(client.jobs.follow_logs(run.execution_id, "second"))


def test_executions_are_listed_newest_first_and_filtered(client: Client, flows: Path) -> None:
    submit(client, flows, "chain")
    submit(client, flows, "waits")
    first = client.workflows.start("chain")
    client.executions.wait(first.execution_id, timeout=WAIT)
    waiting = client.workflows.start("waits")

    assert [e.execution_id for e in client.executions.list()] == [
        waiting.execution_id,
        first.execution_id,
    ]
    assert [e.execution_id for e in client.executions.list(workflow="chain")] == [
        first.execution_id
    ]
    assert [e.execution_id for e in client.executions.list(status="running")] == [
        waiting.execution_id
    ]
    assert [e.execution_id for e in client.executions.list(status=ExecutionStatus.FINISHED)] == [
        first.execution_id
    ]
    assert len(client.executions.list(limit=1)) == 1
    assert client.executions.get(first.execution_id).status is ExecutionStatus.FINISHED
    with pytest.raises(InvalidArgumentError, match="unknown execution status 'DONE'"):
        client.executions.list(status="DONE")
    with pytest.raises(InvalidArgumentError, match="limit"):
        client.executions.list(limit=0)
    client.executions.stop(waiting.execution_id)


def test_unknown_executions_raise_not_found_naming_them(client: Client) -> None:
    calls = [
        lambda: client.executions.get(UNKNOWN),
        lambda: client.executions.stop(UNKNOWN),
        lambda: client.executions.actions(UNKNOWN),
        lambda: client.executions.waiting_on(UNKNOWN),
        lambda: client.jobs.stop(UNKNOWN, "first"),
        lambda: client.jobs.restart(UNKNOWN, "first"),
        lambda: client.jobs.logs(UNKNOWN, "first"),
    ]
    for call in calls:
        with pytest.raises(NotFoundError, match=str(UNKNOWN)):
            call()
    assert client.jobs.list(UNKNOWN) == []  # a filter that matches nothing
    with pytest.raises(NotFoundError, match="workflow 'nowhere'"):
        client.workflows.start("nowhere")


def test_stopping_an_ended_execution_is_an_illegal_transition(client: Client, flows: Path) -> None:
    submit(client, flows, "chain")
    run = client.workflows.start("chain")
    client.executions.wait(run.execution_id, timeout=WAIT)
    with pytest.raises(IllegalTransitionError, match="FINISHED -> STOPPED"):
        client.executions.stop(run.execution_id)
    with pytest.raises(IllegalTransitionError, match="FINISHED"):
        client.jobs.restart(run.execution_id, "first")


def test_a_paused_workflow_refuses_to_start_until_resumed(client: Client, flows: Path) -> None:
    submit(client, flows, "waits")
    assert client.workflows.settings("waits").paused is False

    paused = client.workflows.pause("waits")

    assert paused.paused is True
    assert client.workflows.settings("waits").paused is True
    with pytest.raises(FailedPreconditionError, match="paused"):
        client.workflows.start("waits")
    assert client.workflows.resume("waits").paused is False
    run = client.workflows.start("waits")
    client.executions.stop(run.execution_id)
    with pytest.raises(NotFoundError, match="nowhere"):
        client.workflows.pause("nowhere")


def test_max_active_executions_caps_running_executions(client: Client, flows: Path) -> None:
    submit(client, flows, "waits")
    settings = client.workflows.set_max_active_executions("waits", 1)
    assert settings.max_active_executions == 1
    run = client.workflows.start("waits")
    with pytest.raises(FailedPreconditionError, match="max_active_executions"):
        client.workflows.start("waits")
    client.executions.stop(run.execution_id)
    again = client.workflows.start("waits")  # the stopped one no longer counts
    client.executions.stop(again.execution_id)
    assert client.workflows.set_max_active_executions("waits", None).max_active_executions is None
    with pytest.raises(InvalidArgumentError, match="max_active_executions"):
        client.workflows.set_max_active_executions("waits", 0)


def test_waiting_on_names_the_rule_and_restart_runs_the_idle_job(
    client: Client, flows: Path
) -> None:
    submit(client, flows, "waits")
    run = client.workflows.start("waits")
    wait_for_job(client, run.execution_id, "waits", "first", "FINISHED")

    waiting = client.executions.waiting_on(run.execution_id)
    assert list(waiting) == ["idle"]
    (rule,) = waiting["idle"]
    assert "NEVER_SENT" in rule
    assert "nothing" in rule
    with pytest.raises(NotFoundError, match="has not run yet"):
        client.jobs.logs(run.execution_id, "idle")
    with pytest.raises(NotFoundError, match="no job 'ghost'"):
        client.jobs.restart(run.execution_id, "ghost")
    assert client.jobs.stop(run.execution_id, "idle") is None  # never ran: nothing to stop

    attempt = client.jobs.restart(run.execution_id, "idle")

    assert (attempt.job, attempt.attempt) == ("idle", 1)
    done = client.executions.wait(run.execution_id, timeout=WAIT)
    assert done.status is ExecutionStatus.FINISHED
    actions = [(a.job, a.action, a.rule) for a in client.executions.actions(run.execution_id)]
    assert ("idle", JobAction.RESTART, "user request") in actions
    assert "ok idle" in client.jobs.logs(run.execution_id, "idle")


def test_stop_job_ends_a_running_attempt_and_follow_logs_sees_it_through(
    client: Client, flows: Path
) -> None:
    submit(client, flows, "holds")
    run = client.workflows.start("holds")
    wait_for_job(client, run.execution_id, "holds", "hold", "RUNNING")
    pieces: list[str] = []
    followed = threading.Event()

    def follow() -> None:
        for text in client.jobs.follow_logs(run.execution_id, "hold", interval=0.05):
            pieces.append(text)
        followed.set()

    follower = threading.Thread(target=follow)
    follower.start()
    # RUNNING means its processors are open; the stop must come once the job has printed.
    deadline = time.monotonic() + WAIT
    while "holding" not in "".join(pieces):
        assert time.monotonic() < deadline, "the job never printed"
        time.sleep(0.02)
    stopping = client.jobs.stop(run.execution_id, "hold")
    assert stopping is not None
    assert stopping.attempt == 1
    wait_for_job(client, run.execution_id, "holds", "hold", "STOPPED")
    follower.join(WAIT)

    assert followed.is_set()
    text = "".join(pieces)
    assert "holding" in text
    assert text == client.jobs.logs(run.execution_id, "hold")  # nothing twice, nothing lost
    (attempt,) = client.jobs.list(run.execution_id)
    assert attempt.status is JobStatus.STOPPED
    # Nothing is live and every job has run: the execution ends (docs/scheduler.md).
    assert client.executions.wait(run.execution_id, timeout=WAIT).status is (
        ExecutionStatus.FINISHED
    )


def test_tide_start_and_stop_use_the_default_client(client: Client, flows: Path) -> None:
    submit(client, flows, "waits")
    previous = set_default_client(client)
    try:
        run = tide.start("waits", params={"n": 1})
        assert client.executions.get(run.execution_id).params == {"n": 1}
        stopped = tide.stop(run)
        assert stopped.status is ExecutionStatus.STOPPED
        with pytest.raises(IllegalTransitionError):
            tide.stop(run.execution_id)
    finally:
        set_default_client(previous)


def test_job_log_arguments_are_checked(client: Client, flows: Path) -> None:
    submit(client, flows, "chain")
    run = client.workflows.start("chain")
    client.executions.wait(run.execution_id, timeout=WAIT)
    with pytest.raises(NotFoundError, match="no attempt 7"):
        client.jobs.logs(run.execution_id, "first", attempt=7)
    with pytest.raises(InvalidArgumentError, match="tail"):
        client.jobs.logs(run.execution_id, "first", tail=0)
    with pytest.raises(InvalidArgumentError, match="after"):
        client.jobs.read_log(run.execution_id, "first", after=-1)
    log = client.jobs.read_log(run.execution_id, "first")
    assert log.complete
    assert log.status is JobStatus.FINISHED
    assert log.after == log.size > 0
    rest = client.jobs.read_log(run.execution_id, "first", after=log.after)
    assert (rest.text, rest.start, rest.complete) == ("", log.size, True)


def test_the_executors_calls_are_refused_by_a_remote_client(client: Client) -> None:
    scheduler = client.services.scheduler
    assert scheduler is not None
    with pytest.raises(FailedPreconditionError, match="take_commands is for executors"):
        scheduler.take_commands("local")
    with pytest.raises(FailedPreconditionError, match="inside the Tideflow server"):
        scheduler.wait_for_commands(0.1)
    with pytest.raises(FailedPreconditionError, match="running_attempts"):
        scheduler.running_attempts("local")
    with pytest.raises(FailedPreconditionError, match="complete_command"):
        scheduler.complete_command("1:a:1:START")


def test_an_in_process_client_on_the_servers_store_starts_what_the_server_runs(
    server: Any, project: str, flows: Path
) -> None:
    with connect(server.db_url, project=project) as local:
        assert local.store is not None
        submit(local, flows, "chain")
        run = local.workflows.start("chain")
        done = local.executions.wait(run.execution_id, timeout=WAIT)
        assert done.status is ExecutionStatus.FINISHED
        assert "first says hello" in local.jobs.logs(run.execution_id, "first")
