"""Per-feature drift of a window of serving samples against a baseline: :class:`DriftScorer`.

A feature is **numeric** or **categorical**: as configured (``kinds``), else inferred from the
baseline -- strings and booleans are categorical, numbers with at most ``max_categories``
distinct values too (hashed ids, small enums), other numbers numeric. Numeric features get PSI
and KS, categorical ones chi-square (:mod:`tideflow.monitor.statistics`).

Thresholds: ``psi`` (default 0.2) is a fixed PSI line; ``alpha`` (default 0.01) is the
**family-wise** significance of ``window`` samples: it is divided over the window's KS and
chi-square tests and, when windows overlap (``step < window``), over the ``ceil(window /
step)`` windows that cover each sample (Bonferroni) -- so a stationary stream raises an alarm
in about ``alpha`` of its windows' worth of samples however many features there are and
however often they are scored. Per-feature overrides: ``thresholds={"price":
{"psi": 0.3, "alpha": 0.001}}``. A numeric feature drifts when its PSI *or* its KS crosses its
line; the report names the first that did (PSI, then KS).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tideflow.errors import InvalidArgumentError
from tideflow.monitor.statistics import (
    Categories,
    Statistic,
    TestResult,
    bonferroni,
    chi_square,
    ks,
    psi,
    quantile_edges,
)

NUMERIC, CATEGORICAL = "numeric", "categorical"


def features_of(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """The features of a record: its ``features`` mapping (predictions) or the record itself."""
    inner = record.get("features")
    return inner if isinstance(inner, Mapping) else record


@dataclass(frozen=True)
class WindowDrift:
    """The scores of one window.

    Attributes:
        window: The window's index.
        samples: Samples in the window.
        results: Feature -> its tests' results.
    """

    window: int
    samples: int
    results: dict[str, list[TestResult]] = field(default_factory=dict)

    @property
    def drifted(self) -> dict[str, TestResult]:
        """The drifted features, each with the first test that crossed its line."""
        found: dict[str, TestResult] = {}
        for feature, results in self.results.items():
            for result in results:
                if result.drifted:
                    found[feature] = result
                    break
        return found


def infer_kind(values: Sequence[Any], max_categories: int = 20) -> str:
    """``categorical`` for strings, booleans and few distinct numbers; else ``numeric``."""
    present = [v for v in values if v is not None]
    if any(isinstance(v, str | bool) or not isinstance(v, int | float) for v in present):
        return CATEGORICAL
    if len(set(present)) <= max_categories:
        return CATEGORICAL
    return NUMERIC


class DriftScorer:
    """Scores windows of serving samples against a baseline sample, feature by feature.

    Args:
        baseline: Training samples (records, or records with a ``features`` mapping).
        features: The features to watch; every feature of the baseline when ``None``.
        kinds: ``{feature: "numeric" | "categorical"}``; the rest are inferred.
        psi: Default PSI threshold.
        alpha: Family-wise significance of one window (split over its KS/chi-square tests).
        thresholds: Per-feature ``{"psi": x, "alpha": y}`` overrides.
        bins: PSI bins.
        max_categories: Numbers with at most this many distinct values are categorical.
        overlap: How many windows cover each sample (``ceil(window / step)``): the tests of
            that many windows share ``alpha``.

    Raises:
        InvalidArgumentError: An empty baseline, or a watched feature the baseline lacks.
    """

    def __init__(
        self,
        baseline: Iterable[Mapping[str, Any]],
        *,
        features: Sequence[str] | None = None,
        kinds: Mapping[str, str] | None = None,
        psi: float = 0.2,
        alpha: float = 0.01,
        thresholds: Mapping[str, Mapping[str, float]] | None = None,
        bins: int = 10,
        max_categories: int = 20,
        overlap: int = 1,
    ) -> None:
        rows = [features_of(r) for r in baseline]
        if not rows:
            raise InvalidArgumentError("the baseline has no samples", field="baseline")
        names = list(features) if features is not None else sorted({k for r in rows for k in r})
        columns = {name: [r[name] for r in rows if r.get(name) is not None] for name in names}
        missing = [name for name, values in columns.items() if not values]
        if missing:
            raise InvalidArgumentError(
                f"the baseline has no values of feature(s) {', '.join(missing)}", field="features"
            )
        kinds = dict(kinds or {})
        for name, kind in kinds.items():
            if kind not in (NUMERIC, CATEGORICAL):
                raise InvalidArgumentError(
                    f"feature {name!r}: kind must be numeric or categorical, got {kind!r}",
                    field="kinds",
                )
        self.kinds = {
            name: kinds.get(name) or infer_kind(columns[name], max_categories) for name in names
        }
        self.size = len(rows)
        self.psi = psi
        self.alpha = alpha
        self.thresholds = {k: dict(v) for k, v in (thresholds or {}).items()}
        import numpy as np

        self._numbers = {
            n: np.sort(np.asarray([float(x) for x in v if _finite(x)]))
            for n, v in columns.items()
            if self.kinds[n] == NUMERIC
        }
        self._edges = {n: quantile_edges(v, bins) for n, v in self._numbers.items()}
        self._categories = {
            n: Categories.of(v) for n, v in columns.items() if self.kinds[n] == CATEGORICAL
        }
        if overlap < 1:
            raise InvalidArgumentError(f"overlap must be >= 1, got {overlap}", field="overlap")
        self.tests = len(names) * overlap
        """The Bonferroni divisor: KS / chi-square tests per window, times the overlap."""

    @property
    def features(self) -> list[str]:
        """The watched features."""
        return list(self.kinds)

    def _threshold(self, feature: str, name: str, default: float) -> float:
        return float(self.thresholds.get(feature, {}).get(name, default))

    def score(self, window: int, samples: Sequence[Mapping[str, Any]]) -> WindowDrift:
        """Test every watched feature of ``samples`` (records) against the baseline."""
        rows = [features_of(r) for r in samples]
        report = WindowDrift(window, len(rows))
        for feature, kind in self.kinds.items():
            values = [r[feature] for r in rows if r.get(feature) is not None]
            if not values:
                continue
            alpha = bonferroni(self._threshold(feature, "alpha", self.alpha), self.tests)
            if kind == NUMERIC:
                numbers = _finite_array(values)
                if numbers.size == 0:
                    continue
                base = self._numbers[feature]
                report.results[feature] = [
                    psi(
                        base,
                        numbers,
                        edges=self._edges[feature],
                        threshold=self._threshold(feature, "psi", self.psi),
                    ),
                    ks(base, numbers, alpha=alpha, p_value=False, presorted=True),
                ]
            else:
                report.results[feature] = [
                    chi_square(self._categories[feature], values, alpha=alpha, p_value=False)
                ]
        return report


def _finite_array(values: list[Any]) -> Any:
    """The finite numbers among ``values`` as a float array (one NumPy pass when all are)."""
    import numpy as np

    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        array = np.asarray([float(v) for v in values if _finite(v)], dtype=float)
    return array[np.isfinite(array)]


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


__all__ = [
    "CATEGORICAL",
    "NUMERIC",
    "DriftScorer",
    "Statistic",
    "WindowDrift",
    "features_of",
    "infer_kind",
]
