"""The four digits examples (batch / stream train x batch / stream predict) for real.

Each runs with ``tideflow run`` as a real process in a fresh ``$TIDEFLOW_HOME``, and must end
FINISHED by itself with every job FINISHED: the streams are bounded, the streaming predictor
waits for a deployed version, then scores its stream and returns.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tideflow.testing import run_cli

pytest.importorskip("pandas")
pytest.importorskip("sklearn")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
JOBS = {"train", "validate", "push", "predict"}
EXAMPLES = {
    "batch_train_batch_predict": "digits_batch_batch",
    "batch_train_stream_predict": "digits_batch_stream",
    "stream_train_batch_predict": "digits_stream_batch",
    "stream_train_stream_predict": "digits_stream_stream",
}


# The CLI as a user runs it, from the repository (the examples are named relative to it).
tideflow = functools.partial(run_cli, cwd=ROOT)


def diagnosis(home: Path) -> str:
    """What the execution and the server say, for a run that did not end well."""
    shown = tideflow("execution", "show", "1", home=home, timeout=60)
    server_log = home / "logs" / "server.log"
    tail = server_log.read_text(errors="replace")[-6000:] if server_log.exists() else ""
    return f"\n--- execution 1 ---\n{shown.stdout}{shown.stderr}\n--- server log ---\n{tail}"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_tideflow_run_ends_finished_with_every_job_finished(example: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        # Well under the test's own timeout, so that a run that hangs says where.
        run = tideflow(
            "run", f"examples/{example}/workflow.py", "--timeout", "180", home=home, timeout=240
        )
        assert run.returncode == 0, run.stdout + run.stderr + diagnosis(home)
        assert f"workflow {EXAMPLES[example]}" in run.stdout
        assert "FINISHED" in run.stdout

        shown = tideflow("execution", "show", "1", "--json", home=home, timeout=60)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        data = json.loads(shown.stdout)
        assert data["execution"]["workflow"] == EXAMPLES[example]
        assert data["execution"]["status"] == "FINISHED"
        assert {job["job"] for job in data["jobs"]} == JOBS
        assert {job["status"] for job in data["jobs"]} == {"FINISHED"}, data["jobs"]

        # The predictions were written: every serving row scored by the deployed version.
        # Batch prediction runs again on each deployment: one file per predict attempt.
        files = sorted(home.glob(f"work/*/predict/*/{EXAMPLES[example]}_predictions.jsonl"))
        assert files
        for written in files:
            text = written.read_text(encoding="utf-8")
            rows = [json.loads(line) for line in text.splitlines()]
            assert len(rows) == 359
            assert all(0 <= row["prediction"] <= 9 for row in rows)
            assert all(row["model_version"] >= 1 for row in rows)
    finally:
        stopped = tideflow("server", "stop", home=home, timeout=60)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def test_the_validator_judges_the_version_it_was_started_for(tmp_path: Path) -> None:
    # Two versions generated back to back: the attempt started for version 1 judges version 1
    # on its merits (instead of rejecting it as superseded by the newest GENERATED one), and
    # version 2 gets an attempt of its own (queued while the first runs: on_busy="queue").
    from sklearn.linear_model import LogisticRegression

    import tideflow as tide
    from tideflow.client.model_artifact import save_model
    from tideflow.examples.digits import (
        HoldoutValidator,
        ReadDigits,
        ScalePixels,
        load_part,
        pixels,
    )
    from tideflow.testing import TideflowTestServer

    with tide.workflow("judge") as wf:
        with tide.job("validate"):
            holdout = tide.read_dataset("holdout", processor=ReadDigits("holdout"), name="read")
            tide.validate(
                tide.transform(holdout, processor=ScalePixels(), name="scale"),
                model="judged",
                processor=HoldoutValidator("judged"),
                name="check",
                config={"min_accuracy": 0.5, "tolerance": 1.0},
            )
        wf.on_model_version("validate", model="judged", event=tide.ModelVersionEvent.GENERATED)
    train = load_part("train")
    classifier = LogisticRegression(max_iter=1000).fit(pixels(train) / 16.0, train["target"])
    source = tmp_path / "code"
    source.mkdir()
    with TideflowTestServer(home=tmp_path / "home") as server, server.client("default") as c:
        c.workflows.submit(wf, source=source)
        run = c.workflows.start("judge")
        for _ in range(2):
            save_model(c, classifier, model="judged", flavour="sklearn")
        deadline = time.monotonic() + 120
        while any(v.status == tide.ModelStatus.GENERATED for v in versions(c, "judged")):
            assert time.monotonic() < deadline, versions(c, "judged")
            time.sleep(0.1)
        assert [str(v.status) for v in versions(c, "judged")] == ["VALIDATED", "VALIDATED"]
        judged = {m.version for m in c.metrics.list(model="judged") if m.name == "holdout_accuracy"}
        assert judged == {1, 2}
        attempts = sorted(
            (j for j in c.jobs.list(run.execution_id) if j.job == "validate"),
            key=lambda j: j.attempt,
        )
        judged_for = []
        for attempt in attempts:
            (trigger,) = c.events.list(after_offset=attempt.trigger_offsets[0] - 1, limit=1).items
            judged_for.append(json.loads(trigger.value)["version"])
        assert judged_for == [1, 2]  # each version judged by an attempt started for it
        c.executions.wait(run.execution_id, timeout=120)


def versions(c: Any, model: str) -> list[Any]:
    return list(c.models.list_versions(model, limit=100).items)


class PredictorContext:
    """The JobContext members the digits predictors use, on a real client."""

    def __init__(self, client: Any) -> None:
        import logging

        self.client = client
        self.model = "served_digits"
        self.stopping = False
        self.params: dict[str, Any] = {}
        self.config: dict[str, Any] = {"wait_seconds": 60}
        self.logger = logging.getLogger("test.digits")


def test_the_streaming_predictor_swaps_on_a_pushed_deploy(tmp_path: Path) -> None:
    # The digits StreamingPredictor is a PredictProcessor: a version deployed while it streams
    # scores the next micro-batch, with no refresh interval to wait out.
    from sklearn.dummy import DummyClassifier

    from tideflow.client.model_artifact import save_model
    from tideflow.examples.digits import StreamingPredictor, load_part, pixels
    from tideflow.testing import TideflowTestServer, wait_until

    serving = load_part("serving", labelled=False)
    batches = [serving.iloc[i : i + 8].reset_index(drop=True) for i in (0, 8)]

    def release(c: Any, digit: int) -> int:
        always = DummyClassifier(strategy="constant", constant=digit)
        always.fit(pixels(serving), [digit] * len(serving))
        version = save_model(c, always, model="served_digits", flavour="sklearn").version
        c.models.set_status("served_digits", version, "VALIDATED")
        c.models.deploy("served_digits", version)
        return version

    with TideflowTestServer(home=tmp_path / "home") as server, server.client("default") as c:
        first = release(c, 3)
        ctx = PredictorContext(c)
        predictor = StreamingPredictor("served_digits")
        predictor.open(ctx)  # type: ignore[arg-type]
        try:
            stream = predictor.process(ctx, [iter(batches)])  # type: ignore[arg-type]
            scored = next(stream)
            assert set(scored["prediction"]) == {3}
            assert set(scored["model_version"]) == {first}
            second = release(c, 7)
            holder = predictor._holder
            assert holder is not None
            wait_until(
                lambda: holder.current is not None and holder.current.version.version == second,
                timeout=60,
                what="the deploy pushed to the predictor's holder",
            )
            scored = next(stream)
            assert set(scored["prediction"]) == {7}
            assert set(scored["model_version"]) == {second}
        finally:
            predictor.close(ctx)  # type: ignore[arg-type]
