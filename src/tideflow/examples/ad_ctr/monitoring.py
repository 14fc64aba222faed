"""Serving and monitoring in ``ad_ctr``: the predict job, both monitors, the detection delay.

- :class:`ServeImpressions` (job ``predict``) is the online predictor
  (:class:`tideflow.serving.Predictor`, the one ``tideflow serve`` runs) fed by the impressions
  stream instead of HTTP: every impression (but the holdout) is scored by the DEPLOYED version,
  swapped on each deploy, and the predictor's sink writes the **predictions stream**
  ``<data dir>/streams/<workflow>/predictions`` (dataset ``ctr_predictions``):
  ``{request_id, model, version, offset, features, score, time}``. Impressions arriving while
  nothing is deployed are not served (counted as ``unserved``), as a real predictor would
  refuse them.
- :class:`StreamExampleMonitor` / :class:`StreamModelMonitor` (jobs ``monitor_examples`` /
  ``monitor_model``) are :class:`tideflow.monitor.ExampleMonitor` / ``ModelMonitor`` with two
  things this example needs added: the stream directories follow ``stream_dir`` (the
  project's data directory, ``ctx.data_dir``, or the ``stream_root`` param) rather than a
  fixed path, and their ``idle_timeout`` counts only once the stream has data -- the
  predictions stream appears with the first deploy, seconds after the jobs start, and a
  monitor that ended before would see nothing. The labels of the Model Monitor are the
  clicks stream (``label``), joined by ``request_id``: they arrive ``label_delay`` seconds
  after the impression.
- :func:`detection_delays`: for each monitor event type, how many predictions were served
  between the concept drift (the generator's ``CONCEPT_DRIFT`` event) and the first such
  event after it -- the number the tests bound and the quickstart prints.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tideflow as tide
from tideflow.examples.ad_ctr.jobs import IMPRESSIONS, MODEL, setting, stream_dir
from tideflow.examples.ad_ctr.market import FEATURE_FIELDS
from tideflow.io.lineage import record_lineage, register_dataset
from tideflow.io.local_stream import LocalStreamReader, LocalStreamWriter, consumer_name
from tideflow.monitor import ExampleMonitor, ModelMonitor
from tideflow.monitor.source import JobEnded

PREDICTIONS = "ctr_predictions"
WATCHED = ("segment", "category", "device", "site", "position", "hour")
"""The features the Example Monitor compares (all categorical; user and ad ids are too many)."""
STARTUP = 120.0
"""Longest a serving or monitor job waits for its input stream to appear, in seconds."""


def has_records(directory: Path) -> bool:
    """Whether a local stream directory holds any part file yet."""
    return directory.is_dir() and any(
        p.name.startswith(("part-", ".part-")) for p in directory.iterdir()
    )


def monitoring_on(ctx: tide.JobContext) -> bool:
    """The ``monitoring`` setting (default on): off, ``predict`` and both monitors end at once.

    For runs about something else (the trainer's resume, the validator) on a small machine.
    """
    value = setting(ctx, "monitoring", True)
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off")
    return bool(value)


def upstream_ended(ctx: tide.JobContext, job: str) -> bool:
    """Whether every attempt of ``job`` in this execution has ended (and there is one)."""
    attempts = [a for a in ctx.client.jobs.list(ctx.execution_id) if a.job == job]
    return bool(attempts) and all(
        str(a.status) in ("FINISHED", "FAILED", "STOPPED") for a in attempts
    )


def wait_for_stream(ctx: tide.JobContext, directory: Path, upstream: str) -> bool:
    """Wait until ``directory`` holds records.

    ``False`` when the job stops, when job ``upstream`` (which writes the stream, directly or
    not) ended without it appearing, or after ``startup_timeout`` seconds.
    """
    deadline = time.monotonic() + float(setting(ctx, "startup_timeout", STARTUP))
    checked = time.monotonic()
    while not has_records(directory):
        if getattr(ctx, "stopping", False) or time.monotonic() > deadline:
            return False
        if time.monotonic() - checked >= 2.0:
            checked = time.monotonic()
            if upstream_ended(ctx, upstream):
                return has_records(directory)
        time.sleep(0.2)
    return True


class StreamDirectory(tide.Processor):
    """A read_dataset node: the directory of one of this workflow's streams.

    Args:
        stream: ``impressions``, ``clicks``, ``holdout`` or ``predictions``.
    """

    def __init__(self, stream: str) -> None:
        self.stream = stream

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Path:
        """The directory (it may not exist yet)."""
        return stream_dir(ctx, self.stream)


class ServeImpressions(tide.Processor):
    """The ``predict`` job: the online predictor over the impressions stream (module docstring).

    Ends FINISHED once the ``generate`` job has ended and its impressions are served, or when
    the impressions stream has been idle for ``serve_idle_timeout`` seconds.
    """

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> dict[str, int]:
        """Serve until the impressions stream idles; return ``{served, unserved}``."""
        from tideflow.serving.predictor import Predictor

        idle = float(setting(ctx, "serve_idle_timeout", 10.0))
        counts = {"served": 0, "unserved": 0}
        if not monitoring_on(ctx):
            ctx.logger.info("monitoring is off: nothing served")
            return counts
        source = stream_dir(ctx, "impressions")
        if not wait_for_stream(ctx, source, "generate"):
            return counts
        reader = LocalStreamReader(
            source,
            consumer=consumer_name(IMPRESSIONS, ctx.job, workflow=ctx.workflow),
            dataset=IMPRESSIONS,
        )
        writer = LocalStreamWriter(stream_dir(ctx, "predictions"), roll_interval=10.0)
        register_dataset(ctx.client, PREDICTIONS, writer, description="ad_ctr served predictions")
        predictor = Predictor(ctx.client, MODEL, sink=writer).start()
        ctx.logger.info("serving impressions from %s (idle timeout %s s)", source, idle)
        logged = time.monotonic()

        def serve(records: Sequence[Mapping[str, Any]]) -> None:
            nonlocal logged
            rows = [r for r in records if not r.get("holdout")]
            if not rows:
                return
            if not predictor.ready:
                # Leave the holder's thread the interpreter while it loads a first version.
                predictor.holder.wait_for(lambda served: served is not None, timeout=0.05)
                counts["unserved"] += len(rows)
                if time.monotonic() - logged >= 10.0:
                    logged = time.monotonic()
                    ctx.logger.info("nothing deployed yet: %s", counts)
                return
            features = [
                {**{name: row[name] for name in FEATURE_FIELDS}, "shown_at": row["time"]}
                for row in rows
            ]
            predictor.predict(features, [row["request_id"] for row in rows], timeout=60)
            counts["served"] += len(rows)
            if time.monotonic() - logged >= 10.0:
                logged = time.monotonic()
                ctx.logger.info("so far: %s", counts)

        # Ends with the generator: once it has ended and its stream is drained, not after
        # another idle timeout (which stays the limit when the generator is only slow).
        generated = JobEnded(ctx, "generate")
        idle_since = time.monotonic()
        try:
            while True:
                done = generated()  # before reading: then this read is all there is
                handled = False
                for batch in reader.batches(
                    max_records=500, max_wait=0.1, idle_timeout=0 if done else min(idle, 1.0)
                ):
                    handled = True
                    serve(batch.records)
                    if getattr(ctx, "stopping", False):
                        break
                if getattr(ctx, "stopping", False) or (done and not handled):
                    break
                if handled:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since >= idle:
                    break
        finally:
            predictor.stop()  # answers what is queued, then closes the sink (the writer)
            reader.commit()
            record_lineage(
                ctx.client, getattr(ctx, "job_execution_id", 0), inputs=[reader], outputs=[writer]
            )
        ctx.logger.info("predict ended: %s", counts)
        return counts


def _monitor_process(
    monitor: Any, ctx: tide.JobContext, inputs: Sequence[Any], streams: Sequence[str]
) -> Any:
    """Point ``monitor`` at this workflow's streams, wait for them, then run it."""
    if not monitoring_on(ctx):
        ctx.logger.info("monitoring is off: nothing monitored")
        return {}
    directories = {
        "predictions": stream_dir(ctx, "predictions"),
        "labels": stream_dir(ctx, "clicks"),
    }
    for stream in streams:
        if not setting(ctx, stream, None) and not setting(ctx, f"{stream}_dataset", None):
            monitor.given[stream] = str(directories[stream])
    for stream in streams:
        directory = Path(monitor.given.get(stream) or directories[stream])
        if not wait_for_stream(
            ctx, directory, "predict" if stream == "predictions" else "generate"
        ):
            ctx.logger.info("no %s stream appeared: nothing to monitor", stream)
            return {}
    idle = float(setting(ctx, "monitor_idle_timeout", 20.0))
    return monitor.run_monitor(_OwnIdleTimeout(ctx, idle), inputs)


class _OwnIdleTimeout:
    """The job's context, but ``params["idle_timeout"]`` is the monitor's own.

    The execution's ``idle_timeout`` (3 s in the quickstart) is the trainer's; a monitor
    behind a busy predictor sees longer gaps, and a monitor that ended early misses the drift.
    """

    def __init__(self, ctx: tide.JobContext, idle_timeout: float) -> None:
        self._ctx = ctx
        self._params = {**ctx.params, "idle_timeout": idle_timeout}

    @property
    def params(self) -> dict[str, Any]:
        """The execution's params with the monitor's idle timeout."""
        return self._params

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


class StreamExampleMonitor(ExampleMonitor):
    """:class:`tideflow.monitor.ExampleMonitor` on this workflow's predictions stream.

    The baseline of a served version is the impressions it was trained on *itself*: its own
    lineage reference to ``ctr_impressions`` (the one ending at its ``impressions_end``),
    read once per version. (The generic lineage baseline reads every range the trainer's job
    execution recorded -- with a version every few seconds that is slow, and it mixes in
    what later versions trained on.)
    """

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Any:
        """Wait for the predictions stream, then monitor it."""
        return _monitor_process(self, ctx, inputs, ("predictions",))

    def run_monitor(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Any:
        """The monitor itself."""
        return super().process(ctx, inputs)

    def _switch(self, version: int | None) -> None:
        self.baseline = None if version is None else self._own_training(version) or None
        super()._switch(version)

    def _own_training(self, version: int) -> list[Mapping[str, Any]]:
        ctx = self.ctx
        try:
            params = ctx.client.models.get_version(MODEL, version=version).params
        except tide.NotFoundError:
            return []
        end = params.get("impressions_end")
        refs = [
            ref
            for record in ctx.client.lineage.upstream(model=MODEL, version=version)
            for ref in record.inputs
            if ref.name == IMPRESSIONS and ref.end_offset == end and ref.start_offset
        ]
        if not refs:
            return []
        first, last = int(refs[0].start_offset), int(refs[0].end_offset)
        rows: list[Mapping[str, Any]] = []
        reader = LocalStreamReader(stream_dir(ctx, "impressions"))
        for batch in reader.batches(max_records=20_000, max_wait=0, idle_timeout=0):
            start = batch.start_offset or 1
            rows.extend(
                row
                for i, row in enumerate(batch.records)
                if first <= start + i <= last and not row.get("holdout")
            )
            if (batch.end_offset or 0) >= last:
                break
        reader.close()
        ctx.logger.info(
            "baseline of %s version %s: %d impressions (offsets %d-%d)",
            MODEL,
            version,
            len(rows),
            first,
            last,
        )
        return rows


class StreamModelMonitor(ModelMonitor):
    """:class:`tideflow.monitor.ModelMonitor` on this workflow's predictions and clicks.

    One detector for the model across its versions: ``ModelMonitor`` judges each version
    on its own (a new version starts a fresh detector), but ``ctr`` is one online learner
    deployed every few seconds, so no version would live long enough on both sides of the
    drift for ADWIN to see the loss rise. Windows still name the version that served them.
    """

    def process(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Any:
        """Wait for the predictions and clicks streams, then monitor them."""
        return _monitor_process(self, ctx, inputs, ("predictions", "labels"))

    def run_monitor(self, ctx: tide.JobContext, inputs: Sequence[Any]) -> Any:
        """The monitor itself."""
        return super().process(ctx, inputs)

    def _sample(self, joined: Any) -> None:
        if joined is not None and self.version is not None:
            self.version = joined.version  # no reset: the same learner goes on
        super()._sample(joined)


def detection_delays(client: Any, predictions: Path, *, after_offset: int = 0) -> dict[str, Any]:
    """How many drifted samples each monitor needed: the detection delay, in samples.

    The drift is the generator's ``CONCEPT_DRIFT`` event (its value: the epoch time); a
    prediction is *drifted* when its impression was shown at or after it (``shown_at``). For
    the first ``DRIFT_DETECTED`` after the drift: the drifted predictions of the predictions
    stream up to the last one in the window that raised it (the ``n``-th window scored for the
    served version -- indexes keep rising across versions, so ``n`` counts from the version's
    first window in the metrics -- covers that version's predictions ``n * samples`` to
    ``(n + 1) * samples - 1``).
    For the first ``MODEL_DEGRADED``: its joined ``samples`` minus the predictions before
    the drift. Both count stream positions, not wall time, so a slow machine (a monitor
    behind its stream) does not change them. ``None``: no drift yet, or no such event after.
    """
    found: dict[str, Any] = {"drift_time": None, "DRIFT_DETECTED": None, "MODEL_DEGRADED": None}
    events = list(
        client.events.list(
            key=MODEL,
            event_types=["CONCEPT_DRIFT", "DRIFT_DETECTED", "MODEL_DEGRADED"],
            after_offset=after_offset,
            limit=1000,
        ).items
    )
    drift = next((e for e in events if e.event_type == "CONCEPT_DRIFT"), None)
    if drift is None:
        return found
    drift_time = float(drift.value)
    found["drift_time"] = drift_time
    firsts: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.offset > drift.offset and event.event_type in found:
            firsts.setdefault(event.event_type, json.loads(event.value))
    if not firsts:
        return found
    served: list[tuple[int | None, bool]] = []  # (version, drifted) in stream order
    if has_records(predictions):
        for batch in LocalStreamReader(predictions).batches(
            max_records=10_000, max_wait=0, idle_timeout=0
        ):
            for record in batch.records:
                shown = (record.get("features") or {}).get("shown_at")
                drifted = shown is not None and float(shown) >= drift_time
                served.append((record.get("version"), drifted))
    before = sum(1 for _, drifted in served if not drifted)
    if "DRIFT_DETECTED" in firsts:
        value = firsts["DRIFT_DETECTED"]
        positions = [i for i, (version, _) in enumerate(served) if version == value["version"]]
        # Window indexes keep rising across versions: count from this version's first window.
        feature, detail = next(iter(value["features"].items()))
        steps = [
            m.step
            for m in client.metrics.list(
                name=f"drift.{feature}.{detail['stat']}", model=MODEL, version=value["version"]
            )
            if m.step is not None
        ]
        nth = int(value["window"]) - min(steps, default=int(value["window"]))
        last = (nth + 1) * int(value["samples"]) - 1
        if positions:
            end = positions[min(last, len(positions) - 1)]
            found["DRIFT_DETECTED"] = sum(1 for _, drifted in served[: end + 1] if drifted)
    if "MODEL_DEGRADED" in firsts:
        found["MODEL_DEGRADED"] = max(0, int(firsts["MODEL_DEGRADED"]["samples"]) - before)
    return found


def summary_line(value: str) -> str:
    """A one-line description of a monitor event's JSON value (for the quickstart)."""
    try:
        payload = json.loads(value)
    except ValueError:
        return value
    if "features" in payload:
        features = ", ".join(
            f"{name} {d.get('stat')} {d.get('score', 0):.3g} > {d.get('threshold', 0):.3g}"
            for name, d in payload["features"].items()
        )
        return f"version {payload.get('version')} window {payload.get('window')}: {features}"
    metrics = ", ".join(
        f"{k} {v:.3f}" for k, v in (payload.get("metrics") or {}).items() if v is not None
    )
    return (
        f"version {payload.get('version')} window {payload.get('window')} "
        f"({payload.get('detector')}): {metrics}"
    )


class Detections:
    """Follows an execution's monitor findings and retrains (the quickstart's live lines).

    Args:
        client: The project's client.
        execution_id: The ``ad_ctr`` execution.
        after_offset: Events up to this offset are older than the execution.
    """

    def __init__(self, client: Any, execution_id: int, *, after_offset: int = 0) -> None:
        self.client = client
        self.execution_id = execution_id
        self.offset = after_offset
        self.counts = {"CONCEPT_DRIFT": 0, "DRIFT_DETECTED": 0, "MODEL_DEGRADED": 0}
        self.retrains = 0
        self.drift_time: float | None = None
        self._actions_seen: set[int] = set()

    def poll(self) -> list[str]:
        """Lines describing what happened since the last poll."""
        lines: list[str] = []
        while True:
            page = self.client.events.list(
                key=MODEL, event_types=list(self.counts), after_offset=self.offset, limit=1000
            )
            for event in page.items:
                self.offset = max(self.offset, event.offset)
                if str(event.context.get("execution_id", self.execution_id)) != str(
                    self.execution_id
                ):
                    continue
                self.counts[event.event_type] += 1
                if event.event_type == "CONCEPT_DRIFT":
                    self.drift_time = float(event.value)
                    lines.append("market: concept drift (click model and traffic mix changed)")
                else:
                    lines.append(
                        f"{event.event_type} ({event.sender}): {summary_line(event.value)}"
                    )
            if len(page.items) < 1000:
                break
        for action in self.client.executions.actions(self.execution_id):
            if action.action_id in self._actions_seen:
                continue
            self._actions_seen.add(action.action_id)
            if action.job == "train" and str(action.action) == "RESTART":
                if "skipped" in action.rule:
                    continue
                self.retrains += 1
                lines.append(f"train restarted (event offset {action.event_offset}): retraining")
        return lines

    @property
    def drifts_detected(self) -> int:
        """``DRIFT_DETECTED`` plus ``MODEL_DEGRADED`` events of the execution so far."""
        return self.counts["DRIFT_DETECTED"] + self.counts["MODEL_DEGRADED"]
