import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tideflow.rpc.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitWorkflowRequest(_message.Message):
    __slots__ = ("workflow", "plan_json", "code_sha256", "identity")
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    PLAN_JSON_FIELD_NUMBER: _ClassVar[int]
    CODE_SHA256_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    workflow: str
    plan_json: str
    code_sha256: str
    identity: str
    def __init__(self, workflow: _Optional[str] = ..., plan_json: _Optional[str] = ..., code_sha256: _Optional[str] = ..., identity: _Optional[str] = ...) -> None: ...

class SubmitWorkflowResponse(_message.Message):
    __slots__ = ("snapshot", "reused")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    REUSED_FIELD_NUMBER: _ClassVar[int]
    snapshot: _common_pb2.Snapshot
    reused: bool
    def __init__(self, snapshot: _Optional[_Union[_common_pb2.Snapshot, _Mapping]] = ..., reused: _Optional[bool] = ...) -> None: ...

class UploadCodePackageRequest(_message.Message):
    __slots__ = ("sha256", "chunk")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    chunk: bytes
    def __init__(self, sha256: _Optional[str] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadCodePackageResponse(_message.Message):
    __slots__ = ("uri",)
    URI_FIELD_NUMBER: _ClassVar[int]
    uri: str
    def __init__(self, uri: _Optional[str] = ...) -> None: ...

class GetCodePackageRequest(_message.Message):
    __slots__ = ("snapshot_id",)
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: int
    def __init__(self, snapshot_id: _Optional[int] = ...) -> None: ...

class GetCodePackageResponse(_message.Message):
    __slots__ = ("sha256", "chunk")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    chunk: bytes
    def __init__(self, sha256: _Optional[str] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class GetWorkflowRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _common_pb2.Workflow
    def __init__(self, workflow: _Optional[_Union[_common_pb2.Workflow, _Mapping]] = ...) -> None: ...

class ListWorkflowsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWorkflowsResponse(_message.Message):
    __slots__ = ("workflows",)
    WORKFLOWS_FIELD_NUMBER: _ClassVar[int]
    workflows: _containers.RepeatedCompositeFieldContainer[_common_pb2.Workflow]
    def __init__(self, workflows: _Optional[_Iterable[_Union[_common_pb2.Workflow, _Mapping]]] = ...) -> None: ...

class DeleteWorkflowRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteWorkflowResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSnapshotRequest(_message.Message):
    __slots__ = ("snapshot_id",)
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: int
    def __init__(self, snapshot_id: _Optional[int] = ...) -> None: ...

class GetSnapshotResponse(_message.Message):
    __slots__ = ("snapshot",)
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    snapshot: _common_pb2.Snapshot
    def __init__(self, snapshot: _Optional[_Union[_common_pb2.Snapshot, _Mapping]] = ...) -> None: ...

class ListSnapshotsRequest(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: str
    def __init__(self, workflow: _Optional[str] = ...) -> None: ...

class ListSnapshotsResponse(_message.Message):
    __slots__ = ("snapshots",)
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    snapshots: _containers.RepeatedCompositeFieldContainer[_common_pb2.Snapshot]
    def __init__(self, snapshots: _Optional[_Iterable[_Union[_common_pb2.Snapshot, _Mapping]]] = ...) -> None: ...

class StartWorkflowExecutionRequest(_message.Message):
    __slots__ = ("workflow", "params_json", "context")
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    workflow: str
    params_json: str
    context: str
    def __init__(self, workflow: _Optional[str] = ..., params_json: _Optional[str] = ..., context: _Optional[str] = ...) -> None: ...

class StartWorkflowExecutionResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: _common_pb2.WorkflowExecution
    def __init__(self, execution: _Optional[_Union[_common_pb2.WorkflowExecution, _Mapping]] = ...) -> None: ...

class StopWorkflowExecutionRequest(_message.Message):
    __slots__ = ("execution_id",)
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    def __init__(self, execution_id: _Optional[int] = ...) -> None: ...

class StopWorkflowExecutionResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: _common_pb2.WorkflowExecution
    def __init__(self, execution: _Optional[_Union[_common_pb2.WorkflowExecution, _Mapping]] = ...) -> None: ...

class GetWorkflowExecutionRequest(_message.Message):
    __slots__ = ("execution_id",)
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    def __init__(self, execution_id: _Optional[int] = ...) -> None: ...

class GetWorkflowExecutionResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: _common_pb2.WorkflowExecution
    def __init__(self, execution: _Optional[_Union[_common_pb2.WorkflowExecution, _Mapping]] = ...) -> None: ...

class ListWorkflowExecutionsRequest(_message.Message):
    __slots__ = ("workflow", "status", "limit")
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    workflow: str
    status: _common_pb2.ExecutionStatus
    limit: int
    def __init__(self, workflow: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.ExecutionStatus, str]] = ..., limit: _Optional[int] = ...) -> None: ...

class ListWorkflowExecutionsResponse(_message.Message):
    __slots__ = ("executions",)
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[_common_pb2.WorkflowExecution]
    def __init__(self, executions: _Optional[_Iterable[_Union[_common_pb2.WorkflowExecution, _Mapping]]] = ...) -> None: ...

class ListJobExecutionsRequest(_message.Message):
    __slots__ = ("execution_id",)
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    def __init__(self, execution_id: _Optional[int] = ...) -> None: ...

class ListJobExecutionsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_common_pb2.JobExecution]
    def __init__(self, jobs: _Optional[_Iterable[_Union[_common_pb2.JobExecution, _Mapping]]] = ...) -> None: ...

