"""The predictor's HTTP face (FastAPI), and :func:`serve` behind ``tideflow serve``.

- ``POST /predict``: a JSON list of records, or ``{"records": [...], "request_ids": [...]}``
  (ids optional). Answer ``{"model", "version", "offset", "predictions": [{"request_id",
  "score"}, ...]}``: every record of a request is scored by one version. 400 for bad input,
  503 (``Retry-After: 1``) while no version is deployed, 500 when the model call fails.
- ``GET /healthz``: 200 with the served version once one is loaded, 503 before.
- ``GET /metrics``: Prometheus text (see :class:`~tideflow.serving.predictor.PredictorMetrics`).
- MLflow scoring: ``POST /invocations`` (``dataframe_split``, ``dataframe_records``,
  ``instances``, ``inputs``) answers ``{"predictions": [...]}``; ``GET /ping`` (and
  ``/health``) 200 once a version is loaded. Errors are ``{"error_code", "message"}``.
- Open Inference Protocol v2: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``,
  ``/v2/models/{name}`` (metadata with the signature's inputs), ``/v2/models/{name}/ready``,
  ``POST /v2/models/{name}/infer`` (and ``/versions/{v}/...``). Errors are ``{"error"}``;
  "not ready" is 400 as the protocol asks.

Every protocol goes through the same :class:`~tideflow.serving.predictor.Predictor`: the same
batches, hot swap, signature check, metrics and sink. The translation of bodies is
:mod:`tideflow.serving.protocols`. The answers of ``/invocations`` and ``infer`` carry the
version that scored them in the headers ``X-Tideflow-Model-Version`` and ``X-Tideflow-Offset``.

JSON is parsed and written with the standard library rather than pydantic models: the body is
free-form records, and the predictor's latency budget is a few milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tideflow._version import __version__
from tideflow.domain.signature import Signature
from tideflow.errors import InvalidArgumentError, TideflowError, UnavailableError
from tideflow.serving.predictor import Predictor, PredictResult
from tideflow.serving.protocols import V2_DATATYPES, mlflow_records, v2_output, v2_records

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

    async def score(
        body: bytes, parse: Callable[[Any, Signature | None], list[dict[str, Any]]]
    ) -> PredictResult:
        """Parse ``body`` with ``parse`` (against the served signature) and score it."""
        started = time.perf_counter()
        try:
            if len(body) > MAX_BODY_BYTES:
                raise InvalidArgumentError(f"request body over {MAX_BODY_BYTES} bytes")
            try:
                payload = json.loads(body)
            except ValueError as e:
                raise InvalidArgumentError(f"the body is not JSON: {e}") from None
            records = parse(payload, predictor.signature())
            return await asyncio.wrap_future(predictor.submit(records))
        except InvalidArgumentError:
            metrics.requests.labels("invalid").inc()  # as /predict counts them
            raise
        finally:
            metrics.latency.observe(time.perf_counter() - started)

    def failure(error: Exception, body: Callable[[str, str], Any]) -> Response:
        """The status and body of ``error`` (``body(code, message)`` shapes the protocol's)."""
        if isinstance(error, InvalidArgumentError):
            return _json(400, body("INVALID_PARAMETER_VALUE", str(error)))
        if isinstance(error, UnavailableError):
            return _json(503, body("UNAVAILABLE", str(error)), **{"Retry-After": "1"})
        if not isinstance(error, TideflowError):
            log.warning("predict failed: %r", error)
            return _json(500, body("INTERNAL_ERROR", f"{type(error).__name__}: {error}"))
        return _json(500, body("INTERNAL_ERROR", str(error)))

    def version_headers(result: PredictResult) -> dict[str, str]:
        return {
            "X-Tideflow-Model-Version": str(result.version),
            "X-Tideflow-Offset": str(result.offset),
        }

    # -- MLflow scoring ---------------------------------------------------------------------------

    def mlflow_error(code: str, message: str) -> dict[str, str]:
        return {"error_code": code, "message": message}

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
        if kind != "application/json":
            return _json(
                415,
                mlflow_error(
                    "BAD_REQUEST", f"content type {kind!r}: this server reads application/json"
                ),
            )
        try:
            result = await score(await request.body(), mlflow_records)
        except Exception as error:
            return failure(error, mlflow_error)
        return _json(
            200,
            {"predictions": [p.score for p in result.predictions]},
            **version_headers(result),
        )

    @app.get("/ping")
    @app.get("/health")
    def ping() -> Response:
        if predictor.holder.current is None:
            return Response(status_code=503, content="no deployed version\n")
        return Response(status_code=200, content="\n", media_type="application/json")

    # -- Open Inference Protocol v2 ---------------------------------------------------------------

    def v2_error(code: str, message: str) -> dict[str, str]:
        return {"error": message}

    def unknown(name: str, version: str | None = None) -> Response | None:
        """404 unless ``name`` (and ``version``) is what this server serves."""
        if name != predictor.model:
            return _json(
                404, {"error": f"unknown model {name!r}; this server serves {predictor.model!r}"}
            )
        served = predictor.holder.current
        if version is not None and (served is None or str(served.version.version) != version):
            now = None if served is None else served.version.version
            return _json(
                404, {"error": f"version {version} of {name!r} is not served (serving {now})"}
            )
        return None

    @app.get("/v2")
    def v2_server() -> Response:
        return _json(200, {"name": "tideflow", "version": __version__, "extensions": []})

    @app.get("/v2/health/live")
    def v2_live() -> Response:
        return _json(200, {"live": True})

    @app.get("/v2/health/ready")
    def v2_ready() -> Response:
        ready = predictor.ready
        return _json(200 if ready else 400, {"ready": ready})

    @app.get("/v2/models/{name}/ready")
    @app.get("/v2/models/{name}/versions/{version}/ready")
    def v2_model_ready(name: str, version: str | None = None) -> Response:
        if name != predictor.model:
            return unknown(name) or _json(404, {})
        served = predictor.holder.current
        ready = served is not None and (version is None or str(served.version.version) == version)
        return _json(200 if ready else 400, {"name": name, "ready": ready})

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    def v2_metadata(name: str, version: str | None = None) -> Response:
        refused = unknown(name, version)
        if refused is not None:
            return refused
        served = predictor.holder.current
        signature = predictor.signature(served)
        inputs = [
            {"name": f.name, "datatype": V2_DATATYPES[f.type.value], "shape": [-1]}
            for f in (signature.inputs if signature is not None else ())
        ]
        return _json(
            200,
            {
                "name": name,
                "versions": [] if served is None else [str(served.version.version)],
                "platform": f"tideflow_{served.version.flavour or 'pickle'}"
                if served
                else "tideflow",
                "inputs": inputs,
                "outputs": [{"name": "score", "datatype": "FP64", "shape": [-1]}],
            },
        )

    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def v2_infer(name: str, request: Request, version: str | None = None) -> Response:
        refused = unknown(name, version)
        if refused is not None:
            return refused
        seen: dict[str, Any] = {}

        def parse(payload: Any, signature: Signature | None) -> list[dict[str, Any]]:
            if isinstance(payload, dict) and "id" in payload:
                seen["id"] = payload["id"]  # echoed in the answer, as the protocol asks
            return v2_records(payload, signature)

        try:
            result = await score(await request.body(), parse)
        except Exception as error:
            return failure(error, v2_error)
        answer: dict[str, Any] = {
            "model_name": name,
            "model_version": str(result.version),
            "outputs": [v2_output([p.score for p in result.predictions])],
        }
        if seen.get("id") is not None:
            answer["id"] = seen["id"]
        return _json(200, answer, **version_headers(result))

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
        import threading

        import uvicorn

        from tideflow.net import tcp_listener

        self.predictor.start()
        sock = tcp_listener(self.host, self.port)  # Nagle off: see tideflow.net
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
