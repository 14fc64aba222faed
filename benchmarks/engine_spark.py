"""The spark executor on this machine: submit -> RUNNING latency, and one streaming job's records/s.

1. Latency: N tiny batch jobs, one after the other (``local[2]``): from the START handed to the
   executor to RUNNING reported (``spark-submit`` started, JVM and SparkSession up, processors
   open), and to FINISHED. Prints median / p99 / max in seconds.
2. Throughput: one streaming job -- Spark's ``rate`` source at ``--rate`` rows/s ->
   ``foreachBatch`` counting rows in the driver -- run for ``--seconds`` after RUNNING, then
   stopped. Records/s = rows of every micro-batch after the first / the time between the end of
   the first and of the last (the first batch carries start-up).

    .venv/bin/python benchmarks/engine_spark.py [--runs 3] [--rate 200000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import tideflow as tide
from tideflow.client import connect
from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.scheduling import CommandAction, JobCommand, command_id
from tideflow.domain.status import JobStatus
from tideflow.executors.base import ExecutorContext, job_plan
from tideflow.executors.spark import SparkExecutor
from tideflow.metadata import ExecutionService

PROCESSORS = """
import time
import tideflow as tide


class Tiny(tide.Processor):
    def process(self, ctx, inputs):
        return ctx.spark.range(100).selectExpr("id % 3 AS k").groupBy("k").count().collect()


class Rate(tide.Processor):
    def process(self, ctx, inputs):
        rate = str(ctx.config["rate"])
        return ctx.spark.readStream.format("rate").option("rowsPerSecond", rate).load()


class CountBatches(tide.Processor):
    def process(self, ctx, inputs):
        log = ctx.logger

        def count(frame, batch_id):
            rows = frame.count()
            log.info("BATCH %d rows %d at %.3f", batch_id, rows, time.time())

        return inputs[0].writeStream.foreachBatch(count).trigger(processingTime="1 second").start()
"""
BATCH = re.compile(r"BATCH (\d+) rows (\d+) at ([0-9.]+)")
CONF = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}


class Bench:
    """A temporary home and store, and a spark executor whose commands are handed in directly."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bench-spark-"))
        self.code = self.root / "code"
        self.code.mkdir()
        (self.code / "benchspark.py").write_text(PROCESSORS)
        sys.path.insert(0, str(self.code))
        import benchspark

        self.steps: Any = benchspark
        self.url = f"sqlite:///{self.root / 'tideflow.db'}"
        self.client = connect(self.url, project="bench")
        self.executions = ExecutionService(self.client.store)
        self.done: list[str] = []
        # Its jobs make no API call: they need no server (and get no store URL).
        context = ExecutorContext(
            home=self.root,
            executions=self.executions,
            workflows=self.client.services.workflows,
            options={"spark_master": "local[2]", "spark_conf": CONF},
            on_command_done=self.done.append,
        )
        self.executor = SparkExecutor(context)
        self._sequence = 0

    def start(self, wf: tide.Workflow) -> JobCommand:
        self._sequence += 1
        snapshot = self.client.workflows.submit(wf, source=self.code).snapshot
        run = self.executions.create_execution("bench", wf.name, snapshot_id=snapshot.snapshot_id)
        je = self.executions.create_job_execution("bench", run.execution_id, "main")
        command = JobCommand(
            command_id=command_id(run.execution_id, "main", 1, CommandAction.START),
            project="bench",
            workflow=wf.name,
            execution_id=run.execution_id,
            snapshot_id=snapshot.snapshot_id,
            job="main",
            attempt=1,
            job_execution_id=je.job_execution_id,
            action=CommandAction.START,
        )
        plan = job_plan(WorkflowPlan.from_json(snapshot.plan), "main")
        self.executor.launch(command, plan)
        return command

    def wait(self, command: JobCommand, *statuses: JobStatus, timeout: float = 900) -> float:
        deadline = time.monotonic() + timeout
        while True:
            job = self.executions.get_job_execution("bench", command.job_execution_id)
            if job.status in statuses:
                return time.monotonic()
            if job.status.is_terminal or time.monotonic() > deadline:
                raise SystemExit(f"job ended {job.status} ({job.error}); log {job.log_uri}")
            time.sleep(0.05)

    def stop(self, command: JobCommand) -> None:
        stop = replace(
            command,
            action=CommandAction.STOP,
            command_id=command_id(command.execution_id, "main", 1, CommandAction.STOP),
        )
        self.executor.stop(stop)
        self.wait(command, JobStatus.STOPPED)

    def log(self, command: JobCommand) -> str:
        job = self.executions.get_job_execution("bench", command.job_execution_id)
        return Path(job.log_uri).read_text() if job.log_uri else ""

    def close(self) -> None:
        self.executor.close()
        self.client.close()
        shutil.rmtree(self.root, ignore_errors=True)


def latency(bench: Bench, runs: int) -> tuple[list[float], list[float]]:
    to_running, to_finished = [], []
    for _ in range(runs):
        with tide.workflow("tiny") as wf, tide.job("main", engine="spark"):
            tide.user_node(processor=bench.steps.Tiny(), name="tiny")
        began = time.monotonic()
        command = bench.start(wf)
        to_running.append(bench.wait(command, JobStatus.RUNNING, JobStatus.FINISHED) - began)
        to_finished.append(bench.wait(command, JobStatus.FINISHED) - began)
    return to_running, to_finished


def throughput(bench: Bench, rate: int, seconds: float) -> tuple[float, int, int]:
    stream = tide.job("main", engine="spark", streaming=True)
    with tide.workflow("stream") as wf, stream:
        rows = tide.read_dataset("rate", processor=bench.steps.Rate(), config={"rate": rate})
        tide.write_dataset(rows, "counted", processor=bench.steps.CountBatches(), name="count")
    command = bench.start(wf)
    bench.wait(command, JobStatus.RUNNING)

    def batches() -> list[tuple[int, int, float]]:
        found = BATCH.findall(bench.log(command))
        return [(int(b), int(n), float(t)) for b, n, t in found if int(n)]

    try:
        deadline = time.monotonic() + 900
        while not batches():  # the first micro-batch carries the query's start-up
            if time.monotonic() > deadline:
                raise SystemExit("no micro-batch in 900 s")
            threading.Event().wait(0.5)
        threading.Event().wait(seconds)  # the measured period: the job runs on its own
    finally:
        bench.stop(command)
    found = batches()
    if len(found) < 3:
        raise SystemExit(f"only {len(found)} non-empty micro-batches: run longer")
    measured = found[1:]
    rows = sum(n for _, n, _ in measured)
    elapsed = measured[-1][2] - found[0][2]
    return rows / elapsed, rows, len(measured)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    bench = Bench()
    print(f"machine: {machine()}", flush=True)
    try:
        to_running, to_finished = latency(bench, args.runs)
        q = statistics.quantiles
        for name, values in (
            ("submit -> RUNNING", to_running),
            ("submit -> FINISHED", to_finished),
        ):
            p99 = q(values, n=100, method="inclusive")[98] if len(values) > 1 else values[0]
            print(
                f"{name:<20} median {statistics.median(values):6.1f} s  p99 {p99:6.1f} s  "
                f"max {max(values):6.1f} s  ({len(values)} jobs; "
                f"{1 / statistics.mean(values):.3f} jobs/s)",
                flush=True,
            )
        per_second, rows, batches = throughput(bench, args.rate, args.seconds)
    finally:
        bench.close()
    print(
        f"streaming (rate source at {args.rate}/s -> foreachBatch count): {per_second:,.0f} "
        f"records/s ({rows:,} rows in {batches} micro-batches)"
    )


if __name__ == "__main__":
    main()
