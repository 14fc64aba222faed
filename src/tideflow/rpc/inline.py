"""Which calls the server may run on its event loop, with no thread hand-off.

A call on the loop stops every other call and stream while it runs, so only calls that are a
few statements of the store's own work are named here: event sends and reads, the model
center's reads and writes, metadata reads, metrics and lineage. Anything that reads or writes
files (uploads, code packages, job logs), compiles (workflow submission), reaches another
system (stopping a job on a cluster) or may delete much (projects, compaction) runs on the
pool. The server applies this list on SQLite only: on PostgreSQL or MariaDB every call waits
for network round trips, and the pool lets those waits overlap.
"""

from __future__ import annotations

from tideflow.rpc.server_info import METHOD as SERVER_INFO


def _methods(service: str, names: str) -> frozenset[str]:
    return frozenset(f"/tideflow.v1.{service}/{name}" for name in names.split())


INLINE_METHODS: frozenset[str] = (
    _methods(
        "NotificationService",
        "SendEvent SendEvents ListEvents GetLatestOffset CommitOffset GetCommittedOffset",
    )
    | _methods(
        "ModelCenterService",
        "CreateModel GetModel ListModels UpdateModel CreateModelVersion GetModelVersion "
        "ListModelVersions SetModelVersionStatus DeployModelVersion RollbackModel "
        "SetModelAlias DeleteModelAlias ListModelAliases GetModelVersionHistory",
    )
    | _methods(
        "MetadataService",
        "GetProject ListProjects GetDataset ListDatasets GetArtifact ListArtifacts LogMetric "
        "ListMetrics RecordLineage GetUpstreamLineage GetDownstreamLineage",
    )
    | _methods(
        "SchedulerService",
        "GetWorkflow ListWorkflows GetSnapshot ListSnapshots GetWorkflowExecution "
        "ListWorkflowExecutions ListJobExecutions ListExecutionActions GetWaitingOn "
        "GetWorkflowSettings",
    )
    | {SERVER_INFO}
)
