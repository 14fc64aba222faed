"""A listener: replay the stored events after an offset, then follow new ones as they commit.

The listener keeps a *scan position*: the offset up to which it has already looked for
matching events. Each fetch reads the log's last offset first and then the matching events
after the scan position, in that order; since offsets are handed out gap-free in commit order,
every event up to that last offset is already visible, so when fewer than a batch match the scan
position jumps to it. A listener filtered to a rare key therefore never rescans the events it
skipped, and never waits while a matching event sits unread.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterator

from tideflow.domain.events import Event
from tideflow.notification.filters import EventFilter
from tideflow.notification.signal import OffsetSignal

Fetch = Callable[[EventFilter, int, int], tuple[list[Event], int]]
"""``(filter, after_offset, limit) -> (matching events, last offset of the log)``."""
AsyncRead = Callable[["Listener", int], Awaitable[tuple[list[Event], int]]]
"""``(listener, position) -> what listener.read(position) returns``, awaited on a loop."""


class Listener(Iterator[Event]):
    """Iterate to receive events; :meth:`close` (or ``with``) ends the iteration.

    Attributes:
        last_offset: The offset of the last event delivered (``after_offset`` before any); pass
            it as ``after_offset`` to resume after a restart with nothing lost or repeated.
    """

    def __init__(
        self,
        fetch: Fetch,
        signal: OffsetSignal,
        event_filter: EventFilter,
        after_offset: int,
        *,
        batch: int = 500,
        heartbeat: float = 1.0,
        on_close: Callable[[Listener], None] | None = None,
        share_key: Hashable | None = None,
    ) -> None:
        self._fetch = fetch
        self._signal = signal
        self._filter = event_filter
        self._position = after_offset
        self._batch = batch
        self._heartbeat = heartbeat
        self._on_close = on_close
        self.share_key = share_key
        """Listeners with equal keys read the same events from the same position (``None``: no
        other listener's read is this one's)."""
        self._buffer: deque[Event] = deque()
        self._closed = False
        self.last_offset = after_offset

    def poll(self, timeout: float) -> list[Event]:
        """Return the next events, waiting up to ``timeout`` seconds for some to commit.

        Returns an empty list when the timeout passes (a keepalive tick for RPC streams) or
        the listener is closed.
        """
        events = list(self._buffer) if self._buffer else self._next_batch(timeout)
        self._buffer.clear()
        if events:
            self.last_offset = events[-1].offset
        return events

    def __next__(self) -> Event:
        while not self._buffer:
            if self._closed or self._signal.closed:
                raise StopIteration
            self._buffer.extend(self._next_batch(self._heartbeat))
        event = self._buffer.popleft()
        self.last_offset = event.offset
        return event

    def _next_batch(self, timeout: float) -> list[Event]:
        deadline = time.monotonic() + timeout
        while not self._closed and not self._signal.closed:
            events = self._advance(*self.read(self._position))
            if events:
                return events
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            self._signal.wait_beyond(self._position, remaining)
        return []

    async def poll_async(self, timeout: float, read: AsyncRead) -> list[Event]:
        """:meth:`poll` for a task of an event loop: ``read`` fetches off the loop.

        ``read(listener, position)`` returns what :meth:`read` would (the server runs it on a
        thread pool, sharing one read among listeners with the same :attr:`share_key` and
        position).
        """
        if self._buffer:
            events = list(self._buffer)
            self._buffer.clear()
        else:
            events = []
            deadline = time.monotonic() + timeout
            while not self._closed and not self._signal.closed:
                events = self._advance(*await read(self, self._position))
                if events:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await self._signal.wait_beyond_async(self._position, remaining)
        if events:
            self.last_offset = events[-1].offset
        return events

    def read(self, position: int) -> tuple[list[Event], int]:
        """The matching events after ``position`` (up to a batch) and the log's last offset."""
        return self._fetch(self._filter, position, self._batch)

    def _advance(self, events: list[Event], log_end: int) -> list[Event]:
        """Move the scan position past what a read saw; return the read's events."""
        if len(events) == self._batch:
            self._position = events[-1].offset  # more may match right after these
        else:
            # Everything up to log_end was visible to the read; events committed after
            # log_end was read may also be among these, so never step back below them.
            newest = events[-1].offset if events else 0
            self._position = max(self._position, log_end, newest)
        return events

    def close(self) -> None:
        """Stop listening; a thread blocked in iteration returns within one heartbeat."""
        if not self._closed:
            self._closed = True
            if self._on_close is not None:
                self._on_close(self)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
