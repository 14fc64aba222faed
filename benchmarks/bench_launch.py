"""Job launch latency of the local executor: warm (fork server) vs cold (fresh interpreter).

For N no-op jobs each: START handed to the executor -> process spawned, and -> RUNNING reported
(the runtime opened its processors and said so). Prints p50 / p99 in milliseconds.

    .venv/bin/python benchmarks/bench_launch.py [N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import tideflow as tide
from tideflow.client import connect
from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.scheduling import CommandAction, JobCommand, command_id
from tideflow.executors.base import ExecutorContext, job_plan
from tideflow.executors.local import LocalExecutor
from tideflow.metadata import ExecutionService


def noop(ctx, inputs):
    return None


def measure(warm: bool, n: int) -> tuple[list[float], list[float]]:
    root = Path(tempfile.mkdtemp(prefix="bench-launch-"))
    try:
        code = root / "code"
        code.mkdir()
        (code / "flow.py").write_text("")
        url = f"sqlite:///{root / 'tideflow.db'}"
        client = connect(url, project="bench")
        with tide.workflow("wf") as wf, tide.job("noop"):
            tide.user_node(processor=noop, name="n")
        snapshot_id = client.workflows.submit(wf, source=code).snapshot.snapshot_id
        plan = job_plan(
            WorkflowPlan.from_json(
                client.services.workflows.get_snapshot("bench", snapshot_id).plan
            ),
            "noop",
        )
        executions = ExecutionService(client.store)
        # No-op jobs make no API call: they need no server (and get no store URL).
        executor = LocalExecutor(
            ExecutorContext(
                home=root,
                executions=executions,
                workflows=client.services.workflows,
                options={"warm_start": warm},
            )
        )
        time.sleep(1.0)  # let the fork server finish its imports (not part of a launch)
        spawned, running = [], []
        for _ in range(n):
            run = executions.create_execution("bench", "wf", snapshot_id=snapshot_id)
            je = executions.create_job_execution("bench", run.execution_id, "noop", attempt=1)
            start = CommandAction.START
            executor.launch(
                JobCommand(
                    command_id(run.execution_id, "noop", 1, start),
                    "bench",
                    "wf",
                    run.execution_id,
                    snapshot_id,
                    "noop",
                    1,
                    je.job_execution_id,
                    start,
                ),
                plan,
            )
            deadline = time.monotonic() + 30
            while executions.get_job_execution("bench", je.job_execution_id).status.value not in (
                "FINISHED",
                "FAILED",
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError("job did not finish")
                time.sleep(0.002)
            s, r = executor.latency(je.job_execution_id)
            spawned.append(s * 1000)
            running.append(r * 1000)
        executor.close()
        client.close()
        return spawned, running
    finally:
        shutil.rmtree(root, ignore_errors=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("n", nargs="?", type=int, default=50, help="jobs per mode (default 50)")
    n = parser.parse_args().n
    if n < 1:
        parser.error("n must be at least 1")
    for warm in (True, False):
        spawned, running = measure(warm, n)
        label = "warm (fork server)" if warm else "cold (exec python)"
        print(
            f"{label:20s} n={n}  START->spawned p50 {statistics.median(spawned):6.1f} ms "
            f"p99 {pct(spawned, 0.99):6.1f} ms | START->RUNNING p50 "
            f"{statistics.median(running):6.1f} ms p99 {pct(running, 0.99):6.1f} ms"
        )


if __name__ == "__main__":
    main()
