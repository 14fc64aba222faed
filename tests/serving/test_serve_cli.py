"""The streaming predict processor and ``tideflow serve`` as a process."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.serving.conftest import unique, wait_until
from tests.serving.test_predictor import release
from tideflow.serving.processor import PredictProcessor
from tideflow.testing import TideflowTestServer


class Ctx:
    """The JobContext members PredictProcessor uses."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.model = "streamed"
        self.stopping = False
        self.logger = logging.getLogger("test")


def test_predict_processor_scores_batches_and_streams_with_the_swapped_model(
    server: TideflowTestServer,
) -> None:
    with server.client(unique("processor")) as client:
        release(client, "streamed", 1)
        ctx = Ctx(client)
        processor = PredictProcessor()
        processor.open(ctx)  # type: ignore[arg-type]
        try:
            batch = processor.process(ctx, [[{"x": 1}, {"x": 2}]])  # type: ignore[arg-type]
            assert batch == [
                {"x": 1, "score": 1, "model_version": 1},
                {"x": 2, "score": 1, "model_version": 1},
            ]
            stream = processor.process(ctx, [iter([[{"x": 1}], {"x": 2}])])  # type: ignore[arg-type]
            assert next(stream) == [{"x": 1, "score": 1, "model_version": 1}]
            version = release(client, "streamed", 2)
            holder = processor._holder
            assert holder is not None
            assert holder.wait_for(lambda s: s is not None and s.version.version == version, 30)
            assert next(stream) == {"x": 2, "score": 2, "model_version": 2}
        finally:
            processor.close(ctx)  # type: ignore[arg-type]


def test_tideflow_serve_answers_over_http_and_stops_on_sigterm(
    server: TideflowTestServer, tmp_path: Path
) -> None:
    project = unique("cli")
    with server.client(project) as client:
        release(client, "ctr", 7)
    predictions = tmp_path / "out.jsonl"
    errors = tmp_path / "serve.err"
    with errors.open("wb") as err:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tideflow",
                "serve",
                "ctr",
                "--port",
                "0",
                "--server",
                server.url,
                "--project",
                project,
                "--predictions",
                str(predictions),
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
    try:
        found = wait_until(
            lambda: re.search(r"on (http://\S+) ", errors.read_text()), what="the serve banner"
        )
        answer = httpx.post(f"{found.group(1)}/predict", json=[{"x": 1}], timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == 1
        assert answer.json()["predictions"][0]["score"] == 7
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    (line,) = predictions.read_text().splitlines()
    assert json.loads(line)["score"] == 7
