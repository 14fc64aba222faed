"""ctx.log_model / ctx.load_model in a real job, and save_model / load_model outside jobs."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from tideflow.cli.loader import load_workflows
from tideflow.client import connect
from tideflow.domain.lineage import LineageKind, LineageRef
from tideflow.domain.status import ExecutionStatus, ModelStatus
from tideflow.errors import InvalidArgumentError
from tideflow.serving.models import infer_flavour, load_model, save_model
from tideflow.testing import TideflowTestServer

FLOW = """
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import tideflow as tide
    from tideflow.domain.lineage import LineageRef


    def read(ctx, inputs):
        # What a stream source does: declare the offsets it read, in two steps.
        ctx.record_input(LineageRef.dataset("clicks", 1, start_offset=0, end_offset=49))
        ctx.record_input(LineageRef.dataset("clicks", 1, start_offset=50, end_offset=99))
        rng = np.random.default_rng(7)
        x = rng.normal(size=(100, 3))
        return x, (x[:, 0] > 0).astype(int)


    def train(ctx, inputs):
        x, y = inputs[0]
        clf = LogisticRegression().fit(x, y)
        version = ctx.log_model(
            clf, model="ctr", metrics={"accuracy": clf.score(x, y)}, params={"C": 1.0}
        )
        again = ctx.load_model("ctr", version=version.version)
        assert (again.predict(x) == clf.predict(x)).all()
        assert ctx.load_model("ctr", version=version.version) is again  # cached
        # A second version with explicit inputs.
        ctx.log_model(clf, model="ctr", flavour="pickle", inputs=["holdout"])
        # A streaming trainer's next window: the third version names only what was read
        # since the previous version.
        ctx.record_input(LineageRef.dataset("clicks", 1, start_offset=100, end_offset=149))
        ctx.log_model(clf, model="ctr", flavour="pickle")
        assert ctx.recorded_inputs == [
            LineageRef.dataset("clicks", 1, start_offset=0, end_offset=149)
        ]


    with tide.workflow("trainflow") as wf:
        with tide.job("train"):
            data = tide.read_dataset("clicks", processor=read)
            tide.train(data, model="ctr", processor=train)
"""


def test_log_model_in_a_job_registers_a_generated_version_with_blob_and_lineage(
    server: TideflowTestServer, tmp_path: Path
) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text(textwrap.dedent(FLOW))
    with server.client("artifacts") as client:
        client.datasets.register("clicks", uri="file:///clicks", format="jsonl", stream=True)
        client.datasets.register("holdout", uri="file:///holdout", format="csv")
        (wf,) = load_workflows(flow)
        client.workflows.submit(wf, source=flow)
        run = client.workflows.start("trainflow")
        done = client.executions.wait(run.execution_id, timeout=60)
        jobs = client.jobs.list(run.execution_id)
        assert done.status is ExecutionStatus.FINISHED, [(j.job, j.error) for j in jobs]
        (job,) = jobs

        first = client.models.get_version("ctr", version=1)
        assert first.status is ModelStatus.GENERATED
        assert first.flavour == "sklearn"
        assert first.job_execution_id == job.job_execution_id
        assert first.params == {"C": 1.0}
        assert first.metrics["accuracy"] > 0.9
        blob = client.blobs.get(first.uri)  # verified against its SHA-256
        assert first.uri.endswith(hashlib.sha256(blob).hexdigest())
        assert "/models/" in first.uri
        second = client.models.get_version("ctr", version=2)
        assert second.flavour == "pickle"

        # Each version's upstream is what it was trained on, alone.
        (record,) = client.lineage.upstream(model="ctr", version=1)
        assert record.job_execution_id == job.job_execution_id
        assert record.outputs == (LineageRef.model_version("ctr", 1),)
        assert record.inputs == (LineageRef.dataset("clicks", 1, start_offset=0, end_offset=99),)
        (record,) = client.lineage.upstream(model="ctr", version=2)
        assert record.outputs == (LineageRef.model_version("ctr", 2),)
        assert record.inputs == (LineageRef(LineageKind.DATASET, "holdout", 1),)
        (record,) = client.lineage.upstream(model="ctr", version=3)
        assert record.inputs == (LineageRef.dataset("clicks", 1, start_offset=100, end_offset=149),)

        loaded = load_model(client, "ctr", version=1)
        assert isinstance(loaded, LogisticRegression)


@pytest.mark.parametrize("where", ["local", "remote"])
def test_save_model_creates_the_model_and_load_model_reads_by_selector(
    server: TideflowTestServer, where: str
) -> None:
    url = server.db_url if where == "local" else server.url
    with connect(url, project=f"save-{where}") as client:
        x = np.arange(20, dtype=float).reshape(10, 2)
        clf = LogisticRegression().fit(x, [0] * 5 + [1] * 5)
        v1 = save_model(client, clf, model="m", metrics={"auc": 0.5})
        v2 = save_model(client, {"weights": [1, 2]}, model="m")
        assert (v1.version, v1.flavour, v2.version, v2.flavour) == (1, "sklearn", 2, "pickle")
        client.models.set_status("m", 2, "VALIDATED")
        client.models.deploy("m", 2)
        client.models.set_alias("m", "champion", 1)
        assert load_model(client, "m") == {"weights": [1, 2]}  # the DEPLOYED one by default
        assert isinstance(load_model(client, "m", alias="champion"), LogisticRegression)
        with pytest.raises(InvalidArgumentError, match="give job_execution_id"):
            save_model(client, clf, model="m", inputs=["clicks"])
        with pytest.raises(InvalidArgumentError, match="unknown model flavour 'onnx'"):
            save_model(client, clf, model="m", flavour="onnx")


def test_flavour_is_inferred_from_the_class_and_its_bases() -> None:
    class Custom(LogisticRegression):
        pass

    assert infer_flavour(LogisticRegression()) == "sklearn"
    assert infer_flavour(Custom()) == "sklearn"
    assert infer_flavour({"a": 1}) == "pickle"


def test_tideflow_ml_stages_round_trip_in_their_own_save_format(
    server: TideflowTestServer,
) -> None:
    import pandas as pd

    from tideflow.ml import StandardScaler

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, 0.0]})
    scaler = StandardScaler(["a", "b"]).fit(frame)
    with connect(server.db_url, project="stages") as client:
        version = save_model(client, scaler, model="scaler")
        assert version.flavour == "tideflow"
        loaded = load_model(client, "scaler", version=version.version)
        assert type(loaded) is type(scaler)
        pd.testing.assert_frame_equal(loaded.transform(frame), scaler.transform(frame))


def test_a_local_stream_is_a_prediction_sink(server: TideflowTestServer, tmp_path: Path) -> None:
    from tideflow.io.local_stream import LocalStreamReader, LocalStreamWriter
    from tideflow.serving.predictor import Predictor

    with connect(server.url, project="stream-sink") as client:
        save_model(client, {"w": 1}, model="m")
        client.models.set_status("m", 1, "VALIDATED")
        client.models.deploy("m", 1)
        sink = LocalStreamWriter(tmp_path / "predictions")
        with Predictor(client, "m", sink=sink, scorer=lambda m, rs: [m["w"]] * len(rs)) as p:
            p.predict([{"x": 1}, {"x": 2}], ["a", "b"])
    reader = LocalStreamReader(tmp_path / "predictions")
    records = list(reader.records(idle_timeout=0))
    assert [(r["request_id"], r["score"], r["version"]) for r in records] == [
        ("a", 1, 1),
        ("b", 1, 1),
    ]
