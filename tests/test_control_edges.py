"""examples/control_edges runs to FINISHED with ``tideflow run``, as its README says."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from tideflow.domain.status import ExecutionStatus, JobStatus
from tideflow.metadata.workflow import ExecutionService
from tideflow.store import Store
from tideflow.testing import run_cli

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "examples" / "control_edges" / "workflow.py"
JOBS = {"extract", "clean", "profile", "join", "train", "validate", "publish", "notify"}


# The CLI as a user runs it, from the repository (the examples are named relative to it).
tideflow = functools.partial(run_cli, cwd=ROOT)


def test_tideflow_run_ends_finished_with_every_job_finished(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        run = tideflow(
            "run", "examples/control_edges/workflow.py", "--timeout", "120", home=home, timeout=180
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "FINISHED" in run.stdout

        store = Store.open(f"sqlite:///{home / 'tideflow.db'}")
        try:
            executions = ExecutionService(store)
            (execution,) = executions.list_executions("default", workflow="control_edges")
            jobs = executions.list_job_executions("default", execution.execution_id)
        finally:
            store.close()
        assert execution.status is ExecutionStatus.FINISHED
        assert {j.job: j.status for j in jobs} == dict.fromkeys(JOBS, JobStatus.FINISHED)
        assert len(jobs) == len(JOBS)  # each ran once
    finally:
        stopped = tideflow("server", "stop", home=home, timeout=60)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
