"""The Example Monitor: does serving data still look like the deployed version's training data?

    with tide.job("drift", streaming=True):
        tide.evaluate(None, model="ctr", processor=ExampleMonitor(predictions_dataset="preds"))
    wf.on_event("train", event_type="DRIFT_DETECTED", action=tide.JobAction.RESTART)

It reads the predictions stream (one record per prediction, ``{request_id, model, version,
features, score, time}``), keeps the records of its model, and scores sliding windows of them
(``window`` samples every ``step``) -- of the features the served records carry and the
training samples have too, unless ``features`` names them -- against the **baseline**: the training samples of the
version that served them, found through lineage (:mod:`tideflow.monitor.baseline`), or the
records passed as ``baseline=``. When the served version changes (a record names another
``version``; records without one are scored against the DEPLOYED version, looked up per
batch) the baseline is read again and the window starts empty.

Per window: metrics ``drift.<feature>.<stat>`` (``step`` = window index, ``model``,
``version``); when some feature drifted, a ``DRIFT_DETECTED`` event (key = model, sender
``example_monitor``, value JSON ``{model, version, window, samples, features: {f: {stat, score,
threshold}}}``). It is sent once per episode: the monitor re-arms after ``rearm`` windows
without drift (or on a new baseline), so a lasting shift is not reported every window.

Bounded runs: ``max_samples`` (records scored) or ``idle_timeout`` (seconds without a record)
end the job FINISHED; a STOP ends it between batches, closing the reader.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tideflow.errors import NotFoundError
from tideflow.io.local_stream import LocalStreamReader
from tideflow.monitor.baseline import load_baseline
from tideflow.monitor.drift import DriftScorer, WindowDrift, features_of
from tideflow.monitor.findings import newer_finding
from tideflow.monitor.source import job_ended, model_of, open_stream, setting, with_inputs
from tideflow.monitor.window import SlidingWindow
from tideflow.sdk.context import JobContext
from tideflow.sdk.processor import Processor

DRIFT_DETECTED = "DRIFT_DETECTED"
ENDED_CHECK = 1.0
"""With ``ends_with``, the longest read between two looks at the producer's status (seconds)."""
SENDER = "example_monitor"
NOT_FEATURES = frozenset({"request_id", "model", "version", "offset", "score", "time", "label"})
"""Fields of a prediction record that are not features (when it has no ``features`` mapping)."""


def serving_features(record: Mapping[str, Any]) -> list[str]:
    """The feature names of a prediction record: its ``features`` keys, or its own fields."""
    inner = record.get("features")
    if isinstance(inner, Mapping):
        return sorted(str(k) for k in inner if k != "request_id")
    return sorted(str(k) for k in record if k not in NOT_FEATURES)


