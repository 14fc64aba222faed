"""The interceptor's request log, kept in the store (so it survives restarts)."""

from __future__ import annotations

from tideflow.store import Store
from tideflow.store.request_log import find_response, forget_old_responses, record_response

PRUNE_EVERY = 1000


class StoreRequestLog:
    """Responses of mutating calls by request id, in the ``rpc_request`` table."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._recorded = 0

    def find(self, request_id: str) -> tuple[str, bytes] | None:
        """The method and response recorded for ``request_id``."""
        return self._store.run(lambda c: find_response(c, request_id), write=False)

    def record(self, request_id: str, method: str, response: bytes) -> None:
        """Keep a response; now and then forget those past retention."""
        self._store.run(lambda c: record_response(c, request_id, method, response))
        self._recorded += 1
        if self._recorded % PRUNE_EVERY == 0:
            self._store.run(forget_old_responses)
