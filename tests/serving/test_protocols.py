"""Signatures checked at serving, and the MLflow scoring and Open Inference Protocol v2 routes.

Each protocol is driven with the request shapes its own documentation shows, on one predictor:
all of them answer with the version /predict answers with, and swap with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.serving.conftest import unique, wait_until
from tideflow.client import Client
from tideflow.serving.http import PredictorServer
from tideflow.serving.models import save_model
from tideflow.serving.predictor import Predictor
from tideflow.testing import TideflowTestServer


class Segmented:
    """A model that indexes its records by name, like most feature code: x + the segment's bias."""

    def __init__(self, bias: float) -> None:
        self.bias = bias

    def __call__(self, records: list[dict[str, Any]]) -> list[float]:
        return [r["x"] + (self.bias if r["segment"] == "a" else 0.0) for r in records]


EXAMPLE = [{"x": 1.5, "segment": "a", "note": None}, {"x": 2.0, "segment": "b", "note": "n"}]


def release(client: Client, model: str, bias: float, *, example: Any = EXAMPLE) -> int:
    version = save_model(client, Segmented(bias), model=model, input_example=example).version
    client.models.set_status(model, version, "VALIDATED")
    client.models.deploy(model, version)
    return version


@pytest.fixture
def client(server: TideflowTestServer) -> Iterator[Client]:
    with server.client(unique("protocols")) as opened:
        yield opened


@pytest.fixture
def web(client: Client) -> Iterator[httpx.Client]:
    release(client, "ctr", 10.0)
    predictor = Predictor(client, "ctr", max_wait=0.0)
    with PredictorServer(predictor, port=0) as http, httpx.Client(base_url=http.url) as opened:
        assert http.wait_started()
        yield opened


def test_the_signature_is_stored_with_the_version(client: Client) -> None:
    version = release(client, "ctr", 1.0)
    tags = client.models.get_version("ctr", version=version).tags
    assert "tideflow.signature" in tags
    assert '"python"' in tags["tideflow.libraries"]


def test_a_request_that_breaks_the_signature_gets_400_naming_the_field(web: httpx.Client) -> None:
    missing = web.post("/predict", json=[{"x": 1.0}])
    assert missing.status_code == 400
    assert "required field 'segment' is missing (expected string)" in missing.json()["error"]
    wrong = web.post("/predict", json=[{"x": "high", "segment": "a"}])
    assert wrong.status_code == 400
    assert "field 'x' is 'high' (str); expected double" in wrong.json()["error"]
    ok = web.post("/predict", json=[{"x": 1, "segment": "a"}, {"x": 2.5, "segment": "b"}])
    assert ok.status_code == 200
    assert [p["score"] for p in ok.json()["predictions"]] == [11.0, 2.5]
    metrics = web.get("/metrics").text
    assert 'tideflow_predictor_requests_total{outcome="invalid"} 2.0' in metrics


def test_without_a_signature_a_missing_field_is_still_a_400(client: Client) -> None:
    version = save_model(client, Segmented(1.0), model="bare").version  # no input_example
    client.models.set_status("bare", version, "VALIDATED")
    client.models.deploy("bare", version)
    predictor = Predictor(client, "bare", max_wait=0.0)
    with PredictorServer(predictor, port=0) as http, httpx.Client(base_url=http.url) as web:
        assert http.wait_started()
        missing = web.post("/predict", json=[{"x": 1.0, "segment": "a"}, {"x": 2.0}])
        assert missing.status_code == 400
        assert "record 1 lacks field 'segment', which the model reads" in missing.json()["error"]
        assert web.post("/predict", json=[{"x": 1.0, "segment": "a"}]).json()["predictions"][0][
            "score"
        ] == pytest.approx(2.0)


def test_mlflow_scoring_accepts_every_documented_input_shape(web: httpx.Client) -> None:
    assert web.get("/ping").status_code == 200
    expected = {"predictions": [11.0, 2.5]}
    bodies = [
        {"dataframe_split": {"columns": ["x", "segment"], "data": [[1, "a"], [2.5, "b"]]}},
        {"dataframe_split": {"index": [0, 1], "data": [[1, "a", None], [2.5, "b", None]]}},
        {"dataframe_records": [{"x": 1, "segment": "a"}, {"x": 2.5, "segment": "b"}]},
        {"instances": [{"x": 1, "segment": "a"}, {"x": 2.5, "segment": "b"}]},
        {"instances": [[1, "a", None], [2.5, "b", None]]},  # rows named by the signature
        {"inputs": {"x": [1, 2.5], "segment": ["a", "b"]}},  # columns
        {"inputs": [{"x": 1, "segment": "a"}, {"x": 2.5, "segment": "b"}]},
    ]
    for body in bodies:
        answer = web.post("/invocations", json=body)
        assert answer.status_code == 200, (body, answer.text)
        assert answer.json() == expected, body
        assert answer.headers["X-Tideflow-Model-Version"] == "1"
    single = web.post("/invocations", json={"inputs": {"x": 3, "segment": "b"}})
    assert single.json() == {"predictions": [3.0]}


