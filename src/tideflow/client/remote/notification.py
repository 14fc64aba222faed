"""The Notification Service over gRPC, with listeners that survive server restarts.

:class:`RemoteListener` has the interface of the in-process
:class:`~tideflow.notification.listener.Listener` (iteration, ``poll(timeout)``, ``close()``,
``last_offset``, ``with``). A background thread reads the ``Listen`` stream into a small
bounded queue (so a slow consumer slows the stream down instead of filling memory). When the
stream breaks or ends -- the server restarted, the connection dropped -- the thread opens a new
one after the last offset it *received*; every received event is still handed out in order, so
the consumer sees each event once, with nothing lost. It waits for the server as long as it
takes (``close()`` ends the wait); only errors a retry cannot fix (a bad filter, a revoked
token) end the listener, raised from ``poll`` / ``next``.

Each ``Listen`` stream has a deadline (:data:`LISTEN_DEADLINE`): when it passes, the stream
ends and the reader opens the next one after the last offset received, unnoticed by the
consumer. So no stream -- not even one to a server that hangs without closing the connection --
waits forever; channel keepalives notice a dead connection sooner. A server at its cap of open
streams (``RESOURCE_EXHAUSTED``) fails a new listener at once with
:class:`~tideflow.errors.ResourceExhaustedError`; a listener that was already delivering keeps
retrying instead.

The namespace is always the channel's project: the server ignores any other.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import grpc

from tideflow.client.remote.channel import RetryPolicy, RpcChannel, translate
from tideflow.client.remote.request import build
from tideflow.domain.events import Event
from tideflow.domain.limits import check_name
from tideflow.domain.page import Page
from tideflow.errors import InvalidArgumentError, TideflowError, UnavailableError
from tideflow.notification.filters import EventFilter
from tideflow.notification.listener import Listener
from tideflow.notification.service import NotificationService
from tideflow.rpc import convert
from tideflow.rpc.v1 import notification_pb2 as n
from tideflow.rpc.v1 import notification_pb2_grpc as g
from tideflow.store.event import MAX_LIST_LIMIT

log = logging.getLogger(__name__)

KEEPALIVE = 5.0
"""Seconds between the server's keepalive responses on an idle stream."""
QUEUE_BATCHES = 16
"""Batches read ahead of the consumer before the stream is left to back up."""
LISTEN_DEADLINE = 120.0
"""Seconds one ``Listen`` stream lives before the listener renews it (resuming, nothing lost)."""
RECONNECT = RetryPolicy(attempts=1_000_000_000, initial_backoff=0.05, max_backoff=1.0)

# Failures a new stream cannot cure: they end the listener with their error.
_FINAL = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.UNIMPLEMENTED,
}

OpenStream = Callable[[int], Any]
"""``after_offset ->`` a started ``Listen`` call (an iterator of responses with ``cancel()``)."""


