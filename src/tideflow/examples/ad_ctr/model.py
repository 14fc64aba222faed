"""The CTR model: categorical feature tokens into a logistic regression learnt online.

Each impression is a handful of tokens (its fields and two crosses, :func:`market.tokens`), so
the model is a sparse logistic regression: a weight per token seen, an intercept, and plain
stochastic gradient descent on the log loss at a constant learning rate, one sample at a time
in arrival order, so it keeps adapting after a drift. The step is scikit-learn's
``SGDClassifier(loss="log_loss", learning_rate="constant")`` on sparse input: L2 shrinkage of
the weights before each step, the intercept learning at a hundredth of the rate.

It is pure Python on purpose: a job that loads a version (the trainer's warm start, each
validation, each swap of the predictor) need not import scikit-learn, SciPy and pandas first --
seconds on a busy machine, and on the critical path of the quickstart's story (issue 20). A
version's blob is a few thousand weights, not a 2^18 dense array.

The object is a plain callable (``model(records) -> scores``): that is how the online predictor
scores it, one call per micro-batch. It is saved with the ``pickle`` flavour, which pickles
Tideflow's own classes and functions by value: the artefact loads with ``pickle`` alone, no
Tideflow needed (docs/models.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tideflow.examples.ad_ctr.market import tokens

INTERCEPT_DECAY = 0.01
"""The intercept's share of each step (scikit-learn's ``SPARSE_INTERCEPT_DECAY``)."""
_MIN_SCALE = 1e-9
"""Below this the lazy L2 scale is folded into the weights (as scikit-learn's ``WeightVector``)."""


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _log_loss_gradient(y: float, p: float) -> float:
    """d(log loss)/d(decision) for a label ``y`` in {-1, +1} (scikit-learn's ``Log.dloss``)."""
    z = p * y
    if z > 18.0:
        return -y * math.exp(-z)
    if z < -18.0:
        return -y
    return -y / (math.exp(z) + 1.0)


class CtrModel:
    """Online logistic regression over categorical feature tokens.

    Args:
        learning_rate: SGD step size (constant).
        alpha: L2 regularisation.
    """

    def __init__(self, learning_rate: float = 0.05, alpha: float = 1e-5) -> None:
        self.eta = float(learning_rate)
        self.alpha = float(alpha)
        self.weights: dict[str, float] = {}
        """Each token's weight, divided by ``scale`` (the L2 shrinkage is applied lazily)."""
        self.scale = 1.0
        self.intercept = 0.0
        self.samples = 0

    @property
    def learning_rate(self) -> float:
        """The SGD step size in use."""
        return self.eta

    def set_learning_rate(self, learning_rate: float) -> None:
        """Change the step size of the next ``learn`` calls (kept when saved)."""
        self.eta = float(learning_rate)

    def _decision(self, names: Sequence[str]) -> float:
        weights = self.weights
        return self.scale * sum(weights.get(name, 0.0) for name in names) + self.intercept

    def learn(self, records: Sequence[dict[str, Any]], labels: Sequence[int]) -> None:
        """One SGD step per impression of a micro-batch, in order."""
        weights = self.weights
        shrink = max(0.0, 1.0 - self.eta * self.alpha)
        for row, label in zip(records, labels, strict=True):
            names = tokens(dict(row))
            y = 1.0 if label else -1.0
            update = -self.eta * _log_loss_gradient(y, self._decision(names))
            self.scale *= shrink
            if self.scale < _MIN_SCALE:
                for name in weights:
                    weights[name] *= self.scale
                self.scale = 1.0
            if update:
                step = update / self.scale
                for name in names:
                    weights[name] = weights.get(name, 0.0) + step
                self.intercept += update * INTERCEPT_DECAY
        self.samples += len(records)

    def scores(self, records: Sequence[dict[str, Any]]) -> list[float]:
        """The click probability of each impression (0.5 before any training)."""
        if not self.samples:
            return [0.5] * len(records)
        return [_sigmoid(self._decision(tokens(dict(row)))) for row in records]

    __call__ = scores