def test_mlflow_scoring_refuses_bad_requests_with_the_reason(web: httpx.Client) -> None:
    both = web.post("/invocations", json={"instances": [], "inputs": []})
    assert both.status_code == 400
    assert both.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "exactly one of" in both.json()["message"]
    missing = web.post("/invocations", json={"dataframe_records": [{"x": 1}]})
    assert missing.status_code == 400
    assert "'segment' is missing" in missing.json()["message"]
    short = web.post("/invocations", json={"instances": [[1]]})
    assert short.status_code == 400
    assert "expected 3 (['x', 'segment', 'note'])" in short.json()["message"]
    csv = web.post(
        "/invocations", content=b"x,segment\n1,a\n", headers={"content-type": "text/csv"}
    )
    assert csv.status_code == 415


def test_open_inference_protocol_v2(web: httpx.Client) -> None:
    assert web.get("/v2/health/live").json() == {"live": True}
    assert web.get("/v2/health/ready").status_code == 200
    assert web.get("/v2/models/ctr/ready").json() == {"name": "ctr", "ready": True}
    assert web.get("/v2").json()["name"] == "tideflow"
    meta = web.get("/v2/models/ctr").json()
    assert meta["versions"] == ["1"]
    assert meta["inputs"] == [
        {"name": "x", "datatype": "FP64", "shape": [-1]},
        {"name": "segment", "datatype": "BYTES", "shape": [-1]},
        {"name": "note", "datatype": "BYTES", "shape": [-1]},
    ]
    columns = {
        "id": "42",
        "inputs": [
            {"name": "x", "shape": [2], "datatype": "FP32", "data": [1, 2.5]},
            {"name": "segment", "shape": [2, 1], "datatype": "BYTES", "data": [["a"], ["b"]]},
        ],
    }
    answer = web.post("/v2/models/ctr/infer", json=columns)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "model_name": "ctr",
        "model_version": "1",
        "id": "42",
        "outputs": [{"name": "score", "shape": [2], "datatype": "FP64", "data": [11.0, 2.5]}],
    }
    versioned = web.post("/v2/models/ctr/versions/1/infer", json=columns)
    assert versioned.status_code == 200
    assert web.post("/v2/models/ctr/versions/7/infer", json=columns).status_code == 404
    unknown = web.post("/v2/models/other/infer", json=columns)
    assert unknown.status_code == 404
    assert "this server serves 'ctr'" in unknown.json()["error"]
    bad_shape = web.post(
        "/v2/models/ctr/infer",
        json={"inputs": [{"name": "x", "shape": [3], "datatype": "FP64", "data": [1, 2]}]},
    )
    assert bad_shape.status_code == 400
    assert "shape [3] holds 3 values but data has 2" in bad_shape.json()["error"]
    missing = web.post(
        "/v2/models/ctr/infer",
        json={"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}]},
    )
    assert missing.status_code == 400
    assert "'segment' is missing" in missing.json()["error"]


def test_every_protocol_swaps_with_the_deployed_version(client: Client, web: httpx.Client) -> None:
    version = release(client, "ctr", 100.0)
    record = {"x": 1, "segment": "a"}

    def all_on(number: int) -> bool:
        mlflow = web.post("/invocations", json={"dataframe_records": [record]})
        v2 = web.post(
            "/v2/models/ctr/infer",
            json={
                "inputs": [
                    {"name": "x", "shape": [1], "datatype": "FP64", "data": [1]},
                    {"name": "segment", "shape": [1], "datatype": "BYTES", "data": ["a"]},
                ]
            },
        )
        return (
            mlflow.headers["X-Tideflow-Model-Version"] == str(number)
            and v2.json()["model_version"] == str(number)
            and mlflow.json() == {"predictions": [101.0]}
        )

    wait_until(lambda: all_on(version))


def test_not_ready_until_a_version_is_deployed(client: Client) -> None:
    predictor = Predictor(client, "nothing_yet", max_wait=0.0)
    with PredictorServer(predictor, port=0) as http, httpx.Client(base_url=http.url) as web:
        assert http.wait_started()
        assert web.get("/ping").status_code == 503
        assert web.get("/v2/health/live").status_code == 200
        assert web.get("/v2/health/ready").json() == {"ready": False}
        assert web.get("/v2/health/ready").status_code == 400
        refused = web.post("/invocations", json={"dataframe_records": [{"x": 1}]})
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"


def test_v2_tensors_of_rows_and_outputs_of_rows() -> None:
    from tideflow.domain.signature import infer_signature
    from tideflow.errors import InvalidArgumentError
    from tideflow.serving.protocols import v2_output, v2_records

    signature = infer_signature([{"a": 1.0, "b": 2.0}])
    rows = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    assert v2_records(rows, signature) == [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]
    with pytest.raises(InvalidArgumentError, match="no signature to name their columns"):
        v2_records(rows, None)
    with pytest.raises(InvalidArgumentError, match="is not an integer"):
        v2_records(
            {"inputs": [{"name": "n", "shape": [1], "datatype": "INT64", "data": [1.5]}]}, None
        )
    assert v2_output([[0.1, 0.9], [0.8, 0.2]]) == {
        "name": "score",
        "shape": [2, 2],
        "datatype": "FP64",
        "data": [0.1, 0.9, 0.8, 0.2],
    }
    assert v2_output(["cat", "dog"])["datatype"] == "BYTES"
    assert v2_output([1, 0])["datatype"] == "INT64"
