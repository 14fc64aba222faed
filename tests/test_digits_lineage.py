"""Per-version lineage of the digits trainers on a real server.

The online trainer logs a version every few micro-batches: each version's upstream is the
rows it learnt from since the previous version, alone. The batch trainer's one version names
the whole training part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pandas")
pytest.importorskip("sklearn")

import tideflow as tide
from tideflow.domain.lineage import LineageKind, LineageRef
from tideflow.examples.digits import (
    OnlineTrainer,
    ReadDigits,
    ScalePixels,
    StreamDigits,
    TrainClassifier,
)
from tideflow.testing import TideflowTestServer

pytestmark = pytest.mark.slow


def build() -> Any:
    with tide.workflow("digits_lineage") as wf:
        with tide.job("stream_train", streaming=True):
            stream = tide.read_dataset(
                "digits_train",
                processor=StreamDigits("train"),
                name="read_stream",
                config={"batch_size": 32, "interval_seconds": 0, "max_batches": 25},
            )
            tide.train(
                tide.transform(stream, processor=ScalePixels(), name="scale_stream"),
                model="online",
                processor=OnlineTrainer("online"),
                name="learn",
                config={"publish_every": 10},
            )
        with tide.job("batch_train"):
            table = tide.read_dataset("digits_train", processor=ReadDigits("train"), name="read")
            tide.train(
                tide.transform(table, processor=ScalePixels(), name="scale"),
                model="batch",
                processor=TrainClassifier("batch"),
                name="fit",
            )
    return wf


@pytest.mark.timeout(180)
def test_each_digits_version_names_the_rows_it_was_trained_on(tmp_path: Path) -> None:
    source = tmp_path / "code"
    source.mkdir()
    with TideflowTestServer(home=tmp_path / "home") as server, server.client("default") as c:
        c.workflows.submit(build(), source=source)
        run = c.workflows.start("digits_lineage")
        done = c.executions.wait(run.execution_id, timeout=150)
        jobs = c.jobs.list(run.execution_id)
        assert done.status is tide.ExecutionStatus.FINISHED, [(j.job, j.error) for j in jobs]

        # 25 micro-batches of 32 rows, a version after 10, 20 and at the end (25).
        windows = {1: (0, 319), 2: (320, 639), 3: (640, 799)}
        for version, (first, last) in windows.items():
            (record,) = c.lineage.upstream(model="online", version=version)
            assert record.job == "stream_train"
            assert record.inputs == (
                LineageRef(LineageKind.DATASET, "digits_train", 1, first, last),
            )
            assert record.outputs == (LineageRef.model_version("online", version),)

        (record,) = c.lineage.upstream(model="batch", version=1)
        assert record.job == "batch_train"
        assert record.inputs == (LineageRef(LineageKind.DATASET, "digits_train", 1),)
        assert c.datasets.get("digits_train").uri == "sklearn://load_digits/train"
