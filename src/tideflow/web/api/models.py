"""Models and versions: ``/models``, ``/models/{name}``, versions, history, metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from tideflow.domain.limits import check_name
from tideflow.domain.model import ModelVersion
from tideflow.domain.status import ModelStatus
from tideflow.errors import NotFoundError
from tideflow.modelcenter import ModelCenter
from tideflow.web.api import encode
from tideflow.web.api.params import (
    Cursor,
    Limit,
    ProjectAccess,
    ProjectName,
    Services,
    errors,
    page,
    paged,
)

router = APIRouter(tags=["models"])
ModelName = Annotated[str, Path(description="The registered model.")]
Version = Annotated[int, Path(ge=1, lt=2**31, description="The version number.")]
MAX_CHART_VERSIONS = 1000


def deployed_version(models: ModelCenter, project: str, name: str) -> ModelVersion | None:
    """The model's DEPLOYED version, or ``None``."""
    try:
        return models.get_version(project, name, status=ModelStatus.DEPLOYED)
    except NotFoundError:
        return None


def _model(services: Services, project: str, name: str) -> dict[str, Any]:
    models = services.models
    m = models.get_model(project, name)
    return encode.model(
        m, deployed_version(models, project, name), models.list_aliases(project, name)
    )


@router.get(
    "/projects/{project}/models",
    summary="Registered models, each with its deployed version and aliases",
    responses=paged(),
)
def list_models(
    project: ProjectName,
    access: ProjectAccess,
    services: Services,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The project's models in registration order."""
    found = services.models.list_models(project, limit=limit, cursor=cursor)
    models = services.models
    items = [
        encode.model(
            m, deployed_version(models, project, m.name), models.list_aliases(project, m.name)
        )
        for m in found.items
    ]
    return page(items, found.next_cursor)


@router.get(
    "/projects/{project}/models/{name}",
    summary="One model: its deployed version, aliases and newest version",
    responses=errors(404),
)
def get_model(
    project: ProjectName, name: ModelName, access: ProjectAccess, services: Services
) -> dict[str, Any]:
    """A model with its deployed version (``null`` if none) and aliases (alias -> version)."""
    check_name(name, "name")
    return _model(services, project, name)


@router.get(
    "/projects/{project}/models/{name}/versions",
    summary="Versions of a model, by number",
    responses=paged(404),
)
def list_versions(
    project: ProjectName,
    name: ModelName,
    access: ProjectAccess,
    services: Services,
    status: Annotated[ModelStatus | None, Query(description="Only in this status.")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The model's versions in version order, optionally in one status, with their aliases."""
    check_name(name, "name")
    found = services.models.list_versions(project, name, status=status, limit=limit, cursor=cursor)
    aliases = services.models.list_aliases(project, name)
    return page((encode.model_version(v, aliases) for v in found.items), found.next_cursor)


@router.get(
    "/projects/{project}/models/{name}/versions/{version}",
    summary="One model version with its metrics",
    responses=errors(404),
)
def get_version(
    project: ProjectName,
    name: ModelName,
    version: Version,
    access: ProjectAccess,
    services: Services,
) -> dict[str, Any]:
    """A version with its metrics.

    ``metrics`` are those it was registered with, ``logged_metrics`` every
    metric logged against it (by steps, in the order logged).
    """
    check_name(name, "name")
    v = services.models.get_version(project, name, version=version)
    aliases = services.models.list_aliases(project, name)
    logged = services.metrics.list_metrics(project, model=name, version=version)
    return {
        **encode.model_version(v, aliases),
        "logged_metrics": [encode.metric(m) for m in logged],
    }


@router.get(
    "/projects/{project}/models/{name}/versions/{version}/history",
    summary="A model version's status changes, oldest first",
    responses=paged(404),
)
def get_history(
    project: ProjectName,
    name: ModelName,
    version: Version,
    access: ProjectAccess,
    services: Services,
) -> dict[str, Any]:
    """Every status change of the version (kept even when its events are compacted)."""
    check_name(name, "name")
    changes = services.models.history(project, name, version)
    return page((encode.status_change(c) for c in changes), None)


@router.get(
    "/projects/{project}/models/{name}/metrics",
    summary="One metric across a model's versions (for charts)",
    responses=paged(404),
)
def metric_across_versions(
    project: ProjectName,
    name: ModelName,
    access: ProjectAccess,
    services: Services,
    metric: Annotated[
        str, Query(alias="name", min_length=1, max_length=256, description="The metric name.")
    ],
) -> dict[str, Any]:
    """One metric across the model's versions, for a chart.

    One point per version that has the metric, by version: the value it was registered
    with, else the last value logged against it (``source`` says which).
    """
    check_name(name, "name")
    models = services.models
    versions: list[ModelVersion] = []
    cursor: str | None = None
    while len(versions) < MAX_CHART_VERSIONS:
        found = models.list_versions(project, name, limit=1000, cursor=cursor)
        versions.extend(found.items)
        cursor = found.next_cursor
        if cursor is None:
            break
    logged: dict[int, float] = {}
    for m in services.metrics.list_metrics(project, model=name, name=metric):
        if m.version is not None:
            logged[m.version] = m.value  # in the order logged: the last one wins
    items = []
    for v in versions[:MAX_CHART_VERSIONS]:
        if metric in v.metrics:
            value, source = v.metrics[metric], "version"
        elif v.version in logged:
            value, source = logged[v.version], "logged"
        else:
            continue
        items.append(
            {
                "version": v.version,
                "status": v.status.value,
                "value": value,
                "source": source,
                "create_time": encode.time(v.create_time),
            }
        )
    return {"name": metric, "model": name, "items": items, "next_cursor": None}
