"""The ad_ctr Flink example, run as users run it: ``tideflow run`` in a fresh home.

The Flink job prepares features into a local stream; the Python trainer learns from them and
logs a model version; its FINISHED stops the Flink job with a savepoint, and the execution ends.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from tests.engines.flink.cluster import REPO, flink_address, flink_environment
from tideflow.client import connect
from tideflow.domain.lineage import LineageRef
from tideflow.io.local_stream import list_parts
from tideflow.testing import run_cli

pytestmark = [pytest.mark.flink, pytest.mark.slow, pytest.mark.timeout(1200)]
WORKFLOW = REPO / "src" / "tideflow" / "examples" / "ad_ctr" / "flink_workflow.py"


tideflow = functools.partial(run_cli, cwd=REPO)


def test_tideflow_run_trains_on_flink_prepared_features(tmp_path: Path) -> None:
    environment = flink_environment()
    address = flink_address()
    home, stream = tmp_path / "home", tmp_path / "features"
    env = {
        "TIDEFLOW_FLINK_VENV": str(environment.path),
        "TIDEFLOW_FLINK_ADDRESS": address,
        "TIDEFLOW_EXECUTORS": "local,flink",
    }
    try:
        run = tideflow(
            "run",
            str(WORKFLOW),
            "--param",
            "samples=400",
            "--param",
            f"stream_dir={stream}",
            "--timeout",
            "900",
            home=home,
            env=env,
            timeout=1000,
        )
    finally:
        stopped = tideflow("server", "stop", home=home, env=env, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "FINISHED" in run.stdout
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    parts = list_parts(stream, in_progress=False)
    assert parts, "Flink committed no part file the local stream can read"
    offsets = json.loads(next((stream / "_offsets").glob("*.json")).read_text())
    assert offsets["offset"] >= 400
    log = next((home / "logs" / "jobs").rglob("train/*.log")).read_text()
    assert "Flink-prepared examples" in log
    flink_log = next((home / "logs" / "jobs").rglob("features/*.log")).read_text()
    assert "savepoint written" in flink_log or "cancelling" in flink_log
    # The datasets job registered both streams: the Flink job's lineage names them.
    client = connect(f"sqlite:///{home / 'tideflow.db'}", project="default")
    try:
        (record,) = client.services.lineage.writers(
            "default", LineageRef.dataset("ad_ctr_flink_features")
        )
        assert record.job == "features"
        assert record.inputs == (LineageRef.dataset("impressions", 1),)
        assert record.outputs == (LineageRef.dataset("ad_ctr_flink_features", 1),)
        metrics = client.metrics.list(job_execution_id=record.job_execution_id)
        assert {m.name for m in metrics} == {"records_in", "records_out", "bytes_in", "bytes_out"}
    finally:
        client.close()
