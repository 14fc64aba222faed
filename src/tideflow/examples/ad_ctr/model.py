"""The CTR model: hashed categorical features into a logistic regression learnt online.

scikit-learn's ``FeatureHasher`` (stateless) turns an impression's tokens into a sparse row and
``SGDClassifier(loss="log_loss")`` learns with ``partial_fit`` one micro-batch at a time, at a
constant learning rate so it keeps adapting after a drift. The object is a plain callable
(``model(records) -> scores``): that is how the online predictor scores it, one call per
micro-batch. It is saved with the ``pickle`` flavour, which pickles Tideflow's own classes and
functions by value: the artefact loads with ``pickle`` and scikit-learn alone, no Tideflow
needed (docs/models.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tideflow.examples.ad_ctr.market import tokens

N_FEATURES = 1 << 18


class CtrModel:
    """Online logistic regression over hashed feature tokens.

    Args:
        learning_rate: SGD step size (constant).
        alpha: L2 regularisation.
    """

    def __init__(self, learning_rate: float = 0.05, alpha: float = 1e-5) -> None:
        from sklearn.feature_extraction import FeatureHasher
        from sklearn.linear_model import SGDClassifier

        self.hasher = FeatureHasher(N_FEATURES, input_type="string", alternate_sign=False)
        self.classifier = SGDClassifier(
            loss="log_loss", learning_rate="constant", eta0=learning_rate, alpha=alpha
        )
        self.samples = 0

    def _matrix(self, records: Sequence[dict[str, Any]]) -> Any:
        return self.hasher.transform(tokens(dict(row)) for row in records)

    @property
    def learning_rate(self) -> float:
        """The SGD step size in use."""
        return float(self.classifier.eta0)

    def set_learning_rate(self, learning_rate: float) -> None:
        """Change the step size of the next ``learn`` calls (kept when saved)."""
        self.classifier.set_params(eta0=learning_rate)

    def learn(self, records: Sequence[dict[str, Any]], labels: Sequence[int]) -> None:
        """One ``partial_fit`` step on a micro-batch of impressions and their labels."""
        if records:
            self.classifier.partial_fit(self._matrix(records), list(labels), classes=[0, 1])
            self.samples += len(records)

    def scores(self, records: Sequence[dict[str, Any]]) -> list[float]:
        """The click probability of each impression (0.5 before any training)."""
        if not records:
            return []
        if not self.samples:
            return [0.5] * len(records)
        return [float(p) for p in self.classifier.predict_proba(self._matrix(records))[:, 1]]

    __call__ = scores
