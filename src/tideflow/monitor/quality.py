"""Model quality on joined samples: windowed metrics and a degradation detector.

:func:`window_quality` computes AUC (Mann-Whitney, ties counted half; ``None`` without both
classes), mean log-loss (probabilities clipped to ``[1e-15, 1 - 1e-15]``) and calibration
(mean predicted probability / observed positive rate; ``None`` with no positive).

:class:`DegradationDetector` feeds a River drift detector one number per sample -- the
sample's log-loss (default) or its error ``|label - score|`` -- and reports a **degradation**
when the detector flags a change *upwards* (the loss got worse; ADWIN flags changes both ways,
so the mean before and after its cut are compared; Page-Hinkley runs in ``up`` mode, with a
threshold of 100 by default). After a
report it is deaf for ``cooldown`` samples and starts over with a fresh detector, so one change
is reported once, not at every sample while the detector's window still straddles it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tideflow.errors import InvalidArgumentError

EPS = 1e-15

PAGE_HINKLEY_DEFAULTS: dict[str, Any] = {"mode": "up", "threshold": 100.0}
"""River's threshold of 50 raised about one false alarm per 20,000 samples of per-sample
log-loss of a well-calibrated model (seeded runs, tests/monitor/test_detection.py); 100
raises about one per 200,000 and still detects a +0.2 rise in click rate within ~600."""


class Detector(StrEnum):
    """The River drift detectors a model monitor can use."""

    ADWIN = "adwin"
    PAGE_HINKLEY = "page_hinkley"


class Signal(StrEnum):
    """What the detector is fed per sample."""

    LOG_LOSS = "log_loss"
    ERROR = "error"


@dataclass(frozen=True)
class Quality:
    """Metrics of one window of joined samples."""

    samples: int
    auc: float | None
    log_loss: float
    calibration: float | None

    def as_dict(self) -> dict[str, float | None]:
        """``{"auc", "log_loss", "calibration"}`` (the ``metrics`` of ``MODEL_DEGRADED``)."""
        return {"auc": self.auc, "log_loss": self.log_loss, "calibration": self.calibration}


def sample_log_loss(label: int, score: float) -> float:
    """The log-loss of one prediction."""
    p = min(max(score, EPS), 1.0 - EPS)
    return -math.log(p) if label else -math.log(1.0 - p)


def auc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve; ``None`` unless both classes are present."""
    import numpy as np
    from scipy.stats import rankdata

    y = np.asarray(labels, dtype=float)
    positives = float(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(np.asarray(scores, dtype=float))
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def window_quality(labels: Sequence[int], scores: Sequence[float]) -> Quality:
    """AUC, log-loss and calibration of a window.

    Raises:
        InvalidArgumentError: Empty window, or lengths differ.
    """
    if not labels or len(labels) != len(scores):
        raise InvalidArgumentError(
            f"a window needs as many labels as scores, and some: {len(labels)} vs {len(scores)}"
        )
    import numpy as np

    y = np.asarray(labels, dtype=float)
    p = np.clip(np.asarray(scores, dtype=float), EPS, 1.0 - EPS)
    loss = float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))
    observed = float(y.mean())
    calibration = float(p.mean()) / observed if observed > 0 else None
    return Quality(len(labels), auc(labels, scores), loss, calibration)


class DegradationDetector:
    """A River drift detector on per-sample loss, with an upward-only verdict and a cooldown.

    Args:
        detector: ``adwin`` or ``page_hinkley``.
        signal: ``log_loss`` or ``error``.
        cooldown: Samples ignored after a report before a new detector starts.
        options: Keyword arguments of the River detector (``delta=``, ``threshold=``, ...).
    """

    def __init__(
        self,
        detector: Detector | str = Detector.ADWIN,
        *,
        signal: Signal | str = Signal.LOG_LOSS,
        cooldown: int = 1000,
        options: dict[str, Any] | None = None,
    ) -> None:
        try:
            self.kind = Detector(detector)
        except ValueError:
            raise InvalidArgumentError(
                f"detector must be adwin or page_hinkley, got {detector!r}", field="detector"
            ) from None
        try:
            self.signal = Signal(signal)
        except ValueError:
            raise InvalidArgumentError(
                f"signal must be log_loss or error, got {signal!r}", field="signal"
            ) from None
        if cooldown < 0:
            raise InvalidArgumentError(f"cooldown must be >= 0, got {cooldown}", field="cooldown")
        self.cooldown = cooldown
        self.options = dict(options or {})
        self.samples = 0
        self.detections = 0
        self._deaf = 0
        self._detector = self._new()

    def _new(self) -> Any:
        from river import drift

        if self.kind is Detector.ADWIN:
            return drift.ADWIN(**self.options)  # type: ignore[no-untyped-call]
        return drift.PageHinkley(**{**PAGE_HINKLEY_DEFAULTS, **self.options})

    def value(self, label: int, score: float) -> float:
        """The number fed for one sample."""
        if self.signal is Signal.LOG_LOSS:
            return sample_log_loss(label, score)
        return abs(label - score)

    def update(self, label: int, score: float) -> bool:
        """Feed one joined sample; True when it completes a detected degradation."""
        self.samples += 1
        if self._deaf > 0:
            self._deaf -= 1
            if self._deaf == 0:
                self._detector = self._new()
            return False
        detector = self._detector
        before = getattr(detector, "estimation", None)
        detector.update(self.value(label, score))
        if not detector.drift_detected:
            return False
        if self.kind is Detector.ADWIN and before is not None and detector.estimation <= before:
            return False  # the loss fell: an improvement, not a degradation
        self.detections += 1
        if self.cooldown:
            self._deaf = self.cooldown
        else:
            self._detector = self._new()
        return True

    def reset(self) -> None:
        """Start over (a new model version is served)."""
        self._deaf = 0
        self._detector = self._new()
