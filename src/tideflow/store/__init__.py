"""Tideflow's one store: SQLAlchemy rows, repositories per aggregate, the event log, migrations.

Services open transactions through :class:`Store` and append events with
:func:`append_events` inside them; nothing outside this package sees SQLAlchemy exceptions.
"""

from tideflow.store.consumer import ALL_NAMESPACES, commit_offset, committed_offset, compact_events
from tideflow.store.event import (
    MAX_EVENT_VALUE_BYTES,
    append_events,
    check_event_value,
    last_offset,
    list_events,
)
from tideflow.store.migration import SchemaState, SchemaStatus
from tideflow.store.store import Store

__all__ = [
    "ALL_NAMESPACES",
    "MAX_EVENT_VALUE_BYTES",
    "SchemaState",
    "SchemaStatus",
    "Store",
    "append_events",
    "check_event_value",
    "commit_offset",
    "committed_offset",
    "compact_events",
    "last_offset",
    "list_events",
]
