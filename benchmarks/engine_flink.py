"""Flink engine benchmark: submit -> RUNNING latency and one streaming job's throughput.

Runs the real path: a ``TideflowTestServer`` whose ``flink`` executor submits to a loopback
Flink cluster started from the PyFlink environment (``tideflow engines setup flink``).

- **submit -> RUNNING**: from ``workflows.start`` to the job execution reported RUNNING (the
  Flink client's JVM + the PyFlink driver + Flink scheduling), median and p99 over ``--runs``
  batch jobs.
- **throughput**: a streaming job (datagen at an unbounded rate -> blackhole) measured by Flink's
  own ``numRecordsOut`` of its source vertex over ``--seconds``, in records/s.

Usage: ``python benchmarks/engine_flink.py [--venv .venv-flink] [--flink-address URL]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from engine_jobs import running_at, wait_status

import tideflow as tide
from tideflow.domain.status import JobStatus
from tideflow.executors.flink.cluster import LocalFlinkCluster
from tideflow.executors.flink.environment import FlinkEnvironment
from tideflow.executors.flink.rest import FlinkRest
from tideflow.testing import TideflowTestServer

JOBS = Path(__file__).resolve().parents[1] / "tests" / "engines" / "flink" / "jobs"
STREAM = """
    CREATE TEMPORARY TABLE bench_gen (n BIGINT, s STRING) WITH ('connector' = 'datagen',
      'fields.s.length' = '16');
    CREATE TEMPORARY TABLE bench_hole (n BIGINT, s STRING) WITH ('connector' = 'blackhole');
    INSERT INTO bench_hole SELECT n, s FROM bench_gen
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--venv", default=str(Path(__file__).resolve().parents[1] / ".venv-flink"))
    parser.add_argument("--flink-address", default="")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    environment = FlinkEnvironment(Path(args.venv).resolve())
    environment.require()
    cluster = None
    address = args.flink_address
    if not address:
        cluster = LocalFlinkCluster(Path(tempfile.mkdtemp(prefix="bench-flink-")), environment)
        started = time.monotonic()
        address = cluster.ensure_started(timeout=300)
        print(f"local cluster up in {time.monotonic() - started:.1f} s at {address}")
    sys.path.insert(0, str(JOBS))
    import flinkjobs

    import tideflow.testing

    tideflow.testing.START_TIMEOUT = 300.0  # a busy shared machine starts servers slowly

    server = TideflowTestServer(
        env={  # every executor registered, as users run it
            "TIDEFLOW_FLINK_ADDRESS": address,
            "TIDEFLOW_FLINK_VENV": str(environment.path),
        }
    ).start()
    try:
        client = server.client(project="bench")
        with tide.workflow("bench_batch") as wf, tide.job("main", engine="flink"):
            tide.user_node(processor=flinkjobs.ContractFinish(), name="finish")
        client.workflows.submit(wf, source=JOBS)
        latencies = []
        for _ in range(args.runs):
            started = time.time()
            run = client.workflows.start("bench_batch")
            wait_status(client, run.execution_id, "main", JobStatus.FINISHED)
            # RUNNING can be shorter than a poll on an idle machine: take its commit time.
            latencies.append(running_at(client, run.execution_id) - started)
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
        with tide.workflow("bench_stream") as wf, tide.job("main", engine="flink", streaming=True):
            tide.user_node(processor=flinkjobs.Sql(STREAM), name="stream")
        client.workflows.submit(wf, source=JOBS)
        run = client.workflows.start("bench_stream")
        job = wait_status(client, run.execution_id, "main", JobStatus.RUNNING)
        rest = FlinkRest(address)
        time.sleep(5.0)  # warm-up: let the tasks deploy before measuring
        first = source_records(rest, job.external_id)
        time.sleep(args.seconds)
        last = source_records(rest, job.external_id)
        client.jobs.stop(run.execution_id, "main")
        wait_status(client, run.execution_id, "main", JobStatus.STOPPED)
        rate = (last[0] - first[0]) / (last[1] - first[1])
        print(
            f"machine: {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}"
        )
        print(
            f"submit -> RUNNING over {args.runs} batch jobs: median {statistics.median(latencies):.2f} s, "
            f"p99 {p99:.2f} s, {1 / statistics.median(latencies):.2f} jobs/s"
        )
        print(f"streaming datagen -> blackhole: {rate:,.0f} records/s over {args.seconds:.0f} s")
    finally:
        server.close()
        if cluster is not None:
            cluster.stop()


def source_records(rest: FlinkRest, job_id: str) -> tuple[float, float]:
    """(records the job's first vertex emitted, when) from Flink's job details."""
    details = rest.call("GET", f"/jobs/{job_id}")
    vertex = details["vertices"][0]
    return float(vertex["metrics"]["write-records"]), time.monotonic()


if __name__ == "__main__":
    main()
