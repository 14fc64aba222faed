"""Stages in the style of Flink ML: Transformer, Model, Estimator, online models.

Design decisions:

- **One object for batch and stream.** ``Transformer.transform(table) -> table`` takes a whole
  table or one micro-batch alike; ``transform_stream(batches)`` maps it over an iterable of
  micro-batches. A fitted transformer keeps no state between calls (its state is what ``fit``
  learned), so transforming a table gives the same rows as transforming the same rows split
  into micro-batches -- the unified batch/stream preprocessing of DESIGN.md, tested.
- **Fitting is separate from transforming.** ``Estimator.fit(table) -> Model``; a Model is a
  Transformer. Online learners are :class:`OnlineModel` s: ``partial_fit(batch)`` updates them
  in place, batch by batch (or record by record), and ``learn_stream`` does the prequential
  loop (predict a batch, then learn from it) over a stream.
- **Subclasses implement frame hooks** (``transform_frame``, ``fit_frame``,
  ``partial_fit_frame``) on pandas DataFrames; the public methods convert whatever the caller
  handed in (DataFrame, Arrow table, records) and answer in the same kind.
- **Saving** goes through :mod:`tideflow.ml.persist` (a directory: ``manifest.json`` + parts).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

import pandas as pd

from tideflow.ml.table import TableKind, TableLike, from_frame, kind_of, to_frame


class Stage(ABC):  # noqa: B024 - abstract in role: only its subclasses are instantiated
    """A step of an ML pipeline that can be saved to and loaded from a directory."""

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save this stage into directory ``path`` (created; must not exist or be empty).

        Returns:
            The directory.
        """
        from tideflow.ml.persist import save_stage

        return save_stage(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Load a stage saved with :meth:`save`; it must be an instance of ``cls``.

        Only load directories you trust: the parts are pickles, and unpickling runs code.
        """
        from tideflow.ml.persist import load_stage

        return load_stage(path, cls)

    def params(self) -> dict[str, Any]:
        """JSON-ready settings shown in the saved manifest (informational; override to add)."""
        return {}

    def save_parts(self, directory: Path) -> dict[str, str]:
        """Write this stage's state into ``directory``; return the parts by role.

        The default pickles the whole stage with cloudpickle into ``stage.pkl``. Override (with
        :meth:`load_parts`) to store big or library-specific state in a better format.
        """
        from tideflow.ml.persist import dump_pickle

        dump_pickle(self, directory / "stage.pkl")
        return {"stage": "stage.pkl"}

    @classmethod
    def load_parts(cls, directory: Path, parts: dict[str, str]) -> Stage:
        """Rebuild a stage from what :meth:`save_parts` wrote."""
        from tideflow.ml.persist import load_pickle

        loaded: Stage = load_pickle(directory / parts["stage"])
        return loaded


class Transformer(Stage):
    """Maps a table to a table, row by row: the same on a whole table and on micro-batches."""

    def transform(self, table: TableLike) -> TableLike:
        """Transform ``table`` (DataFrame, Arrow table or records); answer in the same kind."""
        kind = kind_of(table)
        if kind is TableKind.RECORDS and len(table) == 0:
            return []
        return from_frame(self.transform_frame(to_frame(table)), kind)

    def transform_stream(self, batches: Iterable[TableLike]) -> Iterator[TableLike]:
        """Transform each micro-batch of a stream, lazily, in order."""
        for batch in batches:
            yield self.transform(batch)

    @abstractmethod
    def transform_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Transform one DataFrame (a whole table or one micro-batch); keep its index."""


class Model(Transformer):
    """A Transformer that an Estimator fitted."""


class OnlineModel(Model):
    """A Model that keeps learning from a stream, one micro-batch (or record) at a time."""

    def partial_fit(self, table: TableLike) -> Self:
        """Learn from one micro-batch (or a whole table) in place; return ``self``."""
        frame = to_frame(table)
        if len(frame):
            self.partial_fit_frame(frame)
        return self

    def learn_stream(
        self, batches: Iterable[TableLike], *, predict_first: bool = True
    ) -> Iterator[TableLike]:
        """Prequential learning: yield each batch transformed, then learn from it.

        Args:
            batches: Micro-batches in stream order.
            predict_first: Transform each batch with the model *before* it learns from it (the
                honest online score); False learns first.
        """
        for batch in batches:
            if predict_first:
                out = self.transform(batch)
                self.partial_fit(batch)
            else:
                self.partial_fit(batch)
                out = self.transform(batch)
            yield out

    @abstractmethod
    def partial_fit_frame(self, frame: pd.DataFrame) -> None:
        """Learn from one non-empty DataFrame, in place."""


ModelT = TypeVar("ModelT", bound=Model)


class Estimator(Stage, Generic[ModelT]):
    """Fits a Model on a table."""

    def fit(self, table: TableLike) -> ModelT:
        """Fit a new Model on ``table`` (DataFrame, Arrow table or records)."""
        return self.fit_frame(to_frame(table))

    @abstractmethod
    def fit_frame(self, frame: pd.DataFrame) -> ModelT:
        """Fit a new Model on one DataFrame."""


OnlineModelT = TypeVar("OnlineModelT", bound=OnlineModel)


class OnlineEstimator(Estimator[OnlineModelT]):
    """An Estimator whose Models learn online: ``fit`` is ``partial_fit`` on a fresh model."""

    @abstractmethod
    def new_model(self) -> OnlineModelT:
        """A fresh, untrained Model."""

    def fit_frame(self, frame: pd.DataFrame) -> OnlineModelT:
        """Fit a fresh model on ``frame`` in one pass."""
        return self.new_model().partial_fit(frame)

    def fit_stream(self, batches: Iterable[TableLike]) -> Iterator[OnlineModelT]:
        """Learn from a stream; yield the (same, updated) model after each micro-batch."""
        model = self.new_model()
        for batch in batches:
            yield model.partial_fit(batch)
