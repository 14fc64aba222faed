import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_STATUS_UNSPECIFIED: _ClassVar[ModelStatus]
    MODEL_STATUS_GENERATED: _ClassVar[ModelStatus]
    MODEL_STATUS_VALIDATED: _ClassVar[ModelStatus]
    MODEL_STATUS_REJECTED: _ClassVar[ModelStatus]
    MODEL_STATUS_DEPLOYED: _ClassVar[ModelStatus]
    MODEL_STATUS_DEPRECATED: _ClassVar[ModelStatus]
    MODEL_STATUS_DELETED: _ClassVar[ModelStatus]

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_INIT: _ClassVar[JobStatus]
    JOB_STATUS_STARTING: _ClassVar[JobStatus]
    JOB_STATUS_RUNNING: _ClassVar[JobStatus]
    JOB_STATUS_FINISHED: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]
    JOB_STATUS_STOPPED: _ClassVar[JobStatus]

class ExecutionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_STATUS_UNSPECIFIED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_RUNNING: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_FINISHED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_FAILED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_STOPPED: _ClassVar[ExecutionStatus]

class JobAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_ACTION_UNSPECIFIED: _ClassVar[JobAction]
    JOB_ACTION_START: _ClassVar[JobAction]
    JOB_ACTION_STOP: _ClassVar[JobAction]
    JOB_ACTION_RESTART: _ClassVar[JobAction]
    JOB_ACTION_NONE: _ClassVar[JobAction]

class LineageKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINEAGE_KIND_UNSPECIFIED: _ClassVar[LineageKind]
    LINEAGE_KIND_DATASET: _ClassVar[LineageKind]
    LINEAGE_KIND_MODEL_VERSION: _ClassVar[LineageKind]
    LINEAGE_KIND_ARTIFACT: _ClassVar[LineageKind]
MODEL_STATUS_UNSPECIFIED: ModelStatus
MODEL_STATUS_GENERATED: ModelStatus
MODEL_STATUS_VALIDATED: ModelStatus
MODEL_STATUS_REJECTED: ModelStatus
MODEL_STATUS_DEPLOYED: ModelStatus
MODEL_STATUS_DEPRECATED: ModelStatus
MODEL_STATUS_DELETED: ModelStatus
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_INIT: JobStatus
JOB_STATUS_STARTING: JobStatus
JOB_STATUS_RUNNING: JobStatus
JOB_STATUS_FINISHED: JobStatus
JOB_STATUS_FAILED: JobStatus
JOB_STATUS_STOPPED: JobStatus
EXECUTION_STATUS_UNSPECIFIED: ExecutionStatus
EXECUTION_STATUS_RUNNING: ExecutionStatus
EXECUTION_STATUS_FINISHED: ExecutionStatus
EXECUTION_STATUS_FAILED: ExecutionStatus
EXECUTION_STATUS_STOPPED: ExecutionStatus
JOB_ACTION_UNSPECIFIED: JobAction
JOB_ACTION_START: JobAction
JOB_ACTION_STOP: JobAction
JOB_ACTION_RESTART: JobAction
JOB_ACTION_NONE: JobAction
LINEAGE_KIND_UNSPECIFIED: LineageKind
LINEAGE_KIND_DATASET: LineageKind
LINEAGE_KIND_MODEL_VERSION: LineageKind
LINEAGE_KIND_ARTIFACT: LineageKind

