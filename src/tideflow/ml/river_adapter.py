"""River inside Tideflow pipelines: record-at-a-time online learning.

River models learn from one record (a ``dict`` of features) at a time -- ``learn_one(x, y)``,
``predict_one(x)``, ``predict_proba_one(x)`` -- which is what an online-training job on a click
stream does. :class:`RiverModel` wraps one (a classifier, a regressor, or a River
``compose.Pipeline`` with its own online preprocessing) as an :class:`OnlineModel`:

- per record: :meth:`RiverModel.learn_one`, :meth:`RiverModel.predict_proba_one`,
  :meth:`RiverModel.learn_records` (prequential: score each record, then learn from it);
- per micro-batch or table: ``transform`` adds the prediction / probability columns,
  ``partial_fit`` learns every row in order, ``learn_stream`` does both per batch.

River models pickle well, so a RiverModel saves with the default part (``stage.pkl``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from tideflow.errors import InvalidArgumentError
from tideflow.ml.stage import OnlineEstimator, OnlineModel
from tideflow.ml.table import require_columns


class RiverModel(OnlineModel):
    """A River model that learns online and adds prediction columns to tables.

    Attributes:
        model: The River model (or River pipeline).
        features: Columns passed as the record's features; ``None`` = every column except the
            label and the output columns.
        label: The label column, needed to learn.
        output: Column for ``predict_one``; ``None`` to skip.
        probability: Column for the positive class's ``predict_proba_one`` (classifiers only);
            ``None`` to skip.
        positive: The positive class; by default ``True`` if the model knows it, else ``1``.
    """

    def __init__(
        self,
        model: Any,
        *,
        features: Sequence[str] | None = None,
        label: str | None = "label",
        output: str | None = "prediction",
        probability: str | None = "probability",
        positive: Any = None,
    ) -> None:
        self.model = model
        self.features = list(features) if features is not None else None
        self.label = label
        self.output = output
        self.probability = probability
        self.positive = positive
        self.learned = 0

    def params(self) -> dict[str, Any]:
        """Model and column settings, and how many records it learned from."""
        return {
            "model": repr(self.model),
            "features": self.features,
            "label": self.label,
            "output": self.output,
            "probability": self.probability,
            "learned": self.learned,
        }

    # -- one record -------------------------------------------------------------------------

    def features_of(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The feature dict River sees for ``record``."""
        if self.features is not None:
            return {name: record[name] for name in self.features}
        skip = {self.label, self.output, self.probability}
        return {name: value for name, value in record.items() if name not in skip}

    def learn_one(self, record: Mapping[str, Any]) -> None:
        """Learn from one record holding the features and the label.

        Raises:
            InvalidArgumentError: No label column declared, or the record lacks it.
        """
        if self.label is None or self.label not in record:
            raise InvalidArgumentError(
                f"RiverModel cannot learn from a record without its label column {self.label!r}",
                field="label",
            )
        self.model.learn_one(self.features_of(record), record[self.label])
        self.learned += 1

    def predict_one(self, record: Mapping[str, Any]) -> Any:
        """The model's prediction for one record."""
        return self.model.predict_one(self.features_of(record))

    def predict_proba_one(self, record: Mapping[str, Any]) -> float:
        """The positive class's probability for one record (classifiers only)."""
        proba: Mapping[Any, float] = self.model.predict_proba_one(self.features_of(record))
        return float(proba.get(self._positive(proba), 0.0))

    def learn_records(self, records: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
        """Prequential loop over records: yield each with its prediction, then learn from it."""
        for record in records:
            out = dict(record)
            out.update(self._predict(record))
            self.learn_one(record)
            yield out

    # -- tables and micro-batches -----------------------------------------------------------

    def transform_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add the prediction / probability columns, one record at a time (no learning)."""
        if self.features is not None:
            require_columns(frame, self.features, "RiverModel")
        rows = [self._predict(record) for record in frame.to_dict(orient="records")]
        out = frame.copy()
        for column in (self.output, self.probability):
            if column is not None and (not rows or column in rows[0]):
                out[column] = [row[column] for row in rows]
        return out

    def partial_fit_frame(self, frame: pd.DataFrame) -> None:
        """Learn from every row of ``frame``, in order."""
        for record in frame.to_dict(orient="records"):
            self.learn_one(record)

    def _predict(self, record: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.output is not None:
            out[self.output] = self.predict_one(record)
        if self.probability is not None and hasattr(self.model, "predict_proba_one"):
            out[self.probability] = self.predict_proba_one(record)
        return out

    def _positive(self, proba: Mapping[Any, float]) -> Any:
        if self.positive is not None:
            return self.positive
        return True if True in proba else 1


class RiverEstimator(OnlineEstimator[RiverModel]):
    """A River model template: every fit (or stream) starts from a fresh clone."""

    def __init__(
        self,
        model: Any,
        *,
        features: Sequence[str] | None = None,
        label: str | None = "label",
        output: str | None = "prediction",
        probability: str | None = "probability",
        positive: Any = None,
    ) -> None:
        self.model = model
        self.features = list(features) if features is not None else None
        self.label = label
        self.output = output
        self.probability = probability
        self.positive = positive

    def params(self) -> dict[str, Any]:
        """Model and column settings."""
        return {"model": repr(self.model), "features": self.features, "label": self.label}

    def new_model(self) -> RiverModel:
        """A fresh clone of the template, untrained."""
        return RiverModel(
            self.model.clone(),
            features=self.features,
            label=self.label,
            output=self.output,
            probability=self.probability,
            positive=self.positive,
        )
