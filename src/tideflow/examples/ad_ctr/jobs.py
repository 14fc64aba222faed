"""The processors of the ``ad_ctr`` workflow: generate, train, validate, push.

Streams live in the project's data directory, under ``streams/<workflow>/`` (``ctx.data_dir``:
``<home>/data/<project>`` of the server that runs the jobs), or under the ``stream_root`` param:
``impressions`` (features, written as each ad is shown), ``clicks`` (``{request_id, clicked,
label, impression_offset}``, written ``label_delay`` seconds after the impression, in
impression order) and ``holdout`` (a tenth of the impressions, with their labels: never trained on).

Every setting is read from the execution's params first, then from the node's config
(:func:`setting`), so ``tide.start("ad_ctr", params={"duration": 20})`` bounds a run.
"""

from __future__ import annotations

import collections
import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tideflow as tide
from tideflow.domain.events import model_version_of
from tideflow.domain.lineage import LineageRef
from tideflow.examples.ad_ctr.market import FEATURE_FIELDS, MARKET, auc, is_holdout, log_loss
from tideflow.examples.ad_ctr.model import CtrModel
from tideflow.io.lineage import record_lineage, register_dataset
from tideflow.io.local_stream import LocalStreamReader, LocalStreamWriter, consumer_name

MODEL = "ctr"
IMPRESSIONS, CLICKS, HOLDOUT = "ctr_impressions", "ctr_clicks", "ctr_holdout"
VALIDATION_RESULT = "VALIDATION_RESULT"
"""Event type the validator sends (key ``ctr``, value JSON) with each verdict and its reason."""


def setting(ctx: tide.JobContext, name: str, default: Any) -> Any:
    """``ctx.params[name]``, else ``ctx.config[name]``, else ``default``."""
    if name in ctx.params:
        return ctx.params[name]
    return ctx.config.get(name, default)


def stream_dir(ctx: tide.JobContext, name: str) -> Path:
    """Where stream ``name`` of this workflow lives (jobs hand streams over in the data dir)."""
    root = setting(ctx, "stream_root", None)
    base = Path(root) if root else ctx.data_dir / "streams" / ctx.workflow
    return base / name


def all_versions(client: Any, model: str) -> list[Any]:
    """Every version of ``model``, oldest first (none if the model does not exist yet)."""
    found: list[Any] = []
    cursor = None
    try:
        while True:
            page = client.models.list_versions(model, limit=100, cursor=cursor)
            found.extend(page.items)
            cursor = page.next_cursor
            if not cursor:
                return found
    except tide.NotFoundError:
        return found


def signature_example() -> list[dict[str, Any]]:
    """Impressions' features as the model reads them: each version's input example.

    Every version's signature is inferred from them, so the predictor answers a request that
    lacks a feature with a 400 naming it.
    """
    rng = random.Random(0)
    rows = (MARKET.impression(rng, f"example-{i}") for i in range(3))
    return [{name: row[name] for name in FEATURE_FIELDS} for row in rows]


class StreamDirectories(tide.Processor):
    """The read_dataset node of the trainer: the directories of the impressions and clicks."""

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> dict[str, Path]:
        """``{"impressions": dir, "clicks": dir}``."""
        return {name: stream_dir(ctx, name) for name in ("impressions", "clicks")}