class RemoteListener(Listener):
    """A :class:`Listener` fed by a ``Listen`` stream that reconnects and resumes.

    Attributes:
        last_offset: The offset of the last event handed out (``after_offset`` before any).
        reconnects: How many times the stream was opened again after a break.
    """

    def __init__(
        self,
        open_stream: OpenStream,
        after_offset: int,
        *,
        heartbeat: float = 1.0,
        on_close: Callable[[Listener], None] | None = None,
    ) -> None:
        # Listener.__init__ is not called: there is no store to fetch from nor a local
        # signal; the reader thread feeds the queue instead.
        self._open = open_stream
        self._heartbeat = heartbeat
        self._on_close = on_close
        self._buffer: deque[Event] = deque()
        self._closed = False
        self.last_offset = after_offset
        self.reconnects = 0
        self._received = after_offset
        self._queue: queue.Queue[list[Event] | TideflowError | None] = queue.Queue(QUEUE_BATCHES)
        self._lock = threading.Lock()
        self._call: Any = None
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._ended = threading.Event()
        self._failure: TideflowError | None = None
        self._thread = threading.Thread(target=self._read, name="tideflow-listen", daemon=True)
        self._thread.start()

    # -- consumer side ------------------------------------------------------------------------

    def wait_connected(self, timeout: float) -> None:
        """Wait until the server has the listener in place.

        Raises:
            TideflowError: The server refused it (e.g. ``InvalidArgumentError``).
            UnavailableError: No server answered within ``timeout`` seconds.
        """
        if not self._connected.wait(timeout) or self._failure is not None:
            failure = self._failure
            self.close()
            if failure is not None:
                raise failure
            raise UnavailableError(f"no Tideflow server answered the listen call in {timeout} s")

    def poll(self, timeout: float) -> list[Event]:
        """Return the next events, waiting up to ``timeout`` seconds for some.

        Returns an empty list when the timeout passes or the listener is closed.

        Raises:
            TideflowError: The server refused to go on (delivered events come first).
        """
        if self._buffer:
            events = list(self._buffer)
            self._buffer.clear()
        else:
            events = self._take(timeout)
        if events:
            self.last_offset = events[-1].offset
        return events

    def __next__(self) -> Event:
        while not self._buffer:
            if self._closed:
                raise StopIteration
            self._buffer.extend(self._take(self._heartbeat))
        event = self._buffer.popleft()
        self.last_offset = event.offset
        return event

    def _take(self, timeout: float) -> list[Event]:
        if self._closed:
            return []
        try:
            item = self._queue.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return []
        if isinstance(item, TideflowError):
            self.close()
            raise item
        return item or []  # None: woken by close()

    def close(self) -> None:
        """Stop listening: the stream is cancelled and a blocked consumer returns at once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stopping.set()
            call = self._call
        if call is not None:
            call.cancel()
        with contextlib.suppress(queue.Full):  # when full, the consumer has something to take
            self._queue.put_nowait(None)  # wake a consumer blocked in get()
        if self._on_close is not None:
            self._on_close(self)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the reader thread to end (after :meth:`close`)."""
        self._thread.join(timeout)

    # -- reader thread ------------------------------------------------------------------------

    def _read(self) -> None:
        try:
            self._follow()
        except Exception as exc:  # a thread edge: hand the failure to the consumer
            log.exception("event listener stopped")
            self._fail(UnavailableError(f"event listener stopped: {exc}"))
        finally:
            self._ended.set()

    def _follow(self) -> None:
        delays = RECONNECT.delays()
        while not self._stopping.is_set():
            try:
                call = self._open(self._received)
                with self._lock:
                    if self._closed:
                        call.cancel()
                        return
                    self._call = call
                for response in call:
                    if not self._connected.is_set():
                        self._connected.set()
                    delays = RECONNECT.delays()  # a live stream resets the backoff
                    if response.events:
                        events = [convert.event_from_pb(e) for e in response.events]
                        self._received = events[-1].offset
                        self._put(events)
            except grpc.RpcError as error:
                if self._stopping.is_set():
                    return
                code = error.code()
                if code in _FINAL or (
                    code == grpc.StatusCode.RESOURCE_EXHAUSTED and not self._connected.is_set()
                ):
                    self._fail(translate(error))
                    return
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    # The stream's deadline: renew it at once (this is no failure).
                    log.debug("event stream renewed after %d", self._received)
                    continue
                log.info("event stream broke (%s); resuming after %d", code, self._received)
            if self._stopping.is_set():
                return
            self.reconnects += 1
            self._stopping.wait(next(delays, RECONNECT.max_backoff))

    def _put(self, item: list[Event] | TideflowError) -> None:
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=self._heartbeat)
                return
            except queue.Full:
                continue

    def _fail(self, error: TideflowError) -> None:
        self._failure = error
        self._connected.set()  # release wait_connected()
        self._put(error)


