"""A line chart of one metric across a model's versions, as SVG coordinates.

Versions sit evenly on the x axis (version numbers are ordinal, not time); the y axis spans the
metric's range with a little room, so a flat series still draws as a line in the middle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tideflow.domain.model import ModelVersion

WIDTH = 640.0
HEIGHT = 220.0
LEFT = 56.0
RIGHT = 16.0
TOP = 14.0
BOTTOM = 30.0


@dataclass(frozen=True)
class Point:
    """One version's value, placed."""

    version: int
    status: str
    value: float
    x: float
    y: float


@dataclass
class Chart:
    """What the chart template draws."""

    metric: str
    width: float = WIDTH
    height: float = HEIGHT
    points: list[Point] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    line: str = ""


def metric_names(versions: Sequence[ModelVersion]) -> list[str]:
    """Every metric name any version has, sorted."""
    return sorted({name for v in versions for name in v.metrics})


def build_chart(metric: str, versions: Sequence[ModelVersion]) -> Chart:
    """The chart of ``metric`` over the ``versions`` that have it, by version number."""
    having = sorted((v for v in versions if metric in v.metrics), key=lambda v: v.version)
    chart = Chart(metric)
    if not having:
        return chart
    values = [float(v.metrics[metric]) for v in having]
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    low, high = low - pad, high + pad
    inner_w = WIDTH - LEFT - RIGHT
    inner_h = HEIGHT - TOP - BOTTOM
    step = inner_w / max(len(having) - 1, 1)
    for i, (version, value) in enumerate(zip(having, values, strict=True)):
        x = LEFT + (i * step if len(having) > 1 else inner_w / 2)
        y = TOP + inner_h * (high - value) / (high - low)
        chart.points.append(Point(version.version, str(version.status), value, x, y))
    chart.line = " ".join(f"{p.x:.1f},{p.y:.1f}" for p in chart.points)
    for i in range(5):
        value = low + (high - low) * i / 4
        chart.y_ticks.append((TOP + inner_h * (1 - i / 4), f"{value:.4g}"))
    return chart