class GenerateClicks(tide.Processor):
    """The click-stream generator: ``rate`` impressions/s for ``duration`` seconds.

    Each impression is written to the impressions stream at once, and its label to the clicks
    stream (or, for the holdout tenth, the impression with its label to the holdout stream)
    ``label_delay`` seconds later. Clicks follow the market's known model; at the drift time
    (:class:`DriftSchedule`) the model drifts and the traffic mix shifts, and a ``CONCEPT_DRIFT``
    event (key ``ctr``, value the epoch time) is sent. Ends by itself (FINISHED) after
    ``duration`` (or later, see :class:`DriftSchedule`).
    """

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> int:
        """Generate until ``duration`` passes (or the job stops); return the impressions sent."""
        duration = float(setting(ctx, "duration", 30.0))
        rate = float(setting(ctx, "rate", 400.0))
        delay = float(setting(ctx, "label_delay", 0.25))
        start = time.time()
        schedule = DriftSchedule(ctx, start, duration)
        rng = random.Random(
            int(setting(ctx, "seed", 1)) * 1000 + ctx.execution_id * 10 + ctx.attempt
        )
        writers = {
            name: LocalStreamWriter(stream_dir(ctx, kind), roll_interval=10.0)
            for name, kind in (
                (IMPRESSIONS, "impressions"),
                (CLICKS, "clicks"),
                (HOLDOUT, "holdout"),
            )
        }
        for name, writer in writers.items():
            register_dataset(ctx.client, name, writer, description="ad_ctr simulated stream")
        pending: collections.deque[tuple[float, dict[str, Any], int, int]] = collections.deque()
        sent = clicks = 0
        drifted = False
        try:
            while schedule.running(time.time()) and not getattr(ctx, "stopping", False):
                now = time.time()
                drift_time = schedule.drift_time(ctx, now)
                if not drifted and drift_time is not None and now >= drift_time:
                    drifted = True
                    schedule.drifted_at = now
                    ctx.send_event(MODEL, f"{now:.3f}", event_type="CONCEPT_DRIFT")
                    ctx.logger.info("concept drift: segment/category affinities changed")
                due = int((now - start) * rate) - sent
                rows = []
                for i in range(due):
                    row = MARKET.impression(
                        rng, f"{ctx.execution_id}-{ctx.attempt}-{sent + i}", drifted=drifted
                    )
                    row["time"] = now
                    row["holdout"] = is_holdout(row["request_id"])
                    rows.append(row)
                if rows:
                    written = writers[IMPRESSIONS].write(rows)
                    first = written.start_offset if written and written.start_offset else 0
                    for k, row in enumerate(rows):
                        label = MARKET.clicked(rng, row, drifted=drifted)
                        pending.append((now + delay, row, first + k, label))
                        clicks += label
                    sent += len(rows)
                self._flush(writers, pending, time.time())
                time.sleep(0.05)
        finally:
            self._flush(writers, pending, float("inf"))
            record_lineage(
                ctx.client, getattr(ctx, "job_execution_id", 0), outputs=list(writers.values())
            )
            for writer in writers.values():
                writer.close()
        ctx.log_metric("impressions", float(sent))
        ctx.log_metric("true_ctr", clicks / max(sent, 1))
        ctx.logger.info("wrote %d impressions (%d clicks)", sent, clicks)
        return sent

    @staticmethod
    def _flush(
        writers: dict[str, LocalStreamWriter],
        pending: collections.deque[tuple[float, dict[str, Any], int, int]],
        until: float,
    ) -> None:
        labels: list[dict[str, Any]] = []
        holdout: list[dict[str, Any]] = []
        while pending and pending[0][0] <= until:
            _, row, offset, label = pending.popleft()
            if row["holdout"]:
                holdout.append({**row, "clicked": label})
            else:
                labels.append(
                    {
                        "request_id": row["request_id"],
                        "clicked": label,
                        "label": label,  # the name the Model Monitor joins on
                        "impression_offset": offset,
                    }
                )
        if labels:
            writers[CLICKS].write(labels)
        if holdout:
            writers[HOLDOUT].write(holdout)


