"""Streaming training, streaming prediction: the online loop of the AI Flow design.

    train (streaming) ──MODEL_GENERATED──► validate ──MODEL_VALIDATED──► push ──MODEL_DEPLOYED┐
    predict (streaming, starts with the execution) ◄── switches to the new version ─────────┘

- ``train`` (streaming) learns from a stream of labelled digits with ``partial_fit`` and logs a
  GENERATED version of ``digits`` every ``publish_every`` micro-batches.
- Each new version is validated on the holdout part, and a validated one is deployed.
- ``predict`` (streaming) scores a stream of unlabelled digit images and switches to each newly
  deployed version without a restart. Both streaming jobs run until the execution is stopped.

The data set is split deterministically (60 % train, 20 % holdout, 20 % serving), so runs are
reproducible. pandas and scikit-learn are imported inside the processors: compiling this file
needs only Tideflow, running it needs ``pip install 'tideflow[ml]'``. Processors are defined in
this file so that it is self-contained; the compiler serialises them into the plan.
"""

from __future__ import annotations

import copy
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


class ReadDigits(tide.Processor):
    """Reads one part of the digits data set as a table; the serving part has no labels."""

    def __init__(self, part: str) -> None:
        self.part = part

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Any:
        table = load_part(self.part, labelled=self.part != "serving")
        ctx.logger.info("read %d rows of digits/%s", len(table), self.part)
        return table


class StreamDigits(tide.Processor):
    """Replays one part of the digits data set as an endless stream of micro-batches.

    Node config: ``batch_size`` (rows per micro-batch), ``interval_seconds`` (pause between
    micro-batches) and ``max_batches`` (stop after that many; endless when absent).
    """

    def __init__(self, part: str, *, labelled: bool = True) -> None:
        self.part = part
        self.labelled = labelled

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Iterator[Any]:
        return self._batches(ctx)

    def _batches(self, ctx: tide.JobContext) -> Iterator[Any]:
        table = load_part(self.part, labelled=self.labelled)
        size = int(ctx.config.get("batch_size", 32))
        pause = float(ctx.config.get("interval_seconds", 0.2))
        limit = ctx.config.get("max_batches")
        sent, start = 0, 0
        while limit is None or sent < int(limit):
            rows = [(start + offset) % len(table) for offset in range(size)]
            yield table.iloc[rows].reset_index(drop=True)
            sent, start = sent + 1, (start + size) % len(table)
            time.sleep(pause)


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


class OnlineTrainer(tide.Processor):
    """Learns from a stream with ``partial_fit`` and publishes a model version now and then.

    Accuracy is measured prequentially (each micro-batch is scored before it is learnt from).
    Every ``publish_every`` micro-batches (node config) a copy of the model is logged as a
    GENERATED version, which starts the validation job. It drains its input: a streaming job
    ends when its source is stopped.
    """

    def __init__(self, model: str) -> None:
        self.model = model

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> int:
        from sklearn.linear_model import SGDClassifier

        every = int(ctx.config.get("publish_every", 20))
        classifier = SGDClassifier(loss="log_loss", alpha=1e-4, random_state=0)
        batches = correct = seen = 0
        for batch in inputs[0]:
            x, y = pixels(batch), batch["target"].to_numpy()
            if batches:
                correct += int((classifier.predict(x) == y).sum())
                seen += len(y)
            classifier.partial_fit(x, y, classes=list(range(10)))
            batches += 1
            if batches % every == 0:
                accuracy = correct / seen if seen else 0.0
                ctx.log_metric("prequential_accuracy", accuracy, step=batches)
                ctx.log_model(
                    copy.deepcopy(classifier),
                    model=self.model,
                    metrics={"prequential_accuracy": accuracy},
                    params={"batches": batches},
                )
        return batches


