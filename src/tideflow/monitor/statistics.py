"""Two-sample drift statistics: PSI, Kolmogorov-Smirnov and chi-square, each with its verdict.

Every test returns a :class:`TestResult` whose ``score`` is compared with its ``threshold`` the
same way -- ``score > threshold`` means drift -- so a report can plot any statistic against its
line without knowing which it is:

- **PSI** (population stability index) of a numeric feature: the window is binned on the
  baseline's quantiles (``bins`` bins, open-ended at both sides), empty bins are smoothed with
  ``eps``; the threshold is a fixed number (0.2 by convention: "significant shift").
- **KS**: the two-sample Kolmogorov-Smirnov statistic ``D`` (as ``scipy.stats.ks_2samp``); the
  threshold is the critical ``D`` at significance ``alpha`` for these sample sizes (SciPy's
  ``kstwo`` distribution of the effective size ``n*m/(n+m)``), so ``D > threshold`` is the same
  as the asymptotic test's p-value < ``alpha``.
- **chi-square** of a categorical feature: a 2 x k contingency table (baseline counts, window
  counts) tested for homogeneity (Pearson's statistic, as ``scipy.stats.chi2_contingency``
  without continuity correction); categories too rare in the
  baseline to test (expected count below 5) and categories the baseline never saw share one
  "other" cell, so a new category appearing often still counts. The threshold is the critical
  chi-square at ``alpha`` for the table's degrees of freedom.

``alpha`` passed here is the per-test level: :func:`bonferroni` divides a family-wise level over
the tests of one window, so monitoring many features does not multiply false alarms.
Critical values are cached per (sizes, alpha) / (degrees of freedom, alpha): a monitor asks
for the same ones every window, and SciPy's inversions cost milliseconds.

SciPy and NumPy are imported lazily (the ``ml`` extra).
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tideflow.errors import InvalidArgumentError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

OTHER = "__other__"
"""The cell of categories that are rare or unseen in the baseline."""

MIN_EXPECTED = 5.0


class Statistic(StrEnum):
    """Which test scored a feature (the ``<stat>`` of metric ``drift.<feature>.<stat>``)."""

    PSI = "psi"
    KS = "ks"
    CHI2 = "chi2"


@dataclass(frozen=True)
class TestResult:
    """One feature's test on one window.

    Attributes:
        stat: Which statistic.
        score: Its value (PSI, the KS ``D``, the chi-square statistic).
        threshold: Drift when ``score > threshold``.
        p_value: The test's p-value (``None`` for PSI).
    """

    __test__ = False  # not a pytest class

    stat: Statistic
    score: float
    threshold: float
    p_value: float | None = None

    @property
    def drifted(self) -> bool:
        """Whether the score crossed the threshold."""
        return self.score > self.threshold


def bonferroni(alpha: float, tests: int) -> float:
    """The per-test level that keeps ``tests`` tests' family-wise false-alarm rate <= ``alpha``."""
    if not 0.0 < alpha < 1.0:
        raise InvalidArgumentError(f"alpha must be in (0, 1), got {alpha}", field="alpha")
    return alpha / max(tests, 1)


def _numbers(values: ArrayLike, what: str) -> Any:
    import numpy as np

    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"{what} holds values that are not numbers: {e}") from e
    array = array[np.isfinite(array)]
    if array.size == 0:
        raise InvalidArgumentError(f"{what} has no finite numbers to compare", field=what)
    return array


