"""The deduplication log of mutating RPCs: a retried call gets its first response again.

The server keeps each mutating call's serialised response under the client-generated request
id for :data:`RETENTION` (far longer than any client retries), then forgets it.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection, bindparam, delete, select
from sqlalchemy.exc import IntegrityError

from tideflow.store.rows.access import RpcRequestRow
from tideflow.store.rows.base import table_of
from tideflow.store.types import utcnow

RETENTION = timedelta(days=1)

_REQUEST = table_of(RpcRequestRow)
_FIND = select(_REQUEST.c.method, _REQUEST.c.response).where(
    _REQUEST.c.request_id == bindparam("request_id")
)


def find_response(connection: Connection, request_id: str) -> tuple[str, bytes] | None:
    """The method and response recorded for ``request_id``, if any."""
    row = connection.execute(_FIND, {"request_id": request_id}).first()
    return None if row is None else (row.method, bytes(row.response))


def record_response(connection: Connection, request_id: str, method: str, response: bytes) -> bool:
    """Keep ``response`` for ``request_id``; ``False`` when one was already kept."""
    try:
        with connection.begin_nested():
            connection.execute(
                _REQUEST.insert().values(
                    request_id=request_id,
                    method=method,
                    response=response,
                    size=len(response),
                    create_time=utcnow(),
                )
            )
    except IntegrityError:
        return False
    return True


def forget_old_responses(connection: Connection) -> int:
    """Delete responses older than :data:`RETENTION`; returns how many."""
    cutoff = utcnow() - RETENTION
    return connection.execute(delete(_REQUEST).where(_REQUEST.c.create_time < cutoff)).rowcount
