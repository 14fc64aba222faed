"""Metadata Service entities: projects, datasets, artifacts, metrics, workflows and executions.

Everything except :class:`Project` lives inside one project; the project is implied by whoever
asks (a client is bound to one), so the entities do not repeat it. Ids named ``*_id`` are
assigned by the store; ``name`` fields are chosen by users (see :mod:`tideflow.domain.names`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tideflow.domain.status import ExecutionStatus, JobAction, JobStatus


@dataclass(frozen=True)
class Project:
    """A namespace for workflows, models, datasets and events.

    Attributes:
        name: Unique name; also the namespace of the project's events.
        description: Free text.
        create_time: When it was created (UTC).
    """

    name: str
    description: str = ""
    create_time: datetime | None = None


@dataclass(frozen=True)
class Dataset:
    """A named data source or sink; updating it bumps ``version``.

    Attributes:
        name: Unique in the project.
        uri: Where the data is.
        format: How it is encoded (``jsonl``, ``parquet``, ``kafka``, ...).
        stream: True for an unbounded stream, False for a batch table.
        schema: Column names to type names, or any JSON description.
        properties: Free-form JSON-ready settings.
        description: Free text.
        version: 1 when registered, +1 on every update.
        create_time: When it was registered (UTC).
        update_time: When it was last updated (UTC).
    """

    name: str
    uri: str = ""
    format: str = ""
    stream: bool = False
    schema: Mapping[str, Any] = field(default_factory=dict)
    properties: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    version: int = 1
    create_time: datetime | None = None
    update_time: datetime | None = None


@dataclass(frozen=True)
class Artifact:
    """A file or directory a job produced or needs that is neither a dataset nor a model.

    Attributes:
        name: Unique in the project.
        uri: Where it is.
        kind: What it is (``report``, ``checkpoint``, ``plot``, ...).
        properties: Free-form JSON-ready settings.
        description: Free text.
        create_time: When it was registered (UTC).
        update_time: When it was last updated (UTC).
    """

    name: str
    uri: str = ""
    kind: str = ""
    properties: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    create_time: datetime | None = None
    update_time: datetime | None = None


@dataclass(frozen=True)
class Metric:
    """One measured value, attached to a job execution, a model version and/or a dataset.

    Attributes:
        metric_id: Assigned by the store.
        name: What was measured (``auc``).
        value: The measurement.
        step: Training step or window number, if any.
        time: When it was measured (UTC).
        tags: String labels.
        job_execution_id: The job execution that measured it.
        model: With ``version``, the model version it describes.
        version: The model version number.
        dataset: The dataset it describes.
    """

    metric_id: int
    name: str
    value: float
    step: int | None = None
    time: datetime | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    job_execution_id: int | None = None
    model: str | None = None
    version: int | None = None
    dataset: str | None = None


@dataclass(frozen=True)
class Workflow:
    """A submitted workflow; each submission adds a :class:`Snapshot`.

    Attributes:
        name: Unique in the project.
        latest_snapshot_id: The snapshot new executions start from.
        create_time: When it was first submitted (UTC).
        update_time: When it was last submitted (UTC).
    """

    name: str
    latest_snapshot_id: int | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None


@dataclass(frozen=True)
class Snapshot:
    """A compiled workflow plan plus the code package it runs, frozen at submission.

    Attributes:
        snapshot_id: Assigned by the store.
        workflow: The workflow's name.
        plan: The ``WorkflowPlan`` as JSON text.
        code_uri: Where the code package is (blob-store URL).
        code_sha256: The package's SHA-256, hex.
        create_time: When it was submitted (UTC).
        identity: SHA-256 over its canonical content (packaged files and plan, see
            docs/submission.md); resubmitting the same content reuses this snapshot.
    """

    snapshot_id: int
    workflow: str
    plan: str
    code_uri: str = ""
    code_sha256: str = ""
    create_time: datetime | None = None
    identity: str = ""


@dataclass(frozen=True)
class Submission:
    """What submitting a workflow did.

    Attributes:
        snapshot: The workflow's snapshot now (new, or the one with the same identity).
        reused: ``True`` when an identical snapshot existed and was reused.
    """

    snapshot: Snapshot
    reused: bool = False


@dataclass(frozen=True)
class WorkflowExecution:
    """One run of a workflow, pinned to the snapshot it started with.

    Attributes:
        execution_id: Assigned by the store.
        workflow: The workflow's name.
        snapshot_id: The snapshot it runs.
        status: Its status.
        params: What ``ctx.params`` shows its jobs.
        context: The event context it serves, for ``per_context`` workflows.
        start_time: When it started (UTC).
        end_time: When it ended (UTC), ``None`` while running.
    """

    execution_id: int
    workflow: str
    snapshot_id: int
    status: ExecutionStatus = ExecutionStatus.RUNNING
    params: Mapping[str, Any] = field(default_factory=dict)
    context: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None


@dataclass(frozen=True)
class JobExecution:
    """One attempt of one job inside a workflow execution.

    Attributes:
        job_execution_id: Assigned by the store.
        execution_id: The workflow execution it belongs to.
        workflow: The workflow's name.
        job: The job's name.
        attempt: 1 for the first run, +1 per restart or retry.
        status: Its status; only :data:`~tideflow.domain.status.JOB_TRANSITIONS` moves happen.
        create_time: When it was created (UTC).
        start_time: When it entered RUNNING (UTC).
        end_time: When it ended (UTC).
        exit_code: The process exit code, when it ran as a process.
        error: Why it failed, if it did.
        log_uri: Where its log is.
        host: The host its process runs on.
        pid: Its process id on ``host``.
        external_id: Its id on an external engine (Flink job id, Ray job id, ...).
        trigger_offsets: The offsets of the events it was started for, oldest first (the
            event, or for ``all_of`` the events, whose rule fired; its executor hands them to
            the job as ``ctx.triggers``). Empty when nothing fired: started by a user or with
            an execution that ``tide.start`` started.
    """

    job_execution_id: int
    execution_id: int
    workflow: str
    job: str
    attempt: int = 1
    status: JobStatus = JobStatus.INIT
    create_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    exit_code: int | None = None
    error: str | None = None
    log_uri: str | None = None
    host: str | None = None
    pid: int | None = None
    external_id: str | None = None
    trigger_offsets: tuple[int, ...] = ()


@dataclass(frozen=True)
class ExecutionAction:
    """An action the scheduler took in an execution, with the rule and event behind it.

    Attributes:
        action_id: Assigned by the store.
        execution_id: The workflow execution.
        job: The job acted on; ``None`` for the execution itself.
        action: What was done.
        rule: The rule that fired, as JSON text (or a description).
        event_offset: The offset of the event being handled when the rule fired; ``None`` for
            a user's request.
        time: When it was recorded (UTC).
        trigger_offsets: Every event the rule held on when it fired (for ``all_of``, one per
            part), oldest first; for a retry, those of the attempt it retries. What the
            attempt it started received as ``ctx.triggers``. Empty for a user's request.
    """

    action_id: int
    execution_id: int
    job: str | None
    action: JobAction
    rule: str = ""
    event_offset: int | None = None
    time: datetime | None = None
    trigger_offsets: tuple[int, ...] = ()
