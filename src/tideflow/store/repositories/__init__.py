"""Repositories: the SQL of each aggregate, run on a connection the caller's transaction owns.

Repositories never commit; services open one transaction through the store, use one or more
repositories inside it and append their events last.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key of the row an ``INSERT`` just stored."""
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - every table here has a primary key
        raise RuntimeError("the insert returned no primary key")
    return int(key[0])
