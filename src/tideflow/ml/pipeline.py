"""Pipelines: a sequence of Transformers and Estimators, fitted into a PipelineModel.

Fitting follows Flink ML: stages run in order on the training table; a Transformer transforms
it; an Estimator is fitted on the table as it is at that point, and its Model transforms the
table for the stages after it. The PipelineModel holds the Transformers and fitted Models in
order, and transforms a table (or a micro-batch) through all of them.

A pipeline saves as a directory whose manifest lists its stages, each saved the same way under
``stages/<index>/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tideflow.errors import InvalidArgumentError
from tideflow.ml.stage import Estimator, OnlineModel, Stage, Transformer


class PipelineModel(OnlineModel):
    """Fitted stages applied in order; learns online through its online stages.

    ``partial_fit`` passes a micro-batch through the stages in order: each online stage learns
    from the batch as the stages before it transformed it, then transforms it for the next.
    """

    def __init__(self, stages: Sequence[Transformer]) -> None:
        for stage in stages:
            if not isinstance(stage, Transformer):
                raise InvalidArgumentError(
                    f"a PipelineModel holds Transformers, got {type(stage).__name__}",
                    field="stages",
                )
        self.stages = list(stages)

    def params(self) -> dict[str, Any]:
        """The stage classes in order."""
        return {"stages": [type(stage).__name__ for stage in self.stages]}

    def transform_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Transform through every stage."""
        for stage in self.stages:
            frame = stage.transform_frame(frame)
        return frame

    def partial_fit_frame(self, frame: pd.DataFrame) -> None:
        """Let each online stage learn from the batch as transformed by the stages before it.

        Raises:
            InvalidArgumentError: No stage learns online.
        """
        if not any(isinstance(stage, OnlineModel) for stage in self.stages):
            raise InvalidArgumentError("this PipelineModel has no online stage to partial_fit")
        for index, stage in enumerate(self.stages):
            if isinstance(stage, OnlineModel):
                stage.partial_fit_frame(frame)
            if index < len(self.stages) - 1:
                frame = stage.transform_frame(frame)

    def save_parts(self, directory: Path) -> dict[str, str]:
        """Save every stage into ``stages/<index>/``."""
        return _save_stages(self.stages, directory)

    @classmethod
    def load_parts(cls, directory: Path, parts: dict[str, str]) -> Stage:
        """Load the stages back, in order."""
        stages = _load_stages(directory, parts)
        return cls([stage for stage in stages if isinstance(stage, Transformer)])


class Pipeline(Estimator[PipelineModel]):
    """Transformers and Estimators in order; ``fit`` gives a :class:`PipelineModel`."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        for stage in stages:
            if not isinstance(stage, Transformer | Estimator):
                raise InvalidArgumentError(
                    f"a Pipeline holds Transformers and Estimators, got {type(stage).__name__}",
                    field="stages",
                )
        self.stages = list(stages)

    def params(self) -> dict[str, Any]:
        """The stage classes in order."""
        return {"stages": [type(stage).__name__ for stage in self.stages]}

    def fit_frame(self, frame: pd.DataFrame) -> PipelineModel:
        """Fit the Estimators in order, each on the table the stages before it produced."""
        last_estimator = max(
            (i for i, stage in enumerate(self.stages) if isinstance(stage, Estimator)), default=-1
        )
        fitted: list[Transformer] = []
        for index, stage in enumerate(self.stages):
            transformer = stage.fit_frame(frame) if isinstance(stage, Estimator) else stage
            assert isinstance(transformer, Transformer)
            fitted.append(transformer)
            # Past the last Estimator nothing needs the transformed training table.
            if index < last_estimator:
                frame = transformer.transform_frame(frame)
        return PipelineModel(fitted)

    def save_parts(self, directory: Path) -> dict[str, str]:
        """Save every stage into ``stages/<index>/``."""
        return _save_stages(self.stages, directory)

    @classmethod
    def load_parts(cls, directory: Path, parts: dict[str, str]) -> Stage:
        """Load the stages back, in order."""
        return cls(_load_stages(directory, parts))


def _save_stages(stages: Sequence[Stage], directory: Path) -> dict[str, str]:
    parts = {}
    for index, stage in enumerate(stages):
        relative = f"stages/{index}"
        stage.save(directory / relative)
        parts[f"stage-{index}"] = relative
    return parts


def _load_stages(directory: Path, parts: dict[str, str]) -> list[Stage]:
    count = len([role for role in parts if role.startswith("stage-")])
    return [Stage.load(directory / parts[f"stage-{index}"]) for index in range(count)]