class HoldoutValidator(tide.Processor):
    """Validates the newest GENERATED version on the holdout part against the deployed one.

    A candidate passes when its accuracy reaches ``min_accuracy`` (node config) and is at most
    ``tolerance`` below the version currently deployed; it is REJECTED otherwise.
    """

    def __init__(self, model: str) -> None:
        self.model = model

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Any:
        holdout = inputs[0]
        x, y = pixels(holdout), holdout["target"].to_numpy()
        models = ctx.client.models
        candidate = models.get_version(self.model, status=tide.ModelStatus.GENERATED)
        accuracy = float(ctx.load_model(self.model, version=candidate.version).score(x, y))
        try:
            baseline = float(
                ctx.load_model(self.model, status=tide.ModelStatus.DEPLOYED).score(x, y)
            )
        except tide.NotFoundError:
            baseline = 0.0
        ctx.log_metric("holdout_accuracy", accuracy, model=self.model, version=candidate.version)
        floor = float(ctx.config.get("min_accuracy", 0.9))
        tolerance = float(ctx.config.get("tolerance", 0.01))
        good = accuracy >= floor and accuracy >= baseline - tolerance
        status = tide.ModelStatus.VALIDATED if good else tide.ModelStatus.REJECTED
        models.set_status(self.model, candidate.version, status)
        ctx.logger.info(
            "version %s: accuracy %.3f, deployed %.3f -> %s",
            candidate.version,
            accuracy,
            baseline,
            status,
        )
        return status


class DeployValidated(tide.Processor):
    """Deploys the newest VALIDATED version; the previously deployed one becomes DEPRECATED."""

    def __init__(self, model: str) -> None:
        self.model = model

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> int:
        version = ctx.client.models.get_version(self.model, status=tide.ModelStatus.VALIDATED)
        ctx.client.models.deploy(self.model, version.version)
        ctx.logger.info("deployed %s version %s", self.model, version.version)
        return int(version.version)


class StreamingPredictor(tide.Processor):
    """Scores a stream with the DEPLOYED version and switches versions without a restart.

    Every ``refresh_seconds`` (node config) it asks the Model Center which version is deployed
    and loads it if it changed (hot swap). Micro-batches that arrive before any version is
    deployed are skipped and counted in the ``unscored_batches`` metric.
    """

    def __init__(self, model: str) -> None:
        self.model = model

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Iterator[Any]:
        return self._score(ctx, inputs[0])

    def _score(self, ctx: tide.JobContext, stream: Iterator[Any]) -> Iterator[Any]:
        refresh = float(ctx.config.get("refresh_seconds", 1.0))
        classifier: Any = None
        version: int | None = None
        checked = float("-inf")
        unscored = 0
        for batch in stream:
            if time.monotonic() - checked >= refresh:
                checked = time.monotonic()
                try:
                    deployed = ctx.client.models.get_version(
                        self.model, status=tide.ModelStatus.DEPLOYED
                    )
                except tide.NotFoundError:
                    deployed = None
                if deployed is not None and deployed.version != version:
                    classifier = ctx.load_model(self.model, version=deployed.version)
                    ctx.logger.info("now serving %s version %s", self.model, deployed.version)
                    version = deployed.version
            if classifier is None:
                unscored += 1
                ctx.log_metric("unscored_batches", unscored)
                continue
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


with tide.workflow("digits_stream_stream") as wf:
    with tide.job("train", streaming=True):
        stream = tide.read_dataset(
            "digits_stream",
            processor=StreamDigits("train"),
            name="read_stream",
            config={"batch_size": 32, "interval_seconds": 0.1},
        )
        tide.train(
            tide.transform(stream, processor=ScalePixels(), name="scale_stream"),
            model=MODEL,
            processor=OnlineTrainer(MODEL),
            name="learn",
            config={"publish_every": 20},
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
            config={"min_accuracy": 0.85, "tolerance": 0.01},
        )
    with tide.job("push"):
        tide.push_model(model=MODEL, processor=DeployValidated(MODEL), name="deploy")
    with tide.job("predict", streaming=True):
        requests = tide.read_dataset(
            "digits_requests",
            processor=StreamDigits("serving", labelled=False),
            name="read_requests",
            config={"batch_size": 16, "interval_seconds": 0.2},
        )
        scored = tide.predict(
            tide.transform(requests, processor=ScalePixels(), name="scale_requests"),
            model=MODEL,
            processor=StreamingPredictor(MODEL),
            name="score",
            config={"refresh_seconds": 1.0},
        )
        tide.write_dataset(
            scored,
            "digits_predictions",
            processor=WritePredictions(),
            name="write_predictions",
            config={"path": "digits_stream_stream_predictions.jsonl"},
        )

    # A new version is validated; a validated one is pushed (deployed).
    wf.on_model_version("validate", model=MODEL, event=tide.ModelVersionEvent.GENERATED)
    wf.on_model_version("push", model=MODEL, event=tide.ModelVersionEvent.VALIDATED)
    # "predict" has no START rule: it starts with the execution and hot-swaps versions.
