"""The Model Monitor: does the deployed model still predict well, now that labels come in?

    with tide.job("quality", streaming=True):
        tide.evaluate(None, model="ctr", processor=ModelMonitor(
            predictions_dataset="ctr_predictions", labels_dataset="ctr_clicks"))
    wf.on_event("rollback", event_type="MODEL_DEGRADED")

It reads the predictions stream and the (late) labels stream side by side, joins them by
request id in a bounded join window (:class:`~tideflow.monitor.join.LabelJoin`), and for every
joined sample:

- feeds a degradation detector (River ADWIN or Page-Hinkley on the per-sample log-loss or
  error, :class:`~tideflow.monitor.quality.DegradationDetector`); a detected rise sends one
  ``MODEL_DEGRADED`` event (key = model, sender ``model_monitor``, value JSON ``{model,
  version, detector, window, samples, metrics: {auc, log_loss, calibration}}`` -- the metrics
  of the newest ``window`` joined samples), then the detector is deaf for ``cooldown`` samples;
- adds it to a sliding window (``window`` samples every ``step``) whose AUC, log-loss and
  calibration are logged as ``quality.auc`` / ``quality.log_loss`` / ``quality.calibration``
  and the joined sample count so far as ``quality.samples`` (``step`` = window index).

A sample of another model version than the previous one (the predictor swapped, or a rollback)
starts an empty window and a fresh detector: each version is judged on its own predictions.

Labels are ``{request_id, label}`` records (``label_field`` names another field; ``clicked``
is taken when ``label`` is absent). Bounded runs: ``max_samples`` joined samples, or
``idle_timeout`` seconds with neither stream growing. Join counters (dropped predictions, late
and orphan labels) go to the log when the job ends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tideflow.io.local_stream import LocalStreamReader
from tideflow.monitor.findings import newer_finding
from tideflow.monitor.join import Joined, LabelJoin
from tideflow.monitor.quality import DegradationDetector, Quality, window_quality
from tideflow.monitor.source import (
    job_ended,
    model_of,
    open_stream,
    poll,
    setting,
    with_inputs,
)
from tideflow.monitor.window import SlidingWindow
from tideflow.sdk.context import JobContext
from tideflow.sdk.processor import Processor

MODEL_DEGRADED = "MODEL_DEGRADED"
SENDER = "model_monitor"


class ModelMonitor(Processor):
    """Windowed quality and degradation alarms on joined predictions (module docstring).

    Every argument is a default that ``ctx.config`` / ``ctx.params`` override by name.

    Args:
        model: The model (else the node's ``model=``).
        predictions: The predictions stream directory (or ``predictions_dataset``).
        predictions_dataset: A registered dataset naming that directory.
        labels: The labels stream directory (or ``labels_dataset``).
        labels_dataset: A registered dataset naming that directory.
        label_field: The label's field (default ``label``, else ``clicked``).
        window: Joined samples per metrics window (default 1000).
        step: Samples between windows (default ``window``).
        detector: ``adwin`` (default) or ``page_hinkley``.
        signal: ``log_loss`` (default) or ``error``, fed to the detector.
        detector_options: Keyword arguments of the River detector.
        cooldown: Samples after an alarm before the next can fire (default ``window``).
        max_pending: Unmatched predictions held by the join (default 100000).
        max_age: Seconds an unmatched prediction is held (default: no limit).
        ignore_older_versions: Send no alarm about a version generated before the model's
            newest finding in this execution (:mod:`tideflow.monitor.findings`; default off).
        max_samples: End after this many joined samples.
        idle_timeout: End after this many seconds with no new record on either stream.
        ends_with: A job of the execution (the predictor) whose end, once both streams are
            drained, ends the monitor without waiting out ``idle_timeout``.
        poll_interval: Seconds between looks when both streams are idle (default 0.1).
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        predictions: str | None = None,
        predictions_dataset: str | None = None,
        labels: str | None = None,
        labels_dataset: str | None = None,
        label_field: str | None = None,
        window: int | None = None,
        step: int | None = None,
        detector: str | None = None,
        signal: str | None = None,
        detector_options: Mapping[str, Any] | None = None,
        cooldown: int | None = None,
        max_pending: int | None = None,
        max_age: float | None = None,
        ignore_older_versions: bool | None = None,
        max_samples: int | None = None,
        idle_timeout: float | None = None,
        poll_interval: float | None = None,
        ends_with: str | None = None,
    ) -> None:
        self.given: dict[str, Any] = {
            "model": model,
            "predictions": predictions,
            "predictions_dataset": predictions_dataset,
            "labels": labels,
            "labels_dataset": labels_dataset,
            "label_field": label_field,
            "window": window,
            "step": step,
            "detector": detector,
            "signal": signal,
            "detector_options": dict(detector_options) if detector_options else None,
            "cooldown": cooldown,
            "max_pending": max_pending,
            "max_age": max_age,
            "ignore_older_versions": ignore_older_versions,
            "max_samples": max_samples,
            "idle_timeout": idle_timeout,
            "poll_interval": poll_interval,
            "ends_with": ends_with,
        }
        self._readers: list[LocalStreamReader] = []

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_readers": []}

    def _get(self, ctx: JobContext, name: str, default: Any = None) -> Any:
        return setting(ctx, self.given, name, default)

    def process(self, ctx: JobContext, inputs: Sequence[Any]) -> dict[str, int]:
        """Join and judge until stopped, idle or ``max_samples``; return counts."""
        self.ctx = ctx
        given = with_inputs(self.given, inputs, ("predictions", "labels"))
        self.model = model_of(ctx, self.given, "ModelMonitor")
        size = int(self._get(ctx, "window", 1000))
        self.window = SlidingWindow[tuple[int, float]](size, int(self._get(ctx, "step", size)))
        self.detector = DegradationDetector(
            self._get(ctx, "detector", "adwin"),
            signal=self._get(ctx, "signal", "log_loss"),
            cooldown=int(self._get(ctx, "cooldown", size)),
            options=self._get(ctx, "detector_options"),
        )
        max_age = self._get(ctx, "max_age")
        self.join = LabelJoin(
            max_pending=int(self._get(ctx, "max_pending", 100_000)),
            max_age=float(max_age) if max_age is not None else None,
        )
        self.label_field = self._get(ctx, "label_field")
        max_samples = self._get(ctx, "max_samples")
        idle = self._get(ctx, "idle_timeout")
        interval = float(self._get(ctx, "poll_interval", 0.1))
        predictions = open_stream(ctx, given, "predictions")
        labels = open_stream(ctx, given, "labels")
        self._readers = [predictions, labels]
        self.version: int | None = None
        self.counts = {"samples": 0, "windows": 0, "events": 0, "quiet": 0}
        ended = job_ended(ctx, self.given)
        idle_since = time.monotonic()
        while not getattr(ctx, "stopping", False):
            done = ended is not None and ended()  # before reading: then this read is the rest
            got = 0
            for record in poll(predictions):
                got += 1
                if record.get("model") in (None, self.model):
                    self._sample(self.join.add_prediction(record))
            for record in poll(labels):
                got += 1
                self._sample(self.join.add_label(record.get("request_id"), self._label(record)))
            self.join.expire()
            predictions.commit()
            labels.commit()
            if max_samples is not None and self.counts["samples"] >= int(max_samples):
                break
            if got:
                idle_since = time.monotonic()
            elif done or (idle is not None and time.monotonic() - idle_since >= float(idle)):
                break
            else:
                time.sleep(interval)
        ctx.logger.info(
            "model monitor of %s ended: %s; join %s", self.model, self.counts, self.join.counts
        )
        return dict(self.counts)

    def close(self, ctx: JobContext) -> None:
        """Store the stream positions reached."""
        for reader in self._readers:
            reader.commit()
            reader.close()
        self._readers = []

    def _label(self, record: Mapping[str, Any]) -> Any:
        if self.label_field:
            return record.get(self.label_field)
        return record["label"] if "label" in record else record.get("clicked")

    def _sample(self, joined: Joined | None) -> None:
        if joined is None:
            return
        if joined.version != self.version:
            if self.version is not None:
                self.ctx.logger.info(
                    "%s version %s -> %s: new window and detector",
                    self.model,
                    self.version,
                    joined.version,
                )
            self.version = joined.version
            self.window.reset()
            self.detector.reset()
        self.counts["samples"] += 1
        degraded = self.detector.update(joined.label, joined.score)
        samples = self.window.add((joined.label, joined.score))
        if samples is not None:
            self._log(self._quality(samples))
        if degraded:
            self._alarm()

    @staticmethod
    def _quality(samples: Sequence[tuple[int, float]]) -> Quality:
        return window_quality([s[0] for s in samples], [s[1] for s in samples])

    def _log(self, quality: Quality) -> None:
        self.counts["windows"] += 1
        values = {**quality.as_dict(), "samples": float(self.counts["samples"])}
        for name, value in values.items():
            if value is not None:
                self.ctx.log_metric(
                    f"quality.{name}",
                    value,
                    step=self.window.index,
                    model=self.model,
                    version=self.version,
                )

    def _alarm(self) -> None:
        if self._get(self.ctx, "ignore_older_versions", False):
            known = newer_finding(self.ctx, self.model, self.version)
            if known is not None:
                self.counts["quiet"] += 1
                self.ctx.logger.info(
                    "%s version %s degraded, but it is older than %s (offset %d): not sent",
                    self.model,
                    self.version,
                    known.event_type,
                    known.offset,
                )
                return
        recent = self.window.contents()
        metrics = self._quality(recent).as_dict() if recent else {}
        value = {
            "model": self.model,
            "version": self.version,
            "detector": str(self.detector.kind),
            "window": self.window.index,
            "samples": self.counts["samples"],
            "metrics": metrics,
        }
        self.counts["events"] += 1
        self.ctx.send_event(
            self.model, json.dumps(value, sort_keys=True), event_type=MODEL_DEGRADED, sender=SENDER
        )
        self.ctx.logger.info(
            "%s version %s degraded (%s) after %d samples: %s",
            self.model,
            self.version,
            self.detector.kind,
            self.counts["samples"],
            metrics,
        )
