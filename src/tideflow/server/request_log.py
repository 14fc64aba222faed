"""The interceptor's request log: recent responses in memory, all of them in the store.

The marker of each deduplicated call is written by the call's own transaction (see
:mod:`tideflow.store.request_log`); this class only adds the responses. They go to a memory
cache at once -- a retry racing its original is answered from there -- and to the store in
batches by a background thread, so a mutating call costs one transaction, not three.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from tideflow.store import Store
from tideflow.store.request_log import find_response, forget_old_responses, save_responses

log = logging.getLogger(__name__)

CACHE_SIZE = 10_000
FLUSH_INTERVAL = 0.01
PRUNE_EVERY = 1000


class StoreRequestLog:
    """Responses of mutating calls by request id."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._pending: list[tuple[str, str, bytes]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._flushes = 0
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def find(
        self, request_id: str, *, look_in_store: bool = True
    ) -> tuple[str, bytes | None] | None:
        """What is recorded for ``request_id`` (see ``store.request_log.find_response``)."""
        with self._lock:
            cached = self._cache.get(request_id)
        if cached is not None:
            return cached
        if not look_in_store:
            return None
        return self._store.run(lambda c: find_response(c, request_id), write=False)

    def record(self, request_id: str, method: str, response: bytes) -> None:
        """Keep a response: in memory now, in the store within :data:`FLUSH_INTERVAL`."""
        with self._lock:
            self._cache[request_id] = (method, response)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            self._pending.append((request_id, method, response))
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if not self._flush() and self._closed:
                return
            if not self._closed:
                self._wake.wait(FLUSH_INTERVAL)  # let a burst of calls share one transaction

    def _flush(self) -> bool:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return False
        try:
            self._store.run(lambda c: save_responses(c, batch))
            self._flushes += 1
            if self._flushes % PRUNE_EVERY == 0:
                self._store.run(forget_old_responses)
        except Exception:  # a thread edge: the markers already prevent double application
            log.exception("could not store %d RPC responses", len(batch))
        return True

    def close(self) -> None:
        """Store what is pending and stop the writer thread."""
        self._closed = True
        self._wake.set()
        self._thread.join(10)
        self._flush()
