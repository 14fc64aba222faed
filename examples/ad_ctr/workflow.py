"""Online click-through-rate prediction: the canonical loop of DESIGN.md's "Public contract".

Clicks stream into an online-training job that logs a new ``ctr`` model version every N
impressions; each new version is validated on a holdout sample and, if good enough, pushed
(deployed); the streaming predictor switches to it without a restart. A drift monitor starts
with the predictor and compares the serving traffic with the training traffic: on drift it sends
``DRIFT_DETECTED``, which restarts the trainer. A batch retrain runs every hour, and a report is
written after validation and push.

    train (streaming) ──MODEL_GENERATED──► validate ──MODEL_VALIDATED──► push
    predict (streaming) ──starts──► monitor (streaming) ──DRIFT_DETECTED──► restart train
    retrain (cron '0 * * * *') ──MODEL_GENERATED──► validate
    validate + push FINISHED ──► report

Everything here is plain Python: the ad market is a seeded simulation (ads, user segments, slot
positions, hours), the model a logistic regression over hashed sparse features trained by SGD.
So this example runs with the core install alone; it is what ``tideflow quickstart`` drives.
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import tideflow as tide

MODEL = "ctr"
N_ADS, N_SEGMENTS, N_POSITIONS = 12, 6, 4
HASH_SPACE = 1 << 16


def sigmoid(z: float) -> float:
    """The logistic function, safe for large ``|z|``."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class AdMarket:
    """A seeded simulation of ad impressions and the clicks they get.

    ``drift`` (0..1) moves traffic towards the last user segments, which react differently to
    the ads: the serving distribution drifts away from the one the model was trained on.
    """

    def __init__(self, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.ad_bias = [rng.gauss(-2.0, 0.5) for _ in range(N_ADS)]
        self.affinity = [[rng.gauss(0.0, 0.9) for _ in range(N_SEGMENTS)] for _ in range(N_ADS)]

    @staticmethod
    def segment_weights(drift: float = 0.0) -> list[float]:
        """The share of traffic from each user segment."""
        return [1.0 + drift * 4.0 * segment / (N_SEGMENTS - 1) for segment in range(N_SEGMENTS)]

    def impression(
        self, rng: random.Random, request_id: str, *, drift: float = 0.0
    ) -> dict[str, Any]:
        """One ad shown to one user, with whether it was clicked."""
        segment = rng.choices(range(N_SEGMENTS), weights=self.segment_weights(drift))[0]
        ad, position, hour = rng.randrange(N_ADS), rng.randrange(N_POSITIONS), rng.randrange(24)
        logit = (
            self.ad_bias[ad]
            + self.affinity[ad][segment]
            - 0.35 * position
            + 0.3 * math.sin(2 * math.pi * hour / 24)
        )
        return {
            "request_id": request_id,
            "ad_id": ad,
            "segment": segment,
            "position": position,
            "hour": hour,
            "clicked": int(rng.random() < sigmoid(logit)),
        }


MARKET = AdMarket()


def map_batches(function: Callable[[Any], Any], data: Any) -> Any:
    """Apply ``function`` to a table, or lazily to every micro-batch of a stream."""
    if isinstance(data, Iterator):
        return (function(batch) for batch in data)
    return function(data)


def records(table: Any) -> list[dict[str, Any]]:
    """The rows of a table: a list of dicts, or a pandas DataFrame."""
    if hasattr(table, "to_dict"):
        return list(table.to_dict("records"))
    return list(table)


# -- readers -------------------------------------------------------------------------------


class ReadClicks(tide.Processor):
    """The click stream: micro-batches of labelled impressions, endless unless capped.

    Node config: ``batch_size``, ``interval_seconds`` between micro-batches, ``max_batches``
    (endless when absent), ``drift_after`` (micro-batches after which traffic drifts) and
    ``seed``.
    """

    labelled = True
    prefix = "click"

    def process(
        self, ctx: tide.JobContext, inputs: Sequence[Any]
    ) -> Iterator[list[dict[str, Any]]]:
        return self._stream(ctx)

    def _stream(self, ctx: tide.JobContext) -> Iterator[list[dict[str, Any]]]:
        rng = random.Random(int(ctx.config.get("seed", 1)) * 1000 + ctx.attempt)
        size = int(ctx.config.get("batch_size", 50))
        pause = float(ctx.config.get("interval_seconds", 0.1))
        limit = ctx.config.get("max_batches")
        drift_after = ctx.config.get("drift_after")
        sent = 0
        while limit is None or sent < int(limit):
            drift = 1.0 if drift_after is not None and sent >= int(drift_after) else 0.0
            batch = [
                MARKET.impression(rng, f"{self.prefix}-{ctx.attempt}-{sent}-{i}", drift=drift)
                for i in range(size)
            ]
            if not self.labelled:
                for row in batch:
                    del row["clicked"]
            yield batch
            sent += 1
            time.sleep(pause)


class ReadRequests(ReadClicks):
    """The serving stream: ad requests to score, without labels (same knobs as ReadClicks)."""

    labelled = False
    prefix = "request"


class ReadHoldout(tide.Processor):
    """A fixed, seeded sample of labelled impressions that every candidate is judged on."""

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        rng = random.Random(int(ctx.config.get("seed", 99)))
        rows = int(ctx.config.get("rows", 5000))
        return [MARKET.impression(rng, f"holdout-{i}") for i in range(rows)]


class ReadClickHistory(tide.Processor):
    """The last hour of logged clicks, for the hourly batch retrain (``rows`` in config)."""

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        hour = int(time.time() // 3600)
        rng = random.Random(hour)
        rows = int(ctx.config.get("rows", 20000))
        return [MARKET.impression(rng, f"history-{hour}-{i}") for i in range(rows)]


# -- features and model --------------------------------------------------------------------


class Featurize(tide.Processor):
    """Hashes an impression into sparse feature indices (the same for training and serving).

    Used by the batch retrain (a table) and by the streaming trainer and predictor
    (micro-batches), so every job sees identical features.
    """

    FIELDS = ("ad_id", "segment", "position", "hour")
    CROSSES = (("ad_id", "segment"), ("ad_id", "position"))

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Any:
        return map_batches(self.featurize_all, inputs[0])

    def featurize_all(self, table: Any) -> list[dict[str, Any]]:
        """Featurize every row of a table or micro-batch."""
        return [self.featurize(row) for row in records(table)]

    def featurize(self, row: dict[str, Any]) -> dict[str, Any]:
        """``{"request_id", "ad_id", "features", "label"}`` for one impression."""
        names = [f"{field}={row[field]}" for field in self.FIELDS]
        names += ["&".join(f"{field}={row[field]}" for field in cross) for cross in self.CROSSES]
        return {
            "request_id": row["request_id"],
            "ad_id": row["ad_id"],
            "segment": row["segment"],
            "features": sorted({zlib.crc32(name.encode()) % HASH_SPACE for name in names}),
            "label": row.get("clicked"),
        }


class CtrModel:
    """Logistic regression over hashed sparse features, learnt one example at a time."""

    def __init__(self, learning_rate: float = 0.05, l2: float = 1e-6) -> None:
        self.learning_rate = learning_rate
        self.l2 = l2
        self.bias = 0.0
        self.weights: dict[int, float] = {}
        self.examples = 0

    def predict(self, features: Sequence[int]) -> float:
        """The click probability of one featurized impression."""
        return sigmoid(self.bias + sum(self.weights.get(index, 0.0) for index in features))

    def learn(self, features: Sequence[int], label: int) -> float:
        """One SGD step on log loss; returns the prediction made before the step."""
        p = self.predict(features)
        gradient = p - label
        self.bias -= self.learning_rate * gradient
        for index in features:
            weight = self.weights.get(index, 0.0)
            self.weights[index] = weight - self.learning_rate * (gradient + self.l2 * weight)
        self.examples += 1
        return p


def log_loss(labels: Sequence[int], predictions: Sequence[float]) -> float:
    """Mean binary cross-entropy."""
    eps = 1e-12
    total = sum(
        -math.log(max(p, eps)) if y else -math.log(max(1.0 - p, eps))
        for y, p in zip(labels, predictions, strict=True)
    )
    return total / max(len(labels), 1)


def auc(labels: Sequence[int], predictions: Sequence[float]) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half)."""
    pairs = sorted(zip(predictions, labels, strict=True))
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return 0.5
    rank_sum, rank, i = 0.0, 1, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mean_rank = rank + (j - i - 1) / 2
        rank_sum += mean_rank * sum(label for _, label in pairs[i:j])
        rank += j - i
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def score(model: CtrModel, rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """``auc`` and ``logloss`` of ``model`` on featurized, labelled rows."""
    labels = [int(row["label"]) for row in rows]
    predictions = [model.predict(row["features"]) for row in rows]
    return {"auc": auc(labels, predictions), "logloss": log_loss(labels, predictions)}


# -- training, validation, deployment -------------------------------------------------------


class OnlineTrainer(tide.Processor):
    """Learns from the click stream and logs a model version every ``publish_every`` clicks.

    It starts from the DEPLOYED version when there is one (``warm_start``, default on), so a
    restart after drift adapts the serving model rather than starting from nothing. It drains
    its input: the streaming job ends when its source is stopped.
    """

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> int:
        model = CtrModel(learning_rate=float(ctx.params.get("lr", ctx.config.get("lr", 0.05))))
        if ctx.config.get("warm_start", True):
            try:
                model = ctx.load_model(MODEL, status=tide.ModelStatus.DEPLOYED)
            except tide.NotFoundError:
                ctx.logger.info("no deployed %s version yet: training from scratch", MODEL)
        every = int(ctx.config.get("publish_every", 2000))
        labels: list[int] = []
        predictions: list[float] = []
        for batch in inputs[0]:
            for row in batch:
                predictions.append(model.learn(row["features"], int(row["label"])))
                labels.append(int(row["label"]))
                if len(labels) == every:
                    metrics = {"prequential_logloss": log_loss(labels, predictions)}
                    ctx.log_metric("prequential_logloss", metrics["prequential_logloss"])
                    ctx.log_model(
                        copy.deepcopy(model),
                        model=MODEL,
                        metrics=metrics,
                        params={"examples": model.examples},
                    )
                    labels.clear()
                    predictions.clear()
        return model.examples


class BatchTrainer(tide.Processor):
    """The hourly retrain: a fresh model, ``epochs`` passes over the click history."""

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Any:
        rows = inputs[0]
        model = CtrModel(learning_rate=float(ctx.config.get("lr", 0.05)))
        shuffled = list(rows)
        rng = random.Random(0)
        for _ in range(int(ctx.config.get("epochs", 3))):
            rng.shuffle(shuffled)
            for row in shuffled:
                model.learn(row["features"], int(row["label"]))
        metrics = score(model, rows)
        ctx.log_metric("train_auc", metrics["auc"])
        return ctx.log_model(model, model=MODEL, metrics=metrics, params={"examples": len(rows)})


class Validator(tide.Processor):
    """Judges the newest GENERATED version on the holdout against the DEPLOYED one.

    VALIDATED when its AUC reaches ``min_auc`` and its log loss is at most ``tolerance`` worse
    than the deployed version's; REJECTED otherwise.
    """

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Any:
        holdout = inputs[0]
        models = ctx.client.models
        candidate = models.get_version(MODEL, status=tide.ModelStatus.GENERATED)
        metrics = score(ctx.load_model(MODEL, version=candidate.version), holdout)
        try:
            baseline = score(ctx.load_model(MODEL, status=tide.ModelStatus.DEPLOYED), holdout)
        except tide.NotFoundError:
            baseline = {"auc": 0.5, "logloss": math.inf}
        for name, value in metrics.items():
            ctx.log_metric(f"holdout_{name}", value, model=MODEL, version=candidate.version)
        good = metrics["auc"] >= float(ctx.config.get("min_auc", 0.6)) and metrics[
            "logloss"
        ] <= baseline["logloss"] + float(ctx.config.get("tolerance", 0.002))
        status = tide.ModelStatus.VALIDATED if good else tide.ModelStatus.REJECTED
        models.set_status(MODEL, candidate.version, status)
        ctx.logger.info(
            "version %s %s: %s (deployed %s)", candidate.version, status, metrics, baseline
        )
        return status


class Pusher(tide.Processor):
    """Deploys the newest VALIDATED version; the deployed one becomes DEPRECATED atomically."""

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> int:
        version = ctx.client.models.get_version(MODEL, status=tide.ModelStatus.VALIDATED)
        ctx.client.models.deploy(MODEL, version.version)
        return int(version.version)


# -- serving, monitoring, reporting -------------------------------------------------------


class Predictor(tide.Processor):
    """Scores ad requests with the DEPLOYED version, hot-swapping to each newly deployed one.

    Every ``refresh_seconds`` it asks the Model Center which version is deployed. Requests that
    arrive before any version is deployed are answered with the prior CTR ``default_ctr``.
    """

    def process(
        self, ctx: tide.JobContext, inputs: Sequence[Any]
    ) -> Iterator[list[dict[str, Any]]]:
        return self._serve(ctx, inputs[0])

    def _serve(self, ctx: tide.JobContext, stream: Iterator[Any]) -> Iterator[list[dict[str, Any]]]:
        refresh = float(ctx.config.get("refresh_seconds", 1.0))
        default = float(ctx.config.get("default_ctr", 0.1))
        model: CtrModel | None = None
        version: int | None = None
        checked = -math.inf
        for batch in stream:
            if time.monotonic() - checked >= refresh:
                checked = time.monotonic()
                try:
                    deployed = ctx.client.models.get_version(
                        MODEL, status=tide.ModelStatus.DEPLOYED
                    )
                except tide.NotFoundError:
                    deployed = None
                if deployed is not None and deployed.version != version:
                    model, version = (
                        ctx.load_model(MODEL, version=deployed.version),
                        deployed.version,
                    )
                    ctx.logger.info("now serving %s version %s", MODEL, version)
            yield [
                {
                    "request_id": row["request_id"],
                    "ad_id": row["ad_id"],
                    "ctr": model.predict(row["features"]) if model is not None else default,
                    "model_version": version,
                }
                for row in batch
            ]


class Writer(tide.Processor):
    """Appends records as JSON lines to ``path`` (node config); a table or a stream."""

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> int:
        path = Path(ctx.config.get("path", "predictions.jsonl"))
        data = inputs[0]
        batches = data if isinstance(data, Iterator) else iter([data])
        written = 0
        with path.open("a", encoding="utf-8") as out:
            for batch in batches:
                for row in records(batch):
                    out.write(json.dumps(row, sort_keys=True) + "\n")
                    written += 1
                out.flush()
        return written


class DriftMonitor(tide.Processor):
    """Compares the serving segment mix with the training one; sends DRIFT_DETECTED on drift.

    Over a sliding window of ``window`` requests it computes the population stability index
    (PSI) against the reference mix; above ``threshold`` it sends a ``DRIFT_DETECTED`` event
    (key ``ctr``, value the PSI), at most once per ``cooldown_seconds``.
    """

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> int:
        window = int(ctx.config.get("window", 2000))
        threshold = float(ctx.config.get("threshold", 0.1))
        cooldown = float(ctx.config.get("cooldown_seconds", 300.0))
        weights = MARKET.segment_weights()
        reference = [weight / sum(weights) for weight in weights]
        recent: list[int] = []
        sent_at, alerts = -math.inf, 0
        for batch in inputs[0]:
            recent.extend(row["segment"] for row in batch)
            del recent[:-window]
            if len(recent) < window:
                continue
            psi = population_stability(reference, recent)
            ctx.log_metric("segment_psi", psi)
            if psi > threshold and time.monotonic() - sent_at >= cooldown:
                ctx.send_event(MODEL, f"{psi:.4f}", event_type="DRIFT_DETECTED")
                sent_at, alerts = time.monotonic(), alerts + 1
        return alerts


def population_stability(reference: Sequence[float], segments: Sequence[int]) -> float:
    """PSI between the reference segment shares and the observed ``segments``."""
    counts = Counter(segments)
    psi = 0.0
    for segment, expected in enumerate(reference):
        actual = max(counts.get(segment, 0) / len(segments), 1e-6)
        psi += (actual - expected) * math.log(actual / expected)
    return psi


class EvaluateDeployed(tide.Processor):
    """Measures the DEPLOYED version on the holdout (metrics only, no status change)."""

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        deployed = ctx.client.models.get_version(MODEL, status=tide.ModelStatus.DEPLOYED)
        metrics = score(ctx.load_model(MODEL, version=deployed.version), inputs[0])
        for name, value in metrics.items():
            ctx.log_metric(f"report_{name}", value, model=MODEL, version=deployed.version)
        return [{"model": MODEL, "version": deployed.version, "time": time.time(), **metrics}]


# -- the workflow -------------------------------------------------------------------------

with tide.workflow("ctr_online") as wf:
    with tide.job("train", streaming=True):
        clicks = tide.read_dataset(
            "clicks",
            processor=ReadClicks(),
            config={"batch_size": 50, "interval_seconds": 0.1, "drift_after": 600},
        )
        feats = tide.transform(clicks, processor=Featurize(), name="featurize")
        tide.train(
            feats,
            model=MODEL,
            processor=OnlineTrainer(),
            name="learn",
            config={"publish_every": 2000},
        )
    with tide.job("validate"):
        holdout = tide.read_dataset("holdout", processor=ReadHoldout(), name="read_holdout")
        tide.validate(
            tide.transform(holdout, processor=Featurize(), name="featurize_holdout"),
            model=MODEL,
            processor=Validator(),
            name="judge",
            config={"min_auc": 0.6, "tolerance": 0.002},
        )
    with tide.job("push"):
        tide.push_model(model=MODEL, processor=Pusher(), name="deploy")
    with tide.job("predict", streaming=True):
        requests = tide.read_dataset(
            "requests", processor=ReadRequests(), name="read_requests", config={"drift_after": 600}
        )
        scored = tide.predict(
            tide.transform(requests, processor=Featurize(), name="featurize_requests"),
            model=MODEL,
            processor=Predictor(),
            name="score",
        )
        tide.write_dataset(
            scored,
            "predictions",
            processor=Writer(),
            name="write_predictions",
            config={"path": "ctr_predictions.jsonl"},
        )
    with tide.job("monitor", streaming=True):
        traffic = tide.read_dataset(
            "requests", processor=ReadRequests(), name="read_traffic", config={"drift_after": 600}
        )
        tide.user_node(
            tide.transform(traffic, processor=Featurize(), name="featurize_traffic"),
            processor=DriftMonitor(),
            name="drift_monitor",
            config={"window": 2000, "threshold": 0.1},
        )
    with tide.job("report"):
        report_rows = tide.read_dataset(
            "holdout", processor=ReadHoldout(), name="read_report_holdout"
        )
        evaluation = tide.evaluate(
            tide.transform(report_rows, processor=Featurize(), name="featurize_report"),
            model=MODEL,
            processor=EvaluateDeployed(),
            name="evaluate_deployed",
        )
        tide.write_dataset(
            evaluation,
            "ctr_reports",
            processor=Writer(),
            name="write_report",
            config={"path": "ctr_reports.jsonl"},
        )
    with tide.job("retrain"):
        history = tide.read_dataset(
            "click_history", processor=ReadClickHistory(), name="read_history"
        )
        tide.train(
            tide.transform(history, processor=Featurize(), name="featurize_history"),
            model=MODEL,
            processor=BatchTrainer(),
            name="refit",
            config={"epochs": 3},
        )

    wf.on_model_version("validate", model=MODEL, event=tide.ModelVersionEvent.GENERATED)
    wf.on_model_version("push", model=MODEL, event=tide.ModelVersionEvent.VALIDATED)
    wf.after("report", "validate", "push")  # one rule: both must have FINISHED
    wf.with_start("monitor", "predict")  # the monitor watches what the predictor serves
    wf.periodic("retrain", cron="0 * * * *", timezone="UTC")
    wf.on_event("train", event_type="DRIFT_DETECTED", action=tide.JobAction.RESTART)
    # An alternative report trigger: a drift was seen and a version was deployed since.
    wf.on_events(
        "report",
        tide.all_of(
            tide.EventMatch(key=MODEL, event_type="DRIFT_DETECTED"),
            tide.EventMatch(key=MODEL, event_type=tide.ModelVersionEvent.DEPLOYED),
        ),
    )
