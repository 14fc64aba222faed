"""Metadata Service: projects, datasets, artifacts, metrics, workflows, executions, lineage.

Every service takes the project as its first argument and runs each call in one transaction of
the store; changes other parts react to append their events in that same transaction.
"""

from tideflow.metadata.access import AccessService
from tideflow.metadata.catalog import ArtifactService, DatasetService
from tideflow.metadata.measurement import LineageService, MetricService
from tideflow.metadata.project import ProjectService
from tideflow.metadata.workflow import ExecutionService, WorkflowService

__all__ = [
    "AccessService",
    "ArtifactService",
    "DatasetService",
    "ExecutionService",
    "LineageService",
    "MetricService",
    "ProjectService",
    "WorkflowService",
]
