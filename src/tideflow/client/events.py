"""``client.events``: the project's event log -- send, list, listen, consumer offsets.

A thin, project-scoped face of :class:`~tideflow.notification.service.NotificationService`;
the remote client offers the same methods over gRPC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from tideflow.domain.events import Event
from tideflow.domain.page import Page
from tideflow.notification.filters import make_filter
from tideflow.notification.listener import Listener
from tideflow.notification.service import NotificationService


class Events:
    """The event log of one project (the client's)."""

    def __init__(self, service: NotificationService, project: str) -> None:
        self._service = service
        self._project = project

    def send(
        self,
        key: str,
        value: str,
        *,
        event_type: str = "UNDEFINED",
        sender: str = "",
        context: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Event:
        """Append one event; the returned event carries its offset.

        With ``idempotency_key``, sending the same key again stores nothing and returns the
        event stored the first time, so a retried send is applied once.

        Raises:
            InvalidArgumentError: A field is empty, of the wrong type or too long (the value's
                limit is 1 MiB by default).
        """
        return self._service.send(
            self._project,
            key,
            value,
            event_type=event_type,
            sender=sender,
            context=context,
            idempotency_key=idempotency_key,
        )

    def send_many(self, events: Sequence[Event]) -> list[Event]:
        """Append several events in one transaction (all or nothing), in order."""
        return self._service.send_many(self._project, events)

    def list(
        self,
        *,
        key: str | None = None,
        keys: Sequence[str] | None = None,
        event_type: str | None = None,
        event_types: Sequence[str] | None = None,
        sender: str | None = None,
        after_offset: int = 0,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Event]:
        """Stored events with offset > ``after_offset`` matching every filter, oldest first.

        ``"*"`` (or ``None``) matches any key, type or sender. Pass the page's ``next_cursor``
        as ``cursor`` for the next page.
        """
        event_filter = make_filter(
            key=key,
            keys=keys,
            event_type=event_type,
            event_types=event_types,
            sender=sender,
            since=since,
            until=until,
        )
        return self._service.list(
            self._project, event_filter, after_offset=after_offset, limit=limit, cursor=cursor
        )

    def latest_offset(self) -> int:
        """The newest offset of the log; ``listen(after_offset=...)`` it to see only new events."""
        return self._service.latest_offset()

    def listen(
        self,
        *,
        keys: Sequence[str] | None = None,
        event_types: Sequence[str] | None = None,
        sender: str | None = None,
        after_offset: int = 0,
    ) -> Listener:
        """Replay matching events with offset > ``after_offset``, then yield new ones live.

        Iterate it; ``close()`` it (or use ``with``) to stop. Its ``last_offset`` is the offset
        to resume from after a restart.
        """
        event_filter = make_filter(keys=keys, event_types=event_types, sender=sender)
        return self._service.listen(self._project, event_filter, after_offset=after_offset)

    def commit(self, consumer: str, offset: int) -> None:
        """Record that ``consumer`` handled every event up to ``offset``."""
        self._service.commit(self._project, consumer, offset)

    def committed(self, consumer: str) -> int:
        """The offset ``consumer`` committed last (0 if never)."""
        return self._service.committed(self._project, consumer)

    def compact(self, *, older_than: timedelta) -> int:
        """Delete this project's old events that are superseded and handled by every consumer.

        Returns:
            How many events were deleted.
        """
        return self._service.compact(older_than=older_than, namespace=self._project)
