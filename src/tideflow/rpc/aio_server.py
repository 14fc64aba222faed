"""The server's gRPC core: ``grpc.aio`` on an event loop of its own thread, with a sync face.

Why ``grpc.aio``: an open ``Listen`` stream of grpcio's thread-pool server holds a thread for its
whole life (62 KiB and a thread each; 10,000 of them did not work at all), while on the event
loop a stream is a task waiting on a future. The rest of the server (scheduler, executors,
HTTP, the store) stays threaded, so the loop runs in a thread of its own and this class gives
it the synchronous ``grpc.Server`` face that the generated ``add_*_to_server`` functions and
the server's start and stop expect.

How calls run on it is the edge interceptor's choice (:mod:`tideflow.rpc.interceptor`): short
store calls on the loop itself, everything that may block for long on :attr:`pool`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import grpc
import grpc.aio

T = TypeVar("T")

START_SECONDS = 30.0
"""How long creating the server on its loop may take before start-up fails."""
GRPC_CORE_LOGGER = "grpc._cython.cygrpc"
HUNG_UP_WRITE = "ExecuteBatchError raised in core by servicer method"
"""How ``grpc.aio`` logs a response written to a stream whose client had just gone."""


class Edge(Protocol):
    """What every method handler is wrapped in (:class:`tideflow.rpc.interceptor.EdgeInterceptor`)."""

    def wrap(self, method: str, handler: Any) -> Any:
        """``handler`` of ``/package.Service/Method``, wrapped."""


def _methods_of(handler: Any) -> tuple[str, dict[str, Any]]:
    """The service name and method handlers of a ``grpc.method_handlers_generic_handler``."""
    service = handler.service_name()
    methods = getattr(handler, "_method_handlers", None)
    if not isinstance(service, str) or not isinstance(methods, dict):
        raise TypeError(
            f"only grpc.method_handlers_generic_handler handlers are served: {handler!r}"
        )
    # Keyed by full method name (``/package.Service/Method``); registration takes short names.
    return service, {name.rsplit("/", 1)[-1]: method for name, method in methods.items()}


class _ClientHangUps(logging.Filter):
    """Demote ``grpc.aio``'s ERROR for a write to a stream whose client went away, to DEBUG.

    A client that closes a download or a listener while the server writes to it is ordinary
    (grpcio logs, instead of raising, since grpc/grpc#32551); an ERROR with a traceback for
    each one would bury real errors in the server log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(HUNG_UP_WRITE):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def quiet_client_hang_ups() -> None:
    """Install :class:`_ClientHangUps` on grpc's core logger (once per process)."""
    logger = logging.getLogger(GRPC_CORE_LOGGER)
    if not any(isinstance(f, _ClientHangUps) for f in logger.filters):
        logger.addFilter(_ClientHangUps())


class AioServer:
    """A ``grpc.aio.Server`` running on its own loop thread, driven from other threads."""

    def __init__(
        self,
        *,
        pool: ThreadPoolExecutor,
        edge: Edge,
        options: Sequence[tuple[str, Any]],
    ) -> None:
        self.pool = pool
        self._edge = edge
        quiet_client_hang_ups()
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(pool)
        self._thread = threading.Thread(target=self._run, name="rpc-loop", daemon=True)
        self._thread.start()

        async def create() -> grpc.aio.Server:
            return grpc.aio.server(options=list(options))

        self._server: grpc.aio.Server = self.call(create(), timeout=START_SECONDS)
        self._stopped = False

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coroutine`` on the loop and wait for its result (never from the loop)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    # -- the grpc.Server face the generated code and the server use ---------------------------

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        """Serve the methods of each (``grpc.method_handlers_generic_handler``) handler."""
        for handler in handlers:
            service, methods = _methods_of(handler)
            self._server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, self._wrapped(service, methods)),)
            )

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        """Serve ``handlers`` (short method name -> handler) of ``service``, wrapped.

        They are served as a generic handler on purpose: ``grpc.aio`` keeps one waiting task
        per registered method and hands every call to ``asyncio.wait`` over all of them (68
        here), which cost each call more than the method lookup that registration saves.
        """
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, self._wrapped(service, handlers)),)
        )

    def _wrapped(self, service: str, handlers: dict[str, Any]) -> dict[str, Any]:
        return {
            name: self._edge.wrap(f"/{service}/{name}", handler)
            for name, handler in handlers.items()
        }

    def add_insecure_port(self, address: str) -> int:
        """Bind ``address``; return the bound port (grpcio raises ``RuntimeError`` if it fails)."""
        return int(self._server.add_insecure_port(address))

    def add_secure_port(self, address: str, credentials: grpc.ServerCredentials) -> int:
        """Bind ``address`` with TLS; as :meth:`add_insecure_port`."""
        return int(self._server.add_secure_port(address, credentials))

    def start(self) -> None:
        """Start serving the bound ports."""
        self.call(self._server.start(), timeout=START_SECONDS)

    def stop(self, grace: float | None) -> None:
        """Stop accepting calls, give running ones ``grace`` seconds, then end the loop."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.call(self._server.stop(grace))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():
                self.loop.close()
            # Calls still on the pool finish on their own; nothing new starts there.
            self.pool.shutdown(wait=False, cancel_futures=True)