class DriftSchedule:
    """When the generator's market drifts, and how long the generator runs.

    - ``drift_at`` (epoch seconds), else ``drift_fraction`` (0.5) of ``duration`` after the
      start: a drift at a fixed time (``tideflow run``).
    - ``drift_after_serving`` (seconds): instead, that long after the first prediction of the
      ``predict`` job reached the predictions stream -- so the drift always hits a model that
      is being served and monitored, however slowly a busy machine gets there (the
      quickstart).
    - ``after_drift`` (seconds): keep generating at least that long after the drift, past
      ``duration`` if needed, so the monitors see the new market and the retrained model
      serves it; never past ``max_duration`` (3 x ``duration``) after the start.
    """

    def __init__(self, ctx: tide.JobContext, start: float, duration: float) -> None:
        self.end = start + duration
        self.latest_end = start + float(setting(ctx, "max_duration", 3 * duration))
        self.after_drift = float(setting(ctx, "after_drift", 0.0) or 0.0)
        after_serving = setting(ctx, "drift_after_serving", None)
        self.after_serving = float(after_serving) if after_serving is not None else None
        self.predictions = stream_dir(ctx, "predictions")
        drift_at = setting(ctx, "drift_at", None)
        self.time: float | None = None
        if self.after_serving is None:
            self.time = (
                float(drift_at)
                if drift_at is not None
                else start + duration * float(setting(ctx, "drift_fraction", 0.5))
            )
        self.drifted_at: float | None = None
        self._looked = 0.0

    def drift_time(self, ctx: tide.JobContext, now: float) -> float | None:
        """The drift time, ``None`` while it waits for a first prediction (looked for each 1 s)."""
        if self.time is None and self.after_serving is not None and now - self._looked >= 1.0:
            self._looked = now
            if self.predictions.is_dir() and any(
                p.name.startswith(("part-", ".part-")) for p in self.predictions.iterdir()
            ):
                self.time = now + self.after_serving
        return self.time

    def running(self, now: float) -> bool:
        """Whether the generator goes on at ``now``."""
        if now >= self.latest_end:
            return False
        if now < self.end:
            return True
        if self.after_drift <= 0:
            return False
        return self.drifted_at is None or now < self.drifted_at + self.after_drift


