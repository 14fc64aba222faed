"""Tideflow: event-driven lifecycle management for batch and streaming ML pipelines.

This module is the SDK's one public face and only re-exports. Names whose implementation pulls
in heavy libraries (SQLAlchemy, gRPC) are resolved lazily on first use, so ``import tideflow``
stays fast.
"""

from typing import TYPE_CHECKING, Any

from tideflow._version import __version__
from tideflow.compiler import WorkflowPlan, compile
from tideflow.domain import (
    Aggregate,
    Event,
    EventMatch,
    ExecutionStatus,
    JobAction,
    JobStatus,
    Life,
    LineageRef,
    ModelStatus,
    ModelVersionEvent,
    OnBusy,
    all_of,
    any_of,
    last,
    window,
)
from tideflow.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    GraphError,
    IllegalTransitionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    TideflowError,
    UnauthenticatedError,
    UnavailableError,
)
from tideflow.sdk import (
    JobContext,
    Processor,
    command,
    context_from,
    evaluate,
    job,
    predict,
    push_model,
    read_dataset,
    train,
    transform,
    user_node,
    validate,
    workflow,
    write_dataset,
)

if TYPE_CHECKING:
    from tideflow.client import connect
    from tideflow.client.embedded import init
    from tideflow.client.executions import start, stop
    from tideflow.client.workflows import submit

# name -> module that defines it, imported on first attribute access.
_LAZY = {
    "connect": "tideflow.client",
    "init": "tideflow.client.embedded",
    "start": "tideflow.client.executions",
    "stop": "tideflow.client.executions",
    "submit": "tideflow.client.workflows",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tideflow' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


__all__ = [
    "Aggregate",
    "AlreadyExistsError",
    "Event",
    "EventMatch",
    "ExecutionStatus",
    "FailedPreconditionError",
    "GraphError",
    "IllegalTransitionError",
    "InvalidArgumentError",
    "JobAction",
    "JobContext",
    "JobStatus",
    "Life",
    "LineageRef",
    "ModelStatus",
    "ModelVersionEvent",
    "NotFoundError",
    "OnBusy",
    "PermissionDeniedError",
    "Processor",
    "ResourceExhaustedError",
    "TideflowError",
    "UnauthenticatedError",
    "UnavailableError",
    "WorkflowPlan",
    "__version__",
    "all_of",
    "any_of",
    "command",
    "compile",
    "connect",
    "context_from",
    "evaluate",
    "init",
    "job",
    "last",
    "predict",
    "push_model",
    "read_dataset",
    "start",
    "stop",
    "submit",
    "train",
    "transform",
    "user_node",
    "validate",
    "window",
    "workflow",
    "write_dataset",
]
