"""The files of ``tideflow monitor report --out DIR``: two PNG plots and one offline HTML page.

- ``quality.png``: each quality metric (AUC, log loss, calibration, ...) over the Model
  Monitor's windows, one panel per metric, ``MODEL_DEGRADED`` windows marked;
- ``drift.png``: each feature's drift score over the Example Monitor's windows, one panel per
  feature, its threshold as a dashed line and the breached windows marked;
- ``report.html``: the tables and both plots embedded as base64 PNGs (no network, no other
  file), so the page can be mailed or archived alone.

matplotlib (the ``ml`` extra) is imported here only, with the ``Agg`` backend (no display).
The x axis is the window's position in time order (its step is in the tables): a restarted
monitor starts its steps at 0 again. Vertical dotted lines mark a change of model version.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

from tideflow.cli.monitor_data import MonitorReport, Window, event_payload

MATPLOTLIB_MISSING = (
    "the plots of --out need matplotlib, from the ml extra: pip install 'tideflow[ml]'"
)


def check_matplotlib() -> None:
    """Raise ``ImportError`` with :data:`MATPLOTLIB_MISSING` when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise ImportError(MATPLOTLIB_MISSING) from e


def write_report(report: MonitorReport, out: Path) -> list[Path]:
    """Write the PNGs and the HTML page into ``out`` (created); return the paths written."""
    check_matplotlib()
    import matplotlib

    matplotlib.use("Agg", force=True)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    images: dict[str, bytes] = {}
    if report.quality:
        images["quality.png"] = _quality_png(report)
    if report.drift:
        images["drift.png"] = _drift_png(report)
    for name, data in images.items():
        written.append(_write(out / name, data))
    page = _html(report, images).encode()
    written.append(_write(out / "report.html", page))
    return written


def _write(path: Path, data: bytes) -> Path:
    """Write atomically: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def _figure(panels: int) -> tuple[Any, list[Any]]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(panels, 1, figsize=(9, 2.2 * panels + 0.6), sharex=True, squeeze=False)
    return fig, [row[0] for row in axes]


def _png(fig: Any) -> bytes:
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def _version_changes(ax: Any, windows: list[Window]) -> None:
    for i in range(1, len(windows)):
        if windows[i].version != windows[i - 1].version:
            ax.axvline(i, color="grey", linestyle=":", linewidth=1)


def _quality_png(report: MonitorReport) -> bytes:
    windows = report.quality
    degraded = {
        (p.get("version"), p.get("window"))
        for p in (event_payload(e) for e in report.events if e.event_type == "MODEL_DEGRADED")
    }
    names = report.quality_metrics
    fig, axes = _figure(len(names))
    x = list(range(len(windows)))
    for ax, name in zip(axes, names, strict=True):
        ys = [w.values.get(name, float("nan")) for w in windows]
        ax.plot(x, ys, marker=".", linewidth=1)
        hits = [i for i, w in enumerate(windows) if (w.version, w.step) in degraded]
        ax.scatter(hits, [ys[i] for i in hits], color="red", zorder=3, label="MODEL_DEGRADED")
        ax.set_ylabel(name)
        _version_changes(ax, windows)
        if hits:
            ax.legend(loc="best", fontsize="small")
    axes[0].set_title(f"{report.model}: model quality per window")
    axes[-1].set_xlabel("window (time order)")
    return _png(fig)


def _drift_png(report: MonitorReport) -> bytes:
    windows = report.drift
    features = report.features
    thresholds = report.thresholds()
    fig, axes = _figure(len(features))
    x = list(range(len(windows)))
    for ax, feature in zip(axes, features, strict=True):
        ys = [w.values.get(feature, float("nan")) for w in windows]
        stat = next((w.stats[feature] for w in windows if w.stats.get(feature)), "")
        ax.plot(x, ys, marker=".", linewidth=1)
        if feature in thresholds:
            ax.axhline(thresholds[feature], color="orange", linestyle="--", linewidth=1)
        hits = [i for i, w in enumerate(windows) if feature in w.breaches]
        ax.scatter(hits, [ys[i] for i in hits], color="red", zorder=3)
        ax.set_ylabel(f"{feature}\n({stat})" if stat else feature)
        _version_changes(ax, windows)
    axes[0].set_title(f"{report.model}: drift score per feature and window (red: detected)")
    axes[-1].set_xlabel("window (time order)")
    return _png(fig)


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _table(headers: list[str], rows: list[list[tuple[str, bool]]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="breach">{html.escape(text)}</td>'
            if hot
            else f"<td>{html.escape(text)}</td>"
            for text, hot in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html(report: MonitorReport, images: dict[str, bytes]) -> str:
    from tideflow.cli.monitor_table import drift_rows, event_rows, quality_rows

    sections = [f"<h1>Monitor report: model {html.escape(report.model)}</h1>"]
    for name, title in (("quality.png", "Model quality"), ("drift.png", "Drift scores")):
        if name in images:
            data = base64.b64encode(images[name]).decode()
            sections.append(
                f"<h2>{title}</h2>"
                f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
            )
    if report.quality:
        headers, rows = quality_rows(report)
        sections.append("<h2>Quality windows</h2>" + _table(headers, rows))
    if report.drift:
        headers, rows = drift_rows(report)
        sections.append("<h2>Drift windows (red: threshold breached)</h2>" + _table(headers, rows))
    headers, rows = event_rows(report)
    sections.append("<h2>Events</h2>" + (_table(headers, rows) if rows else "<p>none</p>"))
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
        "td.breach{background:#fdd;color:#a00;font-weight:bold}img{max-width:100%}"
    )
    title = html.escape(f"tideflow monitor report {report.model}")
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>\n"
    )
