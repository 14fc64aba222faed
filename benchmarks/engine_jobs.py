"""What the engine benchmarks (``engine_ray.py``, ``engine_flink.py``) share: waiting on a job
through the client, and when its RUNNING was committed."""

from __future__ import annotations

import time
from typing import Any

from tideflow.domain.status import JobStatus


def wait_status(client: Any, execution_id: int, job: str, wanted: JobStatus) -> Any:
    """The job execution once it reaches ``wanted``; exit if it ends otherwise or in 10 min."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        for found in client.jobs.list(execution_id):
            if found.job == job and found.status is wanted:
                return found
            if found.job == job and found.status.is_terminal and found.status is not wanted:
                raise SystemExit(f"job {job} ended {found.status}: {found.error}")
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {job} to reach {wanted}")


def running_at(client: Any, execution_id: int, key: str = "bench_batch.main") -> float:
    """When the job's RUNNING status was committed (its status event's time).

    An idle machine can run a batch job through RUNNING faster than a poll sees it.
    """
    for event in client.events.list(key=key, event_type="JOB_STATUS_CHANGED", limit=1000):
        if event.value == "RUNNING" and event.context.get("execution_id") == execution_id:
            return float(event.create_time.timestamp())
    raise SystemExit(f"no RUNNING event for execution {execution_id}")
