"""The rows of the report's tables, shared by the terminal (Rich) and the HTML page.

Each cell is ``(text, breached)``: breached cells (a drift score over its feature's threshold,
as the ``DRIFT_DETECTED`` event of that window said) are highlighted in both renderings.
"""

from __future__ import annotations

from datetime import datetime

from tideflow.cli.monitor_data import MonitorReport, event_payload

Cell = tuple[str, bool]


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def drift_rows(report: MonitorReport) -> tuple[list[str], list[list[Cell]]]:
    """Header and rows of the drift table: one row per window, one column per feature."""
    features = report.features
    stats = {f: next((w.stats[f] for w in report.drift if w.stats.get(f)), "") for f in features}
    headers = ["window", "version", "time (UTC)"]
    headers += [f"{f} ({stats[f]})" if stats[f] else f for f in features]
    rows = [
        [(str(w.step), False), (str(w.version), False), (_time(w.time), False)]
        + [(_number(w.values.get(f)), f in w.breaches) for f in features]
        for w in report.drift
    ]
    return headers, rows


def quality_rows(report: MonitorReport) -> tuple[list[str], list[list[Cell]]]:
    """Header and rows of the quality table: one row per window, one column per metric."""
    names = report.quality_metrics
    degraded = {
        (p.get("version"), p.get("window"))
        for p in (event_payload(e) for e in report.events if e.event_type == "MODEL_DEGRADED")
    }
    headers = ["window", "version", "time (UTC)", *names]
    rows = []
    for w in report.quality:
        hot = (w.version, w.step) in degraded
        rows.append(
            [(str(w.step), hot), (str(w.version), False), (_time(w.time), False)]
            + [(_number(w.values.get(n)), False) for n in names]
        )
    return headers, rows


def event_rows(report: MonitorReport) -> tuple[list[str], list[list[Cell]]]:
    """Header and rows of the events table (offset, time, type, version, window, details)."""
    rows = []
    for e in report.events:
        payload = event_payload(e)
        if e.event_type == "DRIFT_DETECTED":
            features = payload.get("features") or {}
            details = ", ".join(
                f"{name} {d.get('stat', '')} {_number(d.get('score'))} > {_number(d.get('threshold'))}"
                if isinstance(d, dict)
                else str(name)
                for name, d in features.items()
            )
        else:
            metrics = payload.get("metrics") or {}
            details = f"{payload.get('detector', '')}: " + ", ".join(
                f"{k}={_number(v)}" for k, v in metrics.items() if isinstance(v, int | float)
            )
        rows.append(
            [
                (str(e.offset), False),
                (_time(e.create_time), False),
                (e.event_type, True),
                (str(payload.get("version", "")), False),
                (str(payload.get("window", "")), False),
                (details, False),
            ]
        )
    return ["offset", "time (UTC)", "event", "version", "window", "details"], rows
