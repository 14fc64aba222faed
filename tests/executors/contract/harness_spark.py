"""The spark executor's contract-suite harness: ``spark-submit`` on ``local[*]``.

Processors come from ``tests/engines/spark/steps.py``, packaged as ``tfsparksteps.py`` so the
Spark driver imports them from the code package. Without PySpark or Java the tests skip, except
in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator

import pytest

import tideflow as tide
from tests.engines.spark.conftest import FAST_CONF, STEPS, require_spark
from tests.executors.contract.harness import JOB, Harness, copy_source


@pytest.fixture(scope="session")
def spark_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    require_spark()
    source = copy_source({"tfsparksteps.py": STEPS}, tmp_path_factory.mktemp("contract-spark"))
    sys.path.insert(0, str(source))
    steps = importlib.import_module("tfsparksteps")
    config = {"spark_conf": FAST_CONF, "spark_master": "local[2]"}
    workflows: dict[str, tide.Workflow] = {}
    with tide.workflow("finish") as wf, tide.job(JOB, engine="spark", config=config):
        rows = tide.read_dataset("nums", processor=steps.Numbers(), config={"n": 12})
        tide.transform(rows, processor=steps.CountByKey(), name="count")
    workflows["finish"] = wf
    with tide.workflow("fail") as wf, tide.job(JOB, engine="spark", config=config):
        tide.read_dataset("nums", processor=steps.Fail())
    workflows["fail"] = wf
    stream = tide.job(JOB, engine="spark", streaming=True, config=config)
    with tide.workflow("stream") as wf, stream:
        rows = tide.read_dataset("rate", processor=steps.Rate())
        even = tide.transform(rows, processor=steps.Even(), name="even")
        tide.write_dataset(even, "nowhere", processor=steps.NoopSink(), name="sink")
    workflows["stream"] = wf
    try:
        yield Harness(
            executor="spark",
            options={"stop_grace": 30.0},
            workflow=workflows.__getitem__,
            log_text=steps.LOG_TEXT,
            error_text=steps.ERROR_TEXT,
            source=source,
            timeout=600.0,
        )
    finally:
        sys.path.remove(str(source))
