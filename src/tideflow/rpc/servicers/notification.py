"""NotificationService over :class:`~tideflow.notification.service.NotificationService`.

Events always land in, and are read from, the namespace of the call's project (its metadata):
a ``namespace`` set in a message is ignored, so no client writes into or reads another
project's log.

``Listen`` holds one in-process :class:`~tideflow.notification.listener.Listener` per stream.
It first sends an empty response (the listener is in place; a bad filter fails the call before
that), then every batch of matching events as it commits, and an empty response as keepalive
whenever ``keepalive_seconds`` pass without one. The stream ends when the client goes away or
the service closes (server shutdown); the client then reconnects after its last offset. It
also ends, with ``UNAUTHENTICATED``, once the caller's token is revoked: the loop wakes at
least every token re-check interval (:class:`~tideflow.rpc.call.StreamCheck`, one second by
default) and checks the token again before it sends anything.

An open stream holds one of the server's worker threads for its whole life, so the servicer
caps how many are open at once (``max_listeners``; the server sizes its thread pool to the cap
plus the threads kept for other calls). One stream over the cap is refused with
:class:`~tideflow.errors.ResourceExhaustedError` (``RESOURCE_EXHAUSTED``) instead of waiting
for a thread that unary calls need.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from tideflow.domain.events import Event
from tideflow.errors import InvalidArgumentError, ResourceExhaustedError
from tideflow.notification.service import NotificationService
from tideflow.rpc import convert
from tideflow.rpc.call import project, stream_check
from tideflow.rpc.v1 import notification_pb2 as n
from tideflow.rpc.v1 import notification_pb2_grpc as g

DEFAULT_KEEPALIVE = 10.0
MAX_KEEPALIVE = 60.0
MIN_KEEPALIVE = 0.05
DEFAULT_PAGE = 100
MAX_AGE_SECONDS = timedelta.max.total_seconds() / 2
RESPONSE_BYTES = 4 * 1024 * 1024
"""A ``Listen`` response carries events up to about this size (a larger event goes alone)."""


def response_batches(events: list[Event]) -> Iterator[list[Any]]:
    """Wire events in groups of about :data:`RESPONSE_BYTES`, never over the message limit.

    A fetch holds up to 500 events of up to 1 MiB each: sent as one response it could pass the
    64 MiB message limit, fail, and fail again on every reconnect, stalling the listener.
    """
    batch: list[Any] = []
    size = 0
    for event in events:
        message = convert.event_to_pb(event)
        message_size = message.ByteSize()
        if batch and size + message_size > RESPONSE_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(message)
        size += message_size
    if batch:
        yield batch


def keepalive_of(seconds: float) -> float:
    """The keepalive interval a listen request asks for (0: the default).

    Raises:
        InvalidArgumentError: Negative, not finite, or over :data:`MAX_KEEPALIVE`.
    """
    if seconds == 0:
        return DEFAULT_KEEPALIVE
    if not math.isfinite(seconds) or not MIN_KEEPALIVE <= seconds <= MAX_KEEPALIVE:
        raise InvalidArgumentError(
            f"keepalive_seconds must be between {MIN_KEEPALIVE} and {MAX_KEEPALIVE}, "
            f"got {seconds!r}",
            field="keepalive_seconds",
        )
    return seconds


class NotificationServicer(g.NotificationServiceServicer):
    """Every Notification RPC; errors are mapped by the interceptor."""

    def __init__(self, service: NotificationService, *, max_listeners: int | None = None) -> None:
        self._service = service
        self.max_listeners = max_listeners
        self._open_streams = 0
        self._streams_lock = threading.Lock()

    @property
    def open_streams(self) -> int:
        """How many ``Listen`` streams are open now."""
        return self._open_streams

    def _take_stream_slot(self) -> None:
        with self._streams_lock:
            if self.max_listeners is not None and self._open_streams >= self.max_listeners:
                raise ResourceExhaustedError(
                    f"this server already has its maximum of {self.max_listeners} listen streams "
                    "open; close listeners that are no longer needed, or restart the server with "
                    "a larger `tideflow server start --max-listeners`"
                )
            self._open_streams += 1

    def _release_stream_slot(self) -> None:
        with self._streams_lock:
            self._open_streams -= 1

    # Sends answer compactly (offset and commit time): the sender holds the events already,
    # and echoing them cost a conversion each way plus their bytes in the request log.

    def SendEvent(self, request: n.SendEventRequest, context: Any) -> n.SendEventResponse:
        namespace = project()
        appended = self._service.append(
            namespace, [convert.event_from_pb(request.event, namespace=namespace)]
        )
        if appended.events is not None:  # an idempotency key: the stored event, as stored
            return n.SendEventResponse(event=convert.event_to_pb(appended.events[0]))
        return n.SendEventResponse(
            offset=appended.first_offset, create_time=convert.to_timestamp(appended.create_time)
        )

    def SendEvents(self, request: n.SendEventsRequest, context: Any) -> n.SendEventsResponse:
        namespace = project()
        appended = self._service.append(
            namespace, [convert.event_from_pb(e, namespace=namespace) for e in request.events]
        )
        if appended.events is not None:
            return n.SendEventsResponse(events=[convert.event_to_pb(e) for e in appended.events])
        return n.SendEventsResponse(
            first_offset=appended.first_offset,
            create_time=convert.to_timestamp(appended.create_time),
        )

    def ListEvents(self, request: n.ListEventsRequest, context: Any) -> n.ListEventsResponse:
        page = self._service.list(
            project(),
            convert.event_filter_from_pb(request.filter),
            after_offset=request.after_offset,
            limit=request.limit or DEFAULT_PAGE,
            cursor=convert.optional(request, "cursor"),
        )
        return n.ListEventsResponse(
            events=[convert.event_to_pb(e) for e in page.items], next_cursor=page.next_cursor
        )

    def GetLatestOffset(
        self, request: n.GetLatestOffsetRequest, context: Any
    ) -> n.GetLatestOffsetResponse:
        return n.GetLatestOffsetResponse(offset=self._service.latest_offset())

    def Listen(self, request: n.ListenRequest, context: Any) -> Iterator[n.ListenResponse]:
        keepalive = keepalive_of(request.keepalive_seconds)
        check = stream_check()
        self._take_stream_slot()
        try:
            listener = self._service.listen(
                project(),
                convert.event_filter_from_pb(request.filter),
                after_offset=request.after_offset,
            )
            # A client that goes away closes the listener at once, not at the next keepalive.
            context.add_callback(listener.close)
            # Wake at least every check interval, so a revoked token's stream ends in time.
            wait = min(keepalive, check.interval)
            try:
                yield n.ListenResponse()
                sent = time.monotonic()
                while context.is_active() and not listener.closed:
                    check()
                    events = listener.poll(wait)
                    check()  # nothing more reaches a caller whose token was revoked
                    if events:
                        for batch in response_batches(events):
                            yield n.ListenResponse(events=batch)
                        sent = time.monotonic()
                    elif time.monotonic() - sent >= keepalive:
                        yield n.ListenResponse()  # keepalive
                        sent = time.monotonic()
            finally:
                listener.close()
        finally:
            self._release_stream_slot()

    def CommitOffset(self, request: n.CommitOffsetRequest, context: Any) -> n.CommitOffsetResponse:
        self._service.commit(project(), request.consumer, request.offset)
        return n.CommitOffsetResponse()

    def GetCommittedOffset(
        self, request: n.GetCommittedOffsetRequest, context: Any
    ) -> n.GetCommittedOffsetResponse:
        return n.GetCommittedOffsetResponse(
            offset=self._service.committed(project(), request.consumer)
        )

    def CompactEvents(
        self, request: n.CompactEventsRequest, context: Any
    ) -> n.CompactEventsResponse:
        seconds = request.older_than_seconds
        if not math.isfinite(seconds) or not 0 <= seconds <= MAX_AGE_SECONDS:
            raise InvalidArgumentError(
                f"older_than must be a non-negative duration, got {seconds!r} seconds",
                field="older_than",
            )
        deleted = self._service.compact(older_than=timedelta(seconds=seconds), namespace=project())
        return n.CompactEventsResponse(deleted=deleted)
