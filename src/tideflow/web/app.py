"""The FastAPI application the server serves on its HTTP port.

It reads only through what it is given (a health check and a Prometheus registry now; the
services when the UI lands), so it can be tested without a gRPC server.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from tideflow._version import __version__


def create_app(*, healthy: Callable[[], bool], registry: CollectorRegistry) -> FastAPI:
    """The HTTP app: ``/healthz`` (200 while serving, 503 otherwise) and ``/metrics``."""
    app = FastAPI(title="Tideflow", version=__version__, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> Response:
        ok = healthy()
        return Response(
            content='{"status":"serving"}' if ok else '{"status":"not serving"}',
            media_type="application/json",
            status_code=200 if ok else 503,
        )

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(content=generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
