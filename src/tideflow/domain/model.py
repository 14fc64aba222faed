"""Model Center entities: registered models, their versions and the versions' status history.

A version's ``status`` follows :data:`~tideflow.domain.status.MODEL_TRANSITIONS`; the history is
kept apart from the event log so compacting events never loses who was deployed when.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tideflow.domain.status import ModelStatus


@dataclass(frozen=True)
class RegisteredModel:
    """A named model of a project; its versions hold the actual artefacts.

    Attributes:
        name: The model's name, unique in its project.
        description: Free text.
        tags: String labels.
        last_version: The highest version number ever given (deleted versions included).
        create_time: When it was registered (UTC).
        update_time: When it or one of its versions last changed (UTC).
    """

    name: str
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    last_version: int = 0
    create_time: datetime | None = None
    update_time: datetime | None = None


@dataclass(frozen=True)
class ModelVersion:
    """One version of a registered model.

    Attributes:
        model: The registered model's name.
        version: Its number: per model, strictly increasing from 1, never reused.
        status: Where it stands in the lifecycle.
        uri: Where the artefact is (a blob-store URL).
        flavour: How to load it (``sklearn``, ``river``, ``pickle``, ...).
        metrics: Numbers measured when it was made (``{"auc": 0.71}``).
        params: The parameters it was trained with.
        tags: String labels.
        description: Free text.
        job_execution_id: The job execution that produced it, if any.
        create_time: When it was registered (UTC).
        update_time: When its status last changed (UTC).
    """

    model: str
    version: int
    status: ModelStatus = ModelStatus.GENERATED
    uri: str = ""
    flavour: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    job_execution_id: int | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None


@dataclass(frozen=True)
class StatusChange:
    """One entry of a model version's status history.

    Attributes:
        model: The registered model's name.
        version: The version number.
        previous: The status before the change; ``None`` when the version was created.
        status: The status after the change.
        time: When it happened (UTC).
    """

    model: str
    version: int
    previous: ModelStatus | None
    status: ModelStatus
    time: datetime
