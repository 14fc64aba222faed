"""The Model Center over gRPC."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tideflow.client.remote.channel import RpcChannel
from tideflow.client.remote.request import json_text, metric_map, str_map
from tideflow.domain.model import ModelVersion, RegisteredModel, StatusChange
from tideflow.domain.page import Page
from tideflow.domain.status import ModelStatus
from tideflow.errors import InvalidArgumentError
from tideflow.modelcenter import ModelCenter
from tideflow.modelcenter.lifecycle import parse_status
from tideflow.rpc import convert
from tideflow.rpc.v1 import model_center_pb2 as m
from tideflow.rpc.v1 import model_center_pb2_grpc as g
from tideflow.store.cursor import check_limit


class RemoteModelCenter(ModelCenter):
    """:class:`ModelCenter`'s interface; the project comes from the channel's metadata."""

    def __init__(self, channel: RpcChannel) -> None:  # no store: everything is remote
        self._rpc = channel
        self._stub = g.ModelCenterServiceStub(channel.channel)

    def create_model(
        self,
        project: str,
        name: str,
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel:
        request = m.CreateModelRequest(
            name=name, description=description, tags=str_map(tags, "tags")
        )
        return convert.model_from_pb(
            self._rpc.unary(self._stub.CreateModel, request, mutating=True).model
        )

    def get_model(self, project: str, name: str) -> RegisteredModel:
        response = self._rpc.unary(
            self._stub.GetModel, m.GetModelRequest(name=name), mutating=False
        )
        return convert.model_from_pb(response.model)

    def list_models(
        self, project: str, *, limit: int = 100, cursor: str | None = None
    ) -> Page[RegisteredModel]:
        check_limit(limit)
        response = self._rpc.unary(
            self._stub.ListModels, m.ListModelsRequest(limit=limit, cursor=cursor), mutating=False
        )
        return Page(
            tuple(convert.model_from_pb(x) for x in response.models),
            convert.optional(response, "next_cursor"),
        )

    def update_model(
        self,
        project: str,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel:
        request = m.UpdateModelRequest(
            name=name,
            description=description,
            tags=str_map(tags, "tags"),
            update_tags=tags is not None,
        )
        return convert.model_from_pb(
            self._rpc.unary(self._stub.UpdateModel, request, mutating=True).model
        )

    def create_version(
        self,
        project: str,
        model: str,
        *,
        uri: str = "",
        flavour: str = "",
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        description: str = "",
        job_execution_id: int | None = None,
    ) -> ModelVersion:
        request = m.CreateModelVersionRequest(
            model=model,
            uri=uri,
            flavour=flavour,
            metrics=metric_map(metrics),
            params_json=json_text(params, "params"),
            tags=str_map(tags, "tags"),
            description=description,
            job_execution_id=job_execution_id,
        )
        response = self._rpc.unary(self._stub.CreateModelVersion, request, mutating=True)
        return convert.version_from_pb(response.version)

    def get_version(
        self,
        project: str,
        model: str,
        *,
        version: int | None = None,
        status: ModelStatus | str | None = None,
        alias: str | None = None,
    ) -> ModelVersion:
        chosen = [
            name
            for name, value in (("version", version), ("status", status), ("alias", alias))
            if value is not None
        ]
        if len(chosen) > 1:
            # The wire's oneof holds one selector: refuse here, as the service would.
            got = ", ".join(
                f"{name}={value!r}"
                for name, value in (("version", version), ("status", status), ("alias", alias))
                if value is not None
            )
            raise InvalidArgumentError(
                f"which version of model {model!r}? give exactly one of version=, status= or alias= (got {got})",
                field="version",
            )
        request = m.GetModelVersionRequest(model=model)
        if version is not None:
            request.version = version
        elif status is not None:
            request.status = convert.enum_to_pb(parse_status(status), "MODEL_STATUS")
        elif alias is not None:
            request.alias = alias
        return convert.version_from_pb(
            self._rpc.unary(self._stub.GetModelVersion, request, mutating=False).version
        )

    def list_versions(
        self,
        project: str,
        model: str,
        *,
        status: ModelStatus | str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[ModelVersion]:
        check_limit(limit)
        request = m.ListModelVersionsRequest(
            model=model,
            status=convert.enum_to_pb(
                None if status is None else parse_status(status), "MODEL_STATUS"
            ),
            limit=limit,
            cursor=cursor,
        )
        response = self._rpc.unary(self._stub.ListModelVersions, request, mutating=False)
        return Page(
            tuple(convert.version_from_pb(v) for v in response.versions),
            convert.optional(response, "next_cursor"),
        )

    def history(self, project: str, model: str, version: int) -> list[StatusChange]:
        request = m.GetModelVersionHistoryRequest(model=model, version=version)
        response = self._rpc.unary(self._stub.GetModelVersionHistory, request, mutating=False)
        return [convert.status_change_from_pb(c) for c in response.changes]

    def set_status(
        self, project: str, model: str, version: int, status: ModelStatus | str
    ) -> ModelVersion:
        request = m.SetModelVersionStatusRequest(
            model=model,
            version=version,
            status=convert.enum_to_pb(parse_status(status), "MODEL_STATUS"),
        )
        return convert.version_from_pb(
            self._rpc.unary(self._stub.SetModelVersionStatus, request, mutating=True).version
        )

    def deploy(self, project: str, model: str, version: int) -> ModelVersion:
        request = m.DeployModelVersionRequest(model=model, version=version)
        return convert.version_from_pb(
            self._rpc.unary(self._stub.DeployModelVersion, request, mutating=True).version
        )

    def rollback(self, project: str, model: str) -> ModelVersion:
        request = m.RollbackModelRequest(model=model)
        return convert.version_from_pb(
            self._rpc.unary(self._stub.RollbackModel, request, mutating=True).version
        )

    def delete_version(self, project: str, model: str, version: int) -> ModelVersion:
        request = m.DeleteModelVersionRequest(model=model, version=version)
        return convert.version_from_pb(
            self._rpc.unary(self._stub.DeleteModelVersion, request, mutating=True).version
        )

    def set_alias(self, project: str, model: str, alias: str, version: int) -> ModelVersion:
        request = m.SetModelAliasRequest(model=model, alias=alias, version=version)
        return convert.version_from_pb(
            self._rpc.unary(self._stub.SetModelAlias, request, mutating=True).version
        )

    def delete_alias(self, project: str, model: str, alias: str) -> None:
        self._rpc.unary(
            self._stub.DeleteModelAlias,
            m.DeleteModelAliasRequest(model=model, alias=alias),
            mutating=True,
        )

    def list_aliases(self, project: str, model: str) -> dict[str, int]:
        response = self._rpc.unary(
            self._stub.ListModelAliases, m.ListModelAliasesRequest(model=model), mutating=False
        )
        return dict(response.aliases)
