"""Wake waiting listeners the moment an event commits, without sleep-polling.

:class:`OffsetSignal` holds the highest offset known to be committed. Whoever learns of a commit
publishes it -- the store's commit hook in this process, or a cross-process watcher
(:mod:`tideflow.notification.watchers`) -- and every listener blocked in :meth:`wait_beyond`
wakes at once and reads the new events from the store with its own filters. The signal carries
only a number, never events, so a listener can never miss or reorder an event because of it:
the store stays the one source of truth.
"""

from __future__ import annotations

import threading


class OffsetSignal:
    """The latest committed event offset, and a way to wait for it to move."""

    def __init__(self, latest: int = 0) -> None:
        self._condition = threading.Condition()
        self._latest = latest
        self._closed = False
        self._waiters = 0

    @property
    def latest(self) -> int:
        """The highest offset published so far."""
        return self._latest

    @property
    def waiters(self) -> int:
        """How many threads are waiting right now (for the ``/metrics`` listener gauge)."""
        return self._waiters

    def publish(self, offset: int) -> None:
        """Record that events up to ``offset`` are committed and wake every waiter."""
        with self._condition:
            if offset > self._latest:
                self._latest = offset
                self._condition.notify_all()

    def wait_beyond(self, offset: int, timeout: float | None = None) -> int:
        """Block until a greater offset is published, the timeout passes or the signal closes.

        Returns:
            The latest published offset (``<= offset`` when it timed out or was closed).
        """
        with self._condition:
            self._waiters += 1
            try:
                self._condition.wait_for(lambda: self._latest > offset or self._closed, timeout)
            finally:
                self._waiters -= 1
            return self._latest

    def close(self) -> None:
        """Wake every waiter for good (the service is shutting down)."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed
