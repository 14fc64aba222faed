"""The server's one interceptor: errors, authentication, retried-call dedup and metrics.

Every handler runs inside :class:`EdgeInterceptor`, so servicers stay thin: they convert,
call a service, convert back. A :class:`~tideflow.errors.TideflowError` becomes its status code
(with the class and fields in trailing metadata, for the client to rebuild); anything else is
logged with the method and becomes ``INTERNAL`` -- a malformed request never kills the server.

Dedup: a mutating call carrying a request id that was already answered gets the stored response
again. Calls with the same id are serialised in this process, so a retry racing the original
waits for it instead of applying twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import grpc

from tideflow.errors import FailedPreconditionError, InvalidArgumentError, TideflowError
from tideflow.rpc.call import Call, current_call, is_mutating, parse_metadata
from tideflow.rpc.status import status_of, trailing_metadata
from tideflow.store.request_log import RequestClaim, current_claim

log = logging.getLogger(__name__)


class Authenticator(Protocol):
    """Checks a call's credentials; returns the call with its role, or raises."""

    def authenticate(self, call: Call) -> Call:
        """Raise ``UnauthenticatedError`` / ``PermissionDeniedError``, or return the call."""


class RequestLog(Protocol):
    """Where responses of mutating calls are kept by request id."""

    def find(
        self, request_id: str, *, look_in_store: bool = True
    ) -> tuple[str, bytes | None] | None:
        """The (method, serialised response) recorded for ``request_id``."""

    def record(self, request_id: str, method: str, response: bytes) -> None:
        """Keep the serialised response of ``request_id``."""


class CallObserver(Protocol):
    """Receives one observation per finished call (for ``/metrics``)."""

    def observe(self, method: str, code: str, seconds: float) -> None:
        """Count the call and its latency."""


class EdgeInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Wraps every unary and streaming handler of the server."""

    def __init__(
        self,
        *,
        authenticator: Authenticator | None = None,
        request_log: RequestLog | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        self._authenticator = authenticator
        self._request_log = request_log
        self._observer = observer
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        """Return the handler of ``details.method`` wrapped in this edge."""
        handler = continuation(details)
        if handler is None:
            return None
        method: str = details.method
        metadata = details.invocation_metadata
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, metadata, handler.unary_unary, handler.response_serializer),
                request_deserializer=handler.request_deserializer,
                response_serializer=raw_aware_serializer(handler.response_serializer),
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, metadata, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(method, metadata, handler.stream_unary, handler.response_serializer),
                request_deserializer=handler.request_deserializer,
                response_serializer=raw_aware_serializer(handler.response_serializer),
            )
        return handler

    # -- wrappers ---------------------------------------------------------------------------

    def _unary(
        self,
        method: str,
        metadata: Any,
        behaviour: Callable[[Any, Any], Any],
        serializer: Callable[[Any], bytes] | None,
    ) -> Callable[[Any, Any], Any]:
        def wrapped(request: Any, context: Any) -> Any:
            started = time.perf_counter()
            code = "OK"
            try:
                call = self._admit(method, metadata)
                token = current_call.set(call)
                try:
                    if call.request_id and self._request_log is not None and is_mutating(method):
                        return self._deduplicated(call, behaviour, request, context, serializer)
                    return behaviour(request, context)
                finally:
                    current_call.reset(token)
            except TideflowError as error:
                code = status_of(error).name
                self._abort(context, error)
            except Exception:
                code = "INTERNAL"
                log.exception("unexpected error in %s", method)
                context.abort(
                    grpc.StatusCode.INTERNAL, f"internal error in {method}; see the server log"
                )
            finally:
                if self._observer is not None:
                    self._observer.observe(method, code, time.perf_counter() - started)

        return wrapped

    def _stream(
        self, method: str, metadata: Any, behaviour: Callable[[Any, Any], Iterator[Any]]
    ) -> Callable[[Any, Any], Iterator[Any]]:
        def wrapped(request: Any, context: Any) -> Iterator[Any]:
            started = time.perf_counter()
            code = "OK"
            try:
                call = self._admit(method, metadata)
                token = current_call.set(call)
                try:
                    yield from behaviour(request, context)
                finally:
                    current_call.reset(token)
            except TideflowError as error:
                code = status_of(error).name
                self._abort(context, error)
            except Exception:
                code = "INTERNAL"
                log.exception("unexpected error in %s", method)
                context.abort(
                    grpc.StatusCode.INTERNAL, f"internal error in {method}; see the server log"
                )
            finally:
                if self._observer is not None:
                    self._observer.observe(method, code, time.perf_counter() - started)

        return wrapped

    # -- pieces -----------------------------------------------------------------------------

    def _admit(self, method: str, metadata: Any) -> Call:
        call = parse_metadata(method, metadata)
        if call.request_id is not None and len(call.request_id) > 64:
            raise InvalidArgumentError(
                "request id is longer than 64 characters", field="request_id"
            )
        if self._authenticator is not None:
            call = self._authenticator.authenticate(call)
        return call

    def _deduplicated(
        self,
        call: Call,
        behaviour: Callable[[Any, Any], Any],
        request: Any,
        context: Any,
        serializer: Callable[[Any], bytes] | None,
    ) -> Any:
        request_id, request_log = call.request_id, self._request_log
        assert request_id is not None
        assert request_log is not None
        try:
            with self._lock_for(request_id):
                # A first try cannot be in the store yet: only retries pay for that read.
                found = request_log.find(request_id, look_in_store=call.attempt > 1)
                if found is not None:
                    stored_method, response = found
                    if stored_method != call.method:
                        raise InvalidArgumentError(
                            f"request id {request_id!r} was already used for {stored_method}",
                            field="request_id",
                        )
                    if response is None:
                        raise FailedPreconditionError(
                            f"request {request_id} was applied, but the server stopped before "
                            "answering it; read the current state instead of retrying"
                        )
                    return _Raw(response)
                token = current_claim.set(RequestClaim(request_id, call.method))
                try:
                    result = behaviour(request, context)
                finally:
                    current_claim.reset(token)
                data = serializer(result) if serializer is not None else result.SerializeToString()
                request_log.record(request_id, call.method, data)
                return result
        finally:
            self._release(request_id)

    def _lock_for(self, request_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(request_id, threading.Lock())

    def _release(self, request_id: str) -> None:
        with self._locks_guard:
            lock = self._locks.get(request_id)
            if lock is not None and not lock.locked():
                del self._locks[request_id]

    @staticmethod
    def _abort(context: Any, error: TideflowError) -> None:
        context.set_trailing_metadata(trailing_metadata(error))
        context.abort(status_of(error), str(error))


class _Raw:
    """An already-serialised response, returned as is by :func:`raw_aware_serializer`."""

    def __init__(self, data: bytes) -> None:
        self.data = data


def raw_aware_serializer(serializer: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """Wrap a response serializer so stored (deduplicated) responses pass through unchanged."""

    def serialize(response: Any) -> bytes:
        if isinstance(response, _Raw):
            return response.data
        return serializer(response)

    return serialize
