"""The server's one edge around every handler: errors, authentication, dedup and metrics.

Every handler runs inside :class:`EdgeInterceptor`, so servicers stay thin: they convert,
call a service, convert back. The server is ``grpc.aio`` (:mod:`tideflow.rpc.aio_server`); the
edge wraps each method's handler once, when its servicer is registered, and decides where its
calls run: on the event loop (the ``inline`` methods), on the pool (every other synchronous
handler, uploads reading their messages as they arrive) or as a task (``async`` streams).

A :class:`~tideflow.errors.TideflowError` becomes its status code (with the class and fields
in trailing metadata, for the client to rebuild); anything else is logged with the method and
becomes ``INTERNAL`` -- a malformed request never kills the server.

Dedup: a mutating call carrying a request id that the same caller (project and token) already
had answered gets the stored response again; the same id from another caller is a call of its
own. Calls with the same key are serialised in this process, so a retry racing the original
waits for it instead of applying twice.

Streams: each streaming call gets a :class:`~tideflow.rpc.call.StreamCheck` of its token
(:data:`~tideflow.rpc.call.current_stream_check`), which its servicer calls while it streams,
so a token revoked mid-stream ends the stream (``UNAUTHENTICATED``), not only the next call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import inspect
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Generator, Iterator
from concurrent.futures import Executor
from typing import Any, Protocol, TypeVar

import grpc

from tideflow.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    TideflowError,
    UnavailableError,
)
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
from tideflow.store.store import deferred_commit_hooks

log = logging.getLogger(__name__)

T = TypeVar("T")


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


class EdgeInterceptor:
    """Wraps every unary and streaming handler of the server (a ``grpc.aio`` one).

    Where a call runs: a method named in ``inline`` runs on the event loop itself -- no thread
    hand-off, for short store calls (the server names them on SQLite, where a call is a few
    hundred microseconds of the process's own work). Every other call runs on ``pool``, so a
    call that waits (a database round trip, a lock, a file, a cluster) never stops the loop; an
    ``async`` streaming handler (``Listen``) runs on the loop as a task.
    """

    def __init__(
        self,
        *,
        authenticator: Authenticator | None = None,
        request_log: RequestLog | None = None,
        observer: CallObserver | None = None,
        pool: Executor | None = None,
        inline: Collection[str] = (),
    ) -> None:
        self._authenticator = authenticator
        self._request_log = request_log
        self._observer = observer
        self._pool = pool
        self._inline = frozenset(inline)
        self._locks: dict[RequestKey, threading.Lock] = {}
        self._wrapped: dict[str, Any] = {}
        self._locks_guard = threading.Lock()

    def wrap(self, method: str, handler: Any) -> Any:
        """``handler`` of ``method`` (``/package.Service/Method``) wrapped in this edge.

        Applied when a servicer is registered (:class:`~tideflow.rpc.aio_server.AioServer`),
        not per call: a ``grpc.aio`` interceptor costs every call a coroutine chain to find its
        handler. Built once per method and kept.
        """
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            wrapped = self._wrapped[method] = self._wrap(method, handler)
        return wrapped

    def _wrap(self, method: str, handler: Any) -> Any:
        if handler.unary_unary is not None:
            serializer = handler.response_serializer
            if method in self._inline:
                behaviour = self._inline_unary(method, handler.unary_unary, serializer)
            else:
                behaviour = self._pooled_unary(method, handler.unary_unary, serializer)
            return grpc.unary_unary_rpc_method_handler(
                behaviour,
                request_deserializer=handler.request_deserializer,
                response_serializer=raw_aware_serializer(serializer),
            )
        if handler.unary_stream is not None:
            if inspect.isasyncgenfunction(handler.unary_stream):
                streaming = self._async_stream(method, handler.unary_stream)
            else:
                streaming = self._pooled_stream(method, handler.unary_stream)
            return grpc.unary_stream_rpc_method_handler(
                streaming,
                request_deserializer=handler.request_deserializer,
                response_serializer=raw_aware_serializer(handler.response_serializer),
            )
        if handler.stream_unary is not None:
            serializer = handler.response_serializer
            return grpc.stream_unary_rpc_method_handler(
                self._pooled_unary(method, handler.stream_unary, serializer, streamed=True),
                request_deserializer=handler.request_deserializer,
                response_serializer=raw_aware_serializer(serializer),
            )
        return handler

    # -- wrappers ---------------------------------------------------------------------------

    def _serve(
        self,
        method: str,
        behaviour: Callable[[Any, Any], Any],
        request: Any,
        context: Any,
        serializer: Callable[[Any], bytes] | None,
        *,
        wait: bool = True,
    ) -> Any:
        """Admit the call and run it, deduplicated; raises what the behaviour raises."""
        call = self._admit(method, context.invocation_metadata())
        token = current_call.set(call)
        try:
            if call.request_id and self._request_log is not None and is_mutating(method):
                return self._deduplicated(call, behaviour, request, context, serializer, wait)
            return behaviour(request, context)
        finally:
            current_call.reset(token)

    def _in_pool(self, function: Callable[..., T], *args: Any) -> Awaitable[T]:
        """Run ``function`` on the pool, in a context of its own (its variables stay there)."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._pool, contextvars.Context().run, function, *args)

    def _inline_unary(
        self,
        method: str,
        behaviour: Callable[[Any, Any], Any],
        serializer: Callable[[Any], bytes] | None,
    ) -> Callable[[Any, Any], Awaitable[Any]]:
        async def wrapped(request: Any, context: Any) -> Any:
            async with self._outcome(method, context):
                # The commits' listeners run once the answer is on its way (see
                # deferred_commit_hooks): a callback of the loop's next turn.
                with deferred_commit_hooks() as hooks:
                    try:
                        return self._serve(
                            method, behaviour, request, context, serializer, wait=False
                        )
                    except _Busy:  # a call with the same request id runs: wait off the loop
                        return await self._in_pool(
                            self._serve, method, behaviour, request, context, serializer
                        )
                    finally:
                        if hooks.pending:
                            asyncio.get_running_loop().call_soon(hooks.run)

        return wrapped

    def _pooled_unary(
        self,
        method: str,
        behaviour: Callable[[Any, Any], Any],
        serializer: Callable[[Any], bytes] | None,
        *,
        streamed: bool = False,
    ) -> Callable[[Any, Any], Awaitable[Any]]:
        async def wrapped(request: Any, context: Any) -> Any:
            async with self._outcome(method, context):
                if streamed:  # the servicer reads the messages on its thread, as they arrive
                    request = SyncMessages(request, asyncio.get_running_loop())
                return await self._in_pool(
                    self._serve, method, behaviour, request, context, serializer
                )

        return wrapped

    def _pooled_stream(
        self, method: str, behaviour: Callable[[Any, Any], Iterator[Any]]
    ) -> Callable[[Any, Any], AsyncIterator[Any]]:
        """A synchronous streaming handler (downloads): each next message read on the pool."""

        def responses(request: Any, context: Any) -> Generator[Any, None, None]:
            with self._streaming(method, context):
                yield from behaviour(request, context)

        async def wrapped(request: Any, context: Any) -> AsyncIterator[Any]:
            loop = asyncio.get_running_loop()
            scope = contextvars.Context()  # every step of the generator runs in this one
            messages = responses(request, context)
            step: asyncio.Future[Any] | None = None
            try:
                async with self._outcome(method, context):
                    while True:
                        step = loop.run_in_executor(self._pool, scope.run, _step, messages)
                        # Shielded: a client leaving cancels this task, never the step it
                        # awaits, so the finally below can wait for the step's real end.
                        message = await asyncio.shield(step)
                        step = None
                        if message is _END:
                            break
                        yield message
            finally:
                # A stream cut short closes its generator on the pool, in its own context,
                # once a step still running there (the client left during it) has ended.
                if step is not None:
                    await asyncio.wait([step])
                await loop.run_in_executor(self._pool, scope.run, messages.close)

        return wrapped

    def _async_stream(
        self, method: str, behaviour: Callable[[Any, Any], AsyncIterator[Any]]
    ) -> Callable[[Any, Any], AsyncIterator[Any]]:
        """An ``async`` streaming handler (``Listen``): a task on the loop."""

        async def wrapped(request: Any, context: Any) -> AsyncIterator[Any]:
            async with self._outcome(method, context):
                with self._streaming(method, context):
                    async for message in behaviour(request, context):
                        yield message

        return wrapped

    @contextlib.asynccontextmanager
    async def _outcome(self, method: str, context: Any) -> AsyncIterator[None]:
        """Around every call: its error as a status (a client's mistake never INTERNAL), counted.

        A :class:`TideflowError` aborts with its status and fields; anything else is logged
        and aborts ``INTERNAL``. Cancellation (the client left) passes through.
        """
        started = time.perf_counter()
        code = "OK"
        try:
            yield
        except TideflowError as error:
            code = status_of(error).name
            await self._abort(context, error)
        except Exception:
            code = "INTERNAL"
            log.exception("unexpected error in %s", method)
            await context.abort(
                grpc.StatusCode.INTERNAL, f"internal error in {method}; see the server log"
            )
        finally:
            if self._observer is not None:
                self._observer.observe(method, code, time.perf_counter() - started)

    @contextlib.contextmanager
    def _streaming(self, method: str, context: Any) -> Iterator[None]:
        """A stream's admission: its call and token check set for the servicer while it runs."""
        call = self._admit(method, context.invocation_metadata())
        token = current_call.set(call)
        checking = current_stream_check.set(self._stream_check(call))
        try:
            yield
        finally:
            current_stream_check.reset(checking)
            current_call.reset(token)

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
        wait: bool = True,
    ) -> Any:
        request_id, request_log = call.request_id, self._request_log
        assert request_id is not None
        assert request_log is not None
        key = RequestKey(call.project, call.token_id or NO_TOKEN, request_id)
        lock = self._lock_for(key)
        if not lock.acquire(blocking=wait):
            raise _Busy
        try:
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
                return Raw(response)
            token = current_claim.set(RequestClaim(key, call.method))
            try:
                result = behaviour(request, context)
            finally:
                current_claim.reset(token)
            data = serializer(result) if serializer is not None else result.SerializeToString()
            request_log.record(key, call.method, data)
            return Raw(data)  # serialized once: for the log and for the wire
        finally:
            lock.release()
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
    async def _abort(context: Any, error: TideflowError) -> None:
        await context.abort(status_of(error), str(error), trailing_metadata(error))


