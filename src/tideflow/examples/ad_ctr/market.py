"""A seeded ad market: impressions with categorical features and a known click model.

Every impression shows one ad (with a category and a quality) to one user (with a segment) in
a context (device, site, slot position, hour). Whether it is clicked follows a known logistic
model; at the **drift time** the affinity of user segments for ad categories is replaced by
another one (a concept drift: P(click | features) changes, the features do not), so a model
trained before the drift gets worse and the online trainer has to catch up. The traffic shifts
at the same moment (a new campaign: most requests come from mobile devices and the first few
sites), so the serving data stops looking like the training data: a covariate shift the Example
Monitor can see, while the Model Monitor sees the concept drift in the click labels.

Plain Python (no NumPy), so the quickstart's request driver and the jobs share it cheaply.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Sequence
from typing import Any

N_USERS, N_SEGMENTS = 2000, 6
N_ADS, N_CATEGORIES = 60, 8
N_DEVICES, N_SITES, N_POSITIONS = 3, 10, 4
BASE_LOGIT = -1.6

DRIFTED_DEVICE_MIX = (0.1, 0.15, 0.75)
"""P(device) after the drift (uniform before)."""
DRIFTED_SITES, DRIFTED_SITE_SHARE = 3, 0.7
"""After the drift, ``DRIFTED_SITE_SHARE`` of requests come from sites ``0..DRIFTED_SITES-1``."""

FEATURE_FIELDS = ("user", "segment", "ad", "category", "device", "site", "position", "hour")
CROSSES = (("segment", "category"), ("device", "category"))


def sigmoid(z: float) -> float:
    """The logistic function, safe for large ``|z|``."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class AdMarket:
    """The simulated market: who sees which ad, and the true click probability.

    Args:
        seed: Fixes users, ads and both affinity matrices (before and after the drift).
    """

    def __init__(self, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.user_segment = [rng.randrange(N_SEGMENTS) for _ in range(N_USERS)]
        self.user_bias = [rng.gauss(0.0, 0.3) for _ in range(N_USERS)]
        self.ad_category = [rng.randrange(N_CATEGORIES) for _ in range(N_ADS)]
        self.ad_quality = [rng.gauss(0.0, 0.5) for _ in range(N_ADS)]
        self.device_effect = [0.0, -0.3, 0.25]
        self.site_effect = [rng.gauss(0.0, 0.2) for _ in range(N_SITES)]
        self.affinity = [
            [[rng.gauss(0.0, 1.2) for _ in range(N_CATEGORIES)] for _ in range(N_SEGMENTS)]
            for _ in range(2)  # [0]: before the drift, [1]: after it
        ]

    def impression(
        self, rng: random.Random, request_id: str, *, drifted: bool = False
    ) -> dict[str, Any]:
        """One ad request's features (no label); the device and site mix shifts with the drift."""
        user = rng.randrange(N_USERS)
        ad = rng.randrange(N_ADS)
        if drifted:
            device = rng.choices(range(N_DEVICES), weights=DRIFTED_DEVICE_MIX)[0]
            if rng.random() < DRIFTED_SITE_SHARE:
                site = rng.randrange(DRIFTED_SITES)
            else:
                site = rng.randrange(N_SITES)
        else:
            device, site = rng.randrange(N_DEVICES), rng.randrange(N_SITES)
        return {
            "request_id": request_id,
            "user": user,
            "segment": self.user_segment[user],
            "ad": ad,
            "category": self.ad_category[ad],
            "device": device,
            "site": site,
            "position": rng.randrange(N_POSITIONS),
            "hour": rng.randrange(24),
        }

    def click_probability(self, row: dict[str, Any], *, drifted: bool) -> float:
        """The true probability that ``row`` is clicked, before or after the drift."""
        logit = (
            BASE_LOGIT
            + self.user_bias[row["user"]]
            + self.ad_quality[row["ad"]]
            + self.affinity[int(drifted)][row["segment"]][row["category"]]
            + self.device_effect[row["device"]]
            + self.site_effect[row["site"]]
            - 0.3 * row["position"]
            + 0.3 * math.sin(2 * math.pi * row["hour"] / 24)
        )
        return sigmoid(logit)

    def clicked(self, rng: random.Random, row: dict[str, Any], *, drifted: bool) -> int:
        """Draw whether ``row`` is clicked."""
        return int(rng.random() < self.click_probability(row, drifted=drifted))


MARKET = AdMarket()


def tokens(row: dict[str, Any]) -> list[str]:
    """The categorical feature tokens of an impression (one model weight each)."""
    names = [f"{field}={row[field]}" for field in FEATURE_FIELDS]
    names += ["&".join(f"{field}={row[field]}" for field in cross) for cross in CROSSES]
    return names


def is_holdout(request_id: str, share: float = 0.1) -> bool:
    """Whether an impression belongs to the holdout (``share`` of them, by a hash of its id)."""
    return zlib.crc32(request_id.encode()) % 1000 < share * 1000


def log_loss(labels: Sequence[int], predictions: Sequence[float]) -> float:
    """Mean binary cross-entropy."""
    eps = 1e-12
    total = sum(
        -math.log(max(p, eps)) if y else -math.log(max(1.0 - p, eps))
        for y, p in zip(labels, predictions, strict=True)
    )
    return total / max(len(labels), 1)


def auc(labels: Sequence[int], predictions: Sequence[float]) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); 0.5 without both classes."""
    pairs = sorted(zip(predictions, labels, strict=True))
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return 0.5
    rank_sum, rank, i = 0.0, 1, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mean_rank = rank + (j - i - 1) / 2
        rank_sum += mean_rank * sum(label for _, label in pairs[i:j])
        rank += j - i
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
