"""The processors shared by the four digits examples (``examples/*_train_*_predict/``).

Each example declares only its workflow -- jobs, rules and node config -- and imports its
processors from here, so the four loops on scikit-learn's digits data set run the same code:

- reading: :class:`ReadDigits` (a part of the data set as a table) and :class:`StreamDigits`
  (a part replayed as a bounded stream of micro-batches);
- features: :class:`ScalePixels` (tables and micro-batches alike);
- training: :class:`TrainClassifier` (batch) and :class:`OnlineTrainer` (streaming);
- the model life cycle: :class:`HoldoutValidator` and :class:`DeployValidated`;
- serving: :class:`BatchPredictor` and :class:`StreamingPredictor` (both
  :class:`~tideflow.serving.PredictProcessor`: the deployed version is swapped when a deploy
  is pushed, never polled) and :class:`WritePredictions`.

The data set is split deterministically (60 % train, 20 % holdout, 20 % serving), so runs are
reproducible. Each part is registered as a dataset (``digits_train`` ...) by the reader that
reads it, and readers declare what they read with ``ctx.record_input``: a table as the whole
dataset, a stream micro-batch by micro-batch as an offset range (row positions in the replayed
stream). ``ctx.log_model`` then records what each version was trained on -- the batch
trainer's one version the whole part, each of the online trainer's versions the rows it
learnt from since the previous one. pandas and scikit-learn are imported inside the functions that need them:
importing this module (and compiling an example) needs only Tideflow, running one needs
``pip install 'tideflow[ml]'``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import tideflow as tide
from tideflow.domain.events import model_version_of
from tideflow.serving.processor import PredictProcessor

__all__ = [
    "MODEL",
    "PARTS",
    "BatchPredictor",
    "DeployValidated",
    "HoldoutValidator",
    "OnlineTrainer",
    "ReadDigits",
    "ScalePixels",
    "StreamDigits",
    "StreamingPredictor",
    "TrainClassifier",
    "WritePredictions",
    "all_versions",
    "deployed_version",
    "load_part",
    "map_batches",
    "pixels",
    "predict_digits",
    "register_part",
    "setting",
    "stopping",
    "triggered_version",
]

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


def stopping(ctx: tide.JobContext) -> bool:
    """Whether the job is asked to stop (``ctx.stopping`` of the engine's context).

    The SDK's :class:`~tideflow.JobContext` protocol does not declare ``stopping`` yet, so a
    context without it counts as never stopping.
    """
    return bool(getattr(ctx, "stopping", False))


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


def triggered_version(ctx: tide.JobContext, model: str) -> int | None:
    """The version of ``model`` the attempt was started for, named by its trigger event.

    ``None`` when nothing fired (a manual start) or the trigger is not a model version event of
    ``model`` (whose value is JSON ``{model, version, status, previous}``).
    """
    return model_version_of(ctx.trigger, model)


def register_part(ctx: tide.JobContext, part: str, *, stream: bool) -> str:
    """Register part ``part`` of the data set as dataset ``digits_<part>``; return the name.

    A dataset registered already (a second attempt, another reader) is left as it is.
    """
    name = f"digits_{part}"
    with contextlib.suppress(tide.AlreadyExistsError):
        ctx.client.datasets.register(
            name,
            uri=f"sklearn://load_digits/{part}",
            format="table",
            stream=stream,
            description=f"scikit-learn's digits, part {part} ({PARTS[part][0]:.0%} to "
            f"{PARTS[part][1]:.0%} of the rows)",
        )
    return name


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
        """Return the part as a table (declared as the job's input, for lineage)."""
        table = load_part(self.part, labelled=self.part != "serving")
        ctx.record_input(register_part(ctx, self.part, stream=False))
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
        """Return the lazy stream of micro-batches."""
        return self._batches(ctx)

    def _batches(self, ctx: tide.JobContext) -> Iterator[Any]:
        from tideflow.domain.lineage import LineageRef

        table = load_part(self.part, labelled=self.labelled)
        dataset = register_part(ctx, self.part, stream=True)
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
        offset = 0
        for sent, start in enumerate(starts):
            if stopping(ctx):
                return
            if sent and pause > 0:
                time.sleep(pause)
            batch = table.iloc[start : start + size].reset_index(drop=True)
            # Offsets are row positions in the replayed stream (a second pass continues them),
            # declared before the batch is handed on: a version logged after it includes it.
            ctx.record_input(
                LineageRef.dataset(dataset, start_offset=offset, end_offset=offset + len(batch) - 1)
            )
            offset += len(batch)
            yield batch


class ScalePixels(tide.Processor):
    """Scales pixel intensities from 0..16 to 0..1.

    The same processor serves batch jobs (a table) and streaming jobs (micro-batches), so
    training and serving see identical features.
    """

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Any:
        """Scale the input table, or each micro-batch of the input stream."""
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
        """Fit on the input table and return the logged model version."""
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


class OnlineTrainer(tide.Processor):
    """Learns from a stream with ``partial_fit`` and publishes a model version now and then.

    Accuracy is measured prequentially (each micro-batch is scored before it is learnt from).
    Every ``publish_every`` micro-batches (node config) and once more when the stream ends, a
    copy of the model is logged as a GENERATED version, which starts the validation job. It
    drains its bounded input and returns, so the streaming job FINISHES.
    """

    def __init__(self, model: str) -> None:
        self.model = model

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> int:
        """Learn from the input stream and return the number of micro-batches seen."""
        from sklearn.linear_model import SGDClassifier

        every = int(setting(ctx, "publish_every", 20))
        classifier = SGDClassifier(loss="log_loss", alpha=1e-4, random_state=0)
        batches = correct = seen = published = 0
        for batch in inputs[0]:
            x, y = pixels(batch), batch["target"].to_numpy()
            if batches:
                correct += int((classifier.predict(x) == y).sum())
                seen += len(y)
            classifier.partial_fit(x, y, classes=list(range(10)))
            batches += 1
            if batches % every == 0:
                self._publish(ctx, classifier, batches, correct / seen if seen else 0.0)
                published = batches
        if batches > published:  # what was learnt since the last version
            self._publish(ctx, classifier, batches, correct / seen if seen else 0.0)
        return batches

    def _publish(
        self, ctx: tide.JobContext, classifier: Any, batches: int, accuracy: float
    ) -> None:
        ctx.log_metric("prequential_accuracy", accuracy, step=batches)
        version = ctx.log_model(
            copy.deepcopy(classifier),
            model=self.model,
            flavour="sklearn",
            metrics={"prequential_accuracy": accuracy},
            params={"batches": batches},
        )
        ctx.logger.info(
            "after %d micro-batches: %s version %s", batches, self.model, version.version
        )


class HoldoutValidator(tide.Processor):
    """Validates GENERATED versions on the holdout part against the deployed one.

    A candidate passes when its accuracy reaches ``min_accuracy`` (node config) and is at most
    ``tolerance`` below the version currently deployed; it is REJECTED otherwise.

    Which version: the one it was started for (``ctx.trigger``, the ``MODEL_GENERATED`` event
    whose value JSON names it). Every GENERATED version starts an attempt of its own, also one
    logged while an earlier attempt runs (the rule's default ``on_busy="queue"``), so nothing
    else is looked at; a version whose status changed meanwhile is left alone. Started by hand
    (no trigger), it judges the newest GENERATED version and REJECTS older ones as superseded.
    Returns the status it gave (``None`` when it judged nothing).
    """

    def __init__(self, model: str) -> None:
        self.model = model

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Any:
        """Judge the version the job was started for (by hand: the newest GENERATED one)."""
        holdout = inputs[0]
        x, y = pixels(holdout), holdout["target"].to_numpy()
        waiting = self._generated(ctx)
        started_for = triggered_version(ctx, self.model)
        if started_for is not None:
            if started_for in waiting:
                return self._judge(ctx, started_for, x, y)
            ctx.logger.info("version %s is no longer GENERATED: left alone", started_for)
            return None
        if not waiting:
            return None
        for older in waiting[:-1]:
            ctx.logger.info("version %s superseded by version %s", older, waiting[-1])
            self._set(ctx, older, tide.ModelStatus.REJECTED)
        return self._judge(ctx, waiting[-1], x, y)

    def _generated(self, ctx: tide.JobContext) -> list[int]:
        return [
            v.version
            for v in all_versions(ctx, self.model)
            if v.status == tide.ModelStatus.GENERATED
        ]

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
        """Deploy the newest VALIDATED version, if any."""
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


def predict_digits(model: Any, records: Sequence[Mapping[str, Any]]) -> list[int]:
    """The :class:`~tideflow.serving.PredictProcessor` scorer: the digit each record shows.

    The classifiers are fitted on pixel arrays (no column names), so the records' ``pixel_*``
    fields are passed in the order the table had them, as in training.
    """
    import pandas as pd

    return [int(label) for label in model.predict(pixels(pd.DataFrame.from_records(records)))]


class _DigitsPredictor(PredictProcessor):
    """A :class:`PredictProcessor` for digits tables: predictions come back as columns.

    ``open`` starts following the model's DEPLOYED version (loaded once, then swapped when a
    ``MODEL_DEPLOYED`` event is pushed to the job -- no polling of the Model Center); each
    table or micro-batch is scored by one version.
    """

    def __init__(self, model: str) -> None:
        super().__init__(model, scorer=predict_digits)

    def score_table(self, ctx: tide.JobContext, table: Any) -> Any:
        """A copy of ``table`` with ``prediction`` and ``model_version`` columns."""
        records = self.score(ctx, table.to_dict("records"))
        scored = table.copy()
        scored["prediction"] = [record["score"] for record in records]
        scored["model_version"] = [record["model_version"] for record in records]
        return scored


class BatchPredictor(_DigitsPredictor):
    """Adds ``prediction`` and ``model_version`` columns computed by the DEPLOYED version."""

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Any:
        """Return a copy of the input table with the predictions added."""
        scored = self.score_table(ctx, inputs[0])
        versions = sorted(set(scored["model_version"]))
        ctx.logger.info("scored %d rows with %s version %s", len(scored), self.model, versions)
        return scored


class StreamingPredictor(_DigitsPredictor):
    """Scores a stream with the DEPLOYED version and switches versions without a restart.

    It first waits (up to ``wait_seconds``, node config) until a version is deployed, so no
    request goes unscored; from then on each micro-batch is scored by the version served at
    that moment, which the processor's holder swaps as soon as a deploy is pushed to it. It
    ends with its input stream.
    """

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Iterator[Any]:
        """Return the lazy stream of scored micro-batches."""
        return self._score(ctx, inputs[0])

    def _wait_for_deployment(self, ctx: tide.JobContext) -> None:
        holder = self._holder
        if holder is None:
            raise RuntimeError("StreamingPredictor.open was not called")
        patience = float(setting(ctx, "wait_seconds", 120.0))
        deadline = time.monotonic() + patience
        # Woken by the deploy itself; the short timeout only looks at stopping and the deadline.
        while not holder.wait_for(lambda served: served is not None, timeout=0.5):
            if stopping(ctx) or time.monotonic() > deadline:
                raise TimeoutError(f"no version of {self.model} deployed within {patience} s")

    def _score(self, ctx: tide.JobContext, stream: Iterator[Any]) -> Iterator[Any]:
        self._wait_for_deployment(ctx)
        serving = None
        for batch in stream:
            scored = self.score_table(ctx, batch)
            version = int(scored["model_version"].iloc[0]) if len(scored) else serving
            if version != serving:
                ctx.logger.info("now serving %s version %s", self.model, version)
                serving = version
            yield scored


class WritePredictions(tide.Processor):
    """Appends ``{"prediction", "model_version"}`` JSON lines to ``path`` (node config).

    Takes a table (batch job) or a stream of micro-batches (streaming job), flushing after
    each micro-batch so readers see predictions as they are made.
    """

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> int:
        """Append the predictions and return how many were written."""
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
