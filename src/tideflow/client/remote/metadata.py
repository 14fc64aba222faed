"""Projects, datasets, artifacts, metrics and lineage over gRPC.

Each class subclasses the in-process service, so the client facades and mypy treat both alike.
The ``project`` argument of every method is ignored: the channel's metadata carries the project
the client was connected with, and the server works in that one only.

Arguments protobuf cannot carry (a wrong type, unserialisable JSON) are refused here with the
:class:`~tideflow.errors.InvalidArgumentError` the in-process service would raise; everything
else is validated by the server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from tideflow.client.remote.channel import RpcChannel
from tideflow.client.remote.request import build, json_or_none, json_text, str_map
from tideflow.domain.limits import check_name, check_number
from tideflow.domain.lineage import LineageRecord, LineageRef
from tideflow.domain.metadata import Artifact, Dataset, Metric, Project
from tideflow.domain.page import Page
from tideflow.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from tideflow.metadata import (
    ArtifactService,
    DatasetService,
    LineageService,
    MetricService,
    ProjectService,
)
from tideflow.rpc import convert
from tideflow.rpc.v1 import metadata_pb2 as m
from tideflow.rpc.v1 import metadata_pb2_grpc as g
from tideflow.store.cursor import MAX_PAGE_SIZE, check_limit


def lineage_refs(refs: Sequence[LineageRef | str], what: str) -> list[Any]:
    """Wire references; a plain string stands for a dataset, as in-process."""
    if isinstance(refs, str | LineageRef):  # one entry, not a list of them
        raise InvalidArgumentError(
            f"{what} must be a list of LineageRef or dataset names, got {refs!r}", field=what
        )
    wire = []
    for ref in refs:
        if isinstance(ref, str):
            ref = LineageRef.dataset(ref)
        if not isinstance(ref, LineageRef):
            raise InvalidArgumentError(
                f"lineage entries are LineageRef or dataset names, got {ref!r}", field="lineage"
            )
        wire.append(build(lambda r=ref: convert.lineage_ref_to_pb(r)))  # type: ignore[misc]
    return wire


class RemoteProjectService(ProjectService):
    """:class:`ProjectService` over gRPC; works only on the channel's project."""

    def __init__(self, channel: RpcChannel) -> None:  # no store: everything is remote
        self._rpc = channel
        self._stub = g.MetadataServiceStub(channel.channel)

    def create_project(self, name: str, *, description: str = "") -> Project:
        request = build(lambda: m.CreateProjectRequest(name=name, description=description))
        response = self._rpc.unary(self._stub.CreateProject, request, mutating=True)
        return convert.project_from_pb(response.project)

    def ensure_project(self, name: str) -> Project:
        check_name(name, "project name")  # before it travels as call metadata
        try:
            return self.get_project(name)
        except NotFoundError:
            pass
        try:
            return self.create_project(name)
        except AlreadyExistsError:  # another client created it between our read and create
            return self.get_project(name)

    def get_project(self, name: str) -> Project:
        request = build(lambda: m.GetProjectRequest(name=name))
        response = self._rpc.unary(self._stub.GetProject, request, mutating=False)
        return convert.project_from_pb(response.project)

    def list_projects(self) -> list[Project]:
        response = self._rpc.unary(self._stub.ListProjects, m.ListProjectsRequest(), mutating=False)
        return [convert.project_from_pb(p) for p in response.projects]

    def delete_project(self, name: str) -> None:
        request = build(lambda: m.DeleteProjectRequest(name=name))
        self._rpc.unary(self._stub.DeleteProject, request, mutating=True)


