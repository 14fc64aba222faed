"""The drift and quality statistics agree with SciPy / scikit-learn, and reject bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2_contingency, ks_2samp
from sklearn.metrics import log_loss, roc_auc_score

from tideflow.errors import InvalidArgumentError
from tideflow.monitor import (
    DriftScorer,
    SlidingWindow,
    Statistic,
    bonferroni,
    chi_square,
    ks,
    psi,
    window_quality,
)


def test_ks_is_scipys_two_sample_test_and_its_threshold_is_the_critical_d() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=3000), rng.normal(0.1, 1.0, size=400)
    result = ks(a, b, alpha=0.05)
    reference = ks_2samp(a, b, method="asymp")
    assert result.stat is Statistic.KS
    assert result.score == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    # D > threshold exactly when the p-value < alpha (the threshold is the critical D)
    assert result.drifted == (reference.pvalue < 0.05)
    just_above = ks(a, b, alpha=reference.pvalue * 1.01)
    just_below = ks(a, b, alpha=reference.pvalue * 0.99)
    assert just_above.drifted
    assert not just_below.drifted


def test_chi_square_matches_scipys_contingency_test_on_the_counts() -> None:
    baseline = ["a"] * 500 + ["b"] * 300 + ["c"] * 200
    current = ["a"] * 40 + ["b"] * 30 + ["c"] * 30
    result = chi_square(baseline, current, alpha=0.01)
    reference = chi2_contingency(np.array([[500, 300, 200], [40, 30, 30]]), correction=False)
    assert result.stat is Statistic.CHI2
    assert result.score == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.drifted == (reference.pvalue < 0.01)


def test_chi_square_pools_rare_and_unseen_categories_so_a_new_category_counts() -> None:
    baseline = ["a"] * 600 + ["b"] * 398 + ["rare"] * 2
    current = ["a"] * 30 + ["b"] * 20 + ["new"] * 50
    result = chi_square(baseline, current)
    # cells: a, b, other(rare + new)
    reference = chi2_contingency(np.array([[600, 398, 2], [30, 20, 50]]), correction=False)
    assert result.score == pytest.approx(reference.statistic)
    assert result.drifted


def test_psi_matches_the_formula_on_baseline_deciles() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=10_000), rng.normal(0.5, 1.0, size=2000)
    edges = np.quantile(a, np.linspace(0, 1, 11)[1:-1])
    bs = np.bincount(np.searchsorted(edges, a, side="right"), minlength=10) / a.size
    cs = np.bincount(np.searchsorted(edges, b, side="right"), minlength=10) / b.size
    expected = float(np.sum((cs - bs) * np.log(cs / bs)))
    result = psi(a, b)
    assert result.score == pytest.approx(expected)
    assert result.threshold == 0.2
    assert psi(a, rng.normal(size=2000)).score < 0.02  # same distribution: near zero
    assert psi(a, rng.normal(1.0, 1.0, size=2000)).drifted


def test_window_quality_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    scores = rng.uniform(0.01, 0.99, size=800)
    labels = (rng.random(800) < scores).astype(int)
    quality = window_quality(list(labels), list(scores))
    assert quality.auc == pytest.approx(roc_auc_score(labels, scores))
    assert quality.log_loss == pytest.approx(log_loss(labels, scores))
    assert quality.calibration == pytest.approx(scores.mean() / labels.mean())
    one_class = window_quality([0, 0, 0], [0.1, 0.2, 0.3])
    assert one_class.auc is None
    assert one_class.calibration is None
    assert one_class.log_loss == pytest.approx(log_loss([0, 0, 0], [0.1, 0.2, 0.3], labels=[0, 1]))


def test_bonferroni_divides_alpha_over_the_tests() -> None:
    assert bonferroni(0.01, 10) == pytest.approx(0.001)
    with pytest.raises(InvalidArgumentError, match="alpha must be in"):
        bonferroni(1.5, 3)


def test_bad_samples_are_refused_with_the_sample_named() -> None:
    with pytest.raises(InvalidArgumentError, match="current has no finite numbers"):
        psi([1.0, 2.0], [math.nan])
    with pytest.raises(InvalidArgumentError, match="baseline holds values that are not numbers"):
        ks(["x", "y"], [1.0])
    with pytest.raises(InvalidArgumentError, match="baseline has no samples"):
        DriftScorer([])
    with pytest.raises(InvalidArgumentError, match="no values of feature"):
        DriftScorer([{"a": 1}], features=["a", "b"])
    with pytest.raises(InvalidArgumentError, match="kind must be numeric or categorical"):
        DriftScorer([{"a": 1}], kinds={"a": "ordinal"})


def test_drift_scorer_infers_kinds_and_reads_prediction_records() -> None:
    rng = np.random.default_rng(4)
    baseline = [
        {"price": float(x), "site": int(s), "device": d}
        for x, s, d in zip(
            rng.normal(size=2000),
            rng.integers(0, 5, 2000),
            rng.choice(["m", "d"], 2000),
            strict=True,
        )
    ]
    scorer = DriftScorer(baseline)
    assert scorer.kinds == {"device": "categorical", "price": "numeric", "site": "categorical"}
    window = [
        {"request_id": str(i), "features": {"price": float(x) + 2.0, "site": 1, "device": "m"}}
        for i, x in enumerate(rng.normal(size=300))
    ]
    drift = scorer.score(7, window)
    assert drift.window == 7
    assert drift.samples == 300
    assert set(drift.results) == {"price", "site", "device"}
    assert [r.stat for r in drift.results["price"]] == [Statistic.PSI, Statistic.KS]
    assert set(drift.drifted) == {"price", "site", "device"}
    assert drift.drifted["price"].stat is Statistic.PSI


def test_sliding_windows_fall_due_every_step_and_restart_after_reset() -> None:
    window: SlidingWindow[int] = SlidingWindow(4, 2)
    due = list(window.extend(range(10)))
    assert due == [(0, [0, 1, 2, 3]), (1, [2, 3, 4, 5]), (2, [4, 5, 6, 7]), (3, [6, 7, 8, 9])]
    window.reset()
    assert list(window.extend(range(100, 103))) == []
    assert list(window.extend([103])) == [(4, [100, 101, 102, 103])]
    with pytest.raises(InvalidArgumentError, match=r"window step must be in 1\.\.4"):
        SlidingWindow(4, 5)
