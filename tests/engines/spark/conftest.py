"""Spark test rigs: the ``spark`` executor on a temporary home, fed by the executor tests' outbox.

Like the executor tests' rig, a Spark rig keeps its entities in the session's ``job_server``'s
store, and hands its jobs that server's address, never the store's.

Real ``spark-submit`` runs (``local[*]`` on loopback), so a test needs PySpark and Java: without
them the tests skip with the reason outside CI and fail in CI (``CI=true``). A tiny local job
takes ~30 s on this machine, so the suite keeps the number of submissions small.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.executors.conftest import Rig
from tideflow.executors.base import ExecutorContext
from tideflow.executors.loop import CommandLoop
from tideflow.executors.spark import SparkExecutor
from tideflow.testing import TideflowTestServer

STEPS = Path(__file__).with_name("steps.py")
FAST_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
"""The driver JVM's options for tiny jobs: the C1 compiler only, and the serial collector.

A test job's driver spends most of its ~10 s starting (loading and compiling Spark's classes),
not computing: C2 compiler threads and a parallel collector then compete with the job for this
machine's 2 cores. Measured side by side on a loaded machine, a ``local[2]`` submission doing
one small aggregation took 9-21 s instead of 11-45 s. Right for tests, not a product default:
long jobs want C2's code.
"""
FAST_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.driver.extraJavaOptions": FAST_JVM,
}
"""Conf that keeps tiny test jobs quick on 2 cores (and shows spark_conf reaching --conf)."""


def spark_missing() -> str | None:
    """Why Spark jobs cannot run here, or ``None`` when they can."""
    if importlib.util.find_spec("pyspark") is None:
        return "PySpark is not installed (pip install -e '.[spark]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime (spark-submit needs java on PATH or JAVA_HOME)"
    return None


def require_spark() -> None:
    """Skip (outside CI) or fail (in CI) when Spark cannot run."""
    reason = spark_missing()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Spark is required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def spark() -> None:
    """Marks a test as needing a working ``spark-submit``."""
    require_spark()


@pytest.fixture
def sparksteps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The ``tfsparksteps`` module (``steps.py``), importable in the test process."""
    directory = tmp_path_factory.getbasetemp() / "tfsparksteps"
    directory.mkdir(exist_ok=True)
    shutil.copy(STEPS, directory / "tfsparksteps.py")
    sys.path.insert(0, str(directory))
    try:
        import tfsparksteps

        yield tfsparksteps
    finally:
        sys.path.remove(str(directory))


class SparkRig(Rig):
    """The executor tests' rig with the ``spark`` executor (restartable on the same home)."""

    def __init__(self, root: Path, server: TideflowTestServer, **options: Any) -> None:
        self.spark_options: dict[str, Any] = {
            "stop_grace": 30.0,
            "spark_conf": {"spark.driver.extraJavaOptions": FAST_JVM},
            **options,
        }
        super().__init__(root, server)
        shutil.copy(STEPS, self.code / "tfsparksteps.py")

    def start(self, source: Any = None, **options: Any) -> Any:
        context = ExecutorContext(
            home=self.home,
            executions=self.executions,
            workflows=self.client.services.workflows,
            server_url=self.server.url,
            options={**self.spark_options, **options},
            metrics=self.client.services.metrics,
            lineage=self.client.services.lineage,
        )
        self.executor = SparkExecutor(context)  # type: ignore[assignment]
        self.loop = CommandLoop(source or self.outbox, self.executor, idle_wait=0.1).start()
        return self.executor


@pytest.fixture
def spark_rig(
    tmp_path: Path, sparksteps: Any, job_server: TideflowTestServer
) -> Iterator[SparkRig]:
    made = SparkRig(tmp_path, job_server)
    yield made
    made.close()
