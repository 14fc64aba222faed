"""MetadataService over the in-process project, dataset, artifact, metric and lineage services.

A call works in the project of its metadata, never in one named by the message: the project
RPCs take ``name`` only to say which project, and refuse a name other than the call's (empty
means the call's), so a token scoped to one project cannot reach another through them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tideflow.errors import PermissionDeniedError
from tideflow.metadata import (
    ArtifactService,
    DatasetService,
    LineageService,
    MetricService,
    ProjectService,
)
from tideflow.rpc import convert
from tideflow.rpc.call import current_call, project
from tideflow.rpc.v1 import metadata_pb2 as m
from tideflow.rpc.v1 import metadata_pb2_grpc as g
from tideflow.store.cursor import MAX_PAGE_SIZE

DEFAULT_PAGE = 100


@dataclass(frozen=True)
class MetadataServices:
    """The in-process services behind :class:`MetadataServicer`."""

    projects: ProjectService
    datasets: DatasetService
    artifacts: ArtifactService
    metrics: MetricService
    lineage: LineageService

    @classmethod
    def of(cls, bundle: Any) -> MetadataServices:
        """The metadata services of a bundle with these attribute names (the server's)."""
        return cls(
            projects=bundle.projects,
            datasets=bundle.datasets,
            artifacts=bundle.artifacts,
            metrics=bundle.metrics,
            lineage=bundle.lineage,
        )


def _own_project(name: str) -> str:
    """The call's project, checking that ``name`` (if given) is that project."""
    scoped = project()
    if name and name != scoped:
        raise PermissionDeniedError(
            f"this call is scoped to project {scoped!r}; connect with project={name!r} "
            f"to work on project {name!r}"
        )
    return scoped


def _json_or_none(message: Any, name: str, what: str) -> Any:
    """The parsed ``optional`` JSON field ``name``, or ``None`` when unset."""
    return convert.from_json(getattr(message, name), what) if message.HasField(name) else None


class MetadataServicer(g.MetadataServiceServicer):
    """Every Metadata RPC; errors are mapped by the interceptor."""

    def __init__(self, services: MetadataServices) -> None:
        self._s = services

    # -- projects ---------------------------------------------------------------------------

    def CreateProject(
        self, request: m.CreateProjectRequest, context: Any
    ) -> m.CreateProjectResponse:
        created = self._s.projects.create_project(
            _own_project(request.name), description=request.description
        )
        return m.CreateProjectResponse(project=convert.project_to_pb(created))

    def GetProject(self, request: m.GetProjectRequest, context: Any) -> m.GetProjectResponse:
        found = self._s.projects.get_project(_own_project(request.name))
        return m.GetProjectResponse(project=convert.project_to_pb(found))

    def ListProjects(self, request: m.ListProjectsRequest, context: Any) -> m.ListProjectsResponse:
        projects = self._s.projects.list_projects()
        if current_call.get().role != "admin":  # only an admin sees beyond its own project
            projects = [p for p in projects if p.name == project()]
        return m.ListProjectsResponse(projects=[convert.project_to_pb(p) for p in projects])

    def DeleteProject(
        self, request: m.DeleteProjectRequest, context: Any
    ) -> m.DeleteProjectResponse:
        self._s.projects.delete_project(_own_project(request.name))
        return m.DeleteProjectResponse()

    # -- datasets ---------------------------------------------------------------------------

    def RegisterDataset(
        self, request: m.RegisterDatasetRequest, context: Any
    ) -> m.RegisterDatasetResponse:
        dataset = self._s.datasets.create_dataset(
            project(),
            request.name,
            uri=request.uri,
            format=request.format,
            stream=request.stream,
            schema=convert.from_json(request.schema_json, "schema"),
            properties=convert.from_json(request.properties_json, "properties"),
            description=request.description,
        )
        return m.RegisterDatasetResponse(dataset=convert.dataset_to_pb(dataset))

    def GetDataset(self, request: m.GetDatasetRequest, context: Any) -> m.GetDatasetResponse:
        dataset = self._s.datasets.get_dataset(project(), request.name)
        return m.GetDatasetResponse(dataset=convert.dataset_to_pb(dataset))

    def ListDatasets(self, request: m.ListDatasetsRequest, context: Any) -> m.ListDatasetsResponse:
        page = self._s.datasets.list_datasets(
            project(),
            limit=request.limit or DEFAULT_PAGE,
            cursor=convert.optional(request, "cursor"),
        )
        return m.ListDatasetsResponse(
            datasets=[convert.dataset_to_pb(d) for d in page.items], next_cursor=page.next_cursor
        )

    def UpdateDataset(
        self, request: m.UpdateDatasetRequest, context: Any
    ) -> m.UpdateDatasetResponse:
        dataset = self._s.datasets.update_dataset(
            project(),
            request.name,
            uri=convert.optional(request, "uri"),
            format=convert.optional(request, "format"),
            stream=convert.optional(request, "stream"),
            schema=_json_or_none(request, "schema_json", "schema"),
            properties=_json_or_none(request, "properties_json", "properties"),
            description=convert.optional(request, "description"),
        )
        return m.UpdateDatasetResponse(dataset=convert.dataset_to_pb(dataset))

    def DeleteDataset(
        self, request: m.DeleteDatasetRequest, context: Any
    ) -> m.DeleteDatasetResponse:
        self._s.datasets.delete_dataset(project(), request.name)
        return m.DeleteDatasetResponse()

    # -- artifacts --------------------------------------------------------------------------

    def RegisterArtifact(
        self, request: m.RegisterArtifactRequest, context: Any
    ) -> m.RegisterArtifactResponse:
        artifact = self._s.artifacts.create_artifact(
            project(),
            request.name,
            uri=request.uri,
            kind=request.kind,
            properties=convert.from_json(request.properties_json, "properties"),
            description=request.description,
        )
        return m.RegisterArtifactResponse(artifact=convert.artifact_to_pb(artifact))

    def GetArtifact(self, request: m.GetArtifactRequest, context: Any) -> m.GetArtifactResponse:
        artifact = self._s.artifacts.get_artifact(project(), request.name)
        return m.GetArtifactResponse(artifact=convert.artifact_to_pb(artifact))

    def ListArtifacts(
        self, request: m.ListArtifactsRequest, context: Any
    ) -> m.ListArtifactsResponse:
        page = self._s.artifacts.list_artifacts(
            project(),
            limit=request.limit or DEFAULT_PAGE,
            cursor=convert.optional(request, "cursor"),
        )
        return m.ListArtifactsResponse(
            artifacts=[convert.artifact_to_pb(a) for a in page.items],
            next_cursor=page.next_cursor,
        )

    def UpdateArtifact(
        self, request: m.UpdateArtifactRequest, context: Any
    ) -> m.UpdateArtifactResponse:
        artifact = self._s.artifacts.update_artifact(
            project(),
            request.name,
            uri=convert.optional(request, "uri"),
            kind=convert.optional(request, "kind"),
            properties=_json_or_none(request, "properties_json", "properties"),
            description=convert.optional(request, "description"),
        )
        return m.UpdateArtifactResponse(artifact=convert.artifact_to_pb(artifact))

    def DeleteArtifact(
        self, request: m.DeleteArtifactRequest, context: Any
    ) -> m.DeleteArtifactResponse:
        self._s.artifacts.delete_artifact(project(), request.name)
        return m.DeleteArtifactResponse()

    # -- metrics and lineage ----------------------------------------------------------------

    def LogMetric(self, request: m.LogMetricRequest, context: Any) -> m.LogMetricResponse:
        metric = self._s.metrics.log_metric(
            project(),
            request.name,
            request.value,
            step=convert.optional(request, "step"),
            time=convert.from_timestamp(request, "time"),
            tags=dict(request.tags),
            job_execution_id=convert.optional(request, "job_execution_id"),
            model=convert.optional(request, "model"),
            version=convert.optional(request, "version"),
            dataset=convert.optional(request, "dataset"),
        )
        return m.LogMetricResponse(metric=convert.metric_to_pb(metric))

    def ListMetrics(self, request: m.ListMetricsRequest, context: Any) -> m.ListMetricsResponse:
        metrics = self._s.metrics.list_metrics(
            project(),
            name=convert.optional(request, "name"),
            job_execution_id=convert.optional(request, "job_execution_id"),
            model=convert.optional(request, "model"),
            version=convert.optional(request, "version"),
            dataset=convert.optional(request, "dataset"),
            limit=request.limit or MAX_PAGE_SIZE,
        )
        return m.ListMetricsResponse(metrics=[convert.metric_to_pb(x) for x in metrics])

    def RecordLineage(
        self, request: m.RecordLineageRequest, context: Any
    ) -> m.RecordLineageResponse:
        record = self._s.lineage.record_lineage(
            project(),
            request.job_execution_id,
            inputs=[convert.lineage_ref_from_pb(r) for r in request.inputs],
            outputs=[convert.lineage_ref_from_pb(r) for r in request.outputs],
        )
        return m.RecordLineageResponse(record=convert.lineage_record_to_pb(record))

    def GetUpstreamLineage(
        self, request: m.GetUpstreamLineageRequest, context: Any
    ) -> m.GetUpstreamLineageResponse:
        records = self._s.lineage.upstream(project(), model=request.model, version=request.version)
        return m.GetUpstreamLineageResponse(
            records=[convert.lineage_record_to_pb(r) for r in records]
        )

    def GetDownstreamLineage(
        self, request: m.GetDownstreamLineageRequest, context: Any
    ) -> m.GetDownstreamLineageResponse:
        records = self._s.lineage.downstream(
            project(), dataset=request.dataset, version=convert.optional(request, "version")
        )
        return m.GetDownstreamLineageResponse(
            records=[convert.lineage_record_to_pb(r) for r in records]
        )
