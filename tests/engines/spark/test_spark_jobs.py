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
from tideflow import pids
from tideflow.client import connect
from tideflow.domain.lineage import LineageRef
from tideflow.domain.status import ExecutionStatus, JobStatus
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
        client.datasets.register("counts", uri=out.as_uri(), format="json")  # "nums" is not
        service = SchedulerService(client.store)
        run = service.start_execution("demo", "wf", params={"n": 30})

        def ended() -> Any:
            execution = service.get_execution("demo", run.execution_id)
            return execution.status is not ExecutionStatus.RUNNING and execution

        execution = wait_until(ended, timeout=JOB_DEADLINE, what="the execution to end")
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
        # Lineage from the plan (registered datasets only), recorded before FINISHED.
        (record,) = client.services.lineage.writers("demo", LineageRef.dataset("counts"))
        assert record.job_execution_id == job.job_execution_id
        assert (record.inputs, record.outputs) == ((), (LineageRef.dataset("counts", 1),))
        assert record.time is not None
        assert job.end_time is not None
        assert record.time <= job.end_time
        assert log.count("dataset 'nums' is not registered") == 1
        # The driver's totals over the application's stages, tagged engine=spark.
        totals = {
            m.name: m
            for m in client.services.metrics.list_metrics(
                "demo", job_execution_id=job.job_execution_id
            )
        }
        assert set(totals) == {"records_in", "records_out", "bytes_in", "bytes_out"}
        assert totals["records_out"].value == 3  # the three count rows written
        assert totals["records_in"].value >= 30  # the 30 generated rows (re-read by the sort)
        assert totals["bytes_out"].value > 0
        assert all(m.tags == {"engine": "spark"} for m in totals.values())
        service.close()
        remote.close()
        client.close()


def test_a_streaming_job_survives_an_executor_restart_and_stops_gracefully(
    spark_rig: SparkRig, spark: None, sparksteps: Any
) -> None:
    rig = spark_rig
    out, checkpoint = rig.root / "even", rig.root / "checkpoint"
    rig.client.datasets.register("even", uri=out.as_uri(), format="json")  # "rate" is not
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

    first = wait_until(rows_written, timeout=JOB_DEADLINE, what="the streaming query to write rows")
    assert all(row["value"] % 2 == 0 for row in first)

    def rows_counted() -> float:
        metrics = rig.client.services.metrics.list_metrics(
            rig.project, job_execution_id=start.job_execution_id
        )
        return sum(m.value for m in metrics if m.name == "records_in")

    # A batch's rows reach its files before its progress exists: wait for the metric itself.
    wait_until(rows_counted, timeout=JOB_DEADLINE, what="a micro-batch's records_in metric")

    rig.stop()  # a server restart: the job runs on
    assert pids.is_alive(job.pid)
    executor = rig.start()  # a new executor instance on the same home re-attaches
    assert executor.active() == [start.job_execution_id]
    rig.outbox.put(start)  # a duplicated START (new instance, new loop): ignored
    stop = rig.stop_job(start)
    ended = rig.wait_status(start, JobStatus.STOPPED, JobStatus.FAILED, timeout=120)
    assert ended.status is JobStatus.STOPPED, ended.error
    wait_until(lambda: stop.command_id in rig.outbox.done, timeout=30, what="the STOP to complete")
    assert not pids.is_alive(job.pid)
    log = rig.log(start)
    assert log.count('"event": "started"') == 1  # one driver: the duplicate launched nothing
    assert '"status": "STOPPED"' in log  # the driver stopped its queries and said so
    assert sparksteps.LOG_TEXT in log
    # Lineage once RUNNING, once per attempt: the re-attached executor did not record it again.
    (record,) = rig.client.services.lineage.writers(rig.project, LineageRef.dataset("even"))
    assert (record.inputs, record.outputs) == ((), (LineageRef.dataset("even", 1),))
    assert log.count("dataset 'rate' is not registered") == 1
    # Each micro-batch's metrics once, though the new executor read the log from its start.
    metrics = rig.client.services.metrics.list_metrics(
        rig.project, job_execution_id=start.job_execution_id
    )
    batches = [(m.tags["query"], m.step) for m in metrics if m.name == "records_in"]
    assert batches, "no micro-batch metrics"
    assert len(batches) == len(set(batches))
    assert sum(m.value for m in metrics if m.name == "records_in") > 0
    assert {m.name for m in metrics} <= {"records_in", "rows_per_second"}
    assert all(m.tags["engine"] == "spark" for m in metrics)
