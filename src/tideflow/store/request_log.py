"""The deduplication log of mutating RPCs: a retried call is never applied twice.

Each mutating call carries a client-generated request id. Ids are kept per caller -- a
:class:`RequestKey` is the call's project, its token's id (0 without a token) and the id -- so
one caller reusing another's id is a new call of its own, never a read of the other's stored
response. While the server runs the call, its key is a :class:`RequestClaim` in a context
variable; the call's first write transaction inserts
a marker row for it (:func:`claim_in`, called by :meth:`Store.transaction`) -- in the SAME
transaction as the change. So "the change is committed" and "the request id is known" are one
fact: a retry after any crash finds the marker and is not applied again. The serialised
response is added to the row afterwards (``size`` is ``-1`` until then); a retry that finds a
marker without a response learns that its call was applied but its answer was lost.

Rows are kept for :data:`RETENTION` (far longer than any client retries), then forgotten.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError

from tideflow.store.driver import DriverStatement
from tideflow.store.rows.access import RpcRequestRow
from tideflow.store.rows.base import table_of
from tideflow.store.types import utcnow

RETENTION = timedelta(days=1)
NO_RESPONSE_YET = -1

NO_TOKEN = 0
"""``token_id`` of a call made without a token."""

_REQUEST = table_of(RpcRequestRow)
_FIND = select(_REQUEST.c.method, _REQUEST.c.response, _REQUEST.c.size).where(
    _REQUEST.c.project == bindparam("project"),
    _REQUEST.c.token_id == bindparam("token_id"),
    _REQUEST.c.request_id == bindparam("request_id"),
)
_CLAIM = DriverStatement(_REQUEST.insert())  # every mutating call runs it
_SAVE = DriverStatement(
    update(_REQUEST)
    .where(
        _REQUEST.c.project == bindparam("p"),
        _REQUEST.c.token_id == bindparam("t"),
        _REQUEST.c.request_id == bindparam("rid"),
    )
    .values(response=bindparam("data"), size=bindparam("length"))
)


class RequestKey(NamedTuple):
    """Whose request: the caller's project, token id (:data:`NO_TOKEN` without one), request id."""

    project: str
    token_id: int
    request_id: str

    def row(self) -> dict[str, object]:
        """The key's columns."""
        return {"project": self.project, "token_id": self.token_id, "request_id": self.request_id}


@dataclass
class RequestClaim:
    """The key of the call being served, until its first write transaction commits."""

    key: RequestKey
    method: str
    claimed: bool = False


current_claim: ContextVar[RequestClaim | None] = ContextVar("tideflow_request_claim", default=None)


def claim_in(connection: Connection, claim: RequestClaim) -> None:
    """Insert the marker of ``claim`` in the caller's (write) transaction.

    Raises:
        IntegrityError: The id is already claimed (the store translates it to
            AlreadyExistsError): the call was applied before.
    """
    _CLAIM.execute(
        connection,
        {
            **claim.key.row(),
            "method": claim.method,
            "response": b"",
            "size": NO_RESPONSE_YET,
            "create_time": utcnow(),
        },
    )


def find_response(connection: Connection, key: RequestKey) -> tuple[str, bytes | None] | None:
    """What is recorded for ``key``: ``(method, response)``, or ``None`` if unknown.

    The response is ``None`` when the call was applied but its response never stored.
    """
    row = connection.execute(_FIND, key.row()).first()
    if row is None:
        return None
    return row.method, (None if row.size == NO_RESPONSE_YET else bytes(row.response))


def save_responses(
    connection: Connection, responses: Sequence[tuple[RequestKey, str, bytes]]
) -> None:
    """Store ``(key, method, response)`` triples.

    Keys without a marker (calls that wrote nothing) get a row of their own, so their retries
    are answered alike. The batch goes to the driver as one ``executemany``; only when its
    total count says some key had no marker (or the driver cannot count a batch) are the keys
    looked at one by one.
    """
    if not responses:
        return
    rows = [
        {
            "p": key.project,
            "t": key.token_id,
            "rid": key.request_id,
            "data": data,
            "length": len(data),
        }
        for key, _method, data in responses
    ]
    changed = _SAVE.execute_many(connection, rows).rowcount
    if connection.dialect.supports_sane_multi_rowcount and changed == len(rows):
        return
    now = utcnow()
    for (key, method, data), row in zip(responses, rows, strict=True):
        if _SAVE.execute(connection, row).rowcount:
            continue
        try:
            with connection.begin_nested():
                connection.execute(
                    _REQUEST.insert().values(
                        **key.row(),
                        method=method,
                        response=data,
                        size=len(data),
                        create_time=now,
                    )
                )
        except IntegrityError:
            pass  # stored meanwhile by another writer: theirs is the same call's answer


def forget_old_responses(connection: Connection) -> int:
    """Delete rows older than :data:`RETENTION`; returns how many."""
    cutoff = utcnow() - RETENTION
    return connection.execute(delete(_REQUEST).where(_REQUEST.c.create_time < cutoff)).rowcount
