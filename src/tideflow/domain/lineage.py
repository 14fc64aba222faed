"""Lineage: which job execution read or wrote which dataset versions, models and artifacts.

A job execution's lineage is recorded in one call (inputs and outputs together, one
transaction), in the spirit of ML Metadata's ``put_execution``: a reader never sees an execution
with half its inputs. Queries go both ways: upstream from a model version (what produced it,
from which data) and downstream from a dataset (what read it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class LineageKind(StrEnum):
    """What a lineage reference points at."""

    DATASET = "dataset"
    MODEL_VERSION = "model_version"
    ARTIFACT = "artifact"


@dataclass(frozen=True)
class LineageRef:
    """A dataset version (with an optional stream offset range), a model version or an artifact.

    Attributes:
        kind: What it points at.
        name: The dataset, model or artifact name.
        version: The dataset or model version; for datasets ``None`` means "the current one" when
            recording and is stored resolved.
        start_offset: For streams, the first offset read or written.
        end_offset: For streams, the last offset read or written.
    """

    kind: LineageKind
    name: str
    version: int | None = None
    start_offset: int | None = None
    end_offset: int | None = None

    @classmethod
    def dataset(
        cls,
        name: str,
        version: int | None = None,
        *,
        start_offset: int | None = None,
        end_offset: int | None = None,
    ) -> LineageRef:
        """A dataset version, optionally with the stream offset range."""
        return cls(LineageKind.DATASET, name, version, start_offset, end_offset)

    @classmethod
    def model_version(cls, model: str, version: int) -> LineageRef:
        """A model version."""
        return cls(LineageKind.MODEL_VERSION, model, version)

    @classmethod
    def artifact(cls, name: str) -> LineageRef:
        """An artifact."""
        return cls(LineageKind.ARTIFACT, name)


@dataclass(frozen=True)
class LineageRecord:
    """Everything one job execution read and wrote.

    Attributes:
        job_execution_id: The job execution.
        execution_id: Its workflow execution.
        workflow: The workflow's name.
        job: The job's name.
        inputs: What it read.
        outputs: What it wrote.
        time: When the lineage was recorded (UTC).
    """

    job_execution_id: int
    execution_id: int
    workflow: str
    job: str
    inputs: tuple[LineageRef, ...] = ()
    outputs: tuple[LineageRef, ...] = ()
    time: datetime | None = None
