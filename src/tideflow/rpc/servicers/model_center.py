"""ModelCenterService over :class:`~tideflow.modelcenter.ModelCenter`."""

from __future__ import annotations

from typing import Any

from tideflow.domain.status import ModelStatus
from tideflow.modelcenter import ModelCenter
from tideflow.rpc import convert
from tideflow.rpc.call import project
from tideflow.rpc.v1 import model_center_pb2 as m
from tideflow.rpc.v1 import model_center_pb2_grpc as g


class ModelCenterServicer(g.ModelCenterServiceServicer):
    """Every Model Center RPC; errors are mapped by the interceptor."""

    def __init__(self, center: ModelCenter) -> None:
        self._center = center

    def CreateModel(self, request: m.CreateModelRequest, context: Any) -> m.CreateModelResponse:
        model = self._center.create_model(
            project(), request.name, description=request.description, tags=dict(request.tags)
        )
        return m.CreateModelResponse(model=convert.model_to_pb(model))

    def GetModel(self, request: m.GetModelRequest, context: Any) -> m.GetModelResponse:
        return m.GetModelResponse(
            model=convert.model_to_pb(self._center.get_model(project(), request.name))
        )

    def ListModels(self, request: m.ListModelsRequest, context: Any) -> m.ListModelsResponse:
        page = self._center.list_models(
            project(), limit=request.limit or 100, cursor=convert.optional(request, "cursor")
        )
        return m.ListModelsResponse(
            models=[convert.model_to_pb(x) for x in page.items], next_cursor=page.next_cursor
        )

    def UpdateModel(self, request: m.UpdateModelRequest, context: Any) -> m.UpdateModelResponse:
        model = self._center.update_model(
            project(),
            request.name,
            description=convert.optional(request, "description"),
            tags=dict(request.tags) if request.update_tags else None,
        )
        return m.UpdateModelResponse(model=convert.model_to_pb(model))

    def CreateModelVersion(
        self, request: m.CreateModelVersionRequest, context: Any
    ) -> m.CreateModelVersionResponse:
        version = self._center.create_version(
            project(),
            request.model,
            uri=request.uri,
            flavour=request.flavour,
            metrics=dict(request.metrics),
            params=convert.from_json(request.params_json, "params"),
            tags=dict(request.tags),
            description=request.description,
            job_execution_id=convert.optional(request, "job_execution_id"),
        )
        return m.CreateModelVersionResponse(version=convert.version_to_pb(version))

    def GetModelVersion(
        self, request: m.GetModelVersionRequest, context: Any
    ) -> m.GetModelVersionResponse:
        selector = request.WhichOneof("selector")
        version = self._center.get_version(
            project(),
            request.model,
            version=request.version if selector == "version" else None,
            status=_status(request.status) if selector == "status" else None,
            alias=request.alias if selector == "alias" else None,
        )
        return m.GetModelVersionResponse(version=convert.version_to_pb(version))

    def ListModelVersions(
        self, request: m.ListModelVersionsRequest, context: Any
    ) -> m.ListModelVersionsResponse:
        page = self._center.list_versions(
            project(),
            request.model,
            status=convert.enum_from_pb(request.status, ModelStatus, "MODEL_STATUS"),
            limit=request.limit or 100,
            cursor=convert.optional(request, "cursor"),
        )
        return m.ListModelVersionsResponse(
            versions=[convert.version_to_pb(v) for v in page.items], next_cursor=page.next_cursor
        )

    def SetModelVersionStatus(
        self, request: m.SetModelVersionStatusRequest, context: Any
    ) -> m.SetModelVersionStatusResponse:
        version = self._center.set_status(
            project(), request.model, request.version, _status(request.status)
        )
        return m.SetModelVersionStatusResponse(version=convert.version_to_pb(version))

    def DeployModelVersion(
        self, request: m.DeployModelVersionRequest, context: Any
    ) -> m.DeployModelVersionResponse:
        version = self._center.deploy(project(), request.model, request.version)
        return m.DeployModelVersionResponse(version=convert.version_to_pb(version))

    def RollbackModel(
        self, request: m.RollbackModelRequest, context: Any
    ) -> m.RollbackModelResponse:
        return m.RollbackModelResponse(
            version=convert.version_to_pb(self._center.rollback(project(), request.model))
        )

    def DeleteModelVersion(
        self, request: m.DeleteModelVersionRequest, context: Any
    ) -> m.DeleteModelVersionResponse:
        version = self._center.delete_version(project(), request.model, request.version)
        return m.DeleteModelVersionResponse(version=convert.version_to_pb(version))

    def SetModelAlias(
        self, request: m.SetModelAliasRequest, context: Any
    ) -> m.SetModelAliasResponse:
        version = self._center.set_alias(project(), request.model, request.alias, request.version)
        return m.SetModelAliasResponse(version=convert.version_to_pb(version))

    def DeleteModelAlias(
        self, request: m.DeleteModelAliasRequest, context: Any
    ) -> m.DeleteModelAliasResponse:
        self._center.delete_alias(project(), request.model, request.alias)
        return m.DeleteModelAliasResponse()

    def ListModelAliases(
        self, request: m.ListModelAliasesRequest, context: Any
    ) -> m.ListModelAliasesResponse:
        return m.ListModelAliasesResponse(
            aliases=self._center.list_aliases(project(), request.model)
        )

    def GetModelVersionHistory(
        self, request: m.GetModelVersionHistoryRequest, context: Any
    ) -> m.GetModelVersionHistoryResponse:
        changes = self._center.history(project(), request.model, request.version)
        return m.GetModelVersionHistoryResponse(
            changes=[convert.status_change_to_pb(c) for c in changes]
        )


def _status(number: int) -> ModelStatus | str:
    """A status from the wire; UNSPECIFIED passes through as "" for the service to reject."""
    return convert.enum_from_pb(number, ModelStatus, "MODEL_STATUS") or ""