class OnlineTrainer(tide.Processor):
    """Joins click labels to their impressions and learns online; logs a version regularly.

    A version is logged every ``version_every_samples`` samples or ``version_every_seconds``
    seconds (with at least ``min_samples`` new ones), and once more when the clicks stream has
    been idle for ``idle_timeout`` seconds (the generator ended): then the job FINISHES. Each
    version's lineage names the offset ranges of the clicks and impressions it was trained on
    *since the previous version* (also in its params ``clicks_start`` / ``clicks_end``), and the
    stream positions are committed right after the version is registered. A restarted trainer
    therefore warm-starts from the newest version and resumes after its ``clicks_end``: no
    sample is trained into two versions.

    Adapting after a monitor's finding: a restart alone would carry on exactly as before, so a
    trainer that starts and finds a ``DRIFT_DETECTED`` or ``MODEL_DEGRADED`` event of its
    execution newer than the last one a version handled (``monitor_offset`` in the versions'
    params) learns ``adapt_factor`` times faster for the next ``adapt_samples`` samples, then
    returns to ``learning_rate``: the model catches up with the changed market in a few
    thousand samples instead of tens of thousands, keeping what still holds (user, ad and
    context effects). Each version's params say ``learning_rate`` and ``monitor_offset``.
    """

    clicks_range: tuple[int | None, int] = (None, 0)

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> int:
        """Train until the clicks stream idles; return how many samples the model has seen."""
        self.ctx = ctx
        self.every_n = int(setting(ctx, "version_every_samples", 4000))
        self.every_t = float(setting(ctx, "version_every_seconds", 5.0))
        self.min_samples = int(setting(ctx, "min_samples", 200))
        idle = float(setting(ctx, "idle_timeout", 5.0))
        lr = float(setting(ctx, "learning_rate", 0.05))
        directories = inputs[0] if inputs else StreamDirectories().process(ctx, ())
        self.impressions = LocalStreamReader(
            directories["impressions"],
            consumer=consumer_name(IMPRESSIONS, ctx.job, workflow=ctx.workflow),
        )
        clicks = LocalStreamReader(
            directories["clicks"], consumer=consumer_name(CLICKS, ctx.job, workflow=ctx.workflow)
        )
        self.datasets = {
            IMPRESSIONS: register_dataset(ctx.client, IMPRESSIONS, self.impressions),
            CLICKS: register_dataset(ctx.client, CLICKS, clicks),
        }
        self.model, trained_until = self._resume(ctx, lr)
        self._adapt(ctx, lr)
        self.clicks = clicks
        self.pending: dict[int, dict[str, Any]] = {}
        self._reset_window()
        skipped = 0
        for batch in clicks.batches(
            max_records=500, max_wait=0.2, idle_timeout=idle, auto_commit=False
        ):
            start = batch.start_offset or 0
            need = max(int(label["impression_offset"]) for label in batch.records)
            self._read_impressions(need)
            rows, labels = [], []
            for i, label in enumerate(batch.records):
                offset = start + i
                impression = self.pending.pop(int(label["impression_offset"]), None)
                if offset <= trained_until or impression is None:
                    skipped += 1
                    continue
                rows.append(impression)
                labels.append(int(label["clicked"]))
                self.clicks_range = (self.clicks_range[0] or offset, offset)
                self.impressions_end = int(label["impression_offset"])
            if rows:
                self.window_predictions.extend(self.model.scores(rows))
                self.window_labels.extend(labels)
                self.model.learn(rows, labels)
                self._count_adapted(len(rows), lr)
            new = len(self.window_labels)
            elapsed = time.monotonic() - self.window_started
            if new >= self.every_n or (new >= self.min_samples and elapsed >= self.every_t):
                self._publish()
        if self.window_labels:
            self._publish()
        else:
            clicks.commit()
            self.impressions.commit()
        ctx.logger.info("trained %d samples in all; skipped %d", self.model.samples, skipped)
        return int(self.model.samples)

    def _resume(self, ctx: tide.JobContext, lr: float) -> tuple[CtrModel, int]:
        """The newest version's model and the last clicks offset it trained on, or a new model."""
        for version in reversed(all_versions(ctx.client, MODEL)):
            if "clicks_end" in version.params:
                model = ctx.load_model(MODEL, version=version.version)
                ctx.logger.info(
                    "warm start from %s version %s (trained up to clicks offset %s)",
                    MODEL,
                    version.version,
                    version.params["clicks_end"],
                )
                return model, int(version.params["clicks_end"])
        return CtrModel(learning_rate=lr), 0

    def _adapt(self, ctx: tide.JobContext, lr: float) -> None:
        """Learn faster for a while if a monitor found drift since the last version adapted."""
        handled = max(
            (int(v.params.get("monitor_offset") or 0) for v in all_versions(ctx.client, MODEL)),
            default=0,
        )
        self.monitor_offset = handled
        self.adapt_left = 0
        self.model.set_learning_rate(lr)
        finding = latest_monitor_event(ctx, after_offset=handled)
        if finding is None:
            return
        self.monitor_offset = finding.offset
        self.adapt_left = int(setting(ctx, "adapt_samples", 6000))
        boosted = lr * float(setting(ctx, "adapt_factor", 4.0))
        self.model.set_learning_rate(boosted)
        ctx.logger.info(
            "adapting after %s (offset %s): learning rate %g for %d samples",
            finding.event_type,
            finding.offset,
            boosted,
            self.adapt_left,
        )

    def _count_adapted(self, samples: int, lr: float) -> None:
        if self.adapt_left > 0:
            self.adapt_left -= samples
            if self.adapt_left <= 0:
                self.model.set_learning_rate(lr)
                self.ctx.logger.info("adapted: learning rate back to %g", lr)

    def _reset_window(self) -> None:
        self.window_labels: list[int] = []
        self.window_predictions: list[float] = []
        self.window_started = time.monotonic()
        self.clicks_range = (None, 0)
        self.impressions_start = self.impressions.position.offset + 1
        self.impressions_end = 0

    def _read_impressions(self, need: int) -> None:
        """Read impressions up to offset ``need`` exactly (never beyond: positions stay joint)."""
        while self.impressions.position.offset < need:
            got = False
            for batch in self.impressions.batches(
                max_records=need - self.impressions.position.offset,
                max_wait=0.5,
                idle_timeout=2.0,
                auto_commit=False,
            ):
                got = True
                start = batch.start_offset or 0
                for i, row in enumerate(batch.records):
                    if not row.get("holdout"):
                        self.pending[start + i] = row
                break
            if not got:
                return
        if len(self.pending) > 100_000:  # labels lost to a crashed generator
            for offset in sorted(self.pending)[:-50_000]:
                del self.pending[offset]

    def _publish(self) -> None:
        ctx = self.ctx
        labels, predictions = self.window_labels, self.window_predictions
        metrics = {
            "prequential_auc": auc(labels, predictions),
            "prequential_logloss": log_loss(labels, predictions),
            "samples": float(len(labels)),
        }
        first, last = self.clicks_range
        inputs = [
            LineageRef.dataset(
                CLICKS, self.datasets[CLICKS].version, start_offset=first, end_offset=last
            ),
            LineageRef.dataset(
                IMPRESSIONS,
                self.datasets[IMPRESSIONS].version,
                start_offset=self.impressions_start,
                end_offset=self.impressions_end,
            ),
        ]
        version = ctx.log_model(
            self.model,
            model=MODEL,
            metrics=metrics,
            params={
                "clicks_start": first,
                "clicks_end": last,
                "impressions_end": self.impressions_end,
                "total_samples": self.model.samples,
                "learning_rate": self.model.learning_rate,
                "monitor_offset": self.monitor_offset,
            },
            inputs=inputs,
            input_example=signature_example(),
        )
        self.clicks.commit()
        self.impressions.commit()
        for name, value in metrics.items():
            ctx.log_metric(name, value, model=MODEL, version=version.version)
        ctx.logger.info(
            "logged %s version %s: %d samples (clicks %s..%s), prequential AUC %.3f",
            MODEL,
            version.version,
            len(labels),
            first,
            last,
            metrics["prequential_auc"],
        )
        self._reset_window()