class Event(_message.Message):
    __slots__ = ("offset", "namespace", "key", "value", "event_type", "sender", "context_json", "create_time", "idempotency_key")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_JSON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    offset: int
    namespace: str
    key: str
    value: str
    event_type: str
    sender: str
    context_json: str
    create_time: _timestamp_pb2.Timestamp
    idempotency_key: str
    def __init__(self, offset: _Optional[int] = ..., namespace: _Optional[str] = ..., key: _Optional[str] = ..., value: _Optional[str] = ..., event_type: _Optional[str] = ..., sender: _Optional[str] = ..., context_json: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class RegisteredModel(_message.Message):
    __slots__ = ("name", "description", "tags", "last_version", "create_time", "update_time")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    LAST_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    tags: _containers.ScalarMap[str, str]
    last_version: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., last_version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("model", "version", "status", "uri", "flavour", "metrics", "params_json", "tags", "description", "job_execution_id", "create_time", "update_time")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    FLAVOUR_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    JOB_EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: int
    status: ModelStatus
    uri: str
    flavour: str
    metrics: _containers.ScalarMap[str, float]
    params_json: str
    tags: _containers.ScalarMap[str, str]
    description: str
    job_execution_id: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, model: _Optional[str] = ..., version: _Optional[int] = ..., status: _Optional[_Union[ModelStatus, str]] = ..., uri: _Optional[str] = ..., flavour: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., params_json: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., description: _Optional[str] = ..., job_execution_id: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StatusChange(_message.Message):
    __slots__ = ("model", "version", "previous", "status", "time")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: int
    previous: ModelStatus
    status: ModelStatus
    time: _timestamp_pb2.Timestamp
    def __init__(self, model: _Optional[str] = ..., version: _Optional[int] = ..., previous: _Optional[_Union[ModelStatus, str]] = ..., status: _Optional[_Union[ModelStatus, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Project(_message.Message):
    __slots__ = ("name", "description", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Dataset(_message.Message):
    __slots__ = ("name", "uri", "format", "stream", "schema_json", "properties_json", "description", "version", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_JSON_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    uri: str
    format: str
    stream: bool
    schema_json: str
    properties_json: str
    description: str
    version: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., uri: _Optional[str] = ..., format: _Optional[str] = ..., stream: _Optional[bool] = ..., schema_json: _Optional[str] = ..., properties_json: _Optional[str] = ..., description: _Optional[str] = ..., version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ("name", "uri", "kind", "properties_json", "description", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_JSON_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    uri: str
    kind: str
    properties_json: str
    description: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., uri: _Optional[str] = ..., kind: _Optional[str] = ..., properties_json: _Optional[str] = ..., description: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Metric(_message.Message):
    __slots__ = ("metric_id", "name", "value", "step", "time", "tags", "job_execution_id", "model", "version", "dataset")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    METRIC_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    JOB_EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    metric_id: int
    name: str
    value: float
    step: int
    time: _timestamp_pb2.Timestamp
    tags: _containers.ScalarMap[str, str]
    job_execution_id: int
    model: str
    version: int
    dataset: str
    def __init__(self, metric_id: _Optional[int] = ..., name: _Optional[str] = ..., value: _Optional[float] = ..., step: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tags: _Optional[_Mapping[str, str]] = ..., job_execution_id: _Optional[int] = ..., model: _Optional[str] = ..., version: _Optional[int] = ..., dataset: _Optional[str] = ...) -> None: ...

class LineageRef(_message.Message):
    __slots__ = ("kind", "name", "version", "start_offset", "end_offset")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    END_OFFSET_FIELD_NUMBER: _ClassVar[int]
    kind: LineageKind
    name: str
    version: int
    start_offset: int
    end_offset: int
    def __init__(self, kind: _Optional[_Union[LineageKind, str]] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., start_offset: _Optional[int] = ..., end_offset: _Optional[int] = ...) -> None: ...

class LineageRecord(_message.Message):
    __slots__ = ("job_execution_id", "execution_id", "workflow", "job", "inputs", "outputs", "time")
    JOB_EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    job_execution_id: int
    execution_id: int
    workflow: str
    job: str
    inputs: _containers.RepeatedCompositeFieldContainer[LineageRef]
    outputs: _containers.RepeatedCompositeFieldContainer[LineageRef]
    time: _timestamp_pb2.Timestamp
    def __init__(self, job_execution_id: _Optional[int] = ..., execution_id: _Optional[int] = ..., workflow: _Optional[str] = ..., job: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[LineageRef, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[LineageRef, _Mapping]]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Workflow(_message.Message):
    __slots__ = ("name", "latest_snapshot_id", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LATEST_SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    latest_snapshot_id: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., latest_snapshot_id: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("snapshot_id", "workflow", "plan_json", "code_uri", "code_sha256", "create_time", "identity")
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    PLAN_JSON_FIELD_NUMBER: _ClassVar[int]
    CODE_URI_FIELD_NUMBER: _ClassVar[int]
    CODE_SHA256_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: int
    workflow: str
    plan_json: str
    code_uri: str
    code_sha256: str
    create_time: _timestamp_pb2.Timestamp
    identity: str
    def __init__(self, snapshot_id: _Optional[int] = ..., workflow: _Optional[str] = ..., plan_json: _Optional[str] = ..., code_uri: _Optional[str] = ..., code_sha256: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., identity: _Optional[str] = ...) -> None: ...

class WorkflowExecution(_message.Message):
    __slots__ = ("execution_id", "workflow", "snapshot_id", "status", "params_json", "context", "start_time", "end_time")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    workflow: str
    snapshot_id: int
    status: ExecutionStatus
    params_json: str
    context: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, execution_id: _Optional[int] = ..., workflow: _Optional[str] = ..., snapshot_id: _Optional[int] = ..., status: _Optional[_Union[ExecutionStatus, str]] = ..., params_json: _Optional[str] = ..., context: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class JobExecution(_message.Message):
    __slots__ = ("job_execution_id", "execution_id", "workflow", "job", "attempt", "status", "create_time", "start_time", "end_time", "exit_code", "error", "log_uri", "host", "pid", "external_id", "trigger_offsets")
    JOB_EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LOG_URI_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    job_execution_id: int
    execution_id: int
    workflow: str
    job: str
    attempt: int
    status: JobStatus
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    exit_code: int
    error: str
    log_uri: str
    host: str
    pid: int
    external_id: str
    trigger_offsets: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, job_execution_id: _Optional[int] = ..., execution_id: _Optional[int] = ..., workflow: _Optional[str] = ..., job: _Optional[str] = ..., attempt: _Optional[int] = ..., status: _Optional[_Union[JobStatus, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., exit_code: _Optional[int] = ..., error: _Optional[str] = ..., log_uri: _Optional[str] = ..., host: _Optional[str] = ..., pid: _Optional[int] = ..., external_id: _Optional[str] = ..., trigger_offsets: _Optional[_Iterable[int]] = ...) -> None: ...

class ExecutionAction(_message.Message):
    __slots__ = ("action_id", "execution_id", "job", "action", "rule", "event_offset", "time", "trigger_offsets")
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    EVENT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    action_id: int
    execution_id: int
    job: str
    action: JobAction
    rule: str
    event_offset: int
    time: _timestamp_pb2.Timestamp
    trigger_offsets: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, action_id: _Optional[int] = ..., execution_id: _Optional[int] = ..., job: _Optional[str] = ..., action: _Optional[_Union[JobAction, str]] = ..., rule: _Optional[str] = ..., event_offset: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trigger_offsets: _Optional[_Iterable[int]] = ...) -> None: ...
