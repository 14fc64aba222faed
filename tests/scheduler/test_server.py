"""The scheduler threads in a real server process, on a clock the test drives through a file."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import tideflow as tide
from tests.scheduler.conftest import jobs_workflow
from tideflow.metadata import ProjectService, WorkflowService
from tideflow.scheduler.clock import CLOCK_FILE_ENV, ManualClock
from tideflow.scheduler.service import SchedulerService
from tideflow.store import Store
from tideflow.testing import TideflowTestServer

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def clock_file(tmp_path: Path) -> Path:
    path = tmp_path / "clock"
    path.write_text(str(T0.timestamp()))
    return path


@pytest.fixture
def server(clock_file: Path) -> Iterator[TideflowTestServer]:
    # The test plays the executor (it sets job statuses by hand): the server runs none.
    env = {CLOCK_FILE_ENV: str(clock_file), "TIDEFLOW_EXECUTORS": ""}
    with TideflowTestServer(env=env) as running:
        yield running


def test_a_server_dispatches_and_fires_timers_on_the_test_clock(
    server: TideflowTestServer, clock_file: Path
) -> None:
    with Store.open(server.db_url) as store:
        ProjectService(store).ensure_project("p")
        wf = jobs_workflow("flow", "main", "tick", "after_main", streaming=True)
        wf.periodic("tick", interval=60)
        wf.after("after_main", "main", status="RUNNING")
        plan = tide.compile(wf)
        WorkflowService(store).create_snapshot("p", "flow", plan=plan.to_json())
        # This process starts the execution with the same clock time; the server does the rest.
        service = SchedulerService(store, clock=ManualClock(T0))
        run = service.start_execution("p", "flow").execution_id

        def jobs() -> set[str]:
            return {j.job for j in service.list_job_executions("p", run)}

        main = next(j for j in service.list_job_executions("p", run) if j.job == "main")
        for status in ("STARTING", "RUNNING"):
            service.executions.set_job_status("p", main.job_execution_id, status)
        eventually(lambda: "after_main" in jobs())  # the server's dispatcher saw RUNNING
        time.sleep(0.3)
        assert "tick" not in jobs()  # the clock has not moved
        clock_file.write_text(str(T0.timestamp() + 60))
        eventually(lambda: "tick" in jobs())
        service.close()
