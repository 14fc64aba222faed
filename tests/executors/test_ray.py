"""The ray executor: cheap while idle, and Ray jobs run through a real server.

The Ray tests use the session's one local head (``tests/executors/contract/harness_ray.py``);
the contract suite (``tests/executors/contract``) checks start, stop, restart, logs, failures,
duplicate commands and re-attachment against it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import tideflow as tide
from tests.executors.conftest import STEPS, wait_until
from tests.executors.contract.harness import ContractRig, Harness
from tests.executors.contract.harness_local import python_workflows
from tests.executors.contract.harness_ray import require_ray, shared_ray_address
from tideflow.cli.server import _executor_options
from tideflow.client import connect
from tideflow.domain.scheduling import CommandAction
from tideflow.domain.status import ExecutionStatus, JobStatus
from tideflow.errors import InvalidArgumentError
from tideflow.executors.ray import RayExecutor, RaySettings
from tideflow.executors.ray.head import ray_environment
from tideflow.scheduler.service import SchedulerService
from tideflow.testing import TideflowTestServer


def test_an_idle_ray_executor_imports_no_ray_and_starts_nothing(tmp_path: Path) -> None:
    # A server runs every registered executor: an idle one must cost nothing.
    script = textwrap.dedent(
        f"""
        import json, sys, threading
        from pathlib import Path
        from tideflow.client import connect
        from tideflow.executors.base import ExecutorContext, default_registry
        from tideflow.metadata import ExecutionService

        home = Path({str(tmp_path / "home")!r})
        home.mkdir()
        client = connect(f"sqlite:///{{home / 'tideflow.db'}}", project="p")
        threads = threading.active_count()
        executor = default_registry.create("ray", ExecutorContext(
            home=home,
            executions=ExecutionService(client.store),
            workflows=client.services.workflows,
        ))
        executor.reconcile([])
        executor.poll()
        report = {{
            "ray_imported": any(m == "ray" or m.startswith("ray.") for m in sys.modules),
            "new_threads": threading.active_count() - threads,
            "home": sorted(p.name for p in home.iterdir()),
        }}
        executor.close()
        print(json.dumps(report))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["ray_imported"] is False
    assert report["new_threads"] == 0
    assert not [name for name in report["home"] if not name.startswith("tideflow.db")]


def test_unknown_options_are_refused_by_name() -> None:
    with pytest.raises(InvalidArgumentError, match=r"unknown ray executor options \['adress'\]"):
        RaySettings.from_options({"adress": "http://127.0.0.1:8265"})
    settings = RaySettings.from_options({"address": "http://h:1", "poll_interval": 0.1})
    assert (settings.address, settings.poll_interval) == ("http://h:1", 0.1)


def test_a_local_heads_environment_carries_no_server_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ray's workers, and the jobs they run, inherit the head's environment.
    monkeypatch.setenv("TIDEFLOW_HOME", "/srv/tideflow")
    monkeypatch.setenv("TIDEFLOW_DB", "sqlite:////srv/tideflow/tideflow.db")
    monkeypatch.setenv("TIDEFLOW_TOKEN", "the-servers-own-token")
    env = ray_environment()
    assert [name for name in env if name.startswith("TIDEFLOW_")] == []
    assert env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    assert env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] == "0"  # a stop ends the head at once