class Validator(tide.Processor):
    """Judges GENERATED versions on the newest holdout rows against the DEPLOYED version.

    VALIDATED when the candidate's AUC reaches ``min_auc`` and its log loss is at most
    ``tolerance`` worse than the deployed version's on the same rows; REJECTED otherwise. The
    verdict and its reason go to the log, to metrics and to a ``VALIDATION_RESULT`` event.

    Which version: the one it was started for -- ``ctx.trigger``, the ``MODEL_GENERATED`` event
    whose value names it. The workflow's rule queues a firing that finds this job busy
    (``on_busy="queue"``, the default), so every version gets an attempt of its own, in order,
    and nothing needs looking for. Started by hand (no trigger), it judges the newest GENERATED
    version. A version no longer GENERATED (another verdict got there first) is left alone.
    """

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """Judge the version this attempt is for; return the verdicts (version, status, ...)."""
        waiting = self._generated(ctx)
        version = model_version_of(ctx.trigger, MODEL)
        if version is None:
            if not waiting:
                ctx.logger.info("no GENERATED version to judge")
                return []
            version = waiting[-1]
        if version not in waiting:
            ctx.logger.info("version %s is no longer GENERATED: left alone", version)
            return []
        return [self._judge(ctx, version, self._holdout(ctx))]

    @staticmethod
    def _generated(ctx: tide.JobContext) -> list[int]:
        return [
            v.version
            for v in all_versions(ctx.client, MODEL)
            if v.status == tide.ModelStatus.GENERATED
        ]

    def _holdout(self, ctx: tide.JobContext) -> list[dict[str, Any]]:
        size = int(setting(ctx, "holdout_size", 600))
        least = int(setting(ctx, "holdout_min", 100))
        deadline = time.monotonic() + 10.0
        while True:
            reader = LocalStreamReader(stream_dir(ctx, "holdout"))
            rows: collections.deque[dict[str, Any]] = collections.deque(maxlen=size)
            for batch in reader.batches(max_records=5000, max_wait=0, idle_timeout=0):
                rows.extend(batch.records)
            if len(rows) >= least or time.monotonic() > deadline:
                return list(rows)
            time.sleep(0.5)

    def _judge(
        self, ctx: tide.JobContext, version: int, rows: list[dict[str, Any]]
    ) -> dict[str, Any]:
        labels = [int(row["clicked"]) for row in rows]
        min_auc = float(setting(ctx, "min_auc", 0.6))
        tolerance = float(setting(ctx, "tolerance", 0.01))
        if len(rows) < 2:
            return self._set(ctx, version, tide.ModelStatus.REJECTED, "no holdout rows yet", {})
        candidate = ctx.load_model(MODEL, version=version)
        scores = candidate.scores(rows)
        metrics = {"holdout_auc": auc(labels, scores), "holdout_logloss": log_loss(labels, scores)}
        try:
            deployed_version = ctx.client.models.get_version(
                MODEL, status=tide.ModelStatus.DEPLOYED
            )
            deployed = ctx.load_model(MODEL, version=deployed_version.version).scores(rows)
            metrics["deployed_auc"] = auc(labels, deployed)
            metrics["deployed_logloss"] = log_loss(labels, deployed)
        except tide.NotFoundError:
            deployed_version = None
        for name, value in metrics.items():
            ctx.log_metric(name, value, model=MODEL, version=version)
        if metrics["holdout_auc"] < min_auc:
            status = tide.ModelStatus.REJECTED
            reason = f"holdout AUC {metrics['holdout_auc']:.3f} < min_auc {min_auc}"
        elif (
            deployed_version is not None
            and metrics["holdout_logloss"] > metrics["deployed_logloss"] + tolerance
        ):
            status = tide.ModelStatus.REJECTED
            reason = (
                f"holdout log loss {metrics['holdout_logloss']:.4f} worse than deployed version "
                f"{deployed_version.version}'s {metrics['deployed_logloss']:.4f} + {tolerance}"
            )
        else:
            status = tide.ModelStatus.VALIDATED
            against = (
                f"deployed version {deployed_version.version} AUC {metrics['deployed_auc']:.3f}"
                if deployed_version is not None
                else "nothing deployed yet"
            )
            reason = f"holdout AUC {metrics['holdout_auc']:.3f} on {len(rows)} rows ({against})"
        return self._set(ctx, version, status, reason, metrics)

    @staticmethod
    def _set(
        ctx: tide.JobContext,
        version: int,
        status: tide.ModelStatus,
        reason: str,
        metrics: dict[str, float],
    ) -> dict[str, Any]:
        verdict = {"version": version, "status": str(status), "reason": reason, **metrics}
        try:
            ctx.client.models.set_status(MODEL, version, status)
        except tide.IllegalTransitionError as e:
            ctx.logger.warning("version %s changed meanwhile, left alone: %s", version, e)
            verdict["status"] = "SKIPPED"
            return verdict
        ctx.send_event(MODEL, json.dumps(verdict, sort_keys=True), event_type=VALIDATION_RESULT)
        ctx.logger.info("version %s %s: %s", version, status, reason)
        return verdict


