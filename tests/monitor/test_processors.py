"""The monitor processors in-process on a real store: versions, re-arming, bounded runs, errors.

The context is a small stand-in with the members the monitors use; the client, the store, the
streams and the lineage are real.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tideflow.client import Client, connect
from tideflow.domain.lineage import LineageRef
from tideflow.errors import InvalidArgumentError
from tideflow.io.lineage import register_dataset
from tideflow.io.local_stream import LocalStreamWriter
from tideflow.metadata import ExecutionService, WorkflowService
from tideflow.monitor import ExampleMonitor, ModelMonitor, Rollback
from tideflow.monitor.source import JobEnded


class Ctx:
    """The JobContext members the monitors use."""

    def __init__(self, client: Client, **config: Any) -> None:
        self.client = client
        self.workflow, self.job, self.model = "wf", "monitor", None
        self.params: Mapping[str, Any] = {}
        self.config: Mapping[str, Any] = config
        self.logger = logging.getLogger("test.monitor")
        self.stopping = False
        self.execution_id = 1

    def send_event(self, key: str, value: str, **kwargs: Any) -> Any:
        return self.client.events.send(key, value, context={"execution_id": 1}, **kwargs)

    def log_metric(self, name: str, value: float, **kwargs: Any) -> None:
        self.client.metrics.log(name, value, **kwargs)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with connect(f"sqlite:///{tmp_path / 'tideflow.db'}", project="mon") as c:
        c.models.create("m")
        for _ in range(2):  # versions 1 and 2 exist (metrics name them)
            c.models.create_version("m")
        yield c


def trained_version(client: Client, tmp_path: Path, name: str, rows: list[dict]) -> int:
    """A version of model ``m`` whose lineage names a stream range holding ``rows``."""
    with LocalStreamWriter(tmp_path / name) as out:
        out.write([{"request_id": "pad"}])  # an offset before the range: must not be read
        span = out.write(rows)
        register_dataset(client, name, out)
    assert span is not None
    executions = ExecutionService(client.store)  # a job execution for the lineage to hang on
    plan = json.dumps({"workflow": "trainer", "jobs": []})
    WorkflowService(client.store).create_snapshot("mon", "trainer", plan=plan)
    run = executions.create_execution("mon", "trainer")
    job = executions.create_job_execution("mon", run.execution_id, "train").job_execution_id
    version = client.models.create_version("m", job_execution_id=job).version
    client.lineage.record(
        job,
        inputs=[
            LineageRef.dataset(name, start_offset=span.start_offset, end_offset=span.end_offset)
        ],
        outputs=[LineageRef.model_version("m", version)],
    )
    return int(version)


def serve(path: Path, rows: list[dict], version: int | None, model: str = "m") -> None:
    with LocalStreamWriter(path) as out:
        out.write(
            [
                {"request_id": f"{path.name}{i}", "model": model, "version": version, "features": r}
                for i, r in enumerate(rows)
            ]
        )


def normal(rng: np.random.Generator, n: int, mean: float = 0.0) -> list[dict]:
    return [{"x": float(v)} for v in rng.normal(mean, 1.0, n)]


def events(client: Client, event_type: str) -> list[dict]:
    return [json.loads(e.value) for e in client.events.list(key="m", event_type=event_type)]


def test_example_monitor_rereads_the_baseline_when_the_version_changes(
    client: Client, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    # training rows carry more than the served features: ids and times are not watched
    stamped = [
        {**r, "request_id": f"t{i}", "time": 1e9 + i} for i, r in enumerate(normal(rng, 2000))
    ]
    v1 = trained_version(client, tmp_path, "train_a", stamped)
    v2 = trained_version(client, tmp_path, "train_b", normal(rng, 2000, mean=3.0))
    predictions = tmp_path / "predictions"
    with LocalStreamWriter(predictions) as out:
        rows = [(v1, r) for r in normal(rng, 400)] + [(v2, r) for r in normal(rng, 400, 3.0)]
        rows += [(v2, r) for r in normal(rng, 400)]  # version 2's traffic moves back to 0
        out.write(
            [
                {"request_id": str(i), "model": "m", "version": v, "features": r}
                for i, (v, r) in enumerate(rows)
            ]
            + [{"request_id": "other", "model": "n", "version": 1, "features": {"x": 99.0}}]
        )
    ctx = Ctx(client, model="m", predictions=str(predictions), window=200, idle_timeout=0.5)
    monitor = ExampleMonitor()
    counts = monitor.process(ctx, [])  # type: ignore[arg-type]
    monitor.close(ctx)  # type: ignore[arg-type]
    assert counts == {"samples": 1200, "skipped": 0, "windows": 6, "events": 1, "quiet": 0}
    (event,) = events(client, "DRIFT_DETECTED")
    assert event["version"] == v2  # v1's and v2's own traffic matched their baselines
    assert event["window"] == 4
    assert event["features"]["x"]["stat"] == "psi"
    steps = [(m.step, m.version) for m in client.metrics.list(name="drift.x.psi", model="m")]
    assert steps == [(0, v1), (1, v1), (2, v2), (3, v2), (4, v2), (5, v2)]
    # the baseline was the lineage's range only (the "pad" record before it has no x)
    assert monitor.scorer is not None
    assert monitor.scorer.size == 2000
    assert monitor.scorer.features == ["x"]


def test_example_monitor_alarms_once_per_episode_and_rearms(client: Client, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    baseline = normal(rng, 3000)
    stream = normal(rng, 200) + normal(rng, 600, 2.0) + normal(rng, 400) + normal(rng, 200, 2.0)
    serve(tmp_path / "p", stream, version=2)
    ctx = Ctx(client, predictions=str(tmp_path / "p"))
    monitor = ExampleMonitor(model="m", baseline=baseline, window=200, max_samples=1400)
    counts = monitor.process(ctx, [])  # type: ignore[arg-type]
    assert counts["windows"] == 7
    assert [e["window"] for e in events(client, "DRIFT_DETECTED")] == [1, 6]
    assert counts["events"] == 2


def test_with_ignore_older_versions_a_known_shift_is_not_reported_again(
    client: Client, tmp_path: Path
) -> None:
    """Versions older than the last DRIFT_DETECTED keep quiet; a newer version is watched."""
    rng = np.random.default_rng(5)
    baseline = normal(rng, 3000)
    client.events.send("m", "{}", event_type="DRIFT_DETECTED", context={"execution_id": 1})
    newer = client.models.create_version("m").version  # made after the finding: news again
    rows = [(2, r) for r in normal(rng, 400, 2.0)] + [(newer, r) for r in normal(rng, 400, 2.0)]
    with LocalStreamWriter(tmp_path / "p") as out:
        out.write(
            [
                {"request_id": str(i), "model": "m", "version": v, "features": r}
                for i, (v, r) in enumerate(rows)
            ]
        )
    ctx = Ctx(client, predictions=str(tmp_path / "p"))
    monitor = ExampleMonitor(
        model="m", baseline=baseline, window=200, max_samples=800, ignore_older_versions=True
    )
    counts = monitor.process(ctx, [])  # type: ignore[arg-type]
    assert (counts["events"], counts["quiet"]) == (1, 1)
    sent = [e for e in events(client, "DRIFT_DETECTED") if e]  # the planted ones are "{}"
    assert [e["version"] for e in sent] == [newer]  # version 2's drift was old news


def degrading_streams(path: Path, version: int) -> tuple[str, str]:
    """Predictions of ``version`` whose clicks rise half-way (a Model Monitor alarm), labels."""
    rng = np.random.default_rng(3)
    n = 3000
    scores = rng.uniform(0.05, 0.5, n)
    truth = np.where(np.arange(n) < n // 2, scores, np.minimum(scores + 0.3, 1.0))
    labels = (rng.random(n) < truth).astype(int)
    with LocalStreamWriter(path / "p") as out:
        out.write(
            [
                {"request_id": f"q{i}", "model": "m", "version": version, "score": float(s)}
                for i, s in enumerate(scores.tolist())
            ]
        )
    with LocalStreamWriter(path / "l") as out:
        out.write([{"request_id": f"q{i}", "label": int(y)} for i, y in enumerate(labels)])
    return str(path / "p"), str(path / "l")


@pytest.mark.parametrize("execution", [1, 3])
def test_with_ignore_older_versions_a_quality_alarm_after_a_finding_is_not_sent(
    client: Client, tmp_path: Path, execution: int
) -> None:
    """Any finding of the same execution after the version was made quiets its alarm."""
    client.events.send("m", "{}", event_type="DRIFT_DETECTED", context={"execution_id": 1})
    predictions, labels = degrading_streams(tmp_path, version=2)
    ctx = Ctx(client, predictions=predictions, labels=labels)
    ctx.execution_id = execution
    monitor = ModelMonitor(
        model="m", window=300, idle_timeout=0.5, poll_interval=0.01, ignore_older_versions=True
    )
    counts = monitor.process(ctx, [])  # type: ignore[arg-type]
    alarms = counts["events"] + counts["quiet"]
    assert alarms >= 1  # the quality fell
    if execution == 1:  # the drift finding came after version 2: old news
        assert (counts["events"], events(client, "MODEL_DEGRADED")) == (0, [])
    else:  # another execution's finding does not count
        assert counts["quiet"] == 0
        assert [e["version"] for e in events(client, "MODEL_DEGRADED")] == [2] * alarms


def producer_job(client: Client, job: str = "predict") -> tuple[ExecutionService, int, int]:
    """An execution of a workflow with one attempt of ``job``: (service, execution, attempt)."""
    plan = json.dumps({"workflow": "served", "jobs": []})
    WorkflowService(client.store).create_snapshot("mon", "served", plan=plan)
    executions = ExecutionService(client.store)
    run = executions.create_execution("mon", "served")
    attempt = executions.create_job_execution("mon", run.execution_id, job).job_execution_id
    return executions, run.execution_id, attempt


def test_job_ended_looks_at_most_once_per_interval_and_stays_ended(client: Client) -> None:
    executions, execution_id, attempt = producer_job(client)
    ctx = Ctx(client)
    ctx.execution_id = execution_id
    now = [0.0]
    ended = JobEnded(ctx, "predict", interval=0.5, clock=lambda: now[0])  # type: ignore[arg-type]
    assert not ended()  # INIT
    for status in ("STARTING", "RUNNING", "FINISHED"):
        executions.set_job_status("mon", attempt, status)
    assert not ended()  # looked 0 s ago: not again yet
    now[0] = 0.5
    assert ended()
    assert not JobEnded(ctx, "train")()  # type: ignore[arg-type]  # never ran: not ended


@pytest.mark.parametrize("monitor_class", ["example", "model"])
def test_a_monitor_ends_with_its_producer_not_after_its_idle_timeout(
    client: Client, tmp_path: Path, monitor_class: str
) -> None:
    """With ends_with, a drained stream of an ended producer ends the run at once."""
    executions, execution_id, attempt = producer_job(client)
    for status in ("STARTING", "RUNNING", "FINISHED"):
        executions.set_job_status("mon", attempt, status)
    predictions, labels = degrading_streams(tmp_path, version=2)
    ctx = Ctx(client, predictions=predictions, labels=labels)
    ctx.execution_id = execution_id
    idle = 30.0  # were the producer's end not seen, the run would last this long
    monitor: Any = (
        ExampleMonitor(model="m", baseline=normal(np.random.default_rng(6), 500), window=500)
        if monitor_class == "example"
        else ModelMonitor(model="m", window=300, poll_interval=0.01)
    )
    ctx.config = {**ctx.config, "idle_timeout": idle, "ends_with": "predict"}
    started = time.monotonic()
    counts = monitor.process(ctx, [])
    assert time.monotonic() - started < idle / 2
    # everything the producer wrote was read first (the example monitor skips the records:
    # they carry no features)
    assert counts["samples"] + counts.get("skipped", 0) == 3000


def test_example_monitor_stops_between_batches_and_commits(client: Client, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    serve(tmp_path / "p", normal(rng, 300), version=1)
    ctx = Ctx(client, predictions=str(tmp_path / "p"))
    ctx.stopping = True  # a STOP arrived: the first batch is the last
    monitor = ExampleMonitor(model="m", baseline=normal(rng, 500), window=100)
    assert monitor.process(ctx, [])["samples"] == 300  # type: ignore[arg-type]
    monitor.close(ctx)  # type: ignore[arg-type]
    again = ExampleMonitor(model="m", baseline=normal(rng, 500), window=100, idle_timeout=0.2)
    assert again.process(Ctx(client, predictions=str(tmp_path / "p")), [])["samples"] == 0  # type: ignore[arg-type]


def test_model_monitor_judges_each_version_on_its_own(client: Client, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    n = 1200
    scores = rng.uniform(0.05, 0.5, n)
    labels = (rng.random(n) < scores).astype(int)
    with LocalStreamWriter(tmp_path / "p") as out:
        out.write(
            [
                {"request_id": f"r{i}", "model": "m", "version": 1 if i < 600 else 2, "score": s}
                for i, s in enumerate(scores.tolist())
            ]
        )
    with LocalStreamWriter(tmp_path / "l") as out:
        out.write([{"request_id": f"r{i}", "clicked": int(y)} for i, y in enumerate(labels)])
    ctx = Ctx(client, predictions=str(tmp_path / "p"), labels=str(tmp_path / "l"))
    monitor = ModelMonitor(model="m", window=300, idle_timeout=0.5, poll_interval=0.01)
    counts = monitor.process(ctx, [])  # type: ignore[arg-type]
    assert counts == {"samples": n, "windows": 4, "events": 0, "quiet": 0}
    losses = client.metrics.list(name="quality.log_loss", model="m")
    assert [(m.step, m.version) for m in losses] == [(0, 1), (1, 1), (2, 2), (3, 2)]
    calibration = client.metrics.list(name="quality.calibration", model="m")
    assert all(0.7 < m.value < 1.4 for m in calibration)  # a calibrated model


def test_monitors_name_what_is_missing(client: Client, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"ModelMonitor needs a model"):
        ModelMonitor(predictions=str(tmp_path)).process(Ctx(client), [])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"needs its labels stream: set labels="):
        ModelMonitor(model="m", predictions=str(tmp_path)).process(Ctx(client), [])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"detector must be adwin or page_hinkley"):
        ModelMonitor(model="m", detector="cusum").process(Ctx(client), [])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"needs its predictions stream"):
        ExampleMonitor(model="m").process(Ctx(client), [])  # type: ignore[arg-type]


def test_rollback_without_a_previous_version_finishes_quietly(client: Client) -> None:
    assert Rollback("m").process(Ctx(client), []) is None  # type: ignore[arg-type]
    version = client.models.create_version("m").version
    client.models.set_status("m", version, "VALIDATED")
    client.models.deploy("m", version)
    assert Rollback().process(Ctx(client, model="m"), []) is None  # type: ignore[arg-type]
    assert client.models.get_version("m", status="DEPLOYED").version == version


def test_the_baseline_of_a_version_trained_on_a_file_is_the_whole_file(
    client: Client, tmp_path: Path
) -> None:
    from tideflow.io.file import FileSink
    from tideflow.monitor.baseline import load_baseline

    rows = [{"x": float(i), "c": "a" if i % 2 else "b"} for i in range(300)]
    with FileSink(tmp_path / "train.parquet") as sink:
        sink.write(rows)
        register_dataset(client, "train_file", sink)
    plan = json.dumps({"workflow": "trainer", "jobs": []})
    WorkflowService(client.store).create_snapshot("mon", "trainer", plan=plan)
    executions = ExecutionService(client.store)
    run = executions.create_execution("mon", "trainer")
    job = executions.create_job_execution("mon", run.execution_id, "train").job_execution_id
    version = client.models.create_version("m", job_execution_id=job).version
    client.lineage.record(
        job,
        inputs=[LineageRef.dataset("train_file")],
        outputs=[LineageRef.model_version("m", version)],
    )
    found = load_baseline(client, "m", version, features=["x"], limit=100)
    assert [r["x"] for r in found] == [float(i) for i in range(200, 300)]  # the newest 100
    assert load_baseline(client, "m", version, datasets=["elsewhere"]) == []
