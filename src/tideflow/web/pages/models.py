"""Models: the list with each one's deployed version, and one model's versions, history, chart."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from tideflow.domain.model import ModelVersion
from tideflow.domain.signature import IMPORTED_FROM_TAG, LIBRARIES_TAG, ORIGIN_TAG, Signature
from tideflow.domain.status import ModelStatus
from tideflow.errors import InvalidArgumentError, NotFoundError
from tideflow.web.auth import Access, current_access
from tideflow.web.deps import WebServices, web_services
from tideflow.web.pages.chart import build_chart, metric_names
from tideflow.web.pages.render import render

router = APIRouter()
Services = Annotated[WebServices, Depends(web_services)]
Allowed = Annotated[Access, Depends(current_access)]
MODEL_EVENTS = "MODEL_*"
MAX_VERSIONS = 1000


def deployed_version(services: WebServices, project: str, model: str) -> ModelVersion | None:
    """The model's DEPLOYED version, if it has one."""
    try:
        return services.models.get_version(project, model, status=ModelStatus.DEPLOYED)
    except NotFoundError:
        return None


@router.get("/ui/{project}/models")
def model_list(project: str, request: Request, _: Allowed, services: Services) -> HTMLResponse:
    """Every model with its newest version number, deployed version and aliases."""
    after = services.events.latest_offset()
    rows = [
        {
            "model": model,
            "deployed": deployed_version(services, project, model.name),
            "aliases": services.models.list_aliases(project, model.name),
        }
        for model in services.models.list_models(project, limit=1000)
    ]
    return render(
        request,
        "models.html",
        "_models.html",
        project=project,
        title="Models",
        section="models",
        live={"types": MODEL_EVENTS, "after": after},
        rows=rows,
    )


@router.get("/ui/{project}/models/{name}")
def model_page(
    project: str,
    name: str,
    request: Request,
    _: Allowed,
    services: Services,
    version: Annotated[int | None, Query(ge=1)] = None,
    metric: Annotated[str | None, Query(max_length=256)] = None,
) -> HTMLResponse:
    """The model's versions (status, aliases, metrics), one version's history, a metric chart."""
    after = services.events.latest_offset()
    model = services.models.get_model(project, name)
    versions = list(services.models.list_versions(project, name, limit=MAX_VERSIONS))
    aliases: dict[int, list[str]] = {}
    for alias, number in sorted(services.models.list_aliases(project, name).items()):
        aliases.setdefault(number, []).append(alias)
    deployed = next((v for v in versions if v.status == ModelStatus.DEPLOYED), None)
    selected = version or (
        deployed.version if deployed else (versions[-1].version if versions else None)
    )
    history = services.models.history(project, name, selected) if selected else []
    shown = next((v for v in versions if v.version == selected), None)
    names = metric_names(versions)
    chosen = metric if metric in names else (names[0] if names else None)
    return render(
        request,
        "model.html",
        "_model.html",
        project=project,
        title=f"Model {name}",
        section="models",
        live={"types": MODEL_EVENTS, "key": name, "after": after},
        model=model,
        versions=list(reversed(versions)),
        aliases=aliases,
        deployed=deployed,
        selected=selected,
        history=history,
        provenance=_provenance(shown),
        metric_names=names,
        chart=build_chart(chosen, versions) if chosen else None,
    )


def _provenance(version: ModelVersion | None) -> dict[str, object] | None:
    """The selected version's signature, library versions and origin (from its tags)."""
    if version is None:
        return None
    try:
        signature = Signature.of(version.tags)
    except InvalidArgumentError:  # a hand-written tag: show none rather than fail the page
        signature = None
    try:
        libraries = json.loads(version.tags.get(LIBRARIES_TAG, "{}"))
    except ValueError:
        libraries = {}
    return {
        "signature": signature,
        "libraries": libraries if isinstance(libraries, dict) else {},
        "origin": version.tags.get(ORIGIN_TAG, "logged"),
        "source": version.tags.get(IMPORTED_FROM_TAG, ""),
    }