def test_server_start_ray_address_becomes_the_ray_executors_option() -> None:
    assert _executor_options(ray_address=None) == {}
    assert _executor_options(ray_address="http://127.0.0.1:8265") == {
        "ray": {"address": "http://127.0.0.1:8265"}
    }


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_workflow_runs_a_ray_job_through_a_real_server(tmp_path: Path, steps: Any) -> None:
    address = shared_ray_address()
    code = tmp_path / "code"
    code.mkdir()
    shutil.copy(STEPS, code / "tfsteps.py")
    with TideflowTestServer(
        home=tmp_path / "home", args=["--ray-address", address], env={"RAY_AUTH_MODE": "disabled"}
    ) as server:
        client = connect(server.db_url, project="demo")
        remote = connect(server.url, project="demo")
        with tide.workflow("wf") as wf:
            with tide.job("report", platform="ray"):
                tide.transform(
                    tide.read_dataset("raw", processor=steps.Emit(5), name="source"),
                    processor=steps.Report(),
                    name="report",
                )
            with tide.job("after"):  # a local job after the Ray job
                tide.read_dataset("raw", processor=steps.Emit(1))
            wf.after("after", "report")
        client.workflows.submit(wf, source=code)
        service = SchedulerService(client.store)
        run = service.start_execution("demo", "wf")

        def ended() -> Any:
            execution = service.get_execution("demo", run.execution_id)
            return execution.status is not ExecutionStatus.RUNNING and execution

        execution = wait_until(ended, timeout=300, what="the execution to end")
        jobs = {j.job: j for j in service.list_job_executions("demo", run.execution_id)}
        assert execution.status is ExecutionStatus.FINISHED, {
            name: (j.status, j.error) for name, j in jobs.items()
        }
        ray_job = jobs["report"]
        assert ray_job.status is JobStatus.FINISHED
        assert ray_job.external_id is not None
        assert ray_job.external_id.startswith("tideflow-")
        assert ray_job.host == address.removeprefix("http://")
        assert jobs["after"].external_id is None  # the local executor ran that one
        # The Ray job talked back to the server over gRPC: its event and metric are stored.
        (event,) = client.events.list(key="report")
        assert event.context["execution_id"] == run.execution_id
        statuses = [e.value for e in client.events.list(key="wf.report")]
        assert statuses == ["STARTING", "RUNNING", "FINISHED"]
        # Its log is served like a local job's.
        log = remote.jobs.logs(run.execution_id, "report")
        assert f"as {ray_job.external_id}" in log
        assert "ended FINISHED" in log
        service.close()
        remote.close()
        client.close()


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_without_an_address_the_executor_starts_a_local_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job_server: TideflowTestServer
) -> None:
    require_ray()
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    source, workflows = python_workflows(tmp_path / "steps", platform="ray")
    harness = Harness(
        executor="ray",
        options={"poll_interval": 0.2, "head_num_cpus": 1, "head_startup_nice": -10},
        workflow=workflows.__getitem__,
        log_text="recorded [40]",
        error_text="",
        source=source,
        timeout=300.0,
    )
    rig = ContractRig(tmp_path / "rig", harness, job_server)
    executor = rig.executor
    assert isinstance(executor, RayExecutor)
    head = executor.local_head
    try:
        start = rig.start_job("finish")
        job = rig.wait_status(start, JobStatus.FINISHED)
        recorded = head.recorded()
        assert recorded is not None
        assert recorded["dashboard"].startswith("http://127.0.0.1:")
        assert job.host == recorded["dashboard"].removeprefix("http://")
        assert "recorded [40]" in rig.log(start)
        # A second executor on the same home reuses the running head.
        assert RayExecutor(executor.context).local_head.address() == recorded["dashboard"]
    finally:
        rig.close()
        head.stop()
        sys.path.remove(str(source))
    assert head.recorded() is None
    assert not os.path.exists(head.record)


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_ray_job_is_given_the_api_and_its_data_dir_never_the_store(
    tmp_path: Path, job_server: TideflowTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = shared_ray_address()
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    source, _ = python_workflows(tmp_path / "steps", platform="ray")
    import tfsteps  # type: ignore[import-not-found]  # python_workflows put it on sys.path

    seen_file = tmp_path / "seen.json"
    with tide.workflow("look") as wf, tide.job("main", platform="ray"):
        tide.read_dataset("raw", processor=tfsteps.Environment(str(seen_file)))
    harness = Harness(
        executor="ray",
        options={"address": address, "poll_interval": 0.2, "stop_wait": 10.0},
        workflow=lambda kind: wf,
        log_text="",
        error_text="",
        source=source,
        timeout=300.0,
    )
    rig = ContractRig(tmp_path / "rig", harness, job_server)
    try:
        start = rig.start_job("look")
        rig.wait_status(start, JobStatus.FINISHED)
        seen = json.loads(seen_file.read_text())
        environ = seen["environ"]
        data_dir = rig.home / "data" / rig.project
        assert seen["data_dir"] == str(data_dir)
        assert (data_dir / "handed-over.txt").read_text() == "from the job"
        assert environ["TIDEFLOW_DATA_DIR"] == str(data_dir)
        assert environ["TIDEFLOW_SERVER"] == job_server.url
        assert environ["TIDEFLOW_PROJECT"] == rig.project
        for name in ("TIDEFLOW_HOME", "TIDEFLOW_DB", "TIDEFLOW_TOKEN"):
            assert name not in environ
        workdir = rig.home / "work" / str(start.execution_id) / "main" / "1"
        spec = json.loads((workdir / ".tideflow" / "attempt.json").read_text())
        assert "db_url" not in spec
        assert all("sqlite:" not in value for value in [*environ.values(), json.dumps(spec)])
    finally:
        rig.close()
        sys.path.remove(str(source))


def test_a_stop_before_the_start_ends_the_job_without_any_cluster(
    tmp_path: Path, job_server: TideflowTestServer
) -> None:
    # No Ray needed: nothing was submitted, so nothing is asked of a cluster.
    source, workflows = python_workflows(tmp_path / "steps", platform="ray")
    harness = Harness(
        executor="ray",
        options={"address": "http://127.0.0.1:9"},  # nothing listens there
        workflow=workflows.__getitem__,
        log_text="",
        error_text="",
        source=source,
        timeout=60.0,
    )
    rig = ContractRig(tmp_path / "rig", harness, job_server)
    try:
        wf, snapshot_id, execution_id = rig.new_execution("stream")
        je = rig.executions.create_job_execution(rig.project, execution_id, "main")
        stop = rig.command(
            wf.name, execution_id, snapshot_id, 1, je.job_execution_id, CommandAction.STOP
        )
        rig.outbox.put(stop)

        rig.wait_done(stop.command_id)
        assert rig.job(stop).status is JobStatus.STOPPED
        assert not (rig.home / "ray").exists()
    finally:
        rig.close()
        sys.path.remove(str(source))
