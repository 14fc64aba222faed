"""Batch training, streaming prediction: an offline model served online with hot swap.

    train ──MODEL_GENERATED──► validate ──MODEL_VALIDATED──► push ──MODEL_DEPLOYED┐
    predict (streaming, starts with the execution) ◄── switches to the new version ┘

- ``train`` (batch) fits a logistic regression on the training part of the digits data set and
  registers it as a GENERATED version of ``digits`` with ``ctx.log_model``.
- ``validate`` / ``push`` move the version to VALIDATED (or REJECTED) and then DEPLOYED.
- ``predict`` (streaming) scores a stream of unlabelled digit images from the moment the
  execution starts; it waits until a version is deployed, then scores its bounded stream (one
  pass over the serving part), picking up each newly
  deployed version without a restart.

The data set is split deterministically (60 % train, 20 % holdout, 20 % serving), so runs are
reproducible. pandas and scikit-learn are imported inside the processors: compiling this file
needs only Tideflow, running it needs ``pip install 'tideflow[ml]'``. Processors are defined in
this file so that it is self-contained; the compiler serialises them into the plan.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import tideflow as tide

MODEL = "digits"
PARTS = {"train": (0.0, 0.6), "holdout": (0.6, 0.8), "serving": (0.8, 1.0)}


def load_part(part: str, *, labelled: bool = True) -> Any:
    """One part of the digits data set as a DataFrame (``pixel_*`` columns + ``target``)."""
    from sklearn.datasets import load_digits

    frame = load_digits(as_frame=True).frame
    start, stop = (round(len(frame) * share) for share in PARTS[part])
    table = frame.iloc[start:stop].reset_index(drop=True)
    return table if labelled else table.drop(columns=["target"])


def pixels(table: Any) -> Any:
    """The feature matrix of a digits table or micro-batch."""
    return table[[column for column in table.columns if column.startswith("pixel_")]].to_numpy()


def map_batches(function: Callable[[Any], Any], data: Any) -> Any:
    """Apply ``function`` to a table, or lazily to every micro-batch of a stream."""
    if isinstance(data, Iterator):
        return (function(batch) for batch in data)
    return function(data)


def setting(ctx: tide.JobContext, name: str, default: Any) -> Any:
    """``ctx.params[name]`` (``tideflow run --param``), else ``ctx.config[name]``, else ``default``."""
    if name in ctx.params:
        return ctx.params[name]
    return ctx.config.get(name, default)


def all_versions(ctx: tide.JobContext, model: str) -> list[Any]:
    """Every version of ``model``, oldest first (none while the model does not exist)."""
    found: list[Any] = []
    cursor = None
    try:
        while True:
            page = ctx.client.models.list_versions(model, limit=100, cursor=cursor)
            found.extend(page.items)
            cursor = page.next_cursor
            if not cursor:
                return found
    except tide.NotFoundError:
        return found


def deployed_version(ctx: tide.JobContext, model: str) -> int | None:
    """The number of the DEPLOYED version of ``model``, or ``None``."""
    try:
        return int(ctx.client.models.get_version(model, status=tide.ModelStatus.DEPLOYED).version)
    except tide.NotFoundError:
        return None


class ReadDigits(tide.Processor):
    """Reads one part of the digits data set as a table; the serving part has no labels."""

    def __init__(self, part: str) -> None:
        self.part = part

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Any:
        table = load_part(self.part, labelled=self.part != "serving")
        ctx.logger.info("read %d rows of digits/%s", len(table), self.part)
        return table


class StreamDigits(tide.Processor):
    """Replays one part of the digits data set as a bounded stream of micro-batches.

    The part is split into micro-batches of ``batch_size`` rows, sent in order one pass over it
    (``passes``, default 1), ``interval_seconds`` apart; ``max_batches`` stops it earlier. The
    stream ends on its own, so the streaming job that reads it FINISHES; it also ends early when
    the job is asked to stop.
    """

    def __init__(self, part: str, *, labelled: bool = True) -> None:
        self.part = part
        self.labelled = labelled

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Iterator[Any]:
        return self._batches(ctx)

    def _batches(self, ctx: tide.JobContext) -> Iterator[Any]:
        table = load_part(self.part, labelled=self.labelled)
        size = int(setting(ctx, "batch_size", 32))
        pause = float(setting(ctx, "interval_seconds", 0.2))
        limit = setting(ctx, "max_batches", None)
        starts = [
            start
            for _ in range(int(setting(ctx, "passes", 1)))
            for start in range(0, len(table), size)
        ]
        if limit is not None:
            starts = starts[: int(limit)]
        for sent, start in enumerate(starts):
            if ctx.stopping:
                return
            if sent and pause > 0:
                time.sleep(pause)
            yield table.iloc[start : start + size].reset_index(drop=True)


class ScalePixels(tide.Processor):
    """Scales pixel intensities from 0..16 to 0..1.

    The same processor serves batch jobs (a table) and streaming jobs (micro-batches), so
    training and serving see identical features.
    """

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Any:
        return map_batches(self.scale, inputs[0])

    @staticmethod
    def scale(table: Any) -> Any:
        """A copy of ``table`` with its pixel columns scaled."""
        scaled = table.copy()
        columns = [column for column in scaled.columns if column.startswith("pixel_")]
        scaled[columns] = scaled[columns] / 16.0
        return scaled


class TrainClassifier(tide.Processor):
    """Fits a logistic regression and registers it as a new GENERATED model version."""

    def __init__(self, model: str) -> None:
        self.model = model

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Any:
        from sklearn.linear_model import LogisticRegression

        table = inputs[0]
        x, y = pixels(table), table["target"].to_numpy()
        c = float(setting(ctx, "C", 1.0))
        classifier = LogisticRegression(C=c, max_iter=int(setting(ctx, "max_iter", 1000)))
        classifier.fit(x, y)
        accuracy = float(classifier.score(x, y))
        ctx.log_metric("train_accuracy", accuracy)
        version = ctx.log_model(
            classifier,
            model=self.model,
            flavour="sklearn",
            metrics={"train_accuracy": accuracy},
            params={"C": c, "rows": len(table)},
        )
        ctx.logger.info("logged %s version %s", self.model, version.version)
        return version


class HoldoutValidator(tide.Processor):
    """Validates GENERATED versions on the holdout part against the deployed one.

    A candidate passes when its accuracy reaches ``min_accuracy`` (node config) and is at most
    ``tolerance`` below the version currently deployed; it is REJECTED otherwise.

    Which version: ``ctx.trigger`` is ``None`` (the runtime does not pass the triggering event
    yet), and a version generated while this job runs starts no new attempt. So it judges the
    newest GENERATED version, REJECTS older GENERATED ones as superseded, and looks again until
    none is GENERATED. A version whose status changed meanwhile is left alone. Returns the
    status given to the last version it judged (``None`` when there was none).
    """

    def __init__(self, model: str) -> None:
        self.model = model

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Any:
        holdout = inputs[0]
        x, y = pixels(holdout), holdout["target"].to_numpy()
        verdict: tide.ModelStatus | None = None
        while True:
            waiting = [
                v.version
                for v in all_versions(ctx, self.model)
                if v.status == tide.ModelStatus.GENERATED
            ]
            if not waiting:
                return verdict
            for older in waiting[:-1]:
                ctx.logger.info("version %s superseded by version %s", older, waiting[-1])
                self._set(ctx, older, tide.ModelStatus.REJECTED)
            verdict = self._judge(ctx, waiting[-1], x, y)

    def _judge(self, ctx: tide.JobContext, version: int, x: Any, y: Any) -> tide.ModelStatus:
        accuracy = float(ctx.load_model(self.model, version=version).score(x, y))
        deployed = deployed_version(ctx, self.model)
        baseline = (
            0.0
            if deployed is None
            else float(ctx.load_model(self.model, version=deployed).score(x, y))
        )
        ctx.log_metric("holdout_accuracy", accuracy, model=self.model, version=version)
        floor = float(setting(ctx, "min_accuracy", 0.9))
        tolerance = float(setting(ctx, "tolerance", 0.01))
        good = accuracy >= floor and accuracy >= baseline - tolerance
        status = tide.ModelStatus.VALIDATED if good else tide.ModelStatus.REJECTED
        self._set(ctx, version, status)
        ctx.logger.info(
            "version %s: accuracy %.3f, deployed %.3f -> %s", version, accuracy, baseline, status
        )
        return status

    def _set(self, ctx: tide.JobContext, version: int, status: tide.ModelStatus) -> None:
        try:
            ctx.client.models.set_status(self.model, version, status)
        except tide.IllegalTransitionError as e:
            ctx.logger.warning("version %s changed meanwhile, left alone: %s", version, e)


class DeployValidated(tide.Processor):
    """Deploys the newest VALIDATED version if it is newer than the deployed one.

    ``ctx.client.models.deploy`` makes the previously deployed version DEPRECATED in the same
    step. Returns the version deployed, or ``None``.
    """

    def __init__(self, model: str) -> None:
        self.model = model

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> int | None:
        models = ctx.client.models
        try:
            candidate = int(
                models.get_version(self.model, status=tide.ModelStatus.VALIDATED).version
            )
        except tide.NotFoundError:
            return None
        deployed = deployed_version(ctx, self.model)
        if deployed is not None and deployed > candidate:
            ctx.logger.info("version %s is older than deployed %s", candidate, deployed)
            return None
        try:
            models.deploy(self.model, candidate)
        except tide.IllegalTransitionError as e:
            ctx.logger.warning("version %s changed meanwhile: %s", candidate, e)
            return None
        ctx.logger.info("deployed %s version %s", self.model, candidate)
        return candidate


class StreamingPredictor(tide.Processor):
    """Scores a stream with the DEPLOYED version and switches versions without a restart.

    It first waits (up to ``wait_seconds``, node config) until a version is deployed, so no
    request goes unscored; then, every ``refresh_seconds``, it asks the Model Center which
    version is deployed and loads it if it changed (hot swap). It ends with its input stream.
    """

    def __init__(self, model: str) -> None:
        self.model = model

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Iterator[Any]:
        return self._score(ctx, inputs[0])

    def _wait_for_deployment(self, ctx: tide.JobContext) -> int:
        patience = float(setting(ctx, "wait_seconds", 120.0))
        deadline = time.monotonic() + patience
        while (version := deployed_version(ctx, self.model)) is None:
            if ctx.stopping or time.monotonic() > deadline:
                raise TimeoutError(f"no version of {self.model} deployed within {patience} s")
            time.sleep(0.2)
        return version

    def _score(self, ctx: tide.JobContext, stream: Iterator[Any]) -> Iterator[Any]:
        refresh = float(setting(ctx, "refresh_seconds", 1.0))
        version = self._wait_for_deployment(ctx)
        classifier = ctx.load_model(self.model, version=version)
        ctx.logger.info("now serving %s version %s", self.model, version)
        checked = time.monotonic()
        for batch in stream:
            if time.monotonic() - checked >= refresh:
                checked = time.monotonic()
                deployed = deployed_version(ctx, self.model)
                if deployed is not None and deployed != version:
                    classifier = ctx.load_model(self.model, version=deployed)
                    ctx.logger.info("now serving %s version %s", self.model, deployed)
                    version = deployed
            scored = batch.copy()
            scored["prediction"] = classifier.predict(pixels(batch))
            scored["model_version"] = version
            yield scored


class WritePredictions(tide.Processor):
    """Appends ``{"prediction", "model_version"}`` JSON lines to ``path`` (node config).

    Takes a table (batch job) or a stream of micro-batches (streaming job), flushing after
    each micro-batch so readers see predictions as they are made.
    """

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> int:
        path = Path(ctx.config.get("path", "digits_predictions.jsonl"))
        data = inputs[0]
        batches = data if isinstance(data, Iterator) else iter([data])
        written = 0
        with path.open("a", encoding="utf-8") as out:
            for batch in batches:
                for prediction, version in zip(
                    batch["prediction"], batch["model_version"], strict=True
                ):
                    record = {"prediction": int(prediction), "model_version": int(version)}
                    out.write(json.dumps(record) + "\n")
                written += len(batch)
                out.flush()
        ctx.logger.info("wrote %d predictions to %s", written, path)
        return written


with tide.workflow("digits_batch_stream") as wf:
    with tide.job("train"):
        rows = tide.read_dataset("digits_train", processor=ReadDigits("train"), name="read_train")
        tide.train(
            tide.transform(rows, processor=ScalePixels(), name="scale_train"),
            model=MODEL,
            processor=TrainClassifier(MODEL),
            name="fit",
            config={"max_iter": 1000},
        )
    with tide.job("validate"):
        holdout = tide.read_dataset(
            "digits_holdout", processor=ReadDigits("holdout"), name="read_holdout"
        )
        tide.validate(
            tide.transform(holdout, processor=ScalePixels(), name="scale_holdout"),
            model=MODEL,
            processor=HoldoutValidator(MODEL),
            name="check_accuracy",
            config={"min_accuracy": 0.9, "tolerance": 0.01},
        )
    with tide.job("push"):
        tide.push_model(model=MODEL, processor=DeployValidated(MODEL), name="deploy")
    with tide.job("predict", streaming=True):
        requests = tide.read_dataset(
            "digits_requests",
            processor=StreamDigits("serving", labelled=False),
            name="read_requests",
            config={"batch_size": 16, "interval_seconds": 0.1},
        )
        scored = tide.predict(
            tide.transform(requests, processor=ScalePixels(), name="scale_requests"),
            model=MODEL,
            processor=StreamingPredictor(MODEL),
            name="score",
            config={"refresh_seconds": 0.5, "wait_seconds": 120},
        )
        tide.write_dataset(
            scored,
            "digits_predictions",
            processor=WritePredictions(),
            name="write_predictions",
            config={"path": "digits_batch_stream_predictions.jsonl"},
        )

    # A new version is validated; a validated one is pushed (deployed).
    wf.on_model_version("validate", model=MODEL, event=tide.ModelVersionEvent.GENERATED)
    wf.on_model_version("push", model=MODEL, event=tide.ModelVersionEvent.VALIDATED)
    # "predict" has no START rule: it starts with the execution and hot-swaps versions.