class RemoteNotificationService(NotificationService):
    """:class:`NotificationService` over gRPC; ``namespace`` is always the channel's project."""

    def __init__(
        self,
        channel: RpcChannel,
        *,
        heartbeat: float = 1.0,
        stream_deadline: float = LISTEN_DEADLINE,
    ) -> None:
        # No store and no signal here: everything is on the server.
        self._rpc = channel
        self._stub = g.NotificationServiceStub(channel.channel)
        self.heartbeat = heartbeat
        self.stream_deadline = stream_deadline
        self._lock = threading.Lock()
        self._remote_listeners: set[Listener] = set()

    @property
    def listeners(self) -> int:
        """How many listeners this client has open."""
        return len(self._remote_listeners)

    def send(
        self,
        namespace: str,
        key: str,
        value: str,
        *,
        event_type: str = "UNDEFINED",
        sender: str = "",
        context: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Event:
        event = Event(
            key=key,
            value=value,
            event_type=event_type,
            sender=sender,
            namespace=namespace,
            context=dict(context or {}),
            idempotency_key=idempotency_key,
        )
        request = build(lambda: n.SendEventRequest(event=_event_to_pb(event)))
        response = self._rpc.unary(self._stub.SendEvent, request, mutating=True)
        if response.HasField("event"):  # its idempotency key was known: the stored event
            return convert.event_from_pb(response.event)
        return replace(
            event,
            namespace=self._rpc.project,
            offset=response.offset,
            create_time=convert.from_timestamp(response, "create_time"),
        )

    def send_many(self, namespace: str, events: Sequence[Event]) -> list[Event]:
        for event in events:
            if not isinstance(event, Event):
                raise InvalidArgumentError(
                    f"send_many takes Event objects, got {type(event).__name__}", field="events"
                )
        request = build(lambda: n.SendEventsRequest(events=[_event_to_pb(e) for e in events]))
        response = self._rpc.unary(self._stub.SendEvents, request, mutating=True)
        if response.events or not events:  # idempotency keys: every event as stored
            return [convert.event_from_pb(e) for e in response.events]
        # The compact answer: consecutive offsets from first_offset, one commit time.
        first = response.first_offset
        when = convert.from_timestamp(response, "create_time")
        project = self._rpc.project
        # Built field by field: ``dataclasses.replace`` looks the fields up again per event.
        return [
            Event(
                e.key,
                e.value,
                e.event_type,
                e.sender,
                project,
                e.context,
                first + i,
                when,
                e.idempotency_key,
            )
            for i, e in enumerate(events)
        ]

    def list(
        self,
        namespace: str,
        event_filter: EventFilter | None = None,
        *,
        after_offset: int = 0,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Event]:
        if (
            not isinstance(limit, int)
            or isinstance(limit, bool)
            or not 1 <= limit <= MAX_LIST_LIMIT
        ):
            raise InvalidArgumentError(
                f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit!r}", field="limit"
            )
        request = build(
            lambda: n.ListEventsRequest(
                filter=convert.event_filter_to_pb(event_filter),
                after_offset=after_offset,
                limit=limit,
                cursor=cursor,
            )
        )
        response = self._rpc.unary(self._stub.ListEvents, request, mutating=False)
        return Page(
            tuple(convert.event_from_pb(e) for e in response.events),
            convert.optional(response, "next_cursor"),
        )

    def latest_offset(self) -> int:
        response = self._rpc.unary(
            self._stub.GetLatestOffset, n.GetLatestOffsetRequest(), mutating=False
        )
        return int(response.offset)

    def listen(
        self, namespace: str, event_filter: EventFilter | None = None, *, after_offset: int = 0
    ) -> RemoteListener:
        check_name(namespace, "namespace")
        if not isinstance(after_offset, int) or isinstance(after_offset, bool) or after_offset < 0:
            raise InvalidArgumentError(
                f"after_offset must be a whole number >= 0, got {after_offset!r}",
                field="after_offset",
            )
        wire_filter = convert.event_filter_to_pb(event_filter)
        metadata = self._rpc.metadata(mutating=False)

        def open_stream(after: int) -> Any:
            request = n.ListenRequest(
                filter=wire_filter, after_offset=after, keepalive_seconds=KEEPALIVE
            )
            # wait_for_ready: while the server is down the call waits for it, not fails.
            return self._stub.Listen(
                request, metadata=metadata, wait_for_ready=True, timeout=self.stream_deadline
            )

        listener = RemoteListener(
            open_stream, after_offset, heartbeat=self.heartbeat, on_close=self._forget
        )
        with self._lock:
            self._remote_listeners.add(listener)
        listener.wait_connected(self._rpc.timeout)
        return listener

    def commit(self, namespace: str, consumer: str, offset: int) -> None:
        request = build(lambda: n.CommitOffsetRequest(consumer=consumer, offset=offset))
        self._rpc.unary(self._stub.CommitOffset, request, mutating=True)

    def committed(self, namespace: str, consumer: str) -> int:
        request = build(lambda: n.GetCommittedOffsetRequest(consumer=consumer))
        return int(self._rpc.unary(self._stub.GetCommittedOffset, request, mutating=False).offset)

    def compact(
        self, *, older_than: timedelta, namespace: str | None = None, now: datetime | None = None
    ) -> int:
        """Compact the channel's project (``namespace`` is ignored: never another project's).

        ``now`` shifts the cutoff as in-process (``now - older_than``), measured against this
        machine's clock.
        """
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise InvalidArgumentError(
                f"older_than must be a non-negative timedelta, got {older_than!r}",
                field="older_than",
            )
        if now is not None:
            from tideflow.store.types import utcnow

            older_than += utcnow() - now
        request = n.CompactEventsRequest(older_than_seconds=older_than.total_seconds())
        return int(self._rpc.unary(self._stub.CompactEvents, request, mutating=True).deleted)

    def close(self) -> None:
        """Close every listener this client opened."""
        with self._lock:
            listeners = list(self._remote_listeners)
        for listener in listeners:
            listener.close()

    def _forget(self, listener: Listener) -> None:
        with self._lock:
            self._remote_listeners.discard(listener)


def _event_to_pb(event: Event) -> Any:
    """Wire form of an event to send, refusing what protobuf or JSON cannot carry.

    The context is encoded once (checked and sent as the same text), and not at all when
    empty: ``send_many`` runs this for each of up to thousands of events.
    """
    context_json = convert.EMPTY_JSON
    if event.context:
        try:
            context_json = convert.to_json(dict(event.context))
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"event context is not JSON-serialisable: {exc}", field="context"
            ) from exc
    return build(lambda: convert.event_to_pb(event, context_json=context_json))
