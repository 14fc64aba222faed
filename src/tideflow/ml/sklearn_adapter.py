"""scikit-learn inside Tideflow pipelines: batch ``fit``, incremental ``partial_fit``, predict.

:class:`SklearnEstimator` wraps an unfitted scikit-learn estimator with the feature columns
(and label column) it reads; ``fit`` clones and fits it on a table and returns a
:class:`SklearnModel`, a Transformer that adds an output column (``predict``) and, for
classifiers with ``predict_proba``, probability columns. Estimators with ``partial_fit``
(``SGDClassifier``, ``MultinomialNB``, ``MiniBatchKMeans``, ...) also learn online:
``SklearnModel.partial_fit(batch)`` and ``SklearnEstimator.fit_stream(batches)``.

Features reach scikit-learn as a float NumPy array in the declared column order, both when
fitting and predicting, so the estimator never sees feature names (mixing named and unnamed
inputs is what makes scikit-learn warn).

A SklearnModel saves the fitted estimator with joblib (``estimator.joblib``, efficient for
NumPy arrays) and its column settings in the manifest's params.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tideflow.errors import FailedPreconditionError, InvalidArgumentError
from tideflow.ml.stage import OnlineEstimator, OnlineModel, Stage
from tideflow.ml.table import require_columns


class SklearnModel(OnlineModel):
    """A scikit-learn estimator as a Transformer that adds prediction columns.

    Attributes:
        estimator: The wrapped scikit-learn estimator.
        features: Columns read, in order.
        label: The label column (for ``partial_fit``).
        output: Column for ``predict``; ``None`` to skip.
        probability: Column for ``predict_proba``: the positive class's probability for a
            binary classifier, ``<probability>_<class>`` columns otherwise; ``None`` to skip.
        classes: All classes, which a first ``partial_fit`` of a classifier needs.
    """

    def __init__(
        self,
        estimator: Any,
        *,
        features: Sequence[str],
        label: str | None = None,
        output: str | None = "prediction",
        probability: str | None = "probability",
        classes: Sequence[Any] | None = None,
    ) -> None:
        self.estimator = estimator
        self.features = list(features)
        self.label = label
        self.output = output
        self.probability = probability
        self.classes = list(classes) if classes is not None else None

    def params(self) -> dict[str, Any]:
        """Estimator and column settings."""
        return {
            "estimator": repr(self.estimator),
            "features": self.features,
            "label": self.label,
            "output": self.output,
            "probability": self.probability,
            "classes": self.classes,
        }

    def transform_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add the prediction (and probability) columns."""
        require_columns(frame, self.features, "SklearnModel")
        out = frame.copy()
        if len(frame) == 0:
            return out
        x = features_of(frame, self.features)
        if self.output is not None:
            out[self.output] = self.estimator.predict(x)
        if self.probability is not None and hasattr(self.estimator, "predict_proba"):
            proba = self.estimator.predict_proba(x)
            classes = list(self.estimator.classes_)
            if len(classes) == 2:
                out[self.probability] = proba[:, 1]
            else:
                for i, cls in enumerate(classes):
                    out[f"{self.probability}_{cls}"] = proba[:, i]
        return out

    def partial_fit_frame(self, frame: pd.DataFrame) -> None:
        """One incremental step of the wrapped estimator on ``frame``.

        Raises:
            FailedPreconditionError: The estimator has no ``partial_fit``.
            InvalidArgumentError: No label column was declared, or it is missing.
        """
        if not hasattr(self.estimator, "partial_fit"):
            raise FailedPreconditionError(
                f"{type(self.estimator).__name__} has no partial_fit: fit it in batch "
                "(SklearnEstimator.fit) or choose an incremental estimator such as SGDClassifier"
            )
        x = features_of(frame, self.features)
        if self.label is None:
            self.estimator.partial_fit(x)
            return
        require_columns(frame, [self.label], "SklearnModel")
        y = frame[self.label].to_numpy()
        if self.classes is not None and not hasattr(self.estimator, "classes_"):
            self.estimator.partial_fit(x, y, classes=np.asarray(self.classes))
        else:
            self.estimator.partial_fit(x, y)

    def save_parts(self, directory: Path) -> dict[str, str]:
        """The estimator with joblib; the columns as JSON."""
        import joblib

        joblib.dump(self.estimator, directory / "estimator.joblib")
        settings = {
            "features": self.features,
            "label": self.label,
            "output": self.output,
            "probability": self.probability,
            "classes": self.classes,
        }
        (directory / "columns.json").write_text(json.dumps(settings, default=_json_scalar))
        return {"estimator": "estimator.joblib", "columns": "columns.json"}

    @classmethod
    def load_parts(cls, directory: Path, parts: dict[str, str]) -> Stage:
        """Rebuild from ``estimator.joblib`` and ``columns.json``."""
        import joblib

        settings = json.loads((directory / parts["columns"]).read_text())
        return cls(joblib.load(directory / parts["estimator"]), **settings)


class SklearnEstimator(OnlineEstimator[SklearnModel]):
    """An unfitted scikit-learn estimator with the columns it learns from.

    ``fit`` clones it (the wrapped object stays unfitted, so one SklearnEstimator can be fitted
    many times) and fits the clone; ``new_model`` / ``fit_stream`` give a model that learns
    with ``partial_fit``.
    """

    def __init__(
        self,
        estimator: Any,
        *,
        features: Sequence[str],
        label: str | None = None,
        output: str | None = "prediction",
        probability: str | None = "probability",
        classes: Sequence[Any] | None = None,
    ) -> None:
        if not features:
            raise InvalidArgumentError("SklearnEstimator needs feature columns", field="features")
        self.estimator = estimator
        self.features = list(features)
        self.label = label
        self.output = output
        self.probability = probability
        self.classes = list(classes) if classes is not None else None

    def params(self) -> dict[str, Any]:
        """Estimator and column settings."""
        return {
            "estimator": repr(self.estimator),
            "features": self.features,
            "label": self.label,
            "output": self.output,
            "probability": self.probability,
        }

    def new_model(self) -> SklearnModel:
        """An unfitted clone, ready for ``partial_fit``."""
        from sklearn.base import clone

        return SklearnModel(
            clone(self.estimator),
            features=self.features,
            label=self.label,
            output=self.output,
            probability=self.probability,
            classes=self.classes,
        )

    def fit_frame(self, frame: pd.DataFrame) -> SklearnModel:
        """Fit a clone on the whole table in one batch ``fit``."""
        model = self.new_model()
        x = features_of(frame, self.features)
        if self.label is None:
            model.estimator.fit(x)
        else:
            require_columns(frame, [self.label], "SklearnEstimator")
            model.estimator.fit(x, frame[self.label].to_numpy())
        return model


def features_of(frame: pd.DataFrame, features: Sequence[str]) -> np.ndarray[Any, Any]:
    """The feature columns of ``frame`` as a float array, in the declared order."""
    require_columns(frame, features, "scikit-learn adapter")
    array: np.ndarray[Any, Any] = frame[list(features)].to_numpy(dtype=float)
    return array


def _json_scalar(value: Any) -> Any:
    # NumPy scalars (class labels) are not JSON; .item() gives the Python value.
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
