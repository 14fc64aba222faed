"""Wake waiting listeners the moment an event commits, without sleep-polling.

:class:`OffsetSignal` holds the highest offset known to be committed. Whoever learns of a commit
publishes it -- the store's commit hook in this process, or a cross-process watcher
(:mod:`tideflow.notification.watchers`) -- and every listener blocked in :meth:`wait_beyond`
wakes at once and reads the new events from the store with its own filters. The signal carries
only a number, never events, so a listener can never miss or reorder an event because of it:
the store stays the one source of truth.

Waiters come in two kinds: threads (:meth:`wait_beyond`) and tasks of event loops
(:meth:`wait_beyond_async`, the server's ``Listen`` streams). A publish wakes every thread, and
hands each loop with waiting tasks one callback that resolves all of its waiters the new
offset satisfies: one cross-thread wake-up per loop and commit, however many streams wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable


class OffsetSignal:
    """The latest committed event offset, and a way to wait for it to move."""

    def __init__(self, latest: int = 0) -> None:
        self._condition = threading.Condition()
        self._latest = latest
        self._closed = False
        self._waiters = 0
        # Per loop: the futures of its waiting tasks, with the offset each waits beyond.
        self._tasks: dict[asyncio.AbstractEventLoop, dict[asyncio.Future[None], int]] = {}

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
                loops = list(self._tasks)
            else:
                return
        for loop in loops:
            self._call_in(loop, self._wake_tasks)

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

    async def wait_beyond_async(self, offset: int, timeout: float) -> int:
        """:meth:`wait_beyond` for a task of a running event loop: the loop is never blocked."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._condition:
            if self._latest > offset or self._closed:
                return self._latest
            self._tasks.setdefault(loop, {})[future] = offset
            self._waiters += 1
        timer = loop.call_later(timeout, _settle, future)
        try:
            await future
        finally:
            timer.cancel()
            with self._condition:
                waiting = self._tasks.get(loop)
                if waiting is not None:
                    waiting.pop(future, None)
                    if not waiting:
                        del self._tasks[loop]
                self._waiters -= 1
        return self._latest

    def _wake_tasks(self) -> None:
        """On a loop: resolve the futures of its tasks that the latest offset satisfies."""
        loop = asyncio.get_running_loop()
        with self._condition:
            waiting = self._tasks.get(loop)
            if not waiting:
                return
            latest, closed = self._latest, self._closed
            due = [f for f, offset in waiting.items() if closed or latest > offset]
        for future in due:
            _settle(future)

    @staticmethod
    def _call_in(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: its tasks are gone with it
            loop.call_soon_threadsafe(callback)

    def close(self) -> None:
        """Wake every waiter for good (the service is shutting down)."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
            loops = list(self._tasks)
        for loop in loops:
            self._call_in(loop, self._wake_tasks)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
