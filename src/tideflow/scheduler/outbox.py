"""Waking executors when commands for them are committed, without sleep-polling.

:class:`CommandSignal` keeps one generation counter per executor. A commit that issued commands
bumps the counters of the executors it issued them for -- and nothing else does, so an executor
is never woken by an unrelated event, a dataset update or another executor's work. Two more
things can make a command due that was not due before, and both bump every counter:

* an attempt ending (a START of attempt *n* is held while attempt *n-1* is live, see
  :mod:`tideflow.store.repositories.outbox`) -- job ends are rare next to events;
* a jump of a manual clock (a retry's backoff may have passed).

An executor blocked in :meth:`wait` wakes at once and calls ``take_commands``; the store stays
the one source of truth. Waking only on these keeps an idle server idle: before, all four
executors' loops took a write transaction for every appended event, and ``send_event`` through
a real server spent most of its time queued behind them for SQLite's write lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable


class CommandSignal:
    """Per executor, a counter of "its outbox may have changed" and a way to wait for it."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generations: dict[str, int] = {}
        self._everyone = 0
        self._closed = False

    def generation(self, executor: str) -> int:
        """``executor``'s current generation (read it before taking, pass it to :meth:`wait`)."""
        with self._condition:
            return self._everyone + self._generations.get(executor, 0)

    def notify(self, executors: Iterable[str]) -> None:
        """Wake the waiters of ``executors`` (their commands were committed)."""
        with self._condition:
            for name in set(executors):
                self._generations[name] = self._generations.get(name, 0) + 1
            self._condition.notify_all()

    def notify_all(self, *_: object) -> None:
        """Wake every waiter (usable as a clock listener)."""
        with self._condition:
            self._everyone += 1
            self._condition.notify_all()

    def wait(self, executor: str, seen: int, timeout: float | None) -> bool:
        """Block until ``executor``'s generation moves past ``seen`` (or timeout, or close).

        Returns:
            Whether it moved.
        """

        def moved() -> bool:
            return self._everyone + self._generations.get(executor, 0) != seen

        with self._condition:
            self._condition.wait_for(lambda: moved() or self._closed, timeout)
            return moved()

    def close(self) -> None:
        """Wake every waiter for good."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