class _Busy(Exception):
    """A call with the same request id is running: this one must wait, off the event loop."""


LOOP_CHECK_SECONDS = 1.0
"""How often a thread waiting for a client's next message checks that the loop still runs."""

_END = object()
"""What ``next`` returns at the end of a pooled stream (``StopIteration`` cannot cross a future)."""


class SyncMessages(Iterator[Any]):
    """The messages of a client stream, read from a pool thread as they arrive.

    A synchronous servicer (an upload) reads its request stream with plain iteration; on
    ``grpc.aio`` the stream is an async iterator of the loop, so each message is fetched on the
    loop and waited for here. Never iterate it on the loop itself.
    """

    def __init__(self, messages: AsyncIterator[Any], loop: asyncio.AbstractEventLoop) -> None:
        self._messages = aiter(messages)
        self._loop = loop

    def __next__(self) -> Any:
        future = asyncio.run_coroutine_threadsafe(_next_or_end(self._messages), self._loop)
        while True:
            try:
                message = future.result(LOOP_CHECK_SECONDS)
                break
            except concurrent.futures.TimeoutError:
                if not self._loop.is_running():  # the server stopped: no message will come
                    future.cancel()
                    raise UnavailableError("the server is stopping") from None
        if message is _END:
            raise StopIteration
        return message


def _step(messages: Iterator[Any]) -> Any:
    """The next message, or :data:`_END`."""
    return next(messages, _END)


async def _next_or_end(messages: AsyncIterator[Any]) -> Any:
    return await anext(messages, _END)


class Raw:
    """An already-serialised response, returned as is by :func:`raw_aware_serializer`.

    Used for deduplicated answers (stored bytes) and for ``Listen`` responses that many streams
    send alike (serialised once per commit, not once per stream).
    """

    def __init__(self, data: bytes) -> None:
        self.data = data


def raw_aware_serializer(serializer: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """Wrap a response serializer so stored (deduplicated) responses pass through unchanged."""

    def serialize(response: Any) -> bytes:
        if isinstance(response, Raw):
            return response.data
        return serializer(response)

    return serialize
