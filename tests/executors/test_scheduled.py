"""The local executor behind the real scheduler: rules start real job processes, end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tideflow as tide
from tests.executors.conftest import Rig, wait_until
from tideflow.domain.status import ExecutionStatus, JobStatus
from tideflow.scheduler.runtime import Scheduler
from tideflow.scheduler.service import SchedulerService


@pytest.fixture
def scheduled(rig: Rig) -> Iterator[SchedulerService]:
    rig.stop()
    service = SchedulerService(rig.client.store)
    scheduler = Scheduler(rig.client.store, service)
    scheduler.start()
    rig.start(source=service)
    yield service
    rig.stop()
    scheduler.stop()
    service.close()


def test_an_after_chain_runs_real_jobs_to_the_end(
    rig: Rig, scheduled: SchedulerService, steps: Any, tmp_path: Path
) -> None:
    record = tmp_path / "record.txt"
    with tide.workflow("wf") as wf:
        with tide.job("first"):
            tide.read_dataset("raw", processor=steps.Record(str(record)), name="first_node")
        with tide.job("second"):
            tide.read_dataset("raw", processor=steps.Record(str(record)), name="second_node")
        wf.after("second", "first")
    rig.submit(wf)

    run = scheduled.start_execution(rig.project, "wf", params={"n": 1})

    def ended() -> Any:
        execution = scheduled.get_execution(rig.project, run.execution_id)
        return execution.status is not ExecutionStatus.RUNNING and execution

    execution = wait_until(ended, what="the execution to end")
    jobs = scheduled.list_job_executions(rig.project, run.execution_id)
    assert execution.status is ExecutionStatus.FINISHED, [(j.job, j.status, j.error) for j in jobs]
    assert [(j.job, j.status) for j in jobs] == [
        ("first", JobStatus.FINISHED),
        ("second", JobStatus.FINISHED),
    ]
    nodes = [line.split()[1] for line in record.read_text().splitlines() if line.startswith("open")]
    assert nodes == ["first_node", "second_node"]
    assert all(c.status == "DONE" for c in scheduled.list_commands(execution_id=run.execution_id))


def test_stopping_an_execution_stops_its_streaming_job(
    rig: Rig, scheduled: SchedulerService, steps: Any, tmp_path: Path
) -> None:
    started, closed = tmp_path / "started", tmp_path / "closed"
    with tide.workflow("wf") as wf, tide.job("stream", streaming=True):
        tide.read_dataset("clicks", processor=steps.Stream(str(started), str(closed)))
    rig.submit(wf)
    run = scheduled.start_execution(rig.project, "wf")
    wait_until(started.exists, what="the stream to start")
    wait_until(
        lambda: (
            scheduled.list_job_executions(rig.project, run.execution_id)[0].status
            is JobStatus.RUNNING
        )
    )

    scheduled.stop_execution(rig.project, run.execution_id)

    wait_until(
        lambda: scheduled.list_job_executions(rig.project, run.execution_id)[0].status.is_terminal,
        what="the job to end",
    )
    (job,) = scheduled.list_job_executions(rig.project, run.execution_id)
    assert job.status is JobStatus.STOPPED
    assert closed.exists()
