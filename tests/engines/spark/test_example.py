"""The ad_ctr batch feature job on Spark, run as users run it: ``tideflow run`` in a fresh home."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from tests.engines.spark.conftest import FAST_JVM
from tideflow.client import connect
from tideflow.domain.lineage import LineageRef
from tideflow.testing import run_cli

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[3]
WORKFLOW = ROOT / "src" / "tideflow" / "examples" / "ad_ctr" / "spark_workflow.py"


# The CLI as a user runs it, from the repository (the examples are named relative to it).
tideflow = functools.partial(run_cli, cwd=ROOT)


def test_tideflow_run_writes_ctr_features_with_spark(tmp_path: Path, spark: None) -> None:
    import pyarrow.parquet as pq

    home = tmp_path / "home"
    # No output param: the features go to the project's data directory, where jobs hand over.
    output = home / "data" / "default" / "datasets" / "ad_ctr_features"
    try:
        run = tideflow(
            "run",
            str(WORKFLOW),
            "--param",
            "generate_rows=3000",
            "--timeout",
            "600",
            home=home,
            # The example's conf is the user's; the test's driver JVM options go by Spark's own
            # variable, which the server and its spark-submit inherit from the command.
            env={"SPARK_SUBMIT_OPTS": FAST_JVM},
            timeout=800,
        )
    finally:
        stopped = tideflow("server", "stop", home=home, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "FINISHED" in run.stdout
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    table = pq.read_table(output)
    assert set(table.column_names) == {
        "segment",
        "category",
        "device",
        "impressions",
        "clicks",
        "mean_position",
        "ctr",
    }
    rows = table.to_pylist()
    assert sum(r["impressions"] for r in rows) == 3000  # every drawn impression, counted once
    assert 0 < sum(r["clicks"] for r in rows) < 3000
    assert all(0.0 < r["ctr"] < 1.0 for r in rows)
    assert len({(r["segment"], r["category"], r["device"]) for r in rows}) == len(rows)
    # The datasets job registered what the Spark job reads and writes: its lineage is recorded.
    client = connect(f"sqlite:///{home / 'tideflow.db'}", project="default")
    try:
        (record,) = client.services.lineage.writers("default", LineageRef.dataset("ctr_features"))
        assert record.job == "features"
        assert record.inputs == (LineageRef.dataset("ctr_impressions", 1),)
        assert record.outputs == (LineageRef.dataset("ctr_features", 1),)
        metrics = client.metrics.list(job_execution_id=record.job_execution_id)
        records_out = [m.value for m in metrics if m.name == "records_out"]
        assert records_out == [len(rows)]  # the feature rows written, counted by Spark
    finally:
        client.close()
