"""The scoring code shipped inside every MLflow model directory Tideflow exports.

``tideflow model export --format mlflow`` copies this file into the directory's ``code/`` and
names it the ``loader_module`` of the ``python_function`` flavour, so
``mlflow.pyfunc.load_model(DIR)`` imports it -- **not** Tideflow. It must therefore import
nothing from ``tideflow``: only the standard library, and NumPy / pandas / joblib when the model
needs them. It scores exactly as the predictor's default scorer
(:func:`tideflow.serving.scorer.default_scorer`), which the export tests check record by
record:

- River-style models (``predict_proba_one``): the positive class's probability, record by
  record; ``predict_one`` otherwise;
- scikit-learn-style models: ``predict_proba`` (the positive column when binary, the row
  otherwise) or ``predict`` on the feature columns in the model's order;
- a plain callable: ``model(records)``.

The data directory holds ``model.pkl`` (a pickle) and ``tideflow.json`` (``features``: the
column order for array-fitted models, or null).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return value


def _positive(proba: Mapping[Any, float]) -> float:
    for label in (True, 1, "1"):
        if label in proba:
            return float(proba[label])
    return float(max(proba.values())) if proba else 0.0


def _records(model_input: Any) -> list[dict[str, Any]]:
    if hasattr(model_input, "to_dict") and hasattr(model_input, "columns"):  # a DataFrame
        rows = model_input.to_dict(orient="records")
    elif isinstance(model_input, Mapping):
        rows = [model_input]
    else:
        rows = list(model_input)
    # pandas fills a missing optional value with NaN or None: the predictor sees no key.
    return [{str(k): _plain(v) for k, v in row.items() if v is not None and v == v} for row in rows]


def score(
    model: Any, records: Sequence[Mapping[str, Any]], features: Sequence[str] | None
) -> list[Any]:
    """One score per record, as the Tideflow predictor scores them (module docstring)."""
    if not records:
        return []
    if hasattr(model, "predict_proba_one"):
        return [_positive(model.predict_proba_one(dict(r))) for r in records]
    if hasattr(model, "predict_one"):
        return [_plain(model.predict_one(dict(r))) for r in records]
    if hasattr(model, "predict_proba") or hasattr(model, "predict"):
        names = getattr(model, "feature_names_in_", None)
        columns = list(names) if names is not None else list(features or records[0].keys())
        rows = [[r[c] for c in columns] for r in records]
        if names is not None:
            import pandas as pd

            table: Any = pd.DataFrame(rows, columns=columns)
        else:
            import numpy as np

            table = np.asarray(rows, dtype=float)
        if hasattr(model, "predict_proba"):
            proba = model.predict_proba(table)
            if getattr(proba, "ndim", 2) == 2 and proba.shape[1] == 2:
                return [float(p) for p in proba[:, 1]]
            return [_plain(row) for row in proba]
        return [_plain(p) for p in model.predict(table)]
    return [_plain(s) for s in model(list(records))]


class ExportedModel:
    """What ``mlflow.pyfunc.load_model`` wraps: the model object and how to score it."""

    def __init__(self, model: Any, features: Sequence[str] | None) -> None:
        self.model = model
        self.features = list(features) if features is not None else None

    def predict(self, model_input: Any, params: Mapping[str, Any] | None = None) -> Any:
        """One score per row of ``model_input`` (a DataFrame, a record or a list of records)."""
        scores = score(self.model, _records(model_input), self.features)
        if all(isinstance(s, float | int) and not isinstance(s, bool) for s in scores):
            import numpy as np

            return np.asarray(scores, dtype=float)
        return scores


def _load_pyfunc(data_path: str) -> ExportedModel:
    """MLflow's entry point: the model in ``data_path`` (the directory written at export)."""
    root = Path(data_path)
    meta = json.loads((root / "tideflow.json").read_text(encoding="utf-8"))
    with (root / "model.pkl").open("rb") as file:
        model = pickle.load(file)
    return ExportedModel(model, meta.get("features"))