class RemoteDatasetService(DatasetService):
    """:class:`DatasetService` over gRPC."""

    def __init__(self, channel: RpcChannel) -> None:  # no store: everything is remote
        self._rpc = channel
        self._stub = g.MetadataServiceStub(channel.channel)

    def create_dataset(
        self,
        project: str,
        name: str,
        *,
        uri: str = "",
        format: str = "",
        stream: bool = False,
        schema: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> Dataset:
        _check_stream(stream)
        request = build(
            lambda: m.RegisterDatasetRequest(
                name=name,
                uri=uri,
                format=format,
                stream=stream,
                schema_json=json_text(schema, "schema"),
                properties_json=json_text(properties, "properties"),
                description=description,
            )
        )
        response = self._rpc.unary(self._stub.RegisterDataset, request, mutating=True)
        return convert.dataset_from_pb(response.dataset)

    def get_dataset(self, project: str, name: str) -> Dataset:
        request = build(lambda: m.GetDatasetRequest(name=name))
        response = self._rpc.unary(self._stub.GetDataset, request, mutating=False)
        return convert.dataset_from_pb(response.dataset)

    def list_datasets(
        self, project: str, *, limit: int = 100, cursor: str | None = None
    ) -> Page[Dataset]:
        check_limit(limit)
        request = build(lambda: m.ListDatasetsRequest(limit=limit, cursor=cursor))
        response = self._rpc.unary(self._stub.ListDatasets, request, mutating=False)
        return Page(
            tuple(convert.dataset_from_pb(d) for d in response.datasets),
            convert.optional(response, "next_cursor"),
        )

    def update_dataset(
        self,
        project: str,
        name: str,
        *,
        uri: str | None = None,
        format: str | None = None,
        stream: bool | None = None,
        schema: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> Dataset:
        if stream is not None:
            _check_stream(stream)
        request = build(
            lambda: m.UpdateDatasetRequest(
                name=name,
                uri=uri,
                format=format,
                stream=stream,
                schema_json=json_or_none(schema, "schema"),
                properties_json=json_or_none(properties, "properties"),
                description=description,
            )
        )
        response = self._rpc.unary(self._stub.UpdateDataset, request, mutating=True)
        return convert.dataset_from_pb(response.dataset)

    def delete_dataset(self, project: str, name: str) -> None:
        request = build(lambda: m.DeleteDatasetRequest(name=name))
        self._rpc.unary(self._stub.DeleteDataset, request, mutating=True)


def _check_stream(stream: object) -> None:
    if not isinstance(stream, bool):
        raise InvalidArgumentError(f"stream must be True or False, got {stream!r}", field="stream")


class RemoteArtifactService(ArtifactService):
    """:class:`ArtifactService` over gRPC."""

    def __init__(self, channel: RpcChannel) -> None:  # no store: everything is remote
        self._rpc = channel
        self._stub = g.MetadataServiceStub(channel.channel)

    def create_artifact(
        self,
        project: str,
        name: str,
        *,
        uri: str = "",
        kind: str = "",
        properties: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> Artifact:
        request = build(
            lambda: m.RegisterArtifactRequest(
                name=name,
                uri=uri,
                kind=kind,
                properties_json=json_text(properties, "properties"),
                description=description,
            )
        )
        response = self._rpc.unary(self._stub.RegisterArtifact, request, mutating=True)
        return convert.artifact_from_pb(response.artifact)

    def get_artifact(self, project: str, name: str) -> Artifact:
        request = build(lambda: m.GetArtifactRequest(name=name))
        response = self._rpc.unary(self._stub.GetArtifact, request, mutating=False)
        return convert.artifact_from_pb(response.artifact)

    def list_artifacts(
        self, project: str, *, limit: int = 100, cursor: str | None = None
    ) -> Page[Artifact]:
        check_limit(limit)
        request = build(lambda: m.ListArtifactsRequest(limit=limit, cursor=cursor))
        response = self._rpc.unary(self._stub.ListArtifacts, request, mutating=False)
        return Page(
            tuple(convert.artifact_from_pb(a) for a in response.artifacts),
            convert.optional(response, "next_cursor"),
        )

    def update_artifact(
        self,
        project: str,
        name: str,
        *,
        uri: str | None = None,
        kind: str | None = None,
        properties: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> Artifact:
        request = build(
            lambda: m.UpdateArtifactRequest(
                name=name,
                uri=uri,
                kind=kind,
                properties_json=json_or_none(properties, "properties"),
                description=description,
            )
        )
        response = self._rpc.unary(self._stub.UpdateArtifact, request, mutating=True)
        return convert.artifact_from_pb(response.artifact)

    def delete_artifact(self, project: str, name: str) -> None:
        request = build(lambda: m.DeleteArtifactRequest(name=name))
        self._rpc.unary(self._stub.DeleteArtifact, request, mutating=True)


class RemoteMetricService(MetricService):
    """:class:`MetricService` over gRPC."""

    def __init__(self, channel: RpcChannel) -> None:  # no store: everything is remote
        self._rpc = channel
        self._stub = g.MetadataServiceStub(channel.channel)

    def log_metric(
        self,
        project: str,
        name: str,
        value: float,
        *,
        step: int | None = None,
        time: datetime | None = None,
        tags: Mapping[str, str] | None = None,
        job_execution_id: int | None = None,
        model: str | None = None,
        version: int | None = None,
        dataset: str | None = None,
    ) -> Metric:
        if time is not None and (not isinstance(time, datetime) or time.tzinfo is None):
            raise InvalidArgumentError("time must be a timezone-aware datetime", field="time")
        request = build(
            lambda: m.LogMetricRequest(
                name=name,
                value=check_number(value, "metric value"),
                step=step,
                time=convert.to_timestamp(time),
                tags=str_map(tags, "tags"),
                job_execution_id=job_execution_id,
                model=model,
                version=version,
                dataset=dataset,
            )
        )
        response = self._rpc.unary(self._stub.LogMetric, request, mutating=True)
        return convert.metric_from_pb(response.metric)

    def list_metrics(
        self,
        project: str,
        *,
        name: str | None = None,
        job_execution_id: int | None = None,
        model: str | None = None,
        version: int | None = None,
        dataset: str | None = None,
        limit: int = MAX_PAGE_SIZE,
    ) -> list[Metric]:
        check_limit(limit)
        request = build(
            lambda: m.ListMetricsRequest(
                name=name,
                job_execution_id=job_execution_id,
                model=model,
                version=version,
                dataset=dataset,
                limit=limit,
            )
        )
        response = self._rpc.unary(self._stub.ListMetrics, request, mutating=False)
        return [convert.metric_from_pb(x) for x in response.metrics]


class RemoteLineageService(LineageService):
    """:class:`LineageService` over gRPC."""

    def __init__(self, channel: RpcChannel) -> None:  # no store: everything is remote
        self._rpc = channel
        self._stub = g.MetadataServiceStub(channel.channel)

    def record_lineage(
        self,
        project: str,
        job_execution_id: int,
        *,
        inputs: Sequence[LineageRef | str] = (),
        outputs: Sequence[LineageRef | str] = (),
    ) -> LineageRecord:
        request = build(
            lambda: m.RecordLineageRequest(
                job_execution_id=job_execution_id,
                inputs=lineage_refs(inputs, "inputs"),
                outputs=lineage_refs(outputs, "outputs"),
            )
        )
        response = self._rpc.unary(self._stub.RecordLineage, request, mutating=True)
        return convert.lineage_record_from_pb(response.record)

    def upstream(self, project: str, *, model: str, version: int) -> list[LineageRecord]:
        request = build(lambda: m.GetUpstreamLineageRequest(model=model, version=version))
        response = self._rpc.unary(self._stub.GetUpstreamLineage, request, mutating=False)
        return [convert.lineage_record_from_pb(r) for r in response.records]

    def downstream(
        self, project: str, *, dataset: str, version: int | None = None
    ) -> list[LineageRecord]:
        request = build(lambda: m.GetDownstreamLineageRequest(dataset=dataset, version=version))
        response = self._rpc.unary(self._stub.GetDownstreamLineage, request, mutating=False)
        return [convert.lineage_record_from_pb(r) for r in response.records]
