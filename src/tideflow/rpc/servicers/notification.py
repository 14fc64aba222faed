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

An open stream is a task of the server's event loop (``grpc.aio``), not a thread: it waits on
the commit signal's future, and its store reads run on the server's pool, one read shared by
the streams with the same project, filter and position (:class:`SharedReads`). The servicer
still caps how many are open at once (``max_listeners``, about 28 KiB of memory each): one
stream over the cap is refused with :class:`~tideflow.errors.ResourceExhaustedError`
(``RESOURCE_EXHAUSTED``).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator, Hashable, Iterator
from concurrent.futures import Executor
from datetime import timedelta
from typing import Any

from tideflow.domain.events import Event
from tideflow.errors import InvalidArgumentError, ResourceExhaustedError
from tideflow.notification.listener import Listener
from tideflow.notification.service import NotificationService
from tideflow.rpc import convert
from tideflow.rpc.call import project, stream_check
from tideflow.rpc.interceptor import Raw
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


class SharedReads:
    """Listeners' store reads, one read for identical ones, on the loop or off it.

    One commit wakes every stream at once; streams with the same project and filter at the
    same scan position (10,000 dashboards on one key) would each read the same rows.

    - ``inline`` (SQLite: a read is the process's own work of ~0.1 ms): the read runs on the
      loop; its result serves every stream that asks for the same (key, position) in the same
      turn of the loop -- the streams one commit woke -- and is dropped at the next turn.
    - Otherwise (a server database: round trips) the read runs on ``pool``, and the streams
      asking for the same (key, position) while it runs await its result.

    Serving a result read a moment earlier is safe: it holds what was committed up to the log
    end it reports, and the listener reads again after that end.
    """

    def __init__(self, pool: Executor | None, *, inline: bool = False) -> None:
        self._pool = pool
        self._inline = inline
        self._running: dict[tuple[Hashable, int], asyncio.Future[tuple[list[Event], int]]] = {}
        self._this_turn: dict[tuple[Hashable, int], tuple[list[Event], int]] = {}

    async def read(self, listener: Listener, position: int) -> tuple[list[Event], int]:
        """What ``listener.read(position)`` returns."""
        if self._inline:
            return self._read_here(listener, position)
        loop = asyncio.get_running_loop()
        if listener.share_key is None:
            return await loop.run_in_executor(self._pool, listener.read, position)
        key = (listener.share_key, position)
        running = self._running.get(key)
        if running is None:
            running = loop.run_in_executor(self._pool, listener.read, position)
            self._running[key] = running
            running.add_done_callback(lambda _: self._running.pop(key, None))
        # Shielded: one stream going away must not cancel the read the others wait for.
        return await asyncio.shield(running)

    def _read_here(self, listener: Listener, position: int) -> tuple[list[Event], int]:
        if listener.share_key is None:
            return listener.read(position)
        key = (listener.share_key, position)
        found = self._this_turn.get(key)
        if found is None:
            found = listener.read(position)
            if not self._this_turn:  # runs after the tasks this turn already woke
                asyncio.get_running_loop().call_soon(self._this_turn.clear)
            self._this_turn[key] = found
        return found


class SharedResponses:
    """``Listen`` responses serialised once per batch of events, not once per stream.

    The streams one commit wakes get the very same events list from :class:`SharedReads` when
    they share a read; its responses are converted and serialised by the first stream and
    sent as bytes by every other one in the same turn of the loop.
    """

    def __init__(self) -> None:
        # By id() of the events list: those lists stay alive in SharedReads for the turn.
        self._this_turn: dict[int, tuple[list[Event], list[Raw]]] = {}

    def of(self, events: list[Event]) -> list[Raw]:
        """The serialised ``ListenResponse`` messages carrying ``events``."""
        found = self._this_turn.get(id(events))
        if found is not None and found[0] is events:
            return found[1]
        responses = [
            Raw(n.ListenResponse(events=batch).SerializeToString())
            for batch in response_batches(events)
        ]
        if not self._this_turn:
            asyncio.get_running_loop().call_soon(self._this_turn.clear)
        self._this_turn[id(events)] = (events, responses)
        return responses


class NotificationServicer(g.NotificationServiceServicer):
    """Every Notification RPC; errors are mapped by the interceptor."""

    def __init__(
        self,
        service: NotificationService,
        *,
        max_listeners: int | None = None,
        reads: Executor | None = None,
        inline_reads: bool = False,
    ) -> None:
        self._service = service
        self._reads = SharedReads(reads, inline=inline_reads)
        self._responses = SharedResponses()
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

    async def Listen(  # type: ignore[override]  # also yields responses serialised once (Raw)
        self, request: n.ListenRequest, context: Any
    ) -> AsyncIterator[n.ListenResponse | Raw]:
        keepalive = keepalive_of(request.keepalive_seconds)
        check = stream_check()
        self._take_stream_slot()
        try:
            listener = self._service.listen(
                project(),
                convert.event_filter_from_pb(request.filter),
                after_offset=request.after_offset,
            )
            # Wake at least every check interval, so a revoked token's stream ends in time.
            # A client that goes away cancels this task: the finally closes the listener.
            wait = min(keepalive, check.interval)
            try:
                yield n.ListenResponse()
                sent = time.monotonic()
                while not listener.closed:
                    check()
                    events = await listener.poll_async(wait, self._reads.read)
                    check()  # nothing more reaches a caller whose token was revoked
                    if events:
                        for response in self._responses.of(events):
                            yield response
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
