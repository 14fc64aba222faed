"""Flink jobs end to end: a real server, its flink executor and the session's local cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tideflow as tide
from tests.engines.flink.cluster import JOBS
from tideflow.client import Client
from tideflow.domain.lineage import LineageRef
from tideflow.domain.status import JobStatus
from tideflow.executors.flink.rest import FlinkRest
from tideflow.testing import wait_until

pytestmark = [pytest.mark.flink, pytest.mark.slow, pytest.mark.timeout(600)]
WAIT = 300.0


def job_of(client: Client, execution_id: int, name: str) -> Any:
    jobs = [j for j in client.jobs.list(execution_id) if j.job == name]
    return jobs[-1] if jobs else None


def wait_job(client: Client, execution_id: int, name: str, *wanted: JobStatus) -> Any:
    def reached() -> Any:
        job = job_of(client, execution_id, name)
        if job is None:
            return None
        if job.status in wanted:
            return job
        if job.status.is_terminal:
            log = client.jobs.logs(execution_id, name)
            pytest.fail(f"job {name} ended {job.status} ({job.error}); log:\n{log[-4000:]}")
        return None

    return wait_until(
        reached, what=f"job {name} to reach {[s.value for s in wanted]}", timeout=WAIT, interval=0.2
    )


def csv_rows(directory: Path) -> list[list[str]]:
    rows = []
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.name.startswith((".", "_")):
            rows += [line.split(",") for line in path.read_text().splitlines() if line]
    return rows


def test_batch_table_job_runs_to_finished(
    flink_client: Client, flinkjobs: Any, flink_rest: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with tide.workflow("flink_batch") as wf, tide.job("features", engine="flink"):
        numbers = tide.read_dataset("numbers", processor=flinkjobs.Numbers(20))
        added = tide.transform(numbers, processor=flinkjobs.AddColumn(), name="added")
        tide.write_dataset(
            added,
            "totals",
            processor=flinkjobs.WriteCsv(str(out), "n BIGINT, sq BIGINT, total BIGINT"),
        )
    flink_client.workflows.submit(wf, source=JOBS)
    flink_client.datasets.register("numbers", uri="memory:numbers", format="rows")  # not "totals"
    run = flink_client.workflows.start("flink_batch")
    job = wait_job(flink_client, run.execution_id, "features", JobStatus.FINISHED)
    assert job.external_id, "the Flink job id is recorded as the job execution's external_id"
    assert FlinkRest(flink_rest).job_state(job.external_id) == "FINISHED"
    rows = csv_rows(out)
    assert sorted(int(r[0]) for r in rows) == list(range(20))
    assert all(int(r[2]) == int(r[0]) + int(r[0]) ** 2 for r in rows)
    log = flink_client.jobs.logs(run.execution_id, "features")
    assert "flink numbers processor builds 20 rows" in log
    assert job.external_id in log
    assert flink_client.executions.wait(run.execution_id, timeout=60).status.value == "FINISHED"
    # Lineage from the plan, registered datasets only; the rest is one line in the log.
    (record,) = flink_client.lineage.downstream(dataset="numbers")
    assert record.job_execution_id == job.job_execution_id
    assert (record.inputs, record.outputs) == ((LineageRef.dataset("numbers", 1),), ())
    assert log.count("dataset 'totals' is not registered") == 1
    metrics = flink_client.metrics.list(job_execution_id=job.job_execution_id)
    built = [m for m in metrics if m.name == "rows_built"]  # ctx.log_metric at build time
    assert [(m.value, m.tags) for m in built] == [
        (20.0, {"node": "read_dataset_1", "engine": "flink"})
    ]
    counts = {m.name for m in metrics if m.tags == {"engine": "flink"}}
    assert counts == {"records_in", "records_out", "bytes_in", "bytes_out"}


def test_sql_job_and_a_failing_job(flink_client: Client, flinkjobs: Any, tmp_path: Path) -> None:
    out = tmp_path / "sql_out"
    source = (
        "CREATE TEMPORARY TABLE src (k STRING, v INT) WITH ('connector' = 'datagen', "
        "'number-of-rows' = '50', 'fields.k.length' = '1', 'fields.v.min' = '1', "
        "'fields.v.max' = '1'); SELECT k, v FROM src"
    )
    sink = (
        f"CREATE TEMPORARY TABLE agg (k STRING, total INT) WITH ('connector' = 'filesystem', "
        f"'path' = '{out}', 'format' = 'csv'); "
        "INSERT INTO agg SELECT k, SUM(v) FROM {input} GROUP BY k"
    )
    with tide.workflow("flink_sql") as wf:
        with tide.job("agg", engine="flink", config={"parallelism.default": 1}):
            rows = tide.read_dataset("src", processor=flinkjobs.Sql(source), name="src_rows")
            tide.write_dataset(rows, "agg", processor=flinkjobs.Sql(sink, upstream="src_rows"))
        with tide.job("broken", engine="flink"):
            tide.read_dataset("nothing", processor=flinkjobs.Broken())
    flink_client.workflows.submit(wf, source=JOBS)
    flink_client.datasets.register("src", uri="datagen:src", format="rows")
    flink_client.datasets.register("agg", uri=out.as_uri(), format="csv")
    run = flink_client.workflows.start("flink_sql")
    agg = wait_job(flink_client, run.execution_id, "agg", JobStatus.FINISHED)
    assert sum(int(r[1]) for r in csv_rows(out)) == 50
    (record,) = flink_client.lineage.downstream(dataset="src")
    assert record.job_execution_id == agg.job_execution_id
    assert record.outputs == (LineageRef.dataset("agg", 1),)
    # GROUP BY shuffles: records cross a task boundary, so Flink's vertex counts are not 0.
    final = {
        m.name: m.value for m in flink_client.metrics.list(job_execution_id=agg.job_execution_id)
    }
    assert final["records_in"] > 0
    assert final["records_out"] > 0
    assert final["bytes_out"] > 0
    broken = wait_until(
        lambda: (
            (j := job_of(flink_client, run.execution_id, "broken")) is not None
            and j.status.is_terminal
            and j
        ),
        what="the broken job to end",
        timeout=WAIT,
        interval=0.2,
    )
    assert broken.status is JobStatus.FAILED
    assert "flink job broken on purpose" in (broken.error or "")
    assert "node 'read_dataset" in (broken.error or "") or "broken on purpose" in (
        broken.error or ""
    )


def test_streaming_job_stops_with_a_savepoint(
    flink_client: Client, flinkjobs: Any, flink_rest: str, tmp_path: Path
) -> None:
    out = tmp_path / "stream"
    config = {"checkpoint_interval": 1}
    with (
        tide.workflow("flink_stream") as wf,
        tide.job("gen", engine="flink", streaming=True, config=config),
    ):
        tide.user_node(processor=flinkjobs.Sql(flinkjobs.stream_sql(str(out))), name="gen")
    flink_client.workflows.submit(wf, source=JOBS)
    run = flink_client.workflows.start("flink_stream")
    job = wait_job(flink_client, run.execution_id, "gen", JobStatus.RUNNING)
    assert job.external_id
    # Checkpoints commit part files: wait until some are visible (data flows).
    wait_until(
        lambda: [p for p in out.rglob("part-*") if p.is_file()],
        what="committed part files",
        timeout=WAIT,
        interval=0.2,
    )
    flink_client.jobs.stop(run.execution_id, "gen")
    stopped = wait_job(flink_client, run.execution_id, "gen", JobStatus.STOPPED)
    assert stopped.external_id == job.external_id
    log = flink_client.jobs.logs(run.execution_id, "gen")
    assert "savepoint written" in log, log[-3000:]
    assert FlinkRest(flink_rest).job_state(job.external_id) in ("FINISHED", "CANCELED")
    # Record and byte counts were read while it ran and once more at its end.
    metrics = flink_client.metrics.list(job_execution_id=job.job_execution_id)
    assert {m.name for m in metrics} == {"records_in", "records_out", "bytes_in", "bytes_out"}
    assert all(m.tags == {"engine": "flink"} for m in metrics)
    assert len(metrics) >= 8  # at RUNNING and at the end, at least
