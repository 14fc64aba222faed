"""The one translation seam between domain dataclasses and protobuf messages.

Servicers and the remote client call only these functions, so a field added to an entity is
added here once. Conventions: timestamps are ``google.protobuf.Timestamp`` (unset = ``None``);
free-form JSON travels as text in ``*_json`` fields; enums map by member name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from tideflow.domain.events import Event
from tideflow.domain.joblog import JobLog
from tideflow.domain.limits import load_json
from tideflow.domain.lineage import LineageKind, LineageRecord, LineageRef
from tideflow.domain.metadata import (
    Artifact,
    Dataset,
    ExecutionAction,
    JobExecution,
    Metric,
    Project,
    Snapshot,
    Workflow,
    WorkflowExecution,
)
from tideflow.domain.model import ModelVersion, RegisteredModel, StatusChange
from tideflow.domain.status import ExecutionStatus, JobAction, JobStatus, ModelStatus
from tideflow.errors import InvalidArgumentError
from tideflow.notification.filters import EventFilter, make_filter
from tideflow.rpc.v1 import common_pb2 as pb
from tideflow.rpc.v1 import notification_pb2 as npb
from tideflow.rpc.v1 import scheduler_pb2 as spb
from tideflow.scheduler.schedule import TickResult
from tideflow.store.repositories.scheduler import WorkflowSettings

E = TypeVar("E", bound=StrEnum)

# -- scalars ------------------------------------------------------------------------------


def to_timestamp(value: datetime | None) -> Timestamp | None:
    """A protobuf timestamp of an aware datetime (``None`` stays unset)."""
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def from_timestamp(message: Message, name: str) -> datetime | None:
    """The aware UTC datetime of timestamp field ``name``, or ``None`` when unset.

    Raises:
        InvalidArgumentError: The timestamp is not one (nanos outside 0..999999999, or seconds
            outside years 1..9999): the wire carries any two integers.
    """
    if not message.HasField(name):
        return None
    stamp: Timestamp = getattr(message, name)
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as e:
        raise InvalidArgumentError(
            f"{name} is not a valid timestamp (seconds={stamp.seconds}, nanos={stamp.nanos})",
            field=name,
        ) from e


def optional(message: Message, name: str) -> Any:
    """The value of an ``optional`` field, or ``None`` when it is not set."""
    return getattr(message, name) if message.HasField(name) else None


EMPTY_JSON = "{}"
"""What :func:`to_json` makes of an empty mapping (or ``None``)."""


def to_json(value: Any) -> str:
    """JSON text of a JSON-ready value (``{}`` for ``None``)."""
    return json.dumps({} if value is None else value, sort_keys=True, separators=(",", ":"))


def from_json(text: str, what: str) -> Any:
    """Parse a ``*_json`` field; empty text means ``{}``.

    Raises:
        InvalidArgumentError: The text is not JSON, or nests deeper than
            :data:`~tideflow.domain.limits.MAX_JSON_DEPTH` (checked before parsing, so a
            200,000-deep document is refused instead of exhausting the parser's recursion).
    """
    if not text:
        return {}
    return load_json(text, what)


def enum_to_pb(value: StrEnum | None, prefix: str) -> Any:
    """The wire number of a domain enum member (``UNSPECIFIED`` for ``None``)."""
    if value is None:
        return 0
    return int(getattr(pb, f"{prefix}_{value.name}"))


def enum_from_pb(number: int, enum: type[E], prefix: str) -> E | None:
    """The domain member of a wire enum number (``None`` for ``UNSPECIFIED``).

    Raises:
        InvalidArgumentError: A number this version does not know.
    """
    if number == 0:
        return None
    descriptor = pb.DESCRIPTOR.enum_types_by_name[_ENUM_NAMES[prefix]]
    value = descriptor.values_by_number.get(number)
    if value is None:
        raise InvalidArgumentError(f"unknown {prefix.lower()} {number}", field=prefix.lower())
    return enum[value.name.removeprefix(prefix + "_")]


_ENUM_NAMES = {
    "MODEL_STATUS": "ModelStatus",
    "JOB_STATUS": "JobStatus",
    "EXECUTION_STATUS": "ExecutionStatus",
    "JOB_ACTION": "JobAction",
    "LINEAGE_KIND": "LineageKind",
}


def _required(value: E | None, what: str) -> E:
    if value is None:
        raise InvalidArgumentError(f"{what} must be set", field=what)
    return value


def _stamps(**values: datetime | None) -> dict[str, Timestamp]:
    return {
        name: stamp for name, value in values.items() if (stamp := to_timestamp(value)) is not None
    }


# -- events -------------------------------------------------------------------------------


def event_to_pb(event: Event, *, context_json: str | None = None) -> pb.Event:
    """Wire form of an event (``context_json``: its context as JSON text, if already made).

    Most events carry no context: theirs is ``{}`` without the JSON encoder. A batch of
    1,000 events is built on every ``send_many``, so this runs once per event sent.
    """
    if context_json is None:
        context_json = to_json(dict(event.context)) if event.context else EMPTY_JSON
    stamp = None if event.create_time is None else to_timestamp(event.create_time)
    return pb.Event(
        offset=event.offset,
        namespace=event.namespace,
        key=event.key,
        value=event.value,
        event_type=event.event_type,
        sender=event.sender,
        context_json=context_json,
        idempotency_key=event.idempotency_key,
        create_time=stamp,
    )


def event_from_pb(message: pb.Event, *, namespace: str | None = None) -> Event:
    """Domain form of an event (in ``namespace`` when given, whatever the message says)."""
    text = message.context_json
    # Most events carry no context: skip the JSON parser for them.
    context = {} if text in ("", "{}") else from_json(text, "context")
    if not isinstance(context, dict):
        raise InvalidArgumentError("event context must be a JSON object", field="context")
    return Event(
        key=message.key,
        value=message.value,
        event_type=message.event_type,
        sender=message.sender,
        namespace=message.namespace if namespace is None else namespace,
        context=context,
        offset=message.offset,
        create_time=from_timestamp(message, "create_time"),
        idempotency_key=optional(message, "idempotency_key"),
    )


def event_filter_to_pb(event_filter: EventFilter | None) -> npb.EventFilter:
    """Wire form of a listener / listing filter (``None`` fields stay unset: any)."""
    f = event_filter or EventFilter()
    return npb.EventFilter(
        keys=list(f.keys or ()),
        event_types=list(f.event_types or ()),
        sender=f.sender,
        **_stamps(since=f.since, until=f.until),
    )


def event_filter_from_pb(message: npb.EventFilter) -> EventFilter:
    """Domain form of a filter, validated as an in-process caller's would be.

    Raises:
        InvalidArgumentError: A filter value that cannot mean what the caller meant.
    """
    return make_filter(
        keys=list(message.keys) or None,
        event_types=list(message.event_types) or None,
        sender=optional(message, "sender"),
        since=from_timestamp(message, "since"),
        until=from_timestamp(message, "until"),
    )


# -- Model Center ---------------------------------------------------------------------------


def model_to_pb(model: RegisteredModel) -> pb.RegisteredModel:
    """Wire form of a registered model."""
    return pb.RegisteredModel(
        name=model.name,
        description=model.description,
        tags=dict(model.tags),
        last_version=model.last_version,
        **_stamps(create_time=model.create_time, update_time=model.update_time),
    )


def model_from_pb(message: pb.RegisteredModel) -> RegisteredModel:
    """Domain form of a registered model."""
    return RegisteredModel(
        name=message.name,
        description=message.description,
        tags=dict(message.tags),
        last_version=message.last_version,
        create_time=from_timestamp(message, "create_time"),
        update_time=from_timestamp(message, "update_time"),
    )


def version_to_pb(version: ModelVersion) -> pb.ModelVersion:
    """Wire form of a model version."""
    return pb.ModelVersion(
        model=version.model,
        version=version.version,
        status=enum_to_pb(version.status, "MODEL_STATUS"),
        uri=version.uri,
        flavour=version.flavour,
        metrics=dict(version.metrics),
        params_json=to_json(dict(version.params)),
        tags=dict(version.tags),
        description=version.description,
        job_execution_id=version.job_execution_id,
        **_stamps(create_time=version.create_time, update_time=version.update_time),
    )


def version_from_pb(message: pb.ModelVersion) -> ModelVersion:
    """Domain form of a model version."""
    return ModelVersion(
        model=message.model,
        version=message.version,
        status=_required(enum_from_pb(message.status, ModelStatus, "MODEL_STATUS"), "status"),
        uri=message.uri,
        flavour=message.flavour,
        metrics=dict(message.metrics),
        params=from_json(message.params_json, "params"),
        tags=dict(message.tags),
        description=message.description,
        job_execution_id=optional(message, "job_execution_id"),
        create_time=from_timestamp(message, "create_time"),
        update_time=from_timestamp(message, "update_time"),
    )


def status_change_to_pb(change: StatusChange) -> pb.StatusChange:
    """Wire form of a status-history entry."""
    return pb.StatusChange(
        model=change.model,
        version=change.version,
        previous=enum_to_pb(change.previous, "MODEL_STATUS"),
        status=enum_to_pb(change.status, "MODEL_STATUS"),
        **_stamps(time=change.time),
    )


def status_change_from_pb(message: pb.StatusChange) -> StatusChange:
    """Domain form of a status-history entry."""
    time = from_timestamp(message, "time")
    assert time is not None
    return StatusChange(
        model=message.model,
        version=message.version,
        previous=enum_from_pb(message.previous, ModelStatus, "MODEL_STATUS"),
        status=_required(enum_from_pb(message.status, ModelStatus, "MODEL_STATUS"), "status"),
        time=time,
    )


# -- Metadata -------------------------------------------------------------------------------


def project_to_pb(project: Project) -> pb.Project:
    """Wire form of a project."""
    return pb.Project(
        name=project.name,
        description=project.description,
        **_stamps(create_time=project.create_time),
    )


def project_from_pb(message: pb.Project) -> Project:
    """Domain form of a project."""
    return Project(
        name=message.name,
        description=message.description,
        create_time=from_timestamp(message, "create_time"),
    )


def dataset_to_pb(dataset: Dataset) -> pb.Dataset:
    """Wire form of a dataset."""
    return pb.Dataset(
        name=dataset.name,
        uri=dataset.uri,
        format=dataset.format,
        stream=dataset.stream,
        schema_json=to_json(dataset.schema),
        properties_json=to_json(dataset.properties),
        description=dataset.description,
        version=dataset.version,
        **_stamps(create_time=dataset.create_time, update_time=dataset.update_time),
    )


def dataset_from_pb(message: pb.Dataset) -> Dataset:
    """Domain form of a dataset."""
    return Dataset(
        name=message.name,
        uri=message.uri,
        format=message.format,
        stream=message.stream,
        schema=from_json(message.schema_json, "schema"),
        properties=from_json(message.properties_json, "properties"),
        description=message.description,
        version=message.version,
        create_time=from_timestamp(message, "create_time"),
        update_time=from_timestamp(message, "update_time"),
    )


def artifact_to_pb(artifact: Artifact) -> pb.Artifact:
    """Wire form of an artifact."""
    return pb.Artifact(
        name=artifact.name,
        uri=artifact.uri,
        kind=artifact.kind,
        properties_json=to_json(artifact.properties),
        description=artifact.description,
        **_stamps(create_time=artifact.create_time, update_time=artifact.update_time),
    )


def artifact_from_pb(message: pb.Artifact) -> Artifact:
    """Domain form of an artifact."""
    return Artifact(
        name=message.name,
        uri=message.uri,
        kind=message.kind,
        properties=from_json(message.properties_json, "properties"),
        description=message.description,
        create_time=from_timestamp(message, "create_time"),
        update_time=from_timestamp(message, "update_time"),
    )


def metric_to_pb(metric: Metric) -> pb.Metric:
    """Wire form of a metric."""
    return pb.Metric(
        metric_id=metric.metric_id,
        name=metric.name,
        value=metric.value,
        step=metric.step,
        tags=dict(metric.tags),
        job_execution_id=metric.job_execution_id,
        model=metric.model,
        version=metric.version,
        dataset=metric.dataset,
        **_stamps(time=metric.time),
    )


def metric_from_pb(message: pb.Metric) -> Metric:
    """Domain form of a metric."""
    return Metric(
        metric_id=message.metric_id,
        name=message.name,
        value=message.value,
        step=optional(message, "step"),
        time=from_timestamp(message, "time"),
        tags=dict(message.tags),
        job_execution_id=optional(message, "job_execution_id"),
        model=optional(message, "model"),
        version=optional(message, "version"),
        dataset=optional(message, "dataset"),
    )


def lineage_ref_to_pb(ref: LineageRef) -> pb.LineageRef:
    """Wire form of a lineage reference."""
    return pb.LineageRef(
        kind=enum_to_pb(ref.kind, "LINEAGE_KIND"),
        name=ref.name,
        version=ref.version,
        start_offset=ref.start_offset,
        end_offset=ref.end_offset,
    )


def lineage_ref_from_pb(message: pb.LineageRef) -> LineageRef:
    """Domain form of a lineage reference."""
    return LineageRef(
        kind=_required(enum_from_pb(message.kind, LineageKind, "LINEAGE_KIND"), "lineage kind"),
        name=message.name,
        version=optional(message, "version"),
        start_offset=optional(message, "start_offset"),
        end_offset=optional(message, "end_offset"),
    )


def lineage_record_to_pb(record: LineageRecord) -> pb.LineageRecord:
    """Wire form of a lineage record."""
    return pb.LineageRecord(
        job_execution_id=record.job_execution_id,
        execution_id=record.execution_id,
        workflow=record.workflow,
        job=record.job,
        inputs=[lineage_ref_to_pb(ref) for ref in record.inputs],
        outputs=[lineage_ref_to_pb(ref) for ref in record.outputs],
        **_stamps(time=record.time),
    )


def lineage_record_from_pb(message: pb.LineageRecord) -> LineageRecord:
    """Domain form of a lineage record."""
    return LineageRecord(
        job_execution_id=message.job_execution_id,
        execution_id=message.execution_id,
        workflow=message.workflow,
        job=message.job,
        inputs=tuple(lineage_ref_from_pb(ref) for ref in message.inputs),
        outputs=tuple(lineage_ref_from_pb(ref) for ref in message.outputs),
        time=from_timestamp(message, "time"),
    )


def workflow_to_pb(workflow: Workflow) -> pb.Workflow:
    """Wire form of a workflow."""
    return pb.Workflow(
        name=workflow.name,
        latest_snapshot_id=workflow.latest_snapshot_id,
        **_stamps(create_time=workflow.create_time, update_time=workflow.update_time),
    )


def workflow_from_pb(message: pb.Workflow) -> Workflow:
    """Domain form of a workflow."""
    return Workflow(
        name=message.name,
        latest_snapshot_id=optional(message, "latest_snapshot_id"),
        create_time=from_timestamp(message, "create_time"),
        update_time=from_timestamp(message, "update_time"),
    )


def snapshot_to_pb(snapshot: Snapshot) -> pb.Snapshot:
    """Wire form of a snapshot."""
    return pb.Snapshot(
        snapshot_id=snapshot.snapshot_id,
        workflow=snapshot.workflow,
        plan_json=snapshot.plan,
        code_uri=snapshot.code_uri,
        code_sha256=snapshot.code_sha256,
        identity=snapshot.identity,
        **_stamps(create_time=snapshot.create_time),
    )


def snapshot_from_pb(message: pb.Snapshot) -> Snapshot:
    """Domain form of a snapshot."""
    return Snapshot(
        snapshot_id=message.snapshot_id,
        workflow=message.workflow,
        plan=message.plan_json,
        code_uri=message.code_uri,
        code_sha256=message.code_sha256,
        create_time=from_timestamp(message, "create_time"),
        identity=message.identity,
    )


def execution_to_pb(execution: WorkflowExecution) -> pb.WorkflowExecution:
    """Wire form of a workflow execution."""
    return pb.WorkflowExecution(
        execution_id=execution.execution_id,
        workflow=execution.workflow,
        snapshot_id=execution.snapshot_id,
        status=enum_to_pb(execution.status, "EXECUTION_STATUS"),
        params_json=to_json(dict(execution.params)),
        context=execution.context,
        **_stamps(start_time=execution.start_time, end_time=execution.end_time),
    )


def execution_from_pb(message: pb.WorkflowExecution) -> WorkflowExecution:
    """Domain form of a workflow execution."""
    return WorkflowExecution(
        execution_id=message.execution_id,
        workflow=message.workflow,
        snapshot_id=message.snapshot_id,
        status=_required(
            enum_from_pb(message.status, ExecutionStatus, "EXECUTION_STATUS"), "status"
        ),
        params=from_json(message.params_json, "params"),
        context=optional(message, "context"),
        start_time=from_timestamp(message, "start_time"),
        end_time=from_timestamp(message, "end_time"),
    )


def job_execution_to_pb(job: JobExecution) -> pb.JobExecution:
    """Wire form of a job execution."""
    return pb.JobExecution(
        job_execution_id=job.job_execution_id,
        execution_id=job.execution_id,
        workflow=job.workflow,
        job=job.job,
        attempt=job.attempt,
        status=enum_to_pb(job.status, "JOB_STATUS"),
        exit_code=job.exit_code,
        error=job.error,
        log_uri=job.log_uri,
        host=job.host,
        pid=job.pid,
        external_id=job.external_id,
        trigger_offsets=job.trigger_offsets,
        **_stamps(create_time=job.create_time, start_time=job.start_time, end_time=job.end_time),
    )


def job_execution_from_pb(message: pb.JobExecution) -> JobExecution:
    """Domain form of a job execution."""
    return JobExecution(
        job_execution_id=message.job_execution_id,
        execution_id=message.execution_id,
        workflow=message.workflow,
        job=message.job,
        attempt=message.attempt,
        status=_required(enum_from_pb(message.status, JobStatus, "JOB_STATUS"), "status"),
        create_time=from_timestamp(message, "create_time"),
        start_time=from_timestamp(message, "start_time"),
        end_time=from_timestamp(message, "end_time"),
        exit_code=optional(message, "exit_code"),
        error=optional(message, "error"),
        log_uri=optional(message, "log_uri"),
        host=optional(message, "host"),
        pid=optional(message, "pid"),
        external_id=optional(message, "external_id"),
        trigger_offsets=tuple(message.trigger_offsets),
    )


def action_to_pb(action: ExecutionAction) -> pb.ExecutionAction:
    """Wire form of an execution action."""
    return pb.ExecutionAction(
        action_id=action.action_id,
        execution_id=action.execution_id,
        job=action.job,
        action=enum_to_pb(action.action, "JOB_ACTION"),
        rule=action.rule,
        event_offset=action.event_offset,
        trigger_offsets=action.trigger_offsets,
        **_stamps(time=action.time),
    )


def action_from_pb(message: pb.ExecutionAction) -> ExecutionAction:
    """Domain form of an execution action."""
    return ExecutionAction(
        action_id=message.action_id,
        execution_id=message.execution_id,
        job=optional(message, "job"),
        action=_required(enum_from_pb(message.action, JobAction, "JOB_ACTION"), "action"),
        rule=message.rule,
        event_offset=optional(message, "event_offset"),
        time=from_timestamp(message, "time"),
        trigger_offsets=tuple(message.trigger_offsets),
    )


def tick_to_pb(tick: TickResult) -> spb.ScheduleTick:
    """Wire form of a schedule tick (started or skipped)."""
    return spb.ScheduleTick(
        tick_time=to_timestamp(tick.tick_time),
        status=tick.status,
        execution_id=tick.execution_id,
        reason=tick.reason,
    )


def tick_from_pb(message: spb.ScheduleTick) -> TickResult:
    """Domain form of a schedule tick."""
    tick_time = from_timestamp(message, "tick_time")
    if tick_time is None:
        raise InvalidArgumentError("a schedule tick needs its tick_time", field="tick_time")
    return TickResult(
        tick_time=tick_time,
        status=message.status,
        execution_id=optional(message, "execution_id"),
        reason=optional(message, "reason"),
    )


def settings_to_pb(settings: WorkflowSettings) -> spb.WorkflowSettings:
    """Wire form of a workflow's scheduling settings."""
    return spb.WorkflowSettings(
        paused=settings.paused, max_active_executions=settings.max_active_executions
    )


def settings_from_pb(message: spb.WorkflowSettings) -> WorkflowSettings:
    """Domain form of a workflow's scheduling settings."""
    return WorkflowSettings(
        paused=message.paused,
        max_active_executions=optional(message, "max_active_executions"),
    )


def job_log_to_pb(log: JobLog) -> spb.GetJobLogsResponse:
    """Wire form of a piece of a job log (execution and job are the request's)."""
    return spb.GetJobLogsResponse(
        attempt=log.attempt,
        status=enum_to_pb(log.status, "JOB_STATUS"),
        text=log.text,
        start=log.start,
        after=log.after,
        size=log.size,
        complete=log.complete,
    )


def job_log_from_pb(message: spb.GetJobLogsResponse, execution_id: int, job: str) -> JobLog:
    """Domain form of a piece of a job log."""
    return JobLog(
        execution_id=execution_id,
        job=job,
        attempt=message.attempt,
        status=_required(enum_from_pb(message.status, JobStatus, "JOB_STATUS"), "status"),
        text=message.text,
        start=message.start,
        after=message.after,
        size=message.size,
        complete=message.complete,
    )


def str_map(value: Mapping[str, str] | None) -> dict[str, str]:
    """A protobuf map field's value from an optional mapping."""
    return dict(value or {})
