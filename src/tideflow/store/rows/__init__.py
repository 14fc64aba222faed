"""Every table of the store, as typed SQLAlchemy rows (imported here so metadata is complete)."""

from tideflow.store.rows.access import ApiTokenRow, AuditEntryRow, RpcRequestRow
from tideflow.store.rows.base import Base
from tideflow.store.rows.cluster import ClusterLeaseRow, ClusterMemberRow
from tideflow.store.rows.event import EventConsumerRow, EventRow, EventSequenceRow
from tideflow.store.rows.execution import (
    ExecutionActionRow,
    JobExecutionRow,
    LineageEntryRow,
    LineageRecordRow,
    SnapshotRow,
    WorkflowExecutionRow,
    WorkflowRow,
)
from tideflow.store.rows.metadata import ArtifactRow, DatasetRow, MetricRow, ProjectRow
from tideflow.store.rows.model import (
    ModelAliasRow,
    ModelStatusChangeRow,
    ModelVersionRow,
    RegisteredModelRow,
)
from tideflow.store.rows.schedule import ScheduleTickRow, ScheduleTimerRow
from tideflow.store.rows.scheduler import (
    ExecutionRouteRow,
    JobCommandRow,
    RuleStateRow,
    TimerRow,
    TriggerStateRow,
    WorkflowScheduleRow,
    WorkflowTriggerRow,
)

__all__ = [
    "ApiTokenRow",
    "ArtifactRow",
    "AuditEntryRow",
    "Base",
    "ClusterLeaseRow",
    "ClusterMemberRow",
    "DatasetRow",
    "EventConsumerRow",
    "EventRow",
    "EventSequenceRow",
    "ExecutionActionRow",
    "ExecutionRouteRow",
    "JobCommandRow",
    "JobExecutionRow",
    "LineageEntryRow",
    "LineageRecordRow",
    "MetricRow",
    "ModelAliasRow",
    "ModelStatusChangeRow",
    "ModelVersionRow",
    "ProjectRow",
    "RegisteredModelRow",
    "RpcRequestRow",
    "RuleStateRow",
    "ScheduleTickRow",
    "ScheduleTimerRow",
    "SnapshotRow",
    "TimerRow",
    "TriggerStateRow",
    "WorkflowExecutionRow",
    "WorkflowRow",
    "WorkflowScheduleRow",
    "WorkflowTriggerRow",
]