def quantile_edges(baseline: ArrayLike, bins: int = 10) -> list[float]:
    """Inner bin edges at the baseline's quantiles (duplicates removed: ties make fewer bins)."""
    import numpy as np

    if bins < 2:
        raise InvalidArgumentError(f"bins must be >= 2, got {bins}", field="bins")
    data = _numbers(baseline, "baseline")
    inner = np.quantile(data, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return [float(x) for x in np.unique(inner)]


def psi(
    baseline: ArrayLike,
    current: ArrayLike,
    *,
    bins: int = 10,
    threshold: float = 0.2,
    eps: float = 1e-4,
    edges: Sequence[float] | None = None,
) -> TestResult:
    """Population stability index of ``current`` against ``baseline``.

    ``sum((c_i - b_i) * ln(c_i / b_i))`` over the bins, with ``b_i`` / ``c_i`` the shares of
    each sample in bin ``i`` (at least ``eps``). Pass ``edges`` (from :func:`quantile_edges`)
    to reuse the baseline's binning across windows.
    """
    import numpy as np

    base = _numbers(baseline, "baseline")
    cur = _numbers(current, "current")
    cuts = np.asarray(list(edges) if edges is not None else quantile_edges(base, bins))
    b = np.bincount(np.searchsorted(cuts, base, side="right"), minlength=len(cuts) + 1)
    c = np.bincount(np.searchsorted(cuts, cur, side="right"), minlength=len(cuts) + 1)
    bs = np.maximum(b / base.size, eps)
    cs = np.maximum(c / cur.size, eps)
    score = float(np.sum((cs - bs) * np.log(cs / bs)))
    return TestResult(Statistic.PSI, score, threshold)


@functools.lru_cache(maxsize=256)
def ks_critical(n: int, m: int, alpha: float) -> float:
    """The KS statistic above which two samples of sizes ``n`` and ``m`` differ at ``alpha``.

    Cached: a monitor's window and baseline sizes repeat, and SciPy's inversion is slow.
    """
    from scipy.stats import kstwo

    return float(kstwo.isf(alpha, _effective(n, m)))


def _effective(n: int, m: int) -> int:
    return max(round(n * m / (n + m)), 1)


def ks(
    baseline: ArrayLike,
    current: ArrayLike,
    *,
    alpha: float = 0.01,
    p_value: bool = True,
    presorted: bool = False,
) -> TestResult:
    """Two-sample Kolmogorov-Smirnov test of ``current`` vs ``baseline``.

    ``D`` is computed as ``scipy.stats.ks_2samp`` does; the p-value (SciPy's asymptotic one,
    ``kstwo.sf``) only when ``p_value`` is true, since the verdict needs only the cached
    critical value. ``presorted``: ``baseline`` is already a sorted array (a monitor sorts its
    baseline once).
    """
    import numpy as np

    base = _numbers(baseline, "baseline")
    if not presorted:
        base = np.sort(base)
    cur = np.sort(_numbers(current, "current"))
    both = np.concatenate([base, cur])
    below_base = np.searchsorted(base, both, side="right") / base.size
    below_cur = np.searchsorted(cur, both, side="right") / cur.size
    d = float(np.max(np.abs(below_base - below_cur)))
    p = None
    if p_value:
        from scipy.stats import kstwo

        p = float(np.clip(kstwo.sf(d, _effective(base.size, cur.size)), 0.0, 1.0))
    return TestResult(Statistic.KS, d, ks_critical(base.size, cur.size, alpha), p)


@dataclass(frozen=True)
class Categories:
    """A baseline's category frequencies, with the cells a window is tested on."""

    counts: dict[Hashable, int]
    total: int

    @classmethod
    def of(cls, values: Sequence[Hashable]) -> Categories:
        """Count ``values`` (``None`` is a category of its own)."""
        counts = Counter(_category(v) for v in values)
        if not counts:
            raise InvalidArgumentError("baseline has no values to compare", field="baseline")
        return cls(dict(counts), sum(counts.values()))

    def cells(self, window: int) -> list[Hashable]:
        """The categories tested on their own for a window of ``window`` samples."""
        return [k for k, n in self.counts.items() if n / self.total * window >= MIN_EXPECTED]


_PLAIN = (str, int, float, bool, type(None))


def _category(value: Any) -> Hashable:
    if type(value) in _PLAIN:  # the common case, without an ABC isinstance check
        return value  # type: ignore[no-any-return]
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=256)
def chi2_critical(dof: int, alpha: float) -> float:
    """The chi-square statistic above which ``dof`` degrees of freedom reject at ``alpha``."""
    from scipy.stats import chi2

    return float(chi2.isf(alpha, dof))


def chi_square(
    baseline: Sequence[Hashable] | Categories,
    current: Sequence[Hashable],
    *,
    alpha: float = 0.01,
    p_value: bool = True,
) -> TestResult:
    """Chi-square test of homogeneity of ``current``'s categories against ``baseline``'s.

    The statistic is Pearson's on the 2 x k table (as ``scipy.stats.chi2_contingency`` without
    continuity correction); the p-value only when ``p_value`` is true. With fewer than two
    cells to compare there is nothing to test: score 0.
    """
    import numpy as np

    base = baseline if isinstance(baseline, Categories) else Categories.of(baseline)
    if not current:
        raise InvalidArgumentError("current has no values to compare", field="current")
    keep = base.cells(len(current))
    index = {k: i for i, k in enumerate(keep)}
    other = len(keep)
    b = np.zeros(len(keep) + 1)
    c = np.zeros(len(keep) + 1)
    for k, n in base.counts.items():
        b[index.get(k, other)] += n
    for k, n in Counter(_category(v) for v in current).items():
        c[index.get(k, other)] += n
    used = (b + c) > 0
    table = np.vstack([b[used], c[used]])
    cells = table.shape[1]
    if cells < 2:
        return TestResult(Statistic.CHI2, 0.0, math.inf, 1.0)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = cells - 1
    p = None
    if p_value:
        from scipy.stats import chi2

        p = float(chi2.sf(statistic, dof))
    return TestResult(Statistic.CHI2, statistic, chi2_critical(dof, alpha), p)
