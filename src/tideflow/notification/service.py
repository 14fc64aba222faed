"""The Notification Service: send, list and listen to a project's events; consumer offsets.

Delivery is pushed, not polled: a commit in this process wakes waiting listeners through the
store's commit hook, and commits by other processes arrive through a watcher
(:mod:`tideflow.notification.watchers`). Listeners then read from the store with their own
filters, so the store stays the single source of truth and a wake-up can never lose, reorder or
duplicate an event.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from tideflow.domain.events import Event
from tideflow.domain.limits import check_name
from tideflow.domain.page import Page
from tideflow.errors import InvalidArgumentError, UnavailableError
from tideflow.notification.filters import EventFilter, decode_cursor, encode_cursor
from tideflow.notification.listener import Listener
from tideflow.notification.signal import OffsetSignal
from tideflow.notification.watchers import CommitWatcher, start_watcher
from tideflow.store import (
    MAX_EVENT_VALUE_BYTES,
    Store,
    append_events,
    commit_offset,
    committed_offset,
    compact_events,
    last_offset,
    list_events,
)
from tideflow.store.event import MAX_LIST_LIMIT, Appended, append_batch, events_at

LISTEN_BATCH = 500


class NotificationService:
    """The event log of every project in one store.

    Args:
        store: Where events live.
        max_value_bytes: The size limit of an event's value (UTF-8 bytes).
        heartbeat: How often (seconds) a blocked listener re-checks whether it was closed.
        watch_other_writers: Follow commits made by other processes (a polling or LISTEN
            thread, started with the first listener); off only for a process that is the sole
            writer.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_value_bytes: int = MAX_EVENT_VALUE_BYTES,
        heartbeat: float = 1.0,
        watch_other_writers: bool = True,
    ) -> None:
        self._store = store
        self.max_value_bytes = max_value_bytes
        self.heartbeat = heartbeat
        self._signal = OffsetSignal(store.run(last_offset, write=False))
        store.add_commit_listener(self._signal.publish)
        self._watch = watch_other_writers
        self._watcher: CommitWatcher | None = None
        self._lock = threading.Lock()
        self._listeners: set[Listener] = set()
        self._closed = False

    @property
    def listeners(self) -> int:
        """How many listeners are open (for ``/metrics``)."""
        return len(self._listeners)

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
        """Append one event; the returned event carries its offset.

        The same ``idempotency_key`` stores one event: a retried send returns the first one.

        Raises:
            InvalidArgumentError: A bad field, or a value over the size limit.
        """
        event = Event(
            key=key,
            value=value,
            event_type=event_type,
            sender=sender,
            namespace=namespace,
            context=dict(context or {}),
            idempotency_key=idempotency_key,
        )
        return self.send_many(namespace, [event])[0]

    def send_many(self, namespace: str, events: Sequence[Event]) -> list[Event]:
        """Append ``events`` in one transaction, in order (all or nothing).

        Each event's namespace is set to ``namespace``: nobody writes into another project.
        """
        check_name(namespace, "namespace")
        scoped = [_in_namespace(event, namespace) for event in events]
        limit = self.max_value_bytes
        return self._store.run(lambda c: append_events(c, scoped, max_value_bytes=limit))

    def append(self, namespace: str, events: Sequence[Event]) -> Appended:
        """:meth:`send_many`, answered compactly (the RPC path): offsets, not event copies.

        A batch without idempotency keys comes back as its first offset and commit time; the
        caller already holds the events. Events are scoped to ``namespace`` like
        :meth:`send_many`'s (built in it already, as the RPC servicer does, they are not copied).
        """
        check_name(namespace, "namespace")
        scoped = [_in_namespace(event, namespace) for event in events]
        limit = self.max_value_bytes
        return self._store.run(lambda c: append_batch(c, scoped, max_value_bytes=limit))

    def list(
        self,
        namespace: str,
        event_filter: EventFilter | None = None,
        *,
        after_offset: int = 0,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Event]:
        """Stored events with offset > ``after_offset`` (or after ``cursor``), oldest first."""
        check_name(namespace, "namespace")
        f = event_filter or EventFilter()
        start = decode_cursor(cursor) if cursor is not None else after_offset
        if (
            not isinstance(limit, int)
            or isinstance(limit, bool)
            or not 1 <= limit <= MAX_LIST_LIMIT
        ):
            raise InvalidArgumentError(
                f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit!r}", field="limit"
            )
        events = self._store.run(lambda c: _select(c, namespace, f, start, limit + 1), write=False)
        if len(events) > limit:
            return Page(tuple(events[:limit]), encode_cursor(events[limit - 1].offset))
        return Page(tuple(events))

    def get_many(self, namespace: str, offsets: Sequence[int]) -> dict[int, Event]:
        """The events of ``namespace`` at ``offsets`` that are still stored (not compacted).

        For showing what caused something recorded with an event offset (scheduler actions).
        """
        check_name(namespace, "namespace")
        if len(offsets) > MAX_LIST_LIMIT:
            raise InvalidArgumentError(
                f"at most {MAX_LIST_LIMIT} offsets at a time, got {len(offsets)}", field="offsets"
            )
        found = self._store.run(lambda c: events_at(c, namespace, offsets), write=False)
        return {event.offset: event for event in found}

    def latest_offset(self) -> int:
        """The offset of the newest event of the log (0 when empty): listen after it for "now"."""
        return self._store.run(last_offset, write=False)

    def listen(
        self, namespace: str, event_filter: EventFilter | None = None, *, after_offset: int = 0
    ) -> Listener:
        """Replay matching events with offset > ``after_offset``, then follow new ones live."""
        check_name(namespace, "namespace")
        if not isinstance(after_offset, int) or isinstance(after_offset, bool) or after_offset < 0:
            raise InvalidArgumentError(
                f"after_offset must be a whole number >= 0, got {after_offset!r}",
                field="after_offset",
            )
        f = event_filter or EventFilter()

        def fetch(flt: EventFilter, after: int, limit: int) -> tuple[list[Event], int]:
            def read(c: Any) -> tuple[list[Event], int]:
                end = last_offset(c)  # first: everything up to it is visible to the next read
                return _select(c, namespace, flt, after, limit), end

            return self._store.run(read, write=False)

        listener = Listener(
            fetch,
            self._signal,
            f,
            after_offset,
            batch=LISTEN_BATCH,
            heartbeat=self.heartbeat,
            on_close=self._forget,
            share_key=(namespace, f),
        )
        with self._lock:
            if self._closed:  # its signal never wakes again: the listener would spin
                raise UnavailableError("the notification service is closed (shutting down)")
            self._listeners.add(listener)
            if self._watch and self._watcher is None:
                self._watcher = start_watcher(self._store, self._signal)
        return listener

    def commit(self, namespace: str, consumer: str, offset: int) -> None:
        """Record that ``consumer`` handled every event of ``namespace`` up to ``offset``."""
        self._store.run(lambda c: commit_offset(c, namespace, consumer, offset))

    def committed(self, namespace: str, consumer: str) -> int:
        """What ``consumer`` committed last (0 if never): resume with ``after_offset`` = it."""
        return self._store.run(lambda c: committed_offset(c, namespace, consumer), write=False)

    def compact(
        self, *, older_than: timedelta, namespace: str | None = None, now: datetime | None = None
    ) -> int:
        """Delete old events, keeping the latest per key and whatever a consumer still needs.

        Returns:
            How many events were deleted.
        """
        from tideflow.store.types import utcnow

        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise InvalidArgumentError(
                f"older_than must be a non-negative timedelta, got {older_than!r}",
                field="older_than",
            )
        cutoff = (now or utcnow()) - older_than
        self._store.flush_offsets()
        return self._store.run(lambda c: compact_events(c, namespace, cutoff))

    def close(self) -> None:
        """Close every listener, stop watching and detach from the store."""
        with self._lock:
            self._closed = True
            listeners = list(self._listeners)
        for listener in listeners:
            listener.close()
        self._signal.close()
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        with contextlib.suppress(ValueError):  # already detached by an earlier close()
            self._store.remove_commit_listener(self._signal.publish)

    def _forget(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.discard(listener)
            idle = self._watcher if not self._listeners else None
            if idle is not None:
                self._watcher = None  # the next listen() starts a fresh one
        if idle is not None:
            # Nobody waits any more: stop polling other writers' commits. Without waiting for
            # the thread: on PostgreSQL it sits in a 0.5 s wait for notifications, and every
            # last listener's close took that long; it ends by itself at the wait's end.
            idle.stop(timeout=0)


def _in_namespace(event: Event, namespace: str) -> Event:
    if not isinstance(event, Event):
        raise InvalidArgumentError(
            f"send_many takes Event objects, got {type(event).__name__}", field="events"
        )
    if event.namespace == namespace:
        return event
    return replace(event, namespace=namespace)


def _select(connection: Any, namespace: str, f: EventFilter, after: int, limit: int) -> list[Event]:
    return list_events(
        connection,
        namespace,
        keys=f.keys,
        event_types=f.event_types,
        sender=f.sender,
        since=f.since,
        until=f.until,
        after_offset=after,
        limit=limit,
    )
