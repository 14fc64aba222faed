"""The spark engine without Spark: compiling, the executor's cheap paths, progress lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tideflow as tide
from tests.engines.spark.conftest import SparkRig
from tideflow.domain.progress import parse_progress, progress_line
from tideflow.domain.status import JobStatus
from tideflow.engines.spark.context import SparkJobContext
from tideflow.errors import FailedPreconditionError, GraphError, InvalidArgumentError
from tideflow.executors.spark import SparkSettings
from tideflow.testing import TideflowTestServer


def test_a_spark_job_compiles_to_ordered_nodes_with_its_streaming_flag(sparksteps: Any) -> None:
    with tide.workflow("wf") as wf, tide.job("feats", engine="spark", streaming=True):
        rows = tide.read_dataset("rate", processor=sparksteps.Rate())
        even = tide.transform(rows, processor=sparksteps.Even(), name="even")
        tide.write_dataset(
            even, "out", name="sink", config={"path": "/tmp/x", "checkpoint": "/tmp/c"}
        )
    job = tide.compile(wf).job("feats")
    assert (job.engine, job.platform, job.streaming) == ("spark", "spark", True)
    assert job.engine_payload == {"order": ["read_dataset_1", "even", "sink"], "streaming": True}
    assert [n.name for n in job.nodes] == ["read_dataset_1", "even", "sink"]
    assert job.nodes[2].processor is None  # the built-in writer runs from its config


def test_nodes_spark_cannot_run_are_all_named_at_compile_time(sparksteps: Any) -> None:
    with tide.workflow("wf") as wf:
        with tide.job("batch", engine="spark"):
            raw = tide.read_dataset("raw", name="no_path")
            nums = tide.read_dataset("nums", processor=sparksteps.Numbers())
            tide.write_dataset([raw, nums], "both", name="two_inputs", config={"path": "/tmp/b"})
        with tide.job("stream", engine="spark", streaming=True):
            rows = tide.read_dataset("rate", processor=sparksteps.Rate())
            tide.write_dataset(rows, "out", name="no_checkpoint", config={"path": "/tmp/o"})
    with pytest.raises(GraphError) as caught:
        tide.compile(wf)
    text = str(caught.value)
    assert "no_path" in text
    assert "config['path']" in text
    assert "two_inputs" in text
    assert "exactly one input" in text
    assert "no_checkpoint" in text
    assert "config['checkpoint']" in text
    assert len(caught.value.problems) == 3


def test_a_spark_job_on_another_platform_is_refused(sparksteps: Any) -> None:
    with tide.workflow("wf") as wf, tide.job("feats", engine="spark", platform="local"):
        tide.read_dataset("nums", processor=sparksteps.Numbers())
    with pytest.raises(GraphError, match="spark"):
        tide.compile(wf)


def test_unknown_executor_options_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="spark_mastr"):
        SparkSettings.from_options({"spark_mastr": "local[2]"})
    settings = SparkSettings.from_options({"submit_args": ["--verbose"], "spark_master": "yarn"})
    assert settings.submit_args == ("--verbose",)
    assert settings.spark_master == "yarn"


def test_an_idle_spark_executor_imports_no_pyspark_and_starts_no_thread(tmp_path: Path) -> None:
    script = f"""
import sys, threading
from pathlib import Path
from tideflow.client import connect
from tideflow.executors.base import ExecutorContext, default_registry
from tideflow.metadata import ExecutionService
client = connect("sqlite:///{tmp_path}/t.db", project="p")
context = ExecutorContext(home=Path({str(tmp_path)!r}), executions=ExecutionService(client.store),
                          workflows=client.services.workflows)
before = threading.active_count()
executor = default_registry.create("spark", context)
executor.reconcile([])
executor.poll()
executor.close()
assert "pyspark" not in sys.modules, "pyspark imported"
assert threading.active_count() == before, "a thread was started"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr


def test_a_spark_submit_that_cannot_start_fails_the_job_not_the_executor(
    tmp_path: Path, sparksteps: Any, job_server: TideflowTestServer
) -> None:
    rig = SparkRig(tmp_path, job_server, spark_submit=str(tmp_path / "no-such-spark-submit"))
    try:
        with tide.workflow("wf") as wf, tide.job("main", engine="spark"):
            tide.read_dataset("nums", processor=sparksteps.Numbers())
        start = rig.start_job(wf, "main")
        job = rig.wait_status(start, JobStatus.FAILED)
        assert "spark-submit not found" in (job.error or "")
        assert "no-such-spark-submit" in (job.error or "")
        assert "no-such-spark-submit" in rig.log(start)
        assert start.command_id in rig.outbox.done
    finally:
        rig.close()


def test_a_spark_processor_gets_the_project_data_dir(tmp_path: Path) -> None:
    def context(data_location: str | None) -> SparkJobContext:
        return SparkJobContext(
            spark=None,
            workflow="wf",
            execution_id=1,
            job="feats",
            attempt=1,
            node="n",
            data_location=data_location,
        )

    given = tmp_path / "data" / "p"
    assert context(str(given)).data_dir == given
    assert given.is_dir()  # made on first use, as for Python jobs
    with pytest.raises(FailedPreconditionError, match="this Spark job has no data directory"):
        _ = context(None).data_dir


def test_progress_lines_round_trip_and_other_lines_are_ignored() -> None:
    line = progress_line("app", app_id="local-1")
    assert parse_progress(line) == {"event": "app", "app_id": "local-1"}
    assert parse_progress("26/11/27 INFO SparkContext: Running Spark") is None
    assert parse_progress('@@tideflow {"event": "result", "sta') is None  # torn
    assert parse_progress('@@tideflow ["event"]') is None


def test_server_start_spark_master_becomes_the_spark_executors_option() -> None:
    from tideflow.cli.server import _executor_options

    options = _executor_options(ray_address=None, spark_master="spark://10.0.0.5:7077")
    assert options == {"spark": {"spark_master": "spark://10.0.0.5:7077"}}
    assert SparkSettings.from_options(options["spark"]).spark_master == "spark://10.0.0.5:7077"
    assert _executor_options(ray_address=None) == {}


def test_the_driver_needs_no_grpc_store_or_client() -> None:
    script = (
        "import sys, tideflow.engines.spark.driver\n"
        "heavy = {'grpc', 'sqlalchemy', 'google.protobuf', 'tideflow.client', 'pyspark'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"  # PySpark itself is imported once the job builds its session
