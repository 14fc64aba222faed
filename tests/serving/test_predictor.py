"""The online predictor: serving the deployed version, hot swap under load, predictions stream."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.conftest import unique, wait_until
from tideflow.client import Client
from tideflow.domain.status import ModelVersionEvent
from tideflow.serving.http import PredictorServer
from tideflow.serving.models import save_model
from tideflow.serving.predictor import Predictor
from tideflow.serving.sink import JsonLinesSink
from tideflow.testing import TideflowTestServer


class Constant:
    """A model whose every score is its own version number: a response proves its model."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __call__(self, records: list[dict[str, Any]]) -> list[int]:
        return [self.value] * len(records)


def release(client: Client, model: str, value: int) -> int:
    """Save Constant(value) as a new version, validate it and deploy it; its number."""
    version = save_model(client, Constant(value), model=model).version
    client.models.set_status(model, version, "VALIDATED")
    client.models.deploy(model, version)
    return version


@pytest.fixture
def client(server: TideflowTestServer) -> Iterator[Client]:
    with server.client(unique("serving")) as opened:
        yield opened


def test_serves_the_deployed_version_over_http_and_records_every_prediction(
    client: Client, tmp_path: Path
) -> None:
    model = "ctr"
    save_model(client, Constant(99), model=model)  # GENERATED only: never served
    deployed = release(client, model, 2)
    sink = tmp_path / "predictions.jsonl"
    predictor = Predictor(client, model, sink=JsonLinesSink(sink), max_wait=0.0)
    with PredictorServer(predictor, port=0) as http, httpx.Client(base_url=http.url) as web:
        assert http.wait_started()
        health = web.get("/healthz")
        assert health.status_code == 200
        assert health.json()["version"] == deployed
        answer = web.post("/predict", json=[{"x": 1.0}, {"x": 2.0}])
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["version"] == deployed
        assert [p["score"] for p in body["predictions"]] == [2, 2]
        assert len({p["request_id"] for p in body["predictions"]}) == 2
        named = web.post("/predict", json={"records": [{"x": 3.0}], "request_ids": ["r-1"]})
        assert named.json()["predictions"] == [{"request_id": "r-1", "score": 2}]
        bad = web.post("/predict", content=b"{not json")
        assert bad.status_code == 400
        assert "not JSON" in bad.json()["error"]
        assert web.post("/predict", json={"records": [1, 2]}).status_code == 400
        metrics = web.get("/metrics").text
        assert "tideflow_predictor_served_version 2.0" in metrics
        assert 'tideflow_predictor_requests_total{outcome="ok"} 2.0' in metrics
        assert "tideflow_predictor_request_seconds_bucket" in metrics
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [(r["features"], r["score"], r["version"]) for r in lines] == [
        ({"x": 1.0}, 2, deployed),
        ({"x": 2.0}, 2, deployed),
        ({"x": 3.0}, 2, deployed),
    ]
    assert lines[2]["request_id"] == "r-1"
    assert {p["request_id"] for p in body["predictions"]} == {r["request_id"] for r in lines[:2]}
    assert all(datetime.fromisoformat(r["time"]).tzinfo is not None for r in lines)


def test_a_model_that_was_never_deployed_is_never_served(client: Client) -> None:
    model = "fresh"
    save_model(client, Constant(1), model=model)
    validated = save_model(client, Constant(2), model=model).version
    client.models.set_status(model, validated, "VALIDATED")
    with Predictor(client, model) as predictor:
        assert not predictor.ready
        with pytest.raises(Exception, match="no version of model 'fresh' is deployed"):
            predictor.predict([{"x": 1}])
        client.models.deploy(model, validated)
        assert predictor.holder.wait_for(lambda s: s is not None, timeout=30)
        result = predictor.predict([{"x": 1}])
        assert (result.version, result.predictions[0].score) == (validated, 2)
        # Deprecating the served version with nothing deployed after it withdraws it.
        client.models.set_status(model, validated, "DEPRECATED")
        assert predictor.holder.wait_for(lambda s: s is None, timeout=30)
        with pytest.raises(Exception, match="is deployed"):
            predictor.predict([{"x": 1}])
        assert predictor.metrics.swaps._value.get() == 2


def test_hot_swap_under_load_fails_no_request_and_serves_only_deployed_versions(
    client: Client, tmp_path: Path
) -> None:
    model = "swapped"
    first = release(client, model, 1)
    sink = JsonLinesSink(tmp_path / "predictions.jsonl")
    predictor = Predictor(client, model, sink=sink)
    responses: list[tuple[datetime, dict[str, Any]]] = []
    failures: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def hammer(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as web:
            while not stop.is_set():  # no pause between requests
                try:
                    answer = web.post("/predict", json=[{"x": 1.0}])
                except httpx.HTTPError as error:
                    with lock:
                        failures.append(repr(error))
                    continue
                received = datetime.now(UTC)
                with lock:
                    if answer.status_code != 200:
                        failures.append(f"{answer.status_code} {answer.text}")
                    else:
                        responses.append((received, answer.json()))

    with PredictorServer(predictor, port=0) as http:
        assert http.wait_started()
        threads = [threading.Thread(target=hammer, args=(http.url,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            versions = [first]
            for value in range(2, 7):  # 5 new versions, one after another
                wait_until(
                    lambda: len(responses) > 50 * len(versions), what="requests on the version"
                )
                versions.append(release(client, model, value))
                served = versions[-1]
                assert predictor.holder.wait_for(
                    lambda s, v=served: s is not None and s.version.version == v, timeout=30
                )
            count = len(responses)
            wait_until(lambda: len(responses) > count + 50, what="requests on the last version")
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)

    assert failures == []
    deployed = [
        e
        for e in client.events.list(key=model, limit=1000)
        if e.event_type == ModelVersionEvent.DEPLOYED
    ]
    by_version = {json.loads(e.value)["version"]: e for e in deployed}

    def deployed_at(offset: int) -> int:
        """The version deployed at ``offset``: that of the last MODEL_DEPLOYED up to it."""
        last = max((e for e in deployed if e.offset <= offset), key=lambda e: e.offset)
        return int(json.loads(last.value)["version"])

    for received, body in responses:
        version = body["version"]
        # The model object that scored it is that version's (its score is its number) ...
        assert [p["score"] for p in body["predictions"]] == [version]
        # ... which was the DEPLOYED one at the log offset the response names ...
        assert deployed_at(body["offset"]) == version
        # ... and it was never served before its deploy was committed.
        assert received >= by_version[version].create_time
    assert {body["version"] for _, body in responses} == set(versions)
    assert predictor.metrics.swaps._value.get() == 5
    served_order = [body["version"] for _, body in responses]
    assert served_order[-1] == versions[-1]
    written = (tmp_path / "predictions.jsonl").read_text().splitlines()
    assert len(written) == len(responses)
