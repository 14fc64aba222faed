"""The four digits examples (batch / stream train x batch / stream predict) for real.

Each runs with ``tideflow run`` as a real process, and must end FINISHED by itself with every
job FINISHED: the streams are bounded, the streaming predictor waits for a deployed version,
then scores its stream and returns. The four run side by side (fixture ``runs``), sharing one
``$TIDEFLOW_HOME`` and its local server
(``tideflow run`` attaches to it; each example runs in a project of its own, so its ``digits``
model starts with no version, as in a fresh home): a server
start and stop cost 5-10 s on a busy machine. ``tideflow run`` in a fresh home, starting its
own server, is tests/test_ad_ctr.py::test_tideflow_run_ad_ctr_ends_finished.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tideflow.testing import invoke_cli, run_cli

pytest.importorskip("pandas")
pytest.importorskip("sklearn")

# One pytest-xdist worker runs the module: its runs share one server and run side by side.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("digits")]

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


def diagnosis(home: Path, project: str, execution: str) -> str:
    """What the execution and the server say, for a run that did not end well."""
    shown = invoke_cli("execution", "show", execution, "--project", project, home=home)
    server_log = home / "logs" / "server.log"
    tail = server_log.read_text(errors="replace")[-6000:] if server_log.exists() else ""
    return f"\n--- execution {execution} ---\n{shown.output}\n--- server log ---\n{tail}"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The home the four runs share; its server is started by the first run, stopped last."""
    home = tmp_path_factory.mktemp("digits") / "home"
    yield home
    stopped = invoke_cli("server", "stop", home=home)
    assert stopped.exit_code == 0, stopped.output


@pytest.fixture(scope="module")
def server_url(home: Path) -> str:
    """The shared home's server (started here if no run started it) for the API tests below,
    each in a project of its own."""
    from tideflow.client.embedded import ensure_local_server

    with pytest.MonkeyPatch.context() as env:  # the server inherits the environment
        env.setenv("TIDEFLOW_HOME", str(home))
        for variable in ("TIDEFLOW_SERVER", "TIDEFLOW_DB"):
            env.delenv(variable, raising=False)
        return str(ensure_local_server(home)["url"])


@pytest.fixture(scope="module")
def runs(
    home: Path, server_url: str, request: pytest.FixtureRequest
) -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    """The selected examples' ``tideflow run``\\s, started side by side on the shared server.

    Each waits mostly on its jobs' processes: four at once take about half the time of four
    in turn (issue 20); each in a project of its own, they do not meet.
    """
    # The examples this session runs (-k may pick some); on a pytest-xdist worker the session
    # holds every test collected, some without a callspec: all four then.
    selected = sorted(
        {
            params["example"]
            for item in request.session.items
            if "example" in (params := getattr(getattr(item, "callspec", None), "params", {}))
            and item.module is request.module
        }
        or EXAMPLES
    )
    with ThreadPoolExecutor(max_workers=max(1, len(selected))) as pool:
        yield {
            example: pool.submit(
                tideflow,
                "run",
                f"examples/{example}/workflow.py",
                "--project",
                example.replace("_", "-"),
                # Well under the test's own timeout, so that a run that hangs says where.
                "--timeout",
                "180",
                home=home,
                timeout=240,
            )
            for example in selected
        }


@pytest.mark.timeout(300)
@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_tideflow_run_ends_finished_with_every_job_finished(
    example: str, home: Path, runs: dict[str, Future[subprocess.CompletedProcess[str]]]
) -> None:
    project = example.replace("_", "-")
    run = runs[example].result()
    started = re.search(r"started execution (\d+) of workflow (\S+)", run.stdout)
    execution = started.group(1) if started else "?"
    assert run.returncode == 0, run.stdout + run.stderr + diagnosis(home, project, execution)
    assert started is not None, run.stdout
    assert started.group(2) == EXAMPLES[example]
    assert "FINISHED" in run.stdout

    shown = invoke_cli("execution", "show", execution, "--project", project, "--json", home=home)
    assert shown.exit_code == 0, shown.output
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


def test_the_validator_judges_the_version_it_was_started_for(
    server_url: str, tmp_path: Path
) -> None:
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
    with tide.connect(server_url, project="judge") as c:
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


def test_the_streaming_predictor_swaps_on_a_pushed_deploy(server_url: str) -> None:
    # The digits StreamingPredictor is a PredictProcessor: a version deployed while it streams
    # scores the next micro-batch, with no refresh interval to wait out.
    from sklearn.dummy import DummyClassifier

    import tideflow as tide
    from tideflow.client.model_artifact import save_model
    from tideflow.examples.digits import StreamingPredictor, load_part, pixels
    from tideflow.testing import wait_until

    serving = load_part("serving", labelled=False)
    batches = [serving.iloc[i : i + 8].reset_index(drop=True) for i in (0, 8)]

    def release(c: Any, digit: int) -> int:
        always = DummyClassifier(strategy="constant", constant=digit)
        always.fit(pixels(serving), [digit] * len(serving))
        version = save_model(c, always, model="served_digits", flavour="sklearn").version
        c.models.set_status("served_digits", version, "VALIDATED")
        c.models.deploy("served_digits", version)
        return version

    with tide.connect(server_url, project="swap") as c:
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
