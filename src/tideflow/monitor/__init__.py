"""Monitors: feature drift of serving data and model degradation, as events a workflow acts on.

- :class:`ExampleMonitor` -- serving samples vs the deployed version's training samples (found
  through lineage): PSI / KS per numeric feature, chi-square per categorical one, over sliding
  windows; metrics ``drift.<feature>.<stat>``, event ``DRIFT_DETECTED``.
- :class:`ModelMonitor` -- predictions joined with late labels: windowed AUC / log-loss /
  calibration (``quality.*`` metrics) and River ADWIN / Page-Hinkley on the per-sample loss;
  event ``MODEL_DEGRADED``.
- :class:`Rollback` -- the job a workflow starts on ``MODEL_DEGRADED``: redeploys the previous
  version.

The pure parts they are built from are public too: :mod:`~tideflow.monitor.statistics`
(:func:`psi`, :func:`ks`, :func:`chi_square`), :class:`SlidingWindow`, :class:`DriftScorer`,
:class:`LabelJoin`, :func:`window_quality`, :class:`DegradationDetector`.

Layering: beside :mod:`tideflow.serving`; uses the client, ``tideflow.io`` and the SDK. SciPy,
NumPy and River (the ``ml`` extra) are imported when first used. See docs/monitor.md.
"""

from tideflow.monitor.drift import DriftScorer, WindowDrift
from tideflow.monitor.example_monitor import DRIFT_DETECTED, ExampleMonitor
from tideflow.monitor.join import JoinCounts, Joined, LabelJoin
from tideflow.monitor.model_monitor import MODEL_DEGRADED, ModelMonitor
from tideflow.monitor.quality import DegradationDetector, Detector, Quality, Signal, window_quality
from tideflow.monitor.rollback import Rollback
from tideflow.monitor.statistics import (
    Statistic,
    TestResult,
    bonferroni,
    chi_square,
    ks,
    psi,
)
from tideflow.monitor.window import SlidingWindow

__all__ = [
    "DRIFT_DETECTED",
    "MODEL_DEGRADED",
    "DegradationDetector",
    "Detector",
    "DriftScorer",
    "ExampleMonitor",
    "JoinCounts",
    "Joined",
    "LabelJoin",
    "ModelMonitor",
    "Quality",
    "Rollback",
    "Signal",
    "SlidingWindow",
    "Statistic",
    "TestResult",
    "WindowDrift",
    "bonferroni",
    "chi_square",
    "ks",
    "psi",
    "window_quality",
]
