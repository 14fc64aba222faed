"""``client.models``: the Model Center, bound to the client's project."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tideflow.domain.model import ModelVersion, RegisteredModel, StatusChange
from tideflow.domain.page import Page
from tideflow.domain.status import ModelStatus
from tideflow.errors import FailedPreconditionError
from tideflow.modelcenter import ModelCenter

if TYPE_CHECKING:
    from tideflow.client.local import Client


class Models:
    """Registered models and their versions in one project (see DESIGN.md "Client API")."""

    def __init__(self, center: ModelCenter, project: str, *, client: Client | None = None) -> None:
        self._center = center
        self._project = project
        self._client = client  # for export / import, which also use the blob store

    def _owner(self) -> Client:
        if self._client is None:
            raise FailedPreconditionError(
                "export and import need the Models of a Client (client.models)"
            )
        return self._client

    def create(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        """Register model ``name``."""
        return self._center.create_model(self._project, name, description=description, tags=tags)

    def get(self, name: str) -> RegisteredModel:
        """Model ``name``."""
        return self._center.get_model(self._project, name)

    def list(self, *, limit: int = 100, cursor: str | None = None) -> Page[RegisteredModel]:
        """The project's models, one page at a time."""
        return self._center.list_models(self._project, limit=limit, cursor=cursor)

    def update(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel:
        """Change a model's description and/or tags."""
        return self._center.update_model(self._project, name, description=description, tags=tags)

    def create_version(
        self,
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
        """Register the next version of ``model`` (GENERATED, event MODEL_GENERATED).

        Args:
            model: The registered model's name.
            uri: Where the artefact is (a blob-store URL).
            flavour: How to load it (``sklearn``, ``river``, ``pickle``, ...).
            metrics: Numbers measured when it was made (``{"auc": 0.71}``).
            params: The parameters it was trained with (JSON-serialisable).
            tags: String labels.
            description: Free text.
            job_execution_id: The job execution that produced it.
        """
        return self._center.create_version(
            self._project,
            model,
            uri=uri,
            flavour=flavour,
            metrics=metrics,
            params=params,
            tags=tags,
            description=description,
            job_execution_id=job_execution_id,
        )

    def get_version(
        self,
        model: str,
        *,
        version: int | None = None,
        status: ModelStatus | str | None = None,
        alias: str | None = None,
    ) -> ModelVersion:
        """One version, by ``version=``, ``status=`` (the newest in it) or ``alias=``."""
        return self._center.get_version(
            self._project, model, version=version, status=status, alias=alias
        )

    def list_versions(
        self,
        model: str,
        *,
        status: ModelStatus | str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[ModelVersion]:
        """Versions of ``model`` by number, one page at a time."""
        return self._center.list_versions(
            self._project, model, status=status, limit=limit, cursor=cursor
        )

    def set_status(self, model: str, version: int, status: ModelStatus | str) -> ModelVersion:
        """Move a version to ``status`` (illegal moves raise IllegalTransitionError)."""
        return self._center.set_status(self._project, model, version, status)

    def deploy(self, model: str, version: int) -> ModelVersion:
        """Deploy a version, deprecating the deployed one atomically."""
        return self._center.deploy(self._project, model, version)

    def rollback(self, model: str) -> ModelVersion:
        """Redeploy the most recently deprecated version."""
        return self._center.rollback(self._project, model)

    def delete_version(self, model: str, version: int) -> ModelVersion:
        """Mark a version DELETED."""
        return self._center.delete_version(self._project, model, version)

    def set_alias(self, model: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` at a version."""
        return self._center.set_alias(self._project, model, alias, version)

    def delete_alias(self, model: str, alias: str) -> None:
        """Remove ``alias``."""
        self._center.delete_alias(self._project, model, alias)

    def aliases(self, model: str) -> builtins.dict[str, int]:
        """Every alias of ``model`` and its version number."""
        return self._center.list_aliases(self._project, model)

    def history(self, model: str, version: int) -> builtins.list[StatusChange]:
        """A version's status changes, oldest first."""
        return self._center.history(self._project, model, version)

    def export(self, model: str, version: int, *, format: str, out: str | Path) -> Path:
        """Write a version as an MLflow model directory (``format="mlflow"``) or ONNX (``"onnx"``).

        See :mod:`tideflow.client.model_export`; returns the directory written.

        Raises:
            FailedPreconditionError: The version cannot be written in that format (the reason
                is in the message), or the extra it needs is missing.
        """
        from tideflow.client.model_export import export_model

        return export_model(self._owner(), model, version, format=format, out=out)

    def import_model(self, path: str | Path, *, name: str, description: str = "") -> ModelVersion:
        """Register an MLflow model directory or a joblib/pickle file as a GENERATED version.

        See :mod:`tideflow.client.model_import`; the version is tagged ``tideflow.origin=imported``.
        """
        from tideflow.client.model_import import import_model

        return import_model(self._owner(), path, name=name, description=description)