class StopJobRequest(_message.Message):
    __slots__ = ("execution_id", "job")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    job: str
    def __init__(self, execution_id: _Optional[int] = ..., job: _Optional[str] = ...) -> None: ...

class StopJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _common_pb2.JobExecution
    def __init__(self, job: _Optional[_Union[_common_pb2.JobExecution, _Mapping]] = ...) -> None: ...

class RestartJobRequest(_message.Message):
    __slots__ = ("execution_id", "job")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    job: str
    def __init__(self, execution_id: _Optional[int] = ..., job: _Optional[str] = ...) -> None: ...

class RestartJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _common_pb2.JobExecution
    def __init__(self, job: _Optional[_Union[_common_pb2.JobExecution, _Mapping]] = ...) -> None: ...

class ListExecutionActionsRequest(_message.Message):
    __slots__ = ("execution_id",)
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    def __init__(self, execution_id: _Optional[int] = ...) -> None: ...

class ListExecutionActionsResponse(_message.Message):
    __slots__ = ("actions",)
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    actions: _containers.RepeatedCompositeFieldContainer[_common_pb2.ExecutionAction]
    def __init__(self, actions: _Optional[_Iterable[_Union[_common_pb2.ExecutionAction, _Mapping]]] = ...) -> None: ...

class GetWaitingOnRequest(_message.Message):
    __slots__ = ("execution_id",)
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    def __init__(self, execution_id: _Optional[int] = ...) -> None: ...

class WaitingRules(_message.Message):
    __slots__ = ("rules",)
    RULES_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, rules: _Optional[_Iterable[str]] = ...) -> None: ...

class GetWaitingOnResponse(_message.Message):
    __slots__ = ("jobs",)
    class JobsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: WaitingRules
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[WaitingRules, _Mapping]] = ...) -> None: ...
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.MessageMap[str, WaitingRules]
    def __init__(self, jobs: _Optional[_Mapping[str, WaitingRules]] = ...) -> None: ...

class GetJobLogsRequest(_message.Message):
    __slots__ = ("execution_id", "job", "attempt", "after", "tail", "limit")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    job: str
    attempt: int
    after: int
    tail: int
    limit: int
    def __init__(self, execution_id: _Optional[int] = ..., job: _Optional[str] = ..., attempt: _Optional[int] = ..., after: _Optional[int] = ..., tail: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class GetJobLogsResponse(_message.Message):
    __slots__ = ("attempt", "status", "text", "start", "after", "size", "complete")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    status: _common_pb2.JobStatus
    text: str
    start: int
    after: int
    size: int
    complete: bool
    def __init__(self, attempt: _Optional[int] = ..., status: _Optional[_Union[_common_pb2.JobStatus, str]] = ..., text: _Optional[str] = ..., start: _Optional[int] = ..., after: _Optional[int] = ..., size: _Optional[int] = ..., complete: _Optional[bool] = ...) -> None: ...

class WorkflowSettings(_message.Message):
    __slots__ = ("paused", "max_active_executions")
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    MAX_ACTIVE_EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    paused: bool
    max_active_executions: int
    def __init__(self, paused: _Optional[bool] = ..., max_active_executions: _Optional[int] = ...) -> None: ...

class PauseWorkflowRequest(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: str
    def __init__(self, workflow: _Optional[str] = ...) -> None: ...

class PauseWorkflowResponse(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: WorkflowSettings
    def __init__(self, settings: _Optional[_Union[WorkflowSettings, _Mapping]] = ...) -> None: ...

class ResumeWorkflowRequest(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: str
    def __init__(self, workflow: _Optional[str] = ...) -> None: ...

class ResumeWorkflowResponse(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: WorkflowSettings
    def __init__(self, settings: _Optional[_Union[WorkflowSettings, _Mapping]] = ...) -> None: ...

class SetMaxActiveExecutionsRequest(_message.Message):
    __slots__ = ("workflow", "max_active_executions")
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    MAX_ACTIVE_EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    workflow: str
    max_active_executions: int
    def __init__(self, workflow: _Optional[str] = ..., max_active_executions: _Optional[int] = ...) -> None: ...

class SetMaxActiveExecutionsResponse(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: WorkflowSettings
    def __init__(self, settings: _Optional[_Union[WorkflowSettings, _Mapping]] = ...) -> None: ...

class GetWorkflowSettingsRequest(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: str
    def __init__(self, workflow: _Optional[str] = ...) -> None: ...

class GetWorkflowSettingsResponse(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: WorkflowSettings
    def __init__(self, settings: _Optional[_Union[WorkflowSettings, _Mapping]] = ...) -> None: ...

class BackfillWorkflowRequest(_message.Message):
    __slots__ = ("workflow", "start", "end")
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    workflow: str
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    def __init__(self, workflow: _Optional[str] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ScheduleTick(_message.Message):
    __slots__ = ("tick_time", "status", "execution_id", "reason")
    TICK_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tick_time: _timestamp_pb2.Timestamp
    status: str
    execution_id: int
    reason: str
    def __init__(self, tick_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[str] = ..., execution_id: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class BackfillWorkflowResponse(_message.Message):
    __slots__ = ("ticks",)
    TICKS_FIELD_NUMBER: _ClassVar[int]
    ticks: _containers.RepeatedCompositeFieldContainer[ScheduleTick]
    def __init__(self, ticks: _Optional[_Iterable[_Union[ScheduleTick, _Mapping]]] = ...) -> None: ...
