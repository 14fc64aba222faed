"""The compiler: graph splitter, job-generator registry and the workflow plan."""

from tideflow.compiler.compile import compile
from tideflow.compiler.generator import (
    ENGINE_GROUP,
    GeneratedJob,
    GeneratorRegistry,
    JobGenerator,
    default_registry,
    digest,
)
from tideflow.compiler.plan import SCHEMA_VERSION, PlanJob, PlanNode, WorkflowPlan
from tideflow.compiler.splitter import SplitJob, split

__all__ = [
    "ENGINE_GROUP",
    "SCHEMA_VERSION",
    "GeneratedJob",
    "GeneratorRegistry",
    "JobGenerator",
    "PlanJob",
    "PlanNode",
    "SplitJob",
    "WorkflowPlan",
    "compile",
    "default_registry",
    "digest",
    "split",
]
