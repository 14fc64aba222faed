"""The monitors as real streaming jobs on a real server, with rules acting on their events.

- a Model Monitor sees a deployed version's predictions degrade, sends MODEL_DEGRADED once,
  and the ``rollback`` job the rule starts deploys the previous version again;
- an Example Monitor sees serving features drift from the deployed version's training samples
  (found through lineage), sends DRIFT_DETECTED, and the rule restarts the training job.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tideflow as tide
from tideflow.domain.status import ExecutionStatus
from tideflow.io.local_stream import LocalStreamWriter
from tideflow.monitor import ExampleMonitor, ModelMonitor, Rollback
from tideflow.testing import TideflowTestServer, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

FLOWS = Path(__file__).with_name("flows.py")
WAIT = 180.0  # two shared cores, many engineers: be generous


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TideflowTestServer]:
    with TideflowTestServer(home=tmp_path_factory.mktemp("monitor-home")) as running:
        yield running


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    """The code package directory, with ``tfmonitor`` importable here too (pickled by name)."""
    directory = tmp_path_factory.mktemp("monitor-code")
    shutil.copy(FLOWS, directory / "tfmonitor.py")
    sys.path.insert(0, str(directory))
    try:
        import tfmonitor

        yield directory, tfmonitor
    finally:
        sys.path.remove(str(directory))


def deployed(client: Any, model: str) -> int | None:
    try:
        return int(client.models.get_version(model, status="DEPLOYED").version)
    except tide.NotFoundError:
        return None


def release(client: Any, model: str) -> int:
    version = client.models.create_version(model, uri="", flavour="pickle").version
    client.models.set_status(model, version, "VALIDATED")
    client.models.deploy(model, version)
    return int(version)


def test_degraded_predictions_roll_the_model_back(
    server: TideflowTestServer, code: tuple[Path, Any], tmp_path: Path
) -> None:
    client = server.client("rollback")
    client.models.create("ctr")
    assert release(client, "ctr") == 1
    assert release(client, "ctr") == 2  # version 1 is DEPRECATED now
    rng = np.random.default_rng(3)
    n, degrade_at = 3000, 1500
    scores = rng.uniform(0.05, 0.5, n)
    truth = np.where(np.arange(n) < degrade_at, scores, np.minimum(scores + 0.3, 1.0))
    labels = (rng.random(n) < truth).astype(int)
    with LocalStreamWriter(tmp_path / "predictions") as out:
        out.write(
            [
                {"request_id": f"q{i}", "model": "ctr", "version": 2, "score": float(scores[i])}
                for i in range(n)
            ]
        )
    with LocalStreamWriter(tmp_path / "labels") as out:  # late, and out of order locally
        order = np.argsort(np.arange(n) + rng.uniform(0, 50, n))
        out.write([{"request_id": f"q{i}", "label": int(labels[i])} for i in order])

    with tide.workflow("guard") as wf:
        with tide.job("quality", streaming=True):
            tide.user_node(
                processor=ModelMonitor(
                    model="ctr",
                    predictions=str(tmp_path / "predictions"),
                    labels=str(tmp_path / "labels"),
                    window=300,
                    idle_timeout=3.0,
                ),
                name="model_monitor",
            )
        with tide.job("rollback"):
            tide.push_model(model="ctr", processor=Rollback(), name="roll_back")
        wf.on_event("rollback", event_type="MODEL_DEGRADED")
    client.workflows.submit(wf, source=code[0])
    run = client.workflows.start("guard")

    wait_until(lambda: deployed(client, "ctr") == 1, what="the rollback to version 1", timeout=WAIT)
    execution = client.executions.wait(run.execution_id, timeout=WAIT)
    jobs = {j.job: j for j in client.jobs.list(run.execution_id)}
    assert execution.status is ExecutionStatus.FINISHED, {j: x.error for j, x in jobs.items()}
    assert set(jobs) == {"quality", "rollback"}

    events = client.events.list(key="ctr", event_type="MODEL_DEGRADED")
    assert len(events) == 1, [e.value for e in events]  # once, not once per sample
    event = events[0]
    assert event.sender == "model_monitor"
    assert event.context["execution_id"] == run.execution_id
    value = json.loads(event.value)
    assert value["model"] == "ctr"
    assert value["version"] == 2
    assert value["detector"] == "adwin"
    assert degrade_at < value["samples"] <= degrade_at + 1000  # joined samples at detection
    assert set(value["metrics"]) == {"auc", "log_loss", "calibration"}
    assert value["metrics"]["calibration"] < 0.8  # clicks rose: the model under-predicts

    losses = client.metrics.list(name="quality.log_loss", model="ctr")
    assert [m.step for m in losses] == list(range(n // 300))
    assert {m.version for m in losses} == {2}
    assert losses[-1].value > losses[0].value
    samples = client.metrics.list(name="quality.samples", model="ctr")
    assert samples[-1].value == n  # every prediction joined its label
    assert client.models.get_version("ctr", version=2).status == tide.ModelStatus.DEPRECATED
    client.close()


def test_drifting_features_restart_the_training_job(
    server: TideflowTestServer, code: tuple[Path, Any], tmp_path: Path
) -> None:
    client = server.client("drift")
    rng = np.random.default_rng(4)
    with LocalStreamWriter(tmp_path / "samples") as out:  # the training samples
        out.write(
            [
                {"x": float(x), "c": str(c)}
                for x, c in zip(rng.normal(size=2000), rng.choice(list("abc"), 2000), strict=True)
            ]
        )
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    tfmonitor = code[1]
    with tide.workflow("retrain") as wf:
        with tide.job("train", streaming=True):
            samples = tide.read_dataset("mon_samples", processor=tfmonitor.SamplesPath())
            tide.train(samples, model="clf", processor=tfmonitor.Trainer(), name="fit")
        with tide.job("drift", streaming=True):
            tide.user_node(
                processor=ExampleMonitor(
                    model="clf",
                    predictions=str(predictions),
                    window=200,
                    max_samples=1000,
                    idle_timeout=120,
                ),
                name="example_monitor",
            )
        # a job a RESTART rule targets waits for a START rule: train starts with the monitor
        wf.with_start("train", "drift")
        wf.on_event("train", event_type="DRIFT_DETECTED", action=tide.JobAction.RESTART)
    client.workflows.submit(wf, source=code[0])
    run = client.workflows.start("retrain", params={"samples": str(tmp_path / "samples")})
    try:

        def trained() -> bool:
            failed = [j.error for j in client.jobs.list(run.execution_id) if j.error]
            assert not failed, failed
            return deployed(client, "clf") == 1

        wait_until(trained, what="version 1 trained and deployed", timeout=WAIT)
        # serving: 400 samples like the training data, then 600 with x shifted and c skewed
        x = np.concatenate([rng.normal(size=400), rng.normal(2.0, 1.0, size=600)])
        c = np.concatenate(
            [rng.choice(list("abc"), 400), rng.choice(list("abc"), 600, p=[0.8, 0.1, 0.1])]
        )
        with LocalStreamWriter(predictions) as out:
            out.write(
                [
                    {
                        "request_id": f"r{i}",
                        "model": "clf",
                        "version": 1,
                        "features": {"x": float(x[i]), "c": str(c[i])},
                        "score": 0.5,
                    }
                    for i in range(1000)
                ]
            )

        def restarted() -> bool:
            attempts = [j for j in client.jobs.list(run.execution_id) if j.job == "train"]
            return len(attempts) >= 2

        wait_until(restarted, what="the train job's second attempt", timeout=WAIT)
        (event,) = client.events.list(key="clf", event_type="DRIFT_DETECTED")
        assert event.sender == "example_monitor"
        value = json.loads(event.value)
        assert value["model"] == "clf"
        assert value["version"] == 1
        assert value["window"] == 2  # windows 0 and 1 are the undrifted 400 samples
        assert value["samples"] == 200
        assert set(value["features"]) == {"x", "c"}
        assert value["features"]["x"]["stat"] == "psi"
        assert value["features"]["c"]["stat"] == "chi2"
        assert value["features"]["x"]["score"] > value["features"]["x"]["threshold"]
        monitor = wait_until(
            lambda: next(
                (j for j in client.jobs.list(run.execution_id) if j.job == "drift" and j.end_time),
                None,
            ),
            what="the example monitor to end after max_samples",
            timeout=WAIT,
        )
        assert monitor.status == tide.JobStatus.FINISHED
        scores = client.metrics.list(name="drift.x.ks", model="clf")
        assert [m.step for m in scores] == [0, 1, 2, 3, 4]
        assert {m.version for m in scores} == {1}
        assert len(client.metrics.list(name="drift.c.chi2", model="clf")) == 5
    finally:
        client.executions.stop(run.execution_id)
        client.executions.wait(run.execution_id, timeout=WAIT)
        client.close()
