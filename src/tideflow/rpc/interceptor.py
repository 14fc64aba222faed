"""The server's one interceptor: errors, authentication, retried-call dedup and metrics.

Every handler runs inside :class:`EdgeInterceptor`, so servicers stay thin: they convert,
call a service, convert back. A :class:`~tideflow.errors.TideflowError` becomes its status code
(with the class and fields in trailing metadata, for the client to rebuild); anything else is
logged with the method and becomes ``INTERNAL`` -- a malformed request never kills the server.

Dedup: a mutating call carrying a request id that the same caller (project and token) already
had answered gets the stored response again; the same id from another caller is a call of its
own. Calls with the same key are serialised in this process, so a retry racing the original
waits for it instead of applying twice.

Streams: each streaming call gets a :class:`~tideflow.rpc.call.StreamCheck` of its token
(:data:`~tideflow.rpc.call.current_stream_check`), which its servicer calls while it streams,
so a token revoked mid-stream ends the stream (``UNAUTHENTICATED``), not only the next call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import grpc

from tideflow.errors import FailedPreconditionError, InvalidArgumentError, TideflowError
from tideflow.rpc.call import (
    Call,
    StreamCheck,
    current_call,
    current_stream_check,
    is_mutating,
    parse_metadata,
)
from tideflow.rpc.status import status_of, trailing_metadata
from tideflow.store.request_log import NO_TOKEN, RequestClaim, RequestKey, current_claim

log = logging.getLogger(__name__)


class Authenticator(Protocol):
    """Checks a call's credentials; returns the call with its role, or raises."""

    recheck_interval: float

    def authenticate(self, call: Call) -> Call:
        """Raise ``UnauthenticatedError`` / ``PermissionDeniedError``, or return the call."""

    def recheck(self, call: Call) -> None:
        """Raise ``UnauthenticatedError`` if the token of an admitted call no longer works."""


class RequestLog(Protocol):
    """Where responses of mutating calls are kept by caller and request id."""

    def find(
        self, key: RequestKey, *, look_in_store: bool = True
    ) -> tuple[str, bytes | None] | None:
        """The (method, serialised response) recorded for ``key``."""

    def record(self, key: RequestKey, method: str, response: bytes) -> None:
        """Keep the serialised response of ``key``."""


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
        self._locks: dict[RequestKey, threading.Lock] = {}
        self._wrapped: dict[str, Any] = {}
        self._locks_guard = threading.Lock()

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        """Return the handler of ``details.method`` wrapped in this edge.

        The wrapped handler of a method is built once and kept: each call reads its metadata
        from its own context, so nothing per call is baked in (building it anew cost every call
        a few closures and a handler tuple). Unknown methods are not kept: their names come
        from the wire.
        """
        method: str = details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = continuation(details)
        if handler is None:
            return None
        wrapped = self._wrap(method, handler)
        with self._locks_guard:
            self._wrapped[method] = wrapped
        return wrapped

    def _wrap(self, method: str, handler: Any) -> Any:
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary, handler.response_serializer),
                request_deserializer=handler.request_deserializer,
                response_serializer=raw_aware_serializer(handler.response_serializer),
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(method, handler.stream_unary, handler.response_serializer),
                request_deserializer=handler.request_deserializer,
                response_serializer=raw_aware_serializer(handler.response_serializer),
            )
        return handler

    # -- wrappers ---------------------------------------------------------------------------

    def _unary(
        self,
        method: str,
        behaviour: Callable[[Any, Any], Any],
        serializer: Callable[[Any], bytes] | None,
    ) -> Callable[[Any, Any], Any]:
        def wrapped(request: Any, context: Any) -> Any:
            started = time.perf_counter()
            code = "OK"
            try:
                call = self._admit(method, context.invocation_metadata())
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
        self, method: str, behaviour: Callable[[Any, Any], Iterator[Any]]
    ) -> Callable[[Any, Any], Iterator[Any]]:
        def wrapped(request: Any, context: Any) -> Iterator[Any]:
            started = time.perf_counter()
            code = "OK"
            try:
                call = self._admit(method, context.invocation_metadata())
                token = current_call.set(call)
                checking = current_stream_check.set(self._stream_check(call))
                try:
                    yield from behaviour(request, context)
                finally:
                    current_stream_check.reset(checking)
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

    def _stream_check(self, call: Call) -> StreamCheck:
        """What a stream of ``call`` checks while it runs: its token, if it has one."""
        authenticator = self._authenticator
        if authenticator is None or call.token is None:
            return StreamCheck()
        return StreamCheck(
            lambda: authenticator.recheck(call), interval=authenticator.recheck_interval
        )

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
        key = RequestKey(call.project, call.token_id or NO_TOKEN, request_id)
        try:
            with self._lock_for(key):
                # A first try cannot be in the store yet: only retries pay for that read.
                found = request_log.find(key, look_in_store=call.attempt > 1)
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
                token = current_claim.set(RequestClaim(key, call.method))
                try:
                    result = behaviour(request, context)
                finally:
                    current_claim.reset(token)
                data = serializer(result) if serializer is not None else result.SerializeToString()
                request_log.record(key, call.method, data)
                return result
        finally:
            self._release(key)

    def _lock_for(self, key: RequestKey) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def _release(self, key: RequestKey) -> None:
        with self._locks_guard:
            lock = self._locks.get(key)
            if lock is not None and not lock.locked():
                del self._locks[key]

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
