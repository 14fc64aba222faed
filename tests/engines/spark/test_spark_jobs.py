"""Spark jobs for real: ``spark-submit`` on ``local[*]``, through a server and through the executor.

Each test submits one or two tiny jobs (~30 s each here), and checks as much as honestly fits
in each: status, the application id, output, logs, errors, stop, re-attach, duplicates.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import tideflow as tide
from tests.engines.spark.conftest import FAST_CONF, STEPS, SparkRig
from tests.executors.conftest import wait_until
from tideflow.client import connect
from tideflow.domain.status import ExecutionStatus, JobStatus
from tideflow.executors import process
from tideflow.scheduler.service import SchedulerService
from tideflow.testing import TideflowTestServer

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.timeout(1200)]
JOB_DEADLINE = 600.0
"""Generous: a ~30 s job takes minutes when the machine's 2 cores are shared by many."""


def test_a_batch_job_runs_through_a_server_with_its_output_logs_and_app_id(
    tmp_path: Path, spark: None, sparksteps: Any
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    shutil.copy(STEPS, code / "tfsparksteps.py")
    out = tmp_path / "counts"
    config = {"spark_conf": FAST_CONF, "spark_master": "local[2]"}
    with TideflowTestServer(home=tmp_path / "home", env={"TIDEFLOW_EXECUTORS": "spark"}) as server:
        client = connect(server.db_url, project="demo")
        remote = connect(server.url, project="demo")
        with tide.workflow("wf") as wf, tide.job("features", engine="spark", config=config):
            rows = tide.read_dataset("nums", processor=sparksteps.Numbers(), name="numbers")
            counts = tide.transform(rows, processor=sparksteps.CountByKey(), name="count")
            tide.write_dataset(counts, "counts", config={"path": str(out), "format": "json"})
        client.workflows.submit(wf, source=code)
        service = SchedulerService(client.store)
        run = service.start_execution("demo", "wf", params={"n": 30})

        def ended() -> Any:
            execution = service.get_execution("demo", run.execution_id)
            return execution.status is not ExecutionStatus.RUNNING and execution

        execution = wait_until(ended, JOB_DEADLINE, "the execution to end")
        (job,) = service.list_job_executions("demo", run.execution_id)
        assert job.status is JobStatus.FINISHED, job.error
        assert execution.status is ExecutionStatus.FINISHED
        assert job.external_id is not None
        assert job.external_id.startswith("local-")
        assert job.start_time is not None
        assert job.exit_code == 0
        written = [
            json.loads(line)
            for part in out.glob("part-*.json")
            for line in part.read_text().splitlines()
        ]
        assert sorted(written, key=lambda r: r["k"]) == [
            {"k": 0, "count": 10},
            {"k": 1, "count": 10},
            {"k": 2, "count": 10},
        ]
        log = remote.jobs.logs(run.execution_id, "features")
        assert sparksteps.LOG_TEXT in log
        assert "--master local[2]" in log  # the job's spark_master reached spark-submit
        service.close()
        remote.close()
        client.close()


def test_a_streaming_job_survives_an_executor_restart_and_stops_gracefully(
    spark_rig: SparkRig, spark: None, sparksteps: Any
) -> None:
    rig = spark_rig
    out, checkpoint = rig.root / "even", rig.root / "checkpoint"
    with tide.workflow("wf") as wf, tide.job("main", engine="spark", streaming=True):
        rows = tide.read_dataset(
            "rate", processor=sparksteps.Rate(), config={"rows_per_second": 20}
        )
        even = tide.transform(rows, processor=sparksteps.Even(), name="even")
        tide.write_dataset(
            even,
            "even",
            name="sink",
            config={
                "path": str(out),
                "format": "json",
                "checkpoint": str(checkpoint),
                "trigger": {"processingTime": "1 second"},
            },
        )
    start = rig.start_job(wf, "main")
    job = rig.wait_status(start, JobStatus.RUNNING, timeout=JOB_DEADLINE)
    assert job.external_id is not None
    assert job.pid is not None

    def rows_written() -> list[dict[str, Any]]:
        return [
            json.loads(line)
            for part in out.glob("part-*.json")
            for line in part.read_text().splitlines()
        ]

    first = wait_until(rows_written, JOB_DEADLINE, "the streaming query to write rows")
    assert all(row["value"] % 2 == 0 for row in first)

    rig.stop()  # a server restart: the job runs on
    assert process.is_alive(job.pid)
    executor = rig.start()  # a new executor instance on the same home re-attaches
    assert executor.active() == [start.job_execution_id]
    rig.outbox.put(start)  # a duplicated START (new instance, new loop): ignored
    stop = rig.stop_job(start)
    ended = rig.wait_status(start, JobStatus.STOPPED, JobStatus.FAILED, timeout=120)
    assert ended.status is JobStatus.STOPPED, ended.error
    wait_until(lambda: stop.command_id in rig.outbox.done, 30, "the STOP to complete")
    assert not process.is_alive(job.pid)
    log = rig.log(start)
    assert log.count('"event": "started"') == 1  # one driver: the duplicate launched nothing
    assert '"status": "STOPPED"' in log  # the driver stopped its queries and said so
    assert sparksteps.LOG_TEXT in log
