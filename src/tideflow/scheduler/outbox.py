"""Waking executors when commands are committed, without sleep-polling.

:class:`CommandSignal` is a generation counter: every commit that issued commands bumps it, and
so does every commit that appended events (a job attempt ending can release the START of the
next attempt, see :mod:`tideflow.store.repositories.outbox`) and every jump of a manual clock
(a backoff may have passed). An executor blocked in :meth:`wait` wakes at once and calls
``take_commands``; the store stays the one source of truth.
"""

from __future__ import annotations

import threading


class CommandSignal:
    """A counter of "the outbox may have changed" and a way to wait for it to move."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0
        self._closed = False

    @property
    def generation(self) -> int:
        """The current generation (read it before taking, pass it to :meth:`wait`)."""
        return self._generation

    def notify(self, *_: object) -> None:
        """Wake every waiter (usable as a store commit listener or a clock listener)."""
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def wait(self, seen: int, timeout: float | None) -> bool:
        """Block until the generation moves past ``seen``, ``timeout`` passes or it closes.

        Returns:
            Whether it moved.
        """
        with self._condition:
            self._condition.wait_for(lambda: self._generation != seen or self._closed, timeout)
            return self._generation != seen

    def close(self) -> None:
        """Wake every waiter for good."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
