"""What ``tideflow monitor report`` shows, gathered from a store: monitor windows and events.

The monitors (``tideflow.monitor``) log one metric per window and feature / quality measure,
with ``model``, ``version`` and ``step`` (the window index of that monitor run):
``drift.<feature>.<stat>`` from the Example Monitor, ``quality.<metric>`` from the Model
Monitor. The report finds them by those prefixes, whatever the features are called, and groups
the values of one window into a :class:`Window` by ``(job execution, step, version)`` (a
restarted monitor starts its steps again at 0, in another job execution).

Thresholds are not metrics: a window's breaches are read from the ``DRIFT_DETECTED`` event the
Example Monitor sent for it (its value names the drifted features with score and threshold).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tideflow.client import Client
    from tideflow.domain import Event, Metric

DRIFT_PREFIX = "drift."
QUALITY_PREFIX = "quality."
MONITOR_EVENTS = ("DRIFT_DETECTED", "MODEL_DEGRADED")
QUALITY_ORDER = ("auc", "log_loss", "calibration", "samples")
PAGE = 1000


@dataclass
class Window:
    """The values one monitor logged for one window.

    Attributes:
        step: The window index (``step`` of the metrics).
        version: The model version the window was scored against.
        time: When its first value was logged.
        job_execution_id: The monitor run that logged it.
        values: ``feature -> score`` (drift) or ``metric -> value`` (quality).
        stats: ``feature -> stat`` (drift only: ``psi``, ``ks``, ``chi2``).
        breaches: ``feature -> threshold`` for the features a ``DRIFT_DETECTED`` event named.
    """

    step: int | None
    version: int | None
    time: datetime | None
    job_execution_id: int | None
    values: dict[str, float] = field(default_factory=dict)
    stats: dict[str, str] = field(default_factory=dict)
    breaches: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``--json``)."""
        return {
            "step": self.step,
            "version": self.version,
            "time": self.time.isoformat() if self.time else None,
            "job_execution_id": self.job_execution_id,
            "values": dict(self.values),
            "stats": dict(self.stats),
            "breaches": dict(self.breaches),
        }


@dataclass
class MonitorReport:
    """Everything the report shows for one model."""

    model: str
    drift: list[Window]
    quality: list[Window]
    events: list[Event]
    truncated: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[str]:
        """Every feature with a drift score, sorted."""
        return sorted({name for window in self.drift for name in window.values})

    @property
    def quality_metrics(self) -> list[str]:
        """Every quality metric logged, the usual ones first."""
        names = {name for window in self.quality for name in window.values}
        known = [name for name in QUALITY_ORDER if name in names]
        return known + sorted(names - set(known))

    def thresholds(self) -> dict[str, float]:
        """The latest threshold a ``DRIFT_DETECTED`` event gave for each feature."""
        found: dict[str, float] = {}
        for window in self.drift:
            found.update(window.breaches)
        return found


def gather(client: Client, model: str) -> MonitorReport:
    """Read the monitor metrics and events of ``model`` (raises ``NotFoundError`` if unknown)."""
    client.models.get(model)
    metrics, truncated = _monitor_metrics(client, model)
    drift = _windows([m for m in metrics if m.name.startswith(DRIFT_PREFIX)], drift=True)
    quality = _windows([m for m in metrics if m.name.startswith(QUALITY_PREFIX)], drift=False)
    events = _events(client, model)
    _mark_breaches(drift, events)
    return MonitorReport(model, drift, quality, events, truncated)


def _monitor_metrics(client: Client, model: str) -> tuple[list[Metric], list[str]]:
    """Every ``drift.`` / ``quality.`` metric of ``model``; the names cut at one page."""
    names: set[str] = set()
    listings = [client.metrics.list(model=model, limit=PAGE)]
    listings += [
        client.metrics.list(model=model, version=v.version, limit=PAGE)
        for v in _versions(client, model)
    ]
    for listing in listings:
        names.update(m.name for m in listing if m.name.startswith((DRIFT_PREFIX, QUALITY_PREFIX)))
    found: list[Metric] = []
    truncated: list[str] = []
    for name in sorted(names):
        values = client.metrics.list(name=name, model=model, limit=PAGE)
        if len(values) >= PAGE:
            truncated.append(name)
        found.extend(values)
    return found, truncated


def _versions(client: Client, model: str) -> list[Any]:
    found: list[Any] = []
    cursor = None
    while True:
        page = client.models.list_versions(model, limit=PAGE, cursor=cursor)
        found.extend(page.items)
        if (cursor := page.next_cursor) is None:
            return found


def _windows(metrics: list[Metric], *, drift: bool) -> list[Window]:
    windows: dict[tuple[int | None, int | None, int | None], Window] = {}
    for m in metrics:
        key = (m.job_execution_id, m.step, m.version)
        window = windows.get(key)
        if window is None:
            window = windows[key] = Window(m.step, m.version, m.time, m.job_execution_id)
        elif m.time is not None and (window.time is None or m.time < window.time):
            window.time = m.time
        if drift:
            feature, _, stat = m.name[len(DRIFT_PREFIX) :].rpartition(".")
            if not feature:  # "drift.<feature>" without a stat
                feature, stat = stat, ""
            window.values[feature] = m.value
            window.stats[feature] = stat
        else:
            window.values[m.name[len(QUALITY_PREFIX) :]] = m.value
    return sorted(
        windows.values(),
        key=lambda w: (w.time is None, w.time or datetime.min, w.step or 0),
    )


def _events(client: Client, model: str) -> list[Event]:
    found: list[Event] = []
    cursor = None
    while True:
        page = client.events.list(
            key=model, event_types=list(MONITOR_EVENTS), limit=PAGE, cursor=cursor
        )
        found.extend(page.items)
        if (cursor := page.next_cursor) is None:
            return found


def event_payload(event: Event) -> dict[str, Any]:
    """The JSON value of a monitor event (``{}`` if it is not a JSON object)."""
    try:
        value = json.loads(event.value)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _mark_breaches(drift: list[Window], events: list[Event]) -> None:
    by_key: dict[tuple[Any, Any], list[Window]] = {}
    for window in drift:
        by_key.setdefault((window.version, window.step), []).append(window)
    for event in events:
        if event.event_type != "DRIFT_DETECTED":
            continue
        payload = event_payload(event)
        features = payload.get("features")
        if not isinstance(features, dict):
            continue
        for window in by_key.get((payload.get("version"), payload.get("window")), []):
            for feature, detail in features.items():
                threshold = detail.get("threshold") if isinstance(detail, dict) else None
                window.breaches[str(feature)] = float(threshold) if threshold is not None else 0.0
