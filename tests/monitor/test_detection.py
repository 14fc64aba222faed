"""Stationary streams raise (almost) no alarms; injected shifts are found within a bounded delay.

Seeded RNGs throughout, so the asserted rates and delays are reproducible; the bounds leave a
margin of at least two over what the seeds give (docs/monitor.md quotes the benchmark figures).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import numpy as np
import pytest

from tideflow.monitor import DegradationDetector, DriftScorer, SlidingWindow

FEATURES = 6
WINDOW = 500


def samples(rng: np.random.Generator, n: int, shift: float = 0.0, skew: float = 0.0) -> list[dict]:
    """Rows of 3 numeric and 3 categorical features; ``shift`` moves x0, ``skew`` favours c0=a."""
    numeric = rng.normal(size=(n, 3))
    numeric[:, 0] += shift
    weights = np.array([0.2 + skew, 0.2, 0.2, 0.2, 0.2 - skew])
    cats = rng.choice(list("abcde"), size=(n, 3), p=weights / weights.sum())
    return [
        {
            "x0": float(numeric[i, 0]),
            "x1": float(numeric[i, 1]),
            "x2": float(numeric[i, 2]),
            "c0": str(cats[i, 0]),
            "c1": str(cats[i, 1]),
            "c2": str(cats[i, 2]),
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_a_stationary_stream_over_many_windows_rarely_alarms(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scorer = DriftScorer(samples(rng, 5000), alpha=0.01)
    assert scorer.tests == FEATURES
    window: SlidingWindow[dict] = SlidingWindow(WINDOW)
    flagged = windows = 0
    for _, rows in window.extend(samples(rng, 100 * WINDOW)):
        windows += 1
        flagged += bool(scorer.score(windows, rows).drifted)
    assert windows == 100
    # family-wise alpha 0.01 per window (Bonferroni over 6 features): expect ~1 window in 100
    assert flagged <= 4, f"{flagged} of {windows} stationary windows flagged"


def alarms(stream: list[dict], scorer: DriftScorer, step: int) -> list[tuple[int, set[str]]]:
    """(sample count at the window's end, drifted features) of the windows with drift."""
    window: SlidingWindow[dict] = SlidingWindow(WINDOW, step)
    found = []
    for i, row in enumerate(stream):
        rows = window.add(row)
        if rows is not None and (drifted := scorer.score(window.index, rows).drifted):
            found.append((i + 1, set(drifted)))
    return found


@pytest.mark.parametrize(
    ("feature", "make"),
    [
        ("x0", lambda rng, n: samples(rng, n, shift=0.5)),
        ("c0", lambda rng, n: samples(rng, n, skew=0.12)),
    ],
)
def test_an_injected_feature_shift_is_found_within_one_window(
    feature: str, make: Callable[[np.random.Generator, int], list[dict]]
) -> None:
    delays, early = [], 0
    at = 5000
    for seed in range(5):
        rng = np.random.default_rng(seed)
        scorer = DriftScorer(samples(rng, 5000), overlap=WINDOW // 100)
        stream = samples(rng, at) + make(rng, 5000)
        found = alarms(stream, scorer, step=100)
        early += sum(end <= at for end, _ in found)
        after = [end for end, features in found if end > at and feature in features]
        assert after, f"seed {seed}: {feature} never flagged after the shift"
        delays.append(after[0] - at)
    assert max(delays) <= WINDOW, delays
    # 5 x 46 overlapping stationary windows before the shift: ~5 x 10 windows' worth of samples
    assert early <= 2, f"{early} windows flagged before the shift"


def loss_stream(seed: int, n: int, shift_at: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Scores of a calibrated model; after ``shift_at`` the click rate rises by 0.2."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.05, 0.5, n)
    truth = scores.copy()
    if shift_at is not None:
        truth[shift_at:] = np.minimum(truth[shift_at:] + 0.2, 1.0)
    labels = (rng.random(n) < truth).astype(int)
    return labels, scores


@pytest.mark.parametrize("detector", ["adwin", "page_hinkley"])
def test_a_calibrated_model_on_a_stationary_stream_rarely_alarms(detector: str) -> None:
    alarms = 0
    for seed in range(5):
        labels, scores = loss_stream(100 + seed, 20_000, None)
        found = DegradationDetector(detector)
        alarms += sum(found.update(int(y), float(p)) for y, p in zip(labels, scores, strict=True))
    assert alarms <= 2, f"{alarms} false alarms in 100,000 samples"


@pytest.mark.parametrize(
    ("detector", "median_bound", "max_bound"),
    [
        ("adwin", 500, 1000),
        ("page_hinkley", 1200, 2500),
    ],
)
def test_a_degradation_is_reported_once_within_a_bounded_delay(
    detector: str, median_bound: int, max_bound: int
) -> None:
    at, n = 5000, 12_000
    delays = []
    for seed in range(10):
        labels, scores = loss_stream(seed, n, at)
        found = DegradationDetector(detector, cooldown=10_000)
        alarms = [i for i in range(n) if found.update(int(labels[i]), float(scores[i]))]
        after = [i for i in alarms if i >= at]
        assert after, f"seed {seed}: no alarm after the shift"
        delays.append(after[0] - at)
        assert len(after) == 1  # the cooldown holds a lasting change to one report
    assert statistics.median(delays) <= median_bound, delays
    assert max(delays) <= max_bound, delays


def test_an_improvement_is_not_a_degradation() -> None:
    rng = np.random.default_rng(9)
    found = DegradationDetector("adwin")
    for i in range(10_000):
        truth = 0.5 if i < 5000 else 0.2  # the loss of a 0.2 score falls when clicks get rarer
        assert not found.update(int(rng.random() < truth), 0.2)
