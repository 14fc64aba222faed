"""Turning a model object and a batch of JSON records into one score per record.

:func:`default_scorer` knows the usual shapes; pass your own ``scorer(model, records) ->
scores`` to the predictor for anything else:

- River-style online models (``predict_proba_one``): record by record, the probability of the
  positive class (``True`` or ``1``); ``predict_one`` otherwise.
- scikit-learn-style models (``predict_proba`` / ``predict``): one call for the whole batch. The
  feature columns are the model's ``feature_names_in_`` when it was fitted on a DataFrame (a
  DataFrame is passed), else ``features`` when given, else the keys of the first record, in
  order (a 2-D array is passed). A binary ``predict_proba`` gives the positive class's
  probability; more classes give the whole row.
- A plain callable: ``model(records)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tideflow.errors import InvalidArgumentError

Scorer = Callable[[Any, Sequence[Mapping[str, Any]]], Sequence[Any]]


def plain(value: Any) -> Any:
    """``value`` as JSON-ready Python (numpy scalars and arrays become floats and lists)."""
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


def default_scorer(
    model: Any, records: Sequence[Mapping[str, Any]], *, features: Sequence[str] | None = None
) -> list[Any]:
    """One score per record (see the module docstring).

    Raises:
        InvalidArgumentError: A record lacks a feature the model needs, or the model is of no
            known shape.
    """
    if not records:
        return []
    if hasattr(model, "predict_proba_one"):
        return [_positive(model.predict_proba_one(dict(r))) for r in records]
    if hasattr(model, "predict_one"):
        return [plain(model.predict_one(dict(r))) for r in records]
    if hasattr(model, "predict_proba") or hasattr(model, "predict"):
        table = _table(model, records, features)
        if hasattr(model, "predict_proba"):
            proba = model.predict_proba(table)
            if getattr(proba, "ndim", 2) == 2 and proba.shape[1] == 2:
                return [float(p) for p in proba[:, 1]]
            return [plain(row) for row in proba]
        return [plain(p) for p in model.predict(table)]
    if callable(model):
        return [plain(s) for s in model(list(records))]
    raise InvalidArgumentError(
        f"cannot score with a {type(model).__name__}: it has no predict_proba_one, predict_one, "
        "predict_proba or predict and is not callable; give the predictor a scorer",
        field="model",
    )


def _table(model: Any, records: Sequence[Mapping[str, Any]], features: Sequence[str] | None) -> Any:
    names = getattr(model, "feature_names_in_", None)
    columns = list(names) if names is not None else list(features or records[0].keys())
    try:
        rows = [[r[c] for c in columns] for r in records]
    except KeyError as e:
        raise InvalidArgumentError(
            f"a record lacks feature {e.args[0]!r} (the model reads {columns})", field="records"
        ) from None
    if names is not None:  # fitted on a DataFrame: give it one, with the same columns
        import pandas as pd

        return pd.DataFrame(rows, columns=columns)
    import numpy as np

    return np.asarray(rows, dtype=float)
