"""The predictor's HTTP face (FastAPI), and :func:`serve` behind ``tideflow serve``.

- ``POST /predict``: a JSON list of records, or ``{"records": [...], "request_ids": [...]}``
  (ids optional). Answer ``{"model", "version", "offset", "predictions": [{"request_id",
  "score"}, ...]}``: every record of a request is scored by one version. 400 for bad input,
  503 (``Retry-After: 1``) while no version is deployed, 500 when the model call fails.
- ``GET /healthz``: 200 with the served version once one is loaded, 503 before.
- ``GET /metrics``: Prometheus text (see :class:`~tideflow.serving.predictor.PredictorMetrics`).

JSON is parsed and written with the standard library rather than pydantic models: the body is
free-form records, and the predictor's latency budget is a few milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tideflow._version import __version__
from tideflow.errors import InvalidArgumentError, TideflowError, UnavailableError
from tideflow.serving.predictor import Predictor

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024


def _json(status: int, body: Any, **headers: str) -> Response:
    return Response(
        content=json.dumps(body, separators=(",", ":")),
        media_type="application/json",
        status_code=status,
        headers=headers or None,
    )


def create_predictor_app(predictor: Predictor) -> FastAPI:
    """The HTTP app of ``predictor`` (which the caller starts and stops)."""
    app = FastAPI(title="Tideflow predictor", version=__version__, docs_url=None, redoc_url=None)
    metrics = predictor.metrics

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = await request.body()
            if len(body) > MAX_BODY_BYTES:
                raise InvalidArgumentError(f"request body over {MAX_BODY_BYTES} bytes")
            try:
                payload = json.loads(body)
            except ValueError as e:
                raise InvalidArgumentError(f"the body is not JSON: {e}") from None
            ids = None
            if isinstance(payload, dict):
                ids = payload.get("request_ids")
                payload = payload.get("records")
            result = await asyncio.wrap_future(predictor.submit(payload, ids))
        except InvalidArgumentError as error:
            metrics.requests.labels("invalid").inc()
            return _json(400, {"error": str(error)})
        except UnavailableError as error:
            return _json(503, {"error": str(error)}, **{"Retry-After": "1"})
        except TideflowError as error:
            return _json(500, {"error": str(error)})
        except Exception as error:  # the model's own failure: the caller learns what it was
            log.warning("predict failed: %r", error)
            return _json(500, {"error": f"{type(error).__name__}: {error}"})
        finally:
            metrics.latency.observe(time.perf_counter() - started)
        return _json(
            200,
            {
                "model": result.model,
                "version": result.version,
                "offset": result.offset,
                "predictions": [
                    {"request_id": p.request_id, "score": p.score} for p in result.predictions
                ],
            },
        )

    @app.get("/healthz")
    def healthz() -> Response:
        served = predictor.holder.current
        if served is None:
            return _json(503, {"status": "no deployed version", "model": predictor.model})
        return _json(
            200,
            {"status": "serving", "model": predictor.model, "version": served.version.version},
        )

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(content=generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


class PredictorServer:
    """A predictor and its HTTP server (uvicorn) on ``host:port``; ``port=0`` picks a free one.

    :meth:`start` returns once the port is bound; :meth:`stop` stops HTTP, then the predictor.
    """

    def __init__(self, predictor: Predictor, *, host: str = "127.0.0.1", port: int = 8000) -> None:
        self.predictor = predictor
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: Any = None

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> PredictorServer:
        """Start the predictor, bind, serve in a thread."""
        import socket
        import threading

        import uvicorn

        self.predictor.start()
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when the
        # listening socket names it, and without it each keep-alive answer waits ~40 ms for a
        # delayed ACK (Nagle).
        sock = socket.socket(
            socket.AF_INET6 if ":" in self.host else socket.AF_INET,
            socket.SOCK_STREAM,
            socket.IPPROTO_TCP,
        )
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(2048)
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn.Config(
                create_predictor_app(self.predictor),
                log_level="warning",
                access_log=False,
                lifespan="off",
            )
        )
        self._server.install_signal_handlers = lambda: None  # the caller owns signals
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="predictor-http", daemon=True
        )
        self._thread.start()
        return self

    def wait_started(self, timeout: float = 10.0) -> bool:
        """Whether uvicorn is accepting requests (waits up to ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while not getattr(self._server, "started", False):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> None:
        """Stop HTTP (finishing requests in flight), then the predictor."""
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(10)
            self._server = None
        self.predictor.stop()

    def __enter__(self) -> PredictorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
