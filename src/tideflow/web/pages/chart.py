"""A line chart of one metric across a model's versions, as SVG coordinates.

Versions sit evenly on the x axis (version numbers are ordinal, not time); the y axis spans the
metric's range with a little room, so a flat series still draws as a line in the middle.
"""

from __future__ import annotations

import math
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
    statuses: list[str] = field(default_factory=list)
    """The statuses of the points drawn (the legend)."""


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
    step = nice_step((high - low + 2 * pad) / 4)
    low = math.floor((low - pad) / step) * step
    high = math.ceil((high + pad) / step) * step
    inner_w = WIDTH - LEFT - RIGHT
    inner_h = HEIGHT - TOP - BOTTOM
    spacing = inner_w / max(len(having) - 1, 1)
    for i, (version, value) in enumerate(zip(having, values, strict=True)):
        x = LEFT + (i * spacing if len(having) > 1 else inner_w / 2)
        y = TOP + inner_h * (high - value) / (high - low)
        chart.points.append(Point(version.version, str(version.status), value, x, y))
    chart.line = " ".join(f"{p.x:.1f},{p.y:.1f}" for p in chart.points)
    decimals = max(0, -math.floor(math.log10(step)))
    count = round((high - low) / step)
    for i in range(count + 1):
        value = low + step * i
        y = TOP + inner_h * (high - value) / (high - low)
        chart.y_ticks.append((round(y, 1), f"{value:.{decimals}f}"))
    chart.statuses = sorted({p.status for p in chart.points})
    return chart


def nice_step(raw: float) -> float:
    """The round step (1, 2 or 5 times a power of ten) nearest above ``raw``.

    Ticks at round values (0.65, 0.70, 0.75) read at a glance; a quarter of the range does not
    (0.6367, 0.6733 ...).
    """
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    return float(next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw - 1e-12))
