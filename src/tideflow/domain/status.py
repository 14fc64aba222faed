"""Statuses and actions: the stable string values shared by the SDK, the store and the wire.

The values never change once released: they are stored in databases and sent over gRPC.
"""

from __future__ import annotations

from enum import StrEnum


class JobAction(StrEnum):
    """What a rule does to its job when its condition fires."""

    START = "START"
    STOP = "STOP"
    RESTART = "RESTART"
    NONE = "NONE"


class JobStatus(StrEnum):
    """The life of one job execution (one attempt of a job)."""

    INIT = "INIT"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    @property
    def is_terminal(self) -> bool:
        """Whether the attempt has ended and will never change status again."""
        return self in _TERMINAL_JOB_STATUSES


_TERMINAL_JOB_STATUSES = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED})


class ExecutionStatus(StrEnum):
    """The life of one workflow execution."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"


class ModelStatus(StrEnum):
    """Where a model version stands in its lifecycle (see :data:`MODEL_TRANSITIONS`)."""

    GENERATED = "GENERATED"
    VALIDATED = "VALIDATED"
    REJECTED = "REJECTED"
    DEPLOYED = "DEPLOYED"
    DEPRECATED = "DEPRECATED"
    DELETED = "DELETED"


class ModelVersionEvent(StrEnum):
    """The event type emitted when a model version enters each status."""

    GENERATED = "MODEL_GENERATED"
    VALIDATED = "MODEL_VALIDATED"
    REJECTED = "MODEL_REJECTED"
    DEPLOYED = "MODEL_DEPLOYED"
    DEPRECATED = "MODEL_DEPRECATED"
    DELETED = "MODEL_DELETED"

    @classmethod
    def for_status(cls, status: ModelStatus) -> ModelVersionEvent:
        """The event type announcing that a version entered ``status``."""
        return cls[status.name]


# Legal model-version status changes. DELETED is reachable from every non-deleted status.
MODEL_TRANSITIONS: dict[ModelStatus, frozenset[ModelStatus]] = {
    ModelStatus.GENERATED: frozenset(
        {ModelStatus.VALIDATED, ModelStatus.REJECTED, ModelStatus.DELETED}
    ),
    ModelStatus.VALIDATED: frozenset({ModelStatus.DEPLOYED, ModelStatus.DELETED}),
    ModelStatus.REJECTED: frozenset({ModelStatus.DELETED}),
    ModelStatus.DEPLOYED: frozenset({ModelStatus.DEPRECATED, ModelStatus.DELETED}),
    ModelStatus.DEPRECATED: frozenset({ModelStatus.DEPLOYED, ModelStatus.DELETED}),
    ModelStatus.DELETED: frozenset(),
}

# Legal job-execution status changes.
JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.INIT: frozenset({JobStatus.STARTING, JobStatus.FAILED, JobStatus.STOPPED}),
    JobStatus.STARTING: frozenset({JobStatus.RUNNING, JobStatus.FAILED, JobStatus.STOPPED}),
    JobStatus.RUNNING: frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED}),
    JobStatus.FINISHED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.STOPPED: frozenset(),
}