class ExampleMonitor(Processor):
    """Feature drift of the predictions stream against the training data (module docstring).

    Every argument is a default that ``ctx.config`` / ``ctx.params`` override by name.

    Args:
        model: The model (else the node's ``model=``).
        predictions: The predictions stream directory (or ``predictions_dataset``).
        predictions_dataset: A registered dataset naming that directory.
        window: Samples per window (default 500).
        step: Samples between windows (default ``window``).
        features: Features to watch (default: those of the first served record that the
            baseline also has).
        kinds: ``{feature: "numeric" | "categorical"}`` (default: inferred).
        psi: PSI threshold (default 0.2).
        alpha: Family-wise significance per window (default 0.01, Bonferroni over features).
        thresholds: Per-feature ``{"psi": x, "alpha": y}``.
        baseline: Training records to compare with instead of the lineage's.
        baseline_size: Newest training samples kept (default 5000).
        baseline_datasets: Upstream datasets to read (default: all).
        rearm: Drift-free windows before another event may be sent (default 1).
        ignore_older_versions: Send no event about a version generated before the model's
            newest finding in this execution (:mod:`tideflow.monitor.findings`; default off).
        max_samples: End after scoring this many records.
        idle_timeout: End after this many seconds without a record.
        ends_with: A job of the execution (the predictor) whose end, once its stream is
            drained, ends the monitor without waiting out ``idle_timeout``.
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        predictions: str | None = None,
        predictions_dataset: str | None = None,
        window: int | None = None,
        step: int | None = None,
        features: Sequence[str] | None = None,
        kinds: Mapping[str, str] | None = None,
        psi: float | None = None,
        alpha: float | None = None,
        thresholds: Mapping[str, Mapping[str, float]] | None = None,
        baseline: Iterable[Mapping[str, Any]] | None = None,
        baseline_size: int | None = None,
        baseline_datasets: Sequence[str] | None = None,
        rearm: int | None = None,
        ignore_older_versions: bool | None = None,
        max_samples: int | None = None,
        idle_timeout: float | None = None,
        ends_with: str | None = None,
    ) -> None:
        self.given: dict[str, Any] = {
            "model": model,
            "predictions": predictions,
            "predictions_dataset": predictions_dataset,
            "window": window,
            "step": step,
            "features": list(features) if features is not None else None,
            "kinds": dict(kinds) if kinds is not None else None,
            "psi": psi,
            "alpha": alpha,
            "thresholds": thresholds,
            "baseline_size": baseline_size,
            "baseline_datasets": baseline_datasets,
            "rearm": rearm,
            "ignore_older_versions": ignore_older_versions,
            "max_samples": max_samples,
            "idle_timeout": idle_timeout,
            "ends_with": ends_with,
        }
        self.baseline = list(baseline) if baseline is not None else None
        self._reader: LocalStreamReader | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_reader": None}

    def _get(self, ctx: JobContext, name: str, default: Any = None) -> Any:
        return setting(ctx, self.given, name, default)

    def process(self, ctx: JobContext, inputs: Sequence[Any]) -> dict[str, int]:
        """Score windows until stopped, idle or ``max_samples``; return counts."""
        self.ctx = ctx
        given = with_inputs(self.given, inputs, ("predictions",))
        self.model = model_of(ctx, self.given, "ExampleMonitor")
        size = int(self._get(ctx, "window", 500))
        step = int(self._get(ctx, "step", size))
        self.window = SlidingWindow[Mapping[str, Any]](size, step)
        self.overlap = -(-size // step)
        self.rearm = int(self._get(ctx, "rearm", 1))
        max_samples = self._get(ctx, "max_samples")
        idle = self._get(ctx, "idle_timeout")
        self._reader = reader = open_stream(ctx, given, "predictions")
        self.version: int | None = None
        self.scorer: DriftScorer | None = None
        self.armed = True
        self.quiet = 0
        counts = {"samples": 0, "skipped": 0, "windows": 0, "events": 0, "quiet": 0}
        self.counts = counts
        ended = job_ended(ctx, self.given)
        idle_seconds = float(idle) if idle is not None else None
        if ended is None:
            self._read(reader, idle_seconds, max_samples)  # until idle, as streams do
        else:
            # Short reads while the producer runs, so its end is seen within a second or so.
            look = ENDED_CHECK if idle_seconds is None else min(idle_seconds, ENDED_CHECK)
            idle_since = time.monotonic()
            while True:
                done = ended()  # before reading: what the read finds is then all there is
                handled, finished = self._read(reader, 0 if done else look, max_samples)
                if finished or (done and not handled):
                    break
                if handled:
                    idle_since = time.monotonic()
                elif idle_seconds is not None and time.monotonic() - idle_since >= idle_seconds:
                    break
        reader.commit()
        ctx.logger.info("example monitor of %s ended: %s", self.model, counts)
        return counts

    def _read(
        self, reader: LocalStreamReader, idle: float | None, max_samples: Any
    ) -> tuple[bool, bool]:
        """Score batches until the stream idles ``idle`` seconds.

        Returns whether any batch came, and whether the run is over (``max_samples`` scored,
        or the job is stopping).
        """
        ctx, counts, handled = self.ctx, self.counts, False
        for batch in reader.batches(max_records=1000, max_wait=0.2, idle_timeout=idle):
            handled = True
            deployed: int | None = None
            for record in batch.records:
                if record.get("model") not in (None, self.model):
                    continue
                version = record.get("version")
                if version is None:
                    deployed = deployed if deployed is not None else self._deployed()
                    version = deployed
                if version != self.version:
                    self._first = record  # what _switch reads the served features from
                    self._switch(None if version is None else int(version))
                if self.scorer is None:
                    counts["skipped"] += 1
                    continue
                counts["samples"] += 1
                samples = self.window.add(record)
                if samples is not None:
                    self._report(self.scorer.score(self.window.index, samples))
                if max_samples is not None and counts["samples"] >= int(max_samples):
                    return handled, True
            if getattr(ctx, "stopping", False):
                return handled, True
        return handled, False

    def close(self, ctx: JobContext) -> None:
        """Store the stream position reached."""
        if self._reader is not None:
            self._reader.commit()
            self._reader.close()
            self._reader = None

    def _deployed(self) -> int | None:
        try:
            return int(self.ctx.client.models.get_version(self.model, status="DEPLOYED").version)
        except NotFoundError:
            return None

    def _switch(self, version: int | None) -> None:
        """Serve ``version`` from now on: read its baseline, start an empty window.

        The served features are those of :attr:`_first`, the record that named ``version``.
        """
        record = getattr(self, "_first", None) or {}
        ctx = self.ctx
        self.version = version
        self.window.reset()
        self.armed, self.quiet = True, 0
        self.scorer = None
        configured = self._get(ctx, "features")
        wanted = list(configured) if configured else serving_features(record)
        if self.baseline is not None:
            rows = self.baseline
        elif version is None:
            ctx.logger.warning("no version of %s is deployed: nothing to compare with", self.model)
            return
        else:
            rows = load_baseline(
                ctx.client,
                self.model,
                version,
                features=wanted,
                datasets=self._get(ctx, "baseline_datasets"),
                limit=int(self._get(ctx, "baseline_size", 5000)),
            )
        if not configured:  # watch what both sides have (training rows carry ids, times, ...)
            present = {name for row in rows for name in features_of(row)}
            wanted = [name for name in wanted if name in present]
        if not rows or not wanted:
            ctx.logger.warning(
                "%s version %s has no training samples with the served features in its "
                "lineage: not monitored",
                self.model,
                version,
            )
            return
        self.scorer = DriftScorer(
            rows,
            features=wanted,
            kinds=self._get(ctx, "kinds"),
            psi=float(self._get(ctx, "psi", 0.2)),
            alpha=float(self._get(ctx, "alpha", 0.01)),
            thresholds=self._get(ctx, "thresholds"),
            overlap=self.overlap,
        )
        ctx.logger.info(
            "monitoring %s version %s: %d baseline samples, features %s",
            self.model,
            version,
            len(rows),
            self.scorer.kinds,
        )

    def _report(self, drift: WindowDrift) -> None:
        ctx = self.ctx
        self.counts["windows"] += 1
        for feature, results in drift.results.items():
            for result in results:
                ctx.log_metric(
                    f"drift.{feature}.{result.stat}",
                    result.score,
                    step=drift.window,
                    model=self.model,
                    version=self.version,
                )
        drifted = drift.drifted
        if not drifted:
            self.quiet += 1
            if self.quiet >= self.rearm:
                self.armed = True
            return
        self.quiet = 0
        if not self.armed:
            return
        self.armed = False
        if self._get(ctx, "ignore_older_versions", False):
            known = newer_finding(ctx, self.model, self.version, kinds=[DRIFT_DETECTED])
            if known is not None:
                self.counts["quiet"] += 1
                ctx.logger.info(
                    "drift in %s window %d: version %s is older than %s (offset %d), not sent",
                    self.model,
                    drift.window,
                    self.version,
                    known.event_type,
                    known.offset,
                )
                return
        self.counts["events"] += 1
        value = {
            "model": self.model,
            "version": self.version,
            "window": drift.window,
            "samples": drift.samples,
            "features": {
                name: {"stat": str(r.stat), "score": r.score, "threshold": r.threshold}
                for name, r in drifted.items()
            },
        }
        ctx.send_event(
            self.model, json.dumps(value, sort_keys=True), event_type=DRIFT_DETECTED, sender=SENDER
        )
        ctx.logger.info(
            "drift in %s window %d: %s", self.model, drift.window, ", ".join(sorted(drifted))
        )