class Pusher(tide.Processor):
    """Deploys the newest VALIDATED version if it is newer than the deployed one.

    ``c.models.deploy`` deprecates the deployed version in the same transaction; the predictor
    swaps on the ``MODEL_DEPLOYED`` event. Older VALIDATED versions stay VALIDATED (superseded).
    """

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> int | None:
        """Deploy; return the version deployed, or ``None``."""
        models = ctx.client.models
        try:
            candidate = models.get_version(MODEL, status=tide.ModelStatus.VALIDATED)
        except tide.NotFoundError:
            return None
        try:
            deployed: int | None = models.get_version(
                MODEL, status=tide.ModelStatus.DEPLOYED
            ).version
        except tide.NotFoundError:
            deployed = None
        if deployed is not None and deployed > candidate.version:
            ctx.logger.info("version %s is older than deployed %s", candidate.version, deployed)
            return None
        try:
            models.deploy(MODEL, candidate.version)
        except tide.IllegalTransitionError as e:
            ctx.logger.warning("version %s changed meanwhile: %s", candidate.version, e)
            return None
        ctx.log_metric(
            "deployed_version", float(candidate.version), model=MODEL, version=candidate.version
        )
        ctx.logger.info("deployed %s version %s", MODEL, candidate.version)
        return int(candidate.version)


MONITOR_EVENTS = ("DRIFT_DETECTED", "MODEL_DEGRADED")


def latest_monitor_event(ctx: tide.JobContext, *, after_offset: int) -> Any | None:
    """The newest ``DRIFT_DETECTED`` / ``MODEL_DEGRADED`` event of ``ctr`` in this execution."""
    found = None
    cursor = None
    while True:
        page = ctx.client.events.list(
            key=MODEL,
            event_types=list(MONITOR_EVENTS),
            after_offset=after_offset,
            limit=1000,
            cursor=cursor,
        )
        for event in page.items:
            if str(event.context.get("execution_id")) == str(ctx.execution_id):
                found = event
        if (cursor := page.next_cursor) is None:
            return found
