"""Models leaving Tideflow (MLflow directories, ONNX) and coming in (MLflow, joblib files).

Exported models are loaded with MLflow and onnxruntime themselves and must predict what the
Tideflow predictor predicts for the same records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serving.conftest import unique
from tideflow.client import Client
from tideflow.client.model_export import export_model
from tideflow.client.model_import import import_mlflow, import_model
from tideflow.errors import FailedPreconditionError, InvalidArgumentError
from tideflow.serving.models import save_model
from tideflow.serving.predictor import Predictor
from tideflow.testing import TideflowTestServer

pytest.importorskip("mlflow")
mlflow = import_mlflow()  # its own import-time warnings silenced
pd = pytest.importorskip("pandas")
np = pytest.importorskip("numpy")

RECORDS = [
    {"a": 0.3, "b": -1.2, "c": 2.0},
    {"a": -0.7, "b": 0.4, "c": 0.1},
    {"a": 1.5, "b": 1, "c": -3},
]


@pytest.fixture
def client(server: TideflowTestServer) -> Iterator[Client]:
    with server.client(unique("exchange")) as opened:
        yield opened


def served_scores(
    client: Client, model: str, version: int, records: list[dict[str, Any]]
) -> list[Any]:
    """What ``tideflow serve`` answers for ``records`` with ``version`` deployed."""
    client.models.set_status(model, version, "VALIDATED")
    client.models.deploy(model, version)
    with Predictor(client, model, max_wait=0.0) as predictor:
        result = predictor.predict(records)
    assert result.version == version
    return [p.score for p in result.predictions]


def sklearn_pipeline() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    labels = (frame.a - frame.b + 0.3 * frame.c > 0).astype(int)
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, labels), frame


def river_model() -> Any:
    from river import linear_model

    model = linear_model.LogisticRegression()
    for i in range(200):
        x = {"a": (i % 7) / 7, "b": (i % 3) / 3, "c": (i % 5) / 5}
        model.learn_one(x, x["a"] > x["b"])
    return model


def test_an_exported_sklearn_pipeline_loads_in_mlflow_and_predicts_the_same(
    client: Client, tmp_path: Path
) -> None:
    pipeline, frame = sklearn_pipeline()
    version = save_model(client, pipeline, model="ctr", input_example=frame.head(3)).version
    out = export_model(client, "ctr", version, format="mlflow", out=tmp_path / "ctr")
    assert {"MLmodel", "requirements.txt", "python_env.yaml", "conda.yaml"} <= {
        p.name for p in out.iterdir()
    }
    requirements = (out / "requirements.txt").read_text()
    import sklearn

    assert f"scikit-learn=={sklearn.__version__}" in requirements
    assert "tideflow" not in requirements
    loaded = mlflow.pyfunc.load_model(str(out))
    assert [c.name for c in loaded.metadata.get_input_schema().inputs] == ["a", "b", "c"]
    exported = loaded.predict(pd.DataFrame(RECORDS)).tolist()
    assert exported == pytest.approx(served_scores(client, "ctr", version, RECORDS), abs=1e-12)
    estimator = mlflow.sklearn.load_model(str(out))  # MLflow's own sklearn flavour too
    assert estimator.predict_proba(pd.DataFrame(RECORDS))[:, 1].tolist() == pytest.approx(exported)
    # Loading without Tideflow at all: tests/serving/test_portable_artifact.py (the ctr model).


def test_an_exported_river_model_loads_in_mlflow_and_onnx_is_refused_with_the_reason(
    client: Client, tmp_path: Path
) -> None:
    version = save_model(client, river_model(), model="online", input_example=RECORDS).version
    out = export_model(client, "online", version, format="mlflow", out=tmp_path / "online")
    exported = mlflow.pyfunc.load_model(str(out)).predict(pd.DataFrame(RECORDS)).tolist()
    assert exported == pytest.approx(served_scores(client, "online", version, RECORDS), abs=1e-12)
    with pytest.raises(
        FailedPreconditionError, match="is a river model: ONNX export covers scikit-learn"
    ):
        export_model(client, "online", version, format="onnx", out=tmp_path / "online.onnx")
    assert not (tmp_path / "online.onnx").exists()
    with pytest.raises(InvalidArgumentError, match="unknown export format 'pmml'"):
        export_model(client, "online", version, format="pmml", out=tmp_path / "x")
    with pytest.raises(InvalidArgumentError, match="is not an empty directory"):
        export_model(client, "online", version, format="mlflow", out=out)


def test_an_onnx_export_agrees_with_the_predictor_in_onnxruntime(
    client: Client, tmp_path: Path
) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    pipeline, frame = sklearn_pipeline()
    version = save_model(client, pipeline, model="scored", input_example=frame.head(3)).version
    out = export_model(client, "scored", version, format="onnx", out=tmp_path / "scored")
    meta = json.loads((out / "tideflow.json").read_text())
    assert meta["features"] == ["a", "b", "c"]
    session = onnxruntime.InferenceSession(
        str(out / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    rows = np.asarray([[r[c] for c in meta["features"]] for r in RECORDS], dtype=np.float32)
    (probabilities,) = [
        o
        for o, d in zip(session.run(None, {"input": rows}), session.get_outputs(), strict=True)
        if d.name == "probabilities"
    ]
    served = served_scores(client, "scored", version, RECORDS)
    assert probabilities[:, 1].tolist() == pytest.approx(served, abs=1e-5)


def test_onnx_refuses_string_features(client: Client, tmp_path: Path) -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame({"segment": ["a", "b", "a", "c"], "x": [1.0, 2.0, 3.0, 4.0]})
    pipeline = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["segment"]), remainder="passthrough"),
        LogisticRegression(),
    ).fit(frame, [0, 1, 0, 1])
    version = save_model(client, pipeline, model="segments", input_example=frame).version
    with pytest.raises(FailedPreconditionError, match=r"reads string features \(segment\)"):
        export_model(client, "segments", version, format="onnx", out=tmp_path / "s")


def test_an_mlflow_directory_is_imported_as_a_generated_version(
    client: Client, tmp_path: Path
) -> None:
    pipeline, frame = sklearn_pipeline()
    version = save_model(client, pipeline, model="source", input_example=frame.head(2)).version
    out = client.models.export("source", version, format="mlflow", out=tmp_path / "source")
    imported = client.models.import_model(out, name="adopted")
    assert (imported.version, imported.status.value, imported.flavour) == (
        1,
        "GENERATED",
        "sklearn",
    )
    assert imported.tags["tideflow.origin"] == "imported"
    assert imported.tags["tideflow.imported_from"] == str(out.resolve())
    assert json.loads(imported.tags["tideflow.signature"])["inputs"][0] == {
        "name": "a",
        "required": True,
        "type": "double",
    }
    generated = client.events.list(key="adopted", event_types=["MODEL_GENERATED"])
    assert len(generated) == 1  # what validate rules listen for
    expected = served_scores(client, "source", version, RECORDS)
    assert served_scores(client, "adopted", imported.version, RECORDS) == pytest.approx(expected)


def test_a_pyfunc_only_mlflow_model_is_served_through_mlflow(
    client: Client, tmp_path: Path
) -> None:
    version = save_model(client, river_model(), model="river_src", input_example=RECORDS).version
    out = export_model(client, "river_src", version, format="mlflow", out=tmp_path / "river")
    imported = import_model(client, out, name="river_in")
    assert imported.flavour == "mlflow"
    expected = served_scores(client, "river_src", version, RECORDS)
    assert served_scores(client, "river_in", imported.version, RECORDS) == pytest.approx(expected)
    again = export_model(
        client, "river_in", imported.version, format="mlflow", out=tmp_path / "again"
    )
    assert (again / "MLmodel").read_text() == (out / "MLmodel").read_text()  # as it came


def test_a_joblib_file_is_imported_and_bad_paths_are_refused(
    client: Client, tmp_path: Path
) -> None:
    import joblib

    pipeline, _ = sklearn_pipeline()
    joblib.dump(pipeline, tmp_path / "model.joblib")
    imported = import_model(client, tmp_path / "model.joblib", name="from_file")
    assert (imported.flavour, imported.tags["tideflow.origin"]) == ("sklearn", "imported")
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        import_model(client, tmp_path / "nope.joblib", name="x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgumentError, match="without an MLmodel file"):
        import_model(client, tmp_path / "empty", name="x")
    (tmp_path / "junk.bin").write_bytes(b"not a pickle")
    with pytest.raises(InvalidArgumentError, match="is not a joblib or pickle file"):
        import_model(client, tmp_path / "junk.bin", name="x")


def test_models_saved_by_mlflow_itself_are_imported_and_served(
    client: Client, tmp_path: Path
) -> None:
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    from tideflow.client.model_import import quiet_mlflow

    pipeline, _ = sklearn_pipeline()
    signature = ModelSignature(inputs=Schema([ColSpec("double", n) for n in "abc"]))
    with quiet_mlflow():

        class Doubler(mlflow.pyfunc.PythonModel):  # type: ignore[misc, name-defined]
            """A pyfunc model written against MLflow's own API: twice field ``a``."""

            def predict(self, model_input: pd.DataFrame, params: Any = None) -> list[float]:  # type: ignore[name-defined]
                return list((model_input["a"] * 2).tolist())

        mlflow.sklearn.save_model(
            pipeline,
            str(tmp_path / "sk"),
            pip_requirements=["scikit-learn"],
            signature=signature,
            serialization_format="cloudpickle",
        )
        mlflow.pyfunc.save_model(
            str(tmp_path / "py"), python_model=Doubler(), pip_requirements=["pandas"]
        )
    sk = import_model(client, tmp_path / "sk", name="mlflow_sk")
    assert sk.flavour == "sklearn"
    assert json.loads(sk.tags["tideflow.signature"])["inputs"][1]["name"] == "b"
    expected = pipeline.predict_proba(pd.DataFrame(RECORDS))[:, 1].tolist()
    assert served_scores(client, "mlflow_sk", sk.version, RECORDS) == pytest.approx(expected)
    py = import_model(client, tmp_path / "py", name="mlflow_py")
    assert py.flavour == "mlflow"
    assert "tideflow.signature" not in py.tags
    assert served_scores(client, "mlflow_py", py.version, RECORDS) == pytest.approx(
        [0.6, -1.4, 3.0]
    )
