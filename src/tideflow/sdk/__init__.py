"""The SDK: build an AI Graph with ``tide.workflow`` / ``tide.job`` and the node ops."""

from tideflow.sdk.builder import (
    Handle,
    Workflow,
    collect_workflows,
    context_from,
    job,
    workflow,
)
from tideflow.sdk.context import JobContext
from tideflow.sdk.ops import (
    command,
    evaluate,
    predict,
    push_model,
    read_dataset,
    train,
    transform,
    user_node,
    validate,
    write_dataset,
)
from tideflow.sdk.processor import FunctionProcessor, Processor, as_processor

__all__ = [
    "FunctionProcessor",
    "Handle",
    "JobContext",
    "Processor",
    "Workflow",
    "as_processor",
    "collect_workflows",
    "command",
    "context_from",
    "evaluate",
    "job",
    "predict",
    "push_model",
    "read_dataset",
    "train",
    "transform",
    "user_node",
    "validate",
    "workflow",
    "write_dataset",
]
