"""``client.events``: send to and read the project's event log.

Streaming ``listen`` belongs to the Notification Service; this is the stored log underneath.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from tideflow.domain.events import Event
from tideflow.store import Store, append_events, list_events


class Events:
    """The event log of one project."""

    def __init__(self, store: Store, project: str) -> None:
        self._store = store
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
            InvalidArgumentError: A field is empty, of the wrong type or too long.
        """
        event = Event(
            key=key,
            value=value,
            event_type=event_type,
            sender=sender,
            namespace=self._project,
            context=dict(context or {}),
            idempotency_key=idempotency_key,
        )
        return self._store.run(lambda c: append_events(c, [event])[0])

    def list(
        self,
        *,
        key: str | None = None,
        keys: Sequence[str] | None = None,
        event_type: str | None = None,
        event_types: Sequence[str] | None = None,
        sender: str | None = None,
        after_offset: int = 0,
        limit: int = 100,
    ) -> builtins.list[Event]:
        """Events with offset > ``after_offset`` matching every filter given, oldest first."""
        all_keys = _merge(key, keys)
        all_types = _merge(event_type, event_types)
        return self._store.run(
            lambda c: list_events(
                c,
                self._project,
                keys=all_keys,
                event_types=all_types,
                sender=sender,
                after_offset=after_offset,
                limit=limit,
            ),
            write=False,
        )


def _merge(one: str | None, many: Sequence[str] | None) -> builtins.list[str] | None:
    if one is None and many is None:
        return None
    return [*([] if one is None else [one]), *(many or [])]
