"""The interceptor's request log: recent responses in memory, all of them in the store.

Responses are kept by :class:`~tideflow.store.request_log.RequestKey` -- the caller's project
and token as well as the request id -- in memory as in the store.

The marker of each deduplicated call is written by the call's own transaction (see
:mod:`tideflow.store.request_log`); this class only adds the responses. They go to a memory
cache at once -- a retry racing its original is answered from there -- and to the store in
batches by a background thread, at most once per :data:`FLUSH_INTERVAL` (sooner when
:data:`FLUSH_BATCH` are pending). A mutating call therefore costs its own transaction and no
other: on SQLite every transaction queues for the one write lock, and flushing every 10 ms had
the log's writes compete with the calls they record. Once a second was too seldom the other
way: at ~1,000 calls/s each flush wrote ~1,000 rows in ~20 ms of the write lock and the GIL, a
stall of every call in flight once a second; a tenth of a second keeps a flush to ~2 ms.
Storing responses is only for a retry that
comes after a server crash; until the flush, a crash leaves the marker without its response,
and the retry is told its call was applied but the answer is lost (never applied twice).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from tideflow.store import Store
from tideflow.store.request_log import (
    RequestKey,
    find_response,
    forget_old_responses,
    save_responses,
)

log = logging.getLogger(__name__)

CACHE_SIZE = 10_000
FLUSH_INTERVAL = 0.1
FLUSH_BATCH = 2000
PRUNE_EVERY = 10_000


class StoreRequestLog:
    """Responses of mutating calls by caller and request id."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: OrderedDict[RequestKey, tuple[str, bytes]] = OrderedDict()
        self._pending: list[tuple[RequestKey, str, bytes]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._full = threading.Event()
        self._closed = False
        self._flushes = 0
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def find(
        self, key: RequestKey, *, look_in_store: bool = True
    ) -> tuple[str, bytes | None] | None:
        """What is recorded for ``key`` (see ``store.request_log.find_response``)."""
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        if not look_in_store:
            return None
        return self._store.run(lambda c: find_response(c, key), write=False)

    def record(self, key: RequestKey, method: str, response: bytes) -> None:
        """Keep a response: in memory now, in the store within :data:`FLUSH_INTERVAL`."""
        with self._lock:
            self._cache[key] = (method, response)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            self._pending.append((key, method, response))
            pending = len(self._pending)
        if pending == 1:
            self._wake.set()
        if pending >= FLUSH_BATCH:
            self._full.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()  # something is pending (or the log is closing)
            self._wake.clear()
            if not self._closed:
                self._full.wait(FLUSH_INTERVAL)  # let the calls of an interval share a flush
                self._full.clear()
            if not self._flush() and self._closed:
                return

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
        self._full.set()
        self._wake.set()
        self._thread.join(10)
        self._flush()
