"""A real server runs the local executor: jobs start, report back over gRPC, and outlive it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import tideflow as tide
from tests.executors.conftest import STEPS, wait_until
from tideflow.client import connect
from tideflow.domain.status import ExecutionStatus, JobStatus
from tideflow.scheduler.service import SchedulerService
from tideflow.testing import TideflowTestServer


def test_a_server_runs_jobs_that_talk_back_to_it(tmp_path: Path, steps: Any) -> None:
    code = tmp_path / "code"
    code.mkdir()
    shutil.copy(STEPS, code / "tfsteps.py")
    with TideflowTestServer(home=tmp_path / "home") as server:
        client = connect(server.db_url, project="demo")
        with tide.workflow("wf") as wf:
            with tide.job("report"):
                tide.read_dataset("raw", processor=steps.Report())
            with tide.job("after"):
                tide.read_dataset("raw", processor=steps.Emit(1))
            wf.after("after", "report")
        client.workflows.submit(wf, source=code)
        service = SchedulerService(client.store)  # another process starts it: no RPC needed
        run = service.start_execution("demo", "wf")

        def ended() -> Any:
            execution = service.get_execution("demo", run.execution_id)
            return execution.status is not ExecutionStatus.RUNNING and execution

        execution = wait_until(ended, what="the execution to end")
        jobs = service.list_job_executions("demo", run.execution_id)
        assert execution.status is ExecutionStatus.FINISHED, [(j.job, j.error) for j in jobs]
        assert all(j.status is JobStatus.FINISHED for j in jobs)
        (event,) = client.events.list(key="report")
        assert event.context["execution_id"] == run.execution_id
        log = Path(jobs[0].log_uri).read_text()
        assert "ended FINISHED" in log
        service.close()
        client.close()
