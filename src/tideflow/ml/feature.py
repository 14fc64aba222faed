"""Built-in preprocessing stages that give identical rows on a table and on its micro-batches.

Each fitted stage maps a row using only what it learned in ``fit`` (never statistics of the
batch at hand), and always emits the same output columns whatever values a batch holds (a
one-hot column exists for every learned category, even in a batch where it does not occur).
Those two rules make ``transform(table)`` equal the concatenation of ``transform(batch)`` over
any split of the table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tideflow.errors import InvalidArgumentError
from tideflow.ml.stage import Estimator, Model, OnlineEstimator, OnlineModel, Transformer
from tideflow.ml.table import require_columns


class StandardScalerModel(OnlineModel):
    """Centres and scales columns with learned means and standard deviations.

    It can keep learning (``partial_fit`` merges a batch's moments, Chan et al.), which changes
    later transforms; freeze it by not calling ``partial_fit``.
    """

    def __init__(self, columns: Sequence[str], *, suffix: str = "") -> None:
        self.columns = list(columns)
        self.suffix = suffix
        self.count = 0
        self.mean = np.zeros(len(self.columns))
        self.m2 = np.zeros(len(self.columns))

    @property
    def std(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Population standard deviation per column (1 where it is 0, so constants map to 0)."""
        if self.count == 0:
            return np.ones(len(self.columns))
        std = np.sqrt(self.m2 / self.count)
        return np.where(std > 0, std, 1.0)

    def params(self) -> dict[str, Any]:
        """Columns, suffix and the learned statistics."""
        return {
            "columns": self.columns,
            "suffix": self.suffix,
            "count": self.count,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
        }

    def partial_fit_frame(self, frame: pd.DataFrame) -> None:
        """Merge the moments of ``frame`` into the learned ones."""
        require_columns(frame, self.columns, "StandardScaler")
        values = frame[self.columns].to_numpy(dtype=float)
        n = values.shape[0]
        batch_mean = values.mean(axis=0)
        batch_m2 = ((values - batch_mean) ** 2).sum(axis=0)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + batch_m2 + delta**2 * (self.count * n / total)
        self.count = total

    def transform_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Scale the columns (into ``<column><suffix>``; in place when the suffix is empty)."""
        require_columns(frame, self.columns, "StandardScaler")
        out = frame.copy()
        scaled = (frame[self.columns].to_numpy(dtype=float) - self.mean) / self.std
        for i, column in enumerate(self.columns):
            out[column + self.suffix] = scaled[:, i]
        return out


class StandardScaler(OnlineEstimator[StandardScalerModel]):
    """Learns per-column mean and standard deviation (batch or online)."""

    def __init__(self, columns: Sequence[str], *, suffix: str = "") -> None:
        if not columns:
            raise InvalidArgumentError("StandardScaler needs at least one column", field="columns")
        self.columns = list(columns)
        self.suffix = suffix

    def params(self) -> dict[str, Any]:
        """Columns and suffix."""
        return {"columns": self.columns, "suffix": self.suffix}

    def new_model(self) -> StandardScalerModel:
        """An untrained scaler (identity until it learns)."""
        return StandardScalerModel(self.columns, suffix=self.suffix)


class OneHotEncoderModel(Model):
    """Replaces categorical columns with one 0/1 column per learned category.

    Output columns are ``<column>=<category>`` for every learned category, in a fixed order;
    an unseen category gives all zeros.
    """

    def __init__(self, categories: dict[str, list[Any]], *, drop: bool = True) -> None:
        self.categories = categories
        self.drop = drop

    def params(self) -> dict[str, Any]:
        """The learned categories per column."""
        return {"categories": {k: [str(v) for v in vs] for k, vs in self.categories.items()}}

    def output_columns(self) -> list[str]:
        """The columns this stage adds, in order."""
        return [f"{c}={v}" for c, values in self.categories.items() for v in values]

    def transform_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add the indicator columns (and drop the categorical ones unless ``drop=False``)."""
        require_columns(frame, list(self.categories), "OneHotEncoder")
        indicators = {
            f"{column}={value}": (frame[column] == value).astype(np.int8)
            for column, values in self.categories.items()
            for value in values
        }
        out = frame.drop(columns=list(self.categories)) if self.drop else frame
        return pd.concat([out, pd.DataFrame(indicators, index=frame.index)], axis=1)


class OneHotEncoder(Estimator[OneHotEncoderModel]):
    """Learns the categories of columns (sorted, so the output is deterministic)."""

    def __init__(self, columns: Sequence[str], *, drop: bool = True) -> None:
        if not columns:
            raise InvalidArgumentError("OneHotEncoder needs at least one column", field="columns")
        self.columns = list(columns)
        self.drop = drop

    def params(self) -> dict[str, Any]:
        """Columns and whether to drop them."""
        return {"columns": self.columns, "drop": self.drop}

    def fit_frame(self, frame: pd.DataFrame) -> OneHotEncoderModel:
        """Collect each column's distinct non-null values."""
        require_columns(frame, self.columns, "OneHotEncoder")
        categories = {
            column: sorted(frame[column].dropna().unique().tolist(), key=str)
            for column in self.columns
        }
        return OneHotEncoderModel(categories, drop=self.drop)


class FeatureHasher(Transformer):
    """Hashes categorical columns into ``n_features`` numeric columns (stateless, no fit).

    Each ``column=value`` pair is hashed with BLAKE2b (stable across processes and machines,
    unlike Python's ``hash``) to an index and a sign; the output columns are
    ``<prefix>0`` ... ``<prefix>{n_features-1}``. Suits high-cardinality ids (users, ads) that
    arrive on a stream and cannot be enumerated in advance.
    """

    def __init__(
        self, columns: Sequence[str], *, n_features: int = 32, prefix: str = "h", drop: bool = True
    ) -> None:
        if not columns:
            raise InvalidArgumentError("FeatureHasher needs at least one column", field="columns")
        if n_features < 1:
            raise InvalidArgumentError("n_features must be >= 1", field="n_features")
        self.columns = list(columns)
        self.n_features = n_features
        self.prefix = prefix
        self.drop = drop

    def params(self) -> dict[str, Any]:
        """Columns, width, prefix."""
        return {"columns": self.columns, "n_features": self.n_features, "prefix": self.prefix}

    def transform_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add the hashed columns."""
        require_columns(frame, self.columns, "FeatureHasher")
        matrix = np.zeros((len(frame), self.n_features))
        for column in self.columns:
            for row, value in enumerate(frame[column].tolist()):
                index, sign = self._bucket(f"{column}={value}")
                matrix[row, index] += sign
        hashed = pd.DataFrame(
            matrix,
            index=frame.index,
            columns=[f"{self.prefix}{i}" for i in range(self.n_features)],
        )
        out = frame.drop(columns=self.columns) if self.drop else frame
        return pd.concat([out, hashed], axis=1)

    def _bucket(self, token: str) -> tuple[int, float]:
        digest = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "big")
        return digest % self.n_features, 1.0 if (digest >> 63) == 0 else -1.0


class FunctionTransformer(Transformer):
    """Applies a row-wise function ``DataFrame -> DataFrame``.

    The function must compute each output row from its input row only (no batch statistics),
    or batch and stream results differ. It is pickled with cloudpickle when saved, so a lambda
    or a local function works.
    """

    def __init__(self, function: Callable[[pd.DataFrame], pd.DataFrame], *, name: str = "") -> None:
        self.function = function
        self.name = name or getattr(function, "__name__", "function")

    def params(self) -> dict[str, Any]:
        """The function's name."""
        return {"function": self.name}

    def transform_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Apply the function."""
        out = self.function(frame)
        if not isinstance(out, pd.DataFrame):
            raise InvalidArgumentError(
                f"FunctionTransformer {self.name!r} returned {type(out).__name__}, not a DataFrame"
            )
        return out
