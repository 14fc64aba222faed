"""Column types that behave the same on SQLite, PostgreSQL and MariaDB.

* :class:`UTCDateTime` stores naive UTC (microseconds, also on MariaDB where ``DATETIME`` would
  otherwise drop them) and hands back timezone-aware UTC, so the domain never sees naive times.
* :class:`JSONText` stores canonical JSON as text instead of each database's JSON type: MariaDB
  reflects JSON as ``LONGTEXT``, which would make Alembic's autogenerate see a difference that is
  not there, and text keeps the hot paths free of per-dialect JSON codecs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator, TypeEngine

LONG_TEXT: TypeEngine[str] = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
"""Unbounded text: ``TEXT`` on SQLite and PostgreSQL, ``LONGTEXT`` on MariaDB (``TEXT`` is 64 KiB)."""

MICRO_DATETIME: TypeEngine[datetime] = DateTime().with_variant(
    mysql.DATETIME(fsp=6), "mysql", "mariadb"
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and read back as aware UTC."""

    impl = MICRO_DATETIME
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to naive UTC (naive values are taken to be UTC)."""
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC to what the database returns."""
        return None if value is None else value.replace(tzinfo=UTC)


class JSONText(TypeDecorator[Any]):
    """A JSON document stored as canonical text (sorted keys, no spaces)."""

    impl = LONG_TEXT
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        """Serialise ``value``; a ``str`` is taken to be JSON already (validated upstream)."""
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        """Parse the stored text."""
        return None if value is None else json.loads(value)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
