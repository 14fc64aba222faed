"""The FastAPI application the server serves on its HTTP port.

It reads only through what it is given -- a health check, a Prometheus registry and the
server's services (:class:`~tideflow.web.deps.WebServices`) -- so it can be tested on a
temporary store without a gRPC server. Routes:

- ``/healthz`` (200 while serving, 503 otherwise) and ``/metrics`` (Prometheus), open to all;
- ``/api/v1/...``: the JSON API (``tideflow.web.api``: reads, and the write actions of
  ``tideflow.web.api.actions``), its OpenAPI document at ``/api/v1/openapi.json`` and the
  interactive page over it at ``/api/v1/docs`` (``tideflow.web.api_page``);
- ``/ui/login`` and ``/ui/logout`` (``tideflow.web.auth``), and the pages under ``/ui/...``
  (``tideflow.web.pages``) with their static files under ``/static``.

Without services (``services=None``) only health and metrics are served.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from tideflow._version import __version__
from tideflow.web.deps import WebServices
from tideflow.web.errors import install_error_handlers

OPENAPI_URL = "/api/v1/openapi.json"
STATIC_DIR = Path(__file__).parent / "static"


def _optional_router(module: str) -> object | None:
    """``module.router`` if that module exists (the pages land separately from the API)."""
    try:
        found = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and module.startswith(e.name):
            return None
        raise
    return getattr(found, "router", None)


def _document_400_not_422(app: FastAPI) -> None:
    """The OpenAPI document without FastAPI's 422 answers, which this API never gives.

    Request validation is answered with 400 (``tideflow.web.errors``); each route documents
    that 400 itself, so the generated 422 and its schemas would only mislead.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        schemas = document.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    *,
    healthy: Callable[[], bool],
    registry: CollectorRegistry,
    services: WebServices | None = None,
) -> FastAPI:
    """The HTTP app: health, metrics and, given ``services``, the JSON API and the pages."""
    app = FastAPI(
        title="Tideflow",
        version=__version__,
        summary="HTTP API of a Tideflow server: read workflows, executions, models, lineage and "
        "events; start, stop, pause, resume, deploy, roll back and send events (writers).",
        openapi_url=OPENAPI_URL if services is not None else None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    install_error_handlers(app)
    _document_400_not_422(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        ok = healthy()
        return Response(
            content='{"status":"serving"}' if ok else '{"status":"not serving"}',
            media_type="application/json",
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(content=generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    if services is None:
        return app

    from fastapi.routing import APIRouter

    from tideflow.web import api_page, auth

    app.include_router(auth.router)
    app.include_router(api_page.router)
    for module in ("tideflow.web.api", "tideflow.web.pages"):
        router = _optional_router(module)
        if isinstance(router, APIRouter):
            app.include_router(router)
    if STATIC_DIR.is_dir():
        from fastapi.staticfiles import StaticFiles

        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
