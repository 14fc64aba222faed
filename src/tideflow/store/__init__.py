"""Tideflow's one store: SQLAlchemy rows, repositories per aggregate, the event log, migrations.

Services open transactions through :class:`Store` and append events with
:func:`append_events` inside them; nothing outside this package sees SQLAlchemy exceptions.
"""

from tideflow.store.event import append_events, last_offset, list_events
from tideflow.store.migration import SchemaState, SchemaStatus
from tideflow.store.store import Store

__all__ = [
    "SchemaState",
    "SchemaStatus",
    "Store",
    "append_events",
    "last_offset",
    "list_events",
]
