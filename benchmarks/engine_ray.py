"""Ray engine benchmark: submit -> RUNNING latency and one streaming job's throughput.

Runs the real path: a ``TideflowTestServer`` whose ``ray`` executor submits through Ray's Job
Submission API to a loopback Ray head (started here, or ``--ray-address``).

- **submit -> RUNNING**: from ``workflows.start`` to the job execution reported RUNNING (package
  upload, Ray's runtime-environment set-up, the entrypoint interpreter, Tideflow's runtime
  opening the processors, and the executor's next poll), median and p99 over ``--runs`` batch
  jobs.
- **throughput**: a streaming Python job on Ray (an endless counter -> a counting sink) measured
  by the sink's own tally over ``--seconds``, in records/s.

Usage: ``python benchmarks/engine_ray.py [--ray-address http://HOST:8265] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import importlib
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
from tideflow.executors.ray.head import LocalRayHead
from tideflow.testing import TideflowTestServer

PROCESSORS = '''
import itertools
import time


class One:
    def process(self, ctx, inputs):
        return 1


class Numbers:
    def process(self, ctx, inputs):
        return itertools.count()


class Tally:
    """Counts what flows through; writes "count wall-time" to ``path`` twice a second."""

    def __init__(self, path):
        self.path = path

    def process(self, ctx, inputs):
        def flow():
            count, due = 0, time.monotonic()
            for record in inputs[0]:
                count += 1
                if count % 5000 == 0 and time.monotonic() >= due:
                    with open(self.path, "w") as out:
                        out.write(f"{count} {time.time()}")
                    due = time.monotonic() + 0.5
                yield record

        return flow()
'''


def tally(path: Path) -> tuple[int, float]:
    """(records counted, when) as the streaming job's sink last wrote them."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            count, when = path.read_text().split()
            return int(count), float(when)
        except (OSError, ValueError):
            time.sleep(0.05)
    raise SystemExit(f"the streaming job never wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ray-address", default="")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    scratch = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    head = None
    address = args.ray_address
    if not address:
        head = LocalRayHead(scratch / "head", num_cpus=2, startup_nice=-10)
        started = time.monotonic()
        address = head.address()
        print(f"local Ray head up in {time.monotonic() - started:.1f} s at {address}")
    code = scratch / "code"
    code.mkdir()
    (code / "rayjobs.py").write_text(PROCESSORS)
    sys.path.insert(0, str(code))
    rayjobs = importlib.import_module("rayjobs")
    # Every executor registered, as users run it.
    server = TideflowTestServer(args=["--ray-address", address]).start()
    try:
        client = server.client(project="bench")
        with tide.workflow("bench_batch") as wf, tide.job("main", platform="ray"):
            tide.read_dataset("one", processor=rayjobs.One())
        client.workflows.submit(wf, source=code)
        latencies = []
        for _ in range(args.runs):
            started = time.time()
            run = client.workflows.start("bench_batch")
            wait_status(client, run.execution_id, "main", JobStatus.FINISHED)
            # RUNNING can be shorter than a poll on an idle machine: take its commit time.
            latencies.append(running_at(client, run.execution_id) - started)
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
        out = scratch / "tally.txt"
        with (
            tide.workflow("bench_stream") as wf,
            tide.job("main", platform="ray", streaming=True),
        ):
            numbers = tide.read_dataset("numbers", processor=rayjobs.Numbers())
            tide.write_dataset(numbers, "sink", processor=rayjobs.Tally(str(out)))
        client.workflows.submit(wf, source=code)
        run = client.workflows.start("bench_stream")
        wait_status(client, run.execution_id, "main", JobStatus.RUNNING)
        time.sleep(3.0)  # warm-up before measuring
        first = tally(out)
        time.sleep(args.seconds)
        last = tally(out)
        client.jobs.stop(run.execution_id, "main")
        wait_status(client, run.execution_id, "main", JobStatus.STOPPED)
        rate = (last[0] - first[0]) / (last[1] - first[1])
        print(
            f"machine: {platform.machine()} {os.cpu_count()} cpus, Python "
            f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"submit -> RUNNING over {args.runs} batch jobs: median "
            f"{statistics.median(latencies):.2f} s, p99 {p99:.2f} s, "
            f"{1 / statistics.median(latencies):.2f} jobs/s"
        )
        print(f"streaming counter -> tally on Ray: {rate:,.0f} records/s over {args.seconds:.0f} s")
    finally:
        server.close()
        if head is not None:
            head.stop()


if __name__ == "__main__":
    main()
