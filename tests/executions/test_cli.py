"""``tideflow run``, ``workflow start|stop|pause|resume``, ``execution ...`` and ``job ...``
as real processes against a real server with the local executor."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.executions.conftest import submit
from tideflow.client import Client
from tideflow.testing import TideflowTestServer, run_cli

DEADLINE = 90.0


def tideflow(
    server: TideflowTestServer, project: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        *args,
        "--server",
        server.url,
        "--project",
        project,
        env={"COLUMNS": "200"},
        timeout=DEADLINE,
    )


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def started_id(out: str) -> str:
    found = re.search(r"started execution (\d+) of workflow", out)
    assert found, out
    return found.group(1)


def test_run_follows_an_after_chain_to_finished(
    server: TideflowTestServer, project: str, flows: Path
) -> None:
    done = tideflow(server, project, "run", str(flows / "chain" / "flow.py"), "--param", "x=3")

    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.search(r"started execution \d+ of workflow chain", out)
    # One line per status change as it happened (not a terminal: no live table).
    assert out.index("first  attempt 1  RUNNING") < out.index("second  attempt 1  RUNNING")
    assert "FINISHED" in out
    assert "after first FINISHED" in out
    assert "start of execution" in out


def test_run_json_reports_jobs_and_actions(
    server: TideflowTestServer, project: str, flows: Path
) -> None:
    done = tideflow(
        server, project, "run", str(flows / "chain" / "flow.py"), "--param", "greeting=hi", "--json"
    )

    assert done.returncode == 0, done.stderr
    report = as_json(done)
    assert report["execution"]["status"] == "FINISHED"
    assert report["execution"]["params"] == {"greeting": "hi"}
    assert [(j["job"], j["status"]) for j in report["jobs"]] == [
        ("first", "FINISHED"),
        ("second", "FINISHED"),
    ]
    assert [(a["job"], a["action"], a["rule"]) for a in report["actions"]] == [
        ("first", "START", "start of execution"),
        ("second", "START", "after first FINISHED"),
    ]
    assert report["actions"][0]["event_offset"] is None
    assert isinstance(report["actions"][1]["event_offset"], int)
    assert report["timed_out"] is False


def test_run_exits_non_zero_when_a_job_fails(
    server: TideflowTestServer, project: str, flows: Path
) -> None:
    done = tideflow(server, project, "run", str(flows / "fails" / "flow.py"))

    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED" in done.stdout
    assert "job boom attempt 1 FAILED" in done.stderr
    assert "boom on purpose" in done.stderr
    run = started_id(done.stdout)
    assert f"tideflow job logs {run} boom --attempt 1" in done.stderr


def test_run_timeout_names_what_the_idle_job_waits_on(
    server: TideflowTestServer, project: str, flows: Path
) -> None:
    done = tideflow(server, project, "run", str(flows / "waits" / "flow.py"), "--timeout", "2")

    assert done.returncode == 124, done.stdout + done.stderr
    assert "timed out after 2 s" in done.stderr
    assert "idle waits on:" in done.stderr
    assert "NEVER_SENT" in done.stderr
    # The timeout stopped the execution.
    run = started_id(done.stdout)
    shown = tideflow(server, project, "execution", "show", run, "--json")
    assert as_json(shown)["execution"]["status"] == "STOPPED"


def test_workflow_start_pause_resume_stop(
    server: TideflowTestServer, project: str, client: Client, flows: Path
) -> None:
    submit(client, flows, "waits")
    paused = tideflow(server, project, "workflow", "pause", "waits", "--json")
    assert paused.returncode == 0, paused.stderr
    assert as_json(paused)["paused"] is True
    refused = tideflow(server, project, "workflow", "start", "waits")
    assert refused.returncode == 1
    assert "paused" in refused.stderr
    assert tideflow(server, project, "workflow", "resume", "waits").returncode == 0

    started = tideflow(server, project, "workflow", "start", "waits", "--param", "n=2", "--json")

    assert started.returncode == 0, started.stderr
    execution = as_json(started)
    assert (execution["status"], execution["params"]) == ("RUNNING", {"n": 2})
    run = str(execution["execution_id"])
    stopped = tideflow(server, project, "workflow", "stop", run)
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped execution {run}" in stopped.stdout
    again = tideflow(server, project, "workflow", "stop", run)
    assert again.returncode == 1
    assert "STOPPED -> STOPPED" in again.stderr


def test_execution_list_and_show_name_the_waits(
    server: TideflowTestServer, project: str, client: Client, flows: Path
) -> None:
    from tests.executions.conftest import wait_for_job

    submit(client, flows, "waits")
    run = client.workflows.start("waits")
    wait_for_job(client, run.execution_id, "waits", "first", "FINISHED")

    listed = tideflow(server, project, "execution", "list", "--status", "RUNNING", "--json")
    assert [e["execution_id"] for e in as_json(listed)] == [run.execution_id]
    table = tideflow(server, project, "execution", "list", "--workflow", "waits")
    assert "waits" in table.stdout
    assert "RUNNING" in table.stdout

    shown = tideflow(server, project, "execution", "show", str(run.execution_id))

    assert shown.returncode == 0, shown.stderr
    assert "idle waits on:" in shown.stdout
    assert "NEVER_SENT" in shown.stdout
    assert "not started" in shown.stdout
    assert "start of execution" in shown.stdout
    data = as_json(tideflow(server, project, "execution", "show", str(run.execution_id), "--json"))
    assert list(data["waiting_on"]) == ["idle"]
    assert [j["job"] for j in data["jobs"]] == ["first"]
    missing = tideflow(server, project, "execution", "show", "4242")
    assert missing.returncode == 1
    assert "workflow execution 4242 not found" in missing.stderr
    client.executions.stop(run.execution_id)


def test_job_list_logs_restart_and_stop(
    server: TideflowTestServer, project: str, client: Client, flows: Path
) -> None:
    from tests.executions.conftest import wait_for_job

    submit(client, flows, "waits")
    run = client.workflows.start("waits")
    execution = str(run.execution_id)
    wait_for_job(client, run.execution_id, "waits", "first", "FINISHED")

    listed = tideflow(server, project, "job", "list", execution, "--json")
    assert [(j["job"], j["status"]) for j in as_json(listed)] == [("first", "FINISHED")]
    logs = tideflow(server, project, "job", "logs", execution, "first")
    assert logs.returncode == 0, logs.stderr
    assert "ok first" in logs.stdout
    followed = tideflow(server, project, "job", "logs", execution, "first", "--follow")
    assert followed.stdout == logs.stdout
    tail = tideflow(server, project, "job", "logs", execution, "first", "--tail", "1", "--json")
    assert as_json(tail)["text"].count("\n") == 1
    not_yet = tideflow(server, project, "job", "logs", execution, "idle")
    assert not_yet.returncode == 1
    assert "has not run yet" in not_yet.stderr

    restarted = tideflow(server, project, "job", "restart", execution, "idle", "--json")

    assert restarted.returncode == 0, restarted.stderr
    assert (as_json(restarted)["job"], as_json(restarted)["attempt"]) == ("idle", 1)
    assert client.executions.wait(run.execution_id, timeout=DEADLINE).status.value == "FINISHED"
    ended = tideflow(server, project, "job", "stop", execution, "idle")
    assert ended.returncode == 1
    assert "FINISHED" in ended.stderr


def test_run_starts_the_local_server_of_the_home_by_default(tmp_path: Path, flows: Path) -> None:
    from tideflow.client.embedded import pid_alive, running_server

    home = tmp_path / "home"
    home.mkdir()

    def local(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, home=home, timeout=DEADLINE)

    try:
        done = local("run", str(flows / "chain" / "flow.py"), "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        assert as_json(done)["execution"]["status"] == "FINISHED"
        info = running_server(home)
        assert info is not None  # started by run, left running as tide.init leaves it
        again = local("run", str(flows / "chain" / "flow.py"), "--json")
        assert again.returncode == 0, again.stderr
        assert running_server(home) == info  # attached to the same server
    finally:
        info = running_server(home)
        local("server", "stop")
        if info is not None and pid_alive(int(info["pid"])):
            os.kill(int(info["pid"]), 9)


def test_the_live_board_keeps_each_jobs_latest_attempt() -> None:
    from rich.console import Console

    from tideflow.cli.run import JobBoard
    from tideflow.domain.events import Event

    def event(job: str, attempt: int, status: str) -> Event:
        return Event(
            key=f"wf.{job}",
            value=status,
            event_type="JOB_STATUS_CHANGED",
            context={"execution_id": 1, "attempt": attempt},
        )

    board = JobBoard("wf", ["a", "b"])
    assert board.apply(event("a", 2, "RUNNING")) == ("a", 2, "RUNNING")
    board.apply(event("a", 1, "STOPPED"))  # a late event of the old attempt
    assert board.states == {"a": (2, "RUNNING"), "b": (None, "waiting")}
    console = Console(record=True, width=80)
    console.print(board.table("execution 1 of wf"))
    text = console.export_text()
    assert "RUNNING" in text
    assert "waiting" in text
