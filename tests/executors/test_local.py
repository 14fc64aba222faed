"""The local executor end to end: real job processes started by the fork server."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import tideflow as tide
from tests.executors.conftest import Rig, wait_until
from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.status import JobStatus
from tideflow.executors.base import job_plan
from tideflow.pids import is_alive
from tideflow.testing import TideflowTestServer


def test_processors_run_in_order_and_the_job_finishes(rig: Rig, steps: Any, tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    with tide.workflow("wf") as wf, tide.job("batch", config={"depth": 1, "shared": "job"}):
        source = tide.read_dataset("raw", processor=steps.Emit(40), name="source")
        plus = tide.transform(source, processor=steps.Add(2), name="plus")
        tide.transform(
            plus, processor=steps.Record(str(record)), name="rec", config={"shared": "node"}
        )
    start = rig.start_job(wf, "batch", params={"lr": 0.05})

    job = rig.wait_status(start, JobStatus.FINISHED, JobStatus.FAILED)

    assert job.status is JobStatus.FINISHED, rig.log(start)
    assert job.exit_code == 0
    assert job.error is None
    assert job.pid
    assert job.host
    assert job.start_time is not None
    assert job.end_time is not None
    lines = record.read_text().splitlines()
    assert lines[0] == "open rec"
    assert lines[-1] == "close rec"
    seen = json.loads(lines[1].removeprefix("process "))
    assert seen["inputs"] == [42]
    assert seen["params"] == {"lr": 0.05}
    assert seen["config"] == {"depth": 1, "shared": "node"}
    assert (seen["job"], seen["workflow"], seen["attempt"]) == ("batch", "wf", 1)
    assert seen["execution_id"] == start.execution_id
    workdir = rig.home / "work" / str(start.execution_id) / "batch" / "1"
    assert seen["cwd"] == str(workdir)
    assert (workdir / "tfsteps.py").exists()
    assert job.log_uri == str(rig.home / "logs" / "jobs" / str(start.execution_id) / "batch/1.log")
    assert "recorded [42]" in rig.log(start)
    assert rig.outbox.done == [start.command_id]
    statuses = [e.value for e in rig.client.events.list(key="wf.batch")]
    assert statuses == ["STARTING", "RUNNING", "FINISHED"]


def test_a_failing_processor_fails_the_job_with_the_users_error(rig: Rig, steps: Any) -> None:
    with tide.workflow("wf") as wf, tide.job("bad"):
        tide.transform(tide.read_dataset("raw", processor=steps.Emit(7)), processor=steps.Fail())
    start = rig.start_job(wf, "bad")

    job = rig.wait_status(start, JobStatus.FINISHED, JobStatus.FAILED)

    assert job.status is JobStatus.FAILED
    assert job.exit_code == 1
    assert job.error == "node 'transform_1' failed in process: ValueError: bad input [7]"
    log = rig.log(start)
    assert "Traceback (most recent call last)" in log
    assert 'raise ValueError(f"bad input {inputs!r}")' in log


def test_lazy_sinks_are_drained(rig: Rig, steps: Any, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with tide.workflow("wf") as wf, tide.job("flow", streaming=True):
        tide.write_dataset(
            tide.read_dataset("numbers", processor=steps.Count(5)),
            "sink",
            processor=steps.Write(str(out)),
        )
    start = rig.start_job(wf, "flow")

    assert rig.wait_status(start, JobStatus.FINISHED, JobStatus.FAILED).status is JobStatus.FINISHED
    assert out.read_text().split() == ["0", "1", "2", "3", "4"]


def test_stop_runs_close_and_ends_stopped(rig: Rig, steps: Any, tmp_path: Path) -> None:
    started, closed = tmp_path / "started", tmp_path / "closed"
    with tide.workflow("wf") as wf, tide.job("stream", streaming=True):
        tide.read_dataset("clicks", processor=steps.Stream(str(started), str(closed)))
    start = rig.start_job(wf, "stream")
    rig.wait_status(start, JobStatus.RUNNING)
    wait_until(started.exists, what="the stream to start")

    stop = rig.stop_job(start)
    job = rig.wait_status(start, JobStatus.STOPPED, JobStatus.FAILED, JobStatus.FINISHED)

    assert job.status is JobStatus.STOPPED, (job, rig.log(start))
    assert closed.read_text() == "closed, stopping=True"
    assert "stop requested (SIGTERM)" in rig.log(start)
    wait_until(lambda: stop.command_id in rig.outbox.done, what="the STOP to complete")


def test_a_job_ignoring_sigterm_is_killed_after_the_grace_period(
    make_rig: Any, steps: Any, tmp_path: Path
) -> None:
    rig = make_rig(stop_grace=0.5)
    started = tmp_path / "started"
    with tide.workflow("wf") as wf, tide.job("stubborn", streaming=True):
        tide.read_dataset("clicks", processor=steps.Stubborn(str(started)))
    start = rig.start_job(wf, "stubborn")
    rig.wait_status(start, JobStatus.RUNNING)
    wait_until(started.exists, what="the job to ignore SIGTERM")

    rig.stop_job(start)
    job = rig.wait_status(start, JobStatus.STOPPED, JobStatus.FAILED, JobStatus.FINISHED)

    assert job.status is JobStatus.STOPPED
    assert job.exit_code == -9  # SIGKILL
    assert not is_alive(job.pid)


def test_a_job_whose_heartbeat_stops_is_failed(make_rig: Any, steps: Any) -> None:
    rig = make_rig(heartbeat_timeout=1.0)
    with tide.workflow("wf") as wf, tide.job("hung"):
        tide.read_dataset("raw", processor=steps.Silent())
    start = rig.start_job(wf, "hung")

    job = rig.wait_status(start, JobStatus.FAILED, JobStatus.FINISHED, JobStatus.STOPPED)

    assert job.status is JobStatus.FAILED
    assert job.error == "no heartbeat for 1 s"
    assert not is_alive(job.pid)


def test_a_job_over_its_timeout_is_failed(rig: Rig, steps: Any, tmp_path: Path) -> None:
    started, closed = tmp_path / "started", tmp_path / "closed"
    with tide.workflow("wf") as wf, tide.job("slow", timeout=0.5):
        tide.read_dataset("raw", processor=steps.Stream(str(started), str(closed)))
    start = rig.start_job(wf, "slow")

    job = rig.wait_status(start, JobStatus.FAILED, JobStatus.FINISHED, JobStatus.STOPPED)

    assert job.status is JobStatus.FAILED
    assert job.error == "timed out after 0.5 s"
    assert closed.exists()  # the timeout stops the job gracefully first


def test_a_command_delivered_twice_runs_once(rig: Rig, steps: Any, tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    with tide.workflow("wf") as wf, tide.job("once"):
        tide.read_dataset("raw", processor=steps.Record(str(record)))
    start = rig.start_job(wf, "once")
    rig.outbox.put(start)  # delivered again before it ran
    rig.wait_status(start, JobStatus.FINISHED, JobStatus.FAILED)
    rig.outbox.put(start)  # and again after it finished
    wait_until(lambda: not rig.outbox.pending, what="the outbox to drain")
    wait_until(lambda: rig.outbox.taken.count(start.command_id) == 3, what="three deliveries")

    assert record.read_text().count("process ") == 1
    assert rig.job(start).status is JobStatus.FINISHED


def test_the_concurrency_limit_holds_extra_jobs_back(
    make_rig: Any, steps: Any, tmp_path: Path
) -> None:
    rig = make_rig(max_running=2)
    release = tmp_path / "release"
    with tide.workflow("wf") as wf:
        for name in ("a", "b", "c"):
            with tide.job(name):
                tide.read_dataset(
                    "raw",
                    processor=steps.Gate(str(tmp_path / name), str(release)),
                    name=f"gate_{name}",
                )
    starts = [rig.start_job(wf, name) for name in ("a", "b", "c")]
    wait_until(lambda: sum((tmp_path / n).exists() for n in "abc") == 2, what="two jobs to run")
    assert rig.executor is not None
    wait_until(lambda: len(rig.executor.queued()) == 1, what="one job to wait")

    def one_waiting() -> list[Any] | None:
        waiting = [s for s in starts if rig.job(s).status is JobStatus.INIT]
        return waiting if len(waiting) == 1 else None

    # A running job's processor may open before its STARTING is committed: wait for that.
    waiting = wait_until(one_waiting, what="exactly one job still INIT")
    assert not (tmp_path / waiting[0].job).exists()

    release.touch()

    for start in starts:
        assert (
            rig.wait_status(start, JobStatus.FINISHED, JobStatus.FAILED).status
            is JobStatus.FINISHED
        )


def test_a_restarted_executor_reattaches_instead_of_starting_again(
    rig: Rig, steps: Any, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    started = tmp_path / "started"
    with tide.workflow("wf") as wf, tide.job("long"):
        tide.read_dataset("raw", processor=steps.Gate(str(started), str(release)))
    start = rig.start_job(wf, "long")
    job = rig.wait_status(start, JobStatus.RUNNING)

    rig.stop()  # the server goes away; the job keeps running
    assert is_alive(job.pid)
    rig.start()
    rig.outbox.put(start)  # the START is delivered again after the restart
    wait_until(lambda: not rig.outbox.pending, what="the redelivered START to be taken")
    release.touch()

    job = rig.wait_status(start, JobStatus.FINISHED, JobStatus.FAILED)
    assert job.status is JobStatus.FINISHED
    assert rig.log(start).count("starting, pid") == 1  # it ran once
    assert rig.job(start).pid == job.pid


def test_a_job_gone_while_the_executor_was_down_is_failed(
    rig: Rig, steps: Any, tmp_path: Path
) -> None:
    started, closed = tmp_path / "started", tmp_path / "closed"
    with tide.workflow("wf") as wf, tide.job("stream", streaming=True):
        tide.read_dataset("clicks", processor=steps.Stream(str(started), str(closed)))
    start = rig.start_job(wf, "stream")
    job = rig.wait_status(start, JobStatus.RUNNING)
    rig.stop()
    os.killpg(job.pid, 9)
    wait_until(lambda: not is_alive(job.pid), what="the job to die")

    rig.start()

    job = rig.wait_status(start, JobStatus.FAILED, JobStatus.FINISHED, JobStatus.STOPPED)
    assert job.error == "the job's process is gone and left no result"


def test_a_job_that_ends_while_the_executor_is_down_keeps_its_exit_code_and_end_time(
    rig: Rig, steps: Any, tmp_path: Path
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    with tide.workflow("wf") as wf, tide.job("exits"):
        tide.read_dataset("raw", processor=steps.ExitWhenReleased(str(started), str(release), 3))
    start = rig.start_job(wf, "exits")
    job = rig.wait_status(start, JobStatus.RUNNING)
    rig.stop()  # the server is down from here on
    release.touch()
    wait_until(lambda: not is_alive(job.pid), what="the job to exit")
    exited_by = datetime.now(UTC)

    rig.start()

    job = rig.wait_status(start, JobStatus.FAILED, JobStatus.FINISHED, JobStatus.STOPPED)
    assert job.status is JobStatus.FAILED
    assert job.exit_code == 3
    assert job.error == "the job's process exited with code 3"
    assert job.end_time is not None
    assert job.start_time is not None
    # Its own end, not the time the restarted executor noticed it.
    assert job.start_time <= job.end_time <= exited_by


@pytest.mark.parametrize("name", ["../../../../../escape", "a/../../../escape", "/abs/escape"])
def test_a_job_name_that_leaves_the_home_is_failed_and_writes_nothing_outside(
    rig: Rig, steps: Any, name: str
) -> None:
    # The server refuses such names at submit; this is the executor's own line of defence,
    # for a plan that reached it anyway (a hand-made command and plan).
    with tide.workflow("wf") as wf, tide.job("noop"):
        tide.read_dataset("raw", processor=steps.Emit(1))
    snapshot_id = rig.submit(wf)
    run = rig.executions.create_execution(rig.project, "wf", snapshot_id=snapshot_id)
    je = rig.executions.create_job_execution(rig.project, run.execution_id, "noop", attempt=1)
    command = rig.command(run.execution_id, snapshot_id, name, 1, je.job_execution_id)
    plan = WorkflowPlan.from_json(
        rig.client.services.workflows.get_snapshot(rig.project, snapshot_id).plan
    )
    (job,) = plan.jobs
    hostile = replace(plan, jobs=(replace(job, name=name),))
    before = set(rig.root.parent.iterdir())
    assert rig.executor is not None

    rig.executor.launch(command, job_plan(hostile, name))

    ended = rig.wait_status(command, JobStatus.FAILED, JobStatus.FINISHED)
    assert ended.status is JobStatus.FAILED
    assert ended.error is not None
    assert name in ended.error
    assert "outside" in ended.error
    assert ended.log_uri is None
    assert set(rig.root.parent.iterdir()) == before
    assert not list(rig.home.parent.rglob("escape"))
    assert not Path("/abs/escape").exists()


def test_context_shortcuts_reach_the_server(rig: Rig, steps: Any) -> None:
    with tide.workflow("wf") as wf, tide.job("report"):
        tide.read_dataset("raw", processor=steps.Report())
    start = rig.start_job(wf, "report")

    job = rig.wait_status(start, JobStatus.FINISHED, JobStatus.FAILED)

    assert job.status is JobStatus.FINISHED, rig.log(start)
    (event,) = rig.client.events.list(key="report")
    assert event.event_type == "REPORTED"
    assert event.sender == "wf.report"
    assert event.context == {
        "extra": 1,
        "execution_id": start.execution_id,
        "job": "report",
        "attempt": 1,
    }
    (metric,) = rig.client.metrics.list(job_execution_id=start.job_execution_id)
    assert (metric.name, metric.value) == ("rows", 42.0)


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_a_job_is_given_the_api_and_its_data_dir_never_the_store(
    make_rig: Any,
    steps: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    job_server: TideflowTestServer,
) -> None:
    # The server's own settings, as a server started from a shell has them: not for jobs.
    monkeypatch.setenv("TIDEFLOW_HOME", str(job_server.home))
    monkeypatch.setenv("TIDEFLOW_DB", job_server.db_url)
    monkeypatch.setenv("TIDEFLOW_TOKEN", "the-servers-own-token")
    rig = make_rig()
    seen_file = tmp_path / "seen.json"
    with tide.workflow("wf") as wf, tide.job("look"):
        tide.read_dataset("raw", processor=steps.Environment(str(seen_file)))
    start = rig.start_job(wf, "look")

    job = rig.wait_status(start, JobStatus.FINISHED, JobStatus.FAILED)

    assert job.status is JobStatus.FINISHED, rig.log(start)
    seen = json.loads(seen_file.read_text())
    environ: dict[str, str] = seen["environ"]
    workdir = rig.home / "work" / str(start.execution_id) / "look" / "1"
    data_dir = rig.home / "data" / rig.project
    assert seen["cwd"] == str(workdir)
    assert seen["data_dir"] == str(data_dir)
    assert (data_dir / "handed-over.txt").read_text() == "from the job"
    assert environ["TIDEFLOW_DATA_DIR"] == str(data_dir)
    assert environ["TIDEFLOW_SERVER"] == job_server.url
    assert environ["TIDEFLOW_PROJECT"] == rig.project
    assert "TIDEFLOW_HOME" not in environ
    assert "TIDEFLOW_DB" not in environ
    assert "TIDEFLOW_TOKEN" not in environ  # this rig's server mints no job tokens
    spec = json.loads((workdir / ".tideflow" / "attempt.json").read_text())
    assert "db_url" not in spec
    assert spec["data_dir"] == str(data_dir)
    assert spec["server_url"] == job_server.url
    # Nothing a job was given names the store or the server's files, and no path into the
    # executor's home other than the attempt's own directory and the project's data directory.
    given = [*environ, *environ.values(), *_strings(spec)]
    for text in given:
        assert "sqlite:" not in text, text
        assert str(job_server.home) not in text, text
        assert "the-servers-own-token" not in text, text
        for part in text.split(os.pathsep):
            if part.startswith(str(rig.home)):
                path = Path(part)
                assert path.is_relative_to(workdir) or path.is_relative_to(data_dir), text


def test_a_spawn_whose_reply_was_lost_is_adopted_not_run_again(
    rig: Rig, steps: Any, tmp_path: Path
) -> None:
    from tideflow.scheduler import crash

    record = tmp_path / "record.txt"
    with tide.workflow("wf") as wf, tide.job("once"):
        tide.read_dataset("raw", processor=steps.Record(str(record)))

    def lose_the_reply(point: str) -> None:
        if point == "launch.after_spawn":
            raise RuntimeError("the server died before it recorded the spawn")

    crash.set_hook(lose_the_reply)
    try:
        start = rig.start_job(wf, "once")
        wait_until(lambda: "process " in (record.read_text() if record.exists() else ""))
        rig.stop()
    finally:
        crash.set_hook(None)
    assert rig.job(start).status is JobStatus.INIT  # nothing recorded the spawn

    rig.start()
    rig.outbox.put(start)  # re-offered after the restart

    job = rig.wait_status(start, JobStatus.FINISHED, JobStatus.FAILED)
    assert job.status is JobStatus.FINISHED
    assert record.read_text().count("process ") == 1


def test_a_twin_spawned_for_a_claimed_attempt_runs_nothing(tmp_path: Path) -> None:
    import queue

    from tideflow.executors.local.forkserver import CLAIM_LOST_EXIT, ForkServer

    replies: queue.Queue[dict[str, Any]] = queue.Queue()
    server = ForkServer([], replies.put)
    claim = tmp_path / "spawned.json"
    try:
        for key in ("first", "twin"):
            server.spawn(
                key,
                cwd=str(tmp_path),
                log=str(tmp_path / f"{key}.log"),
                env={},
                entry="time:sleep",
                arg=0,
                claim=str(claim),
            )
        exits: dict[str, int] = {}
        pids: dict[str, int] = {}
        while len(exits) < 2:
            message = replies.get(timeout=30)
            if message["op"] == "spawned":
                pids[message["key"]] = message["pid"]
            elif message["op"] == "exit":
                exits[message["key"]] = message["returncode"]
    finally:
        server.close()
    # Whichever child claimed first ran; the other ran nothing.
    assert sorted(exits.values()) == [0, CLAIM_LOST_EXIT]
    (winner,) = [key for key, code in exits.items() if code == 0]
    assert json.loads(claim.read_text())["pid"] == pids[winner]
