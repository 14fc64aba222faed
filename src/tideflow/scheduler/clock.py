"""The scheduler's notion of time: a clock object that tests can drive.

Everything time-based in the scheduler -- timers (cron / interval), retry backoff, when an
outbox command is due -- reads :meth:`Clock.now` and asks :meth:`Clock.seconds_until` how long
it may sleep, never ``time`` directly. Three clocks:

* :class:`SystemClock` -- real time (the default).
* :class:`ManualClock` -- time stands still until a test calls :meth:`ManualClock.advance` or
  :meth:`ManualClock.set`, which wakes every waiter at once.
* :class:`FileClock` -- **test only**: the current time is the epoch seconds written in a file,
  re-read on every :meth:`now`. A server *process* started by a test uses it when the
  environment variable ``TIDEFLOW_TEST_CLOCK_FILE`` names that file (see :func:`clock_from_env`);
  the test moves time by rewriting the file. Waiters poll the file every
  :data:`FILE_POLL_SECONDS`, the only polling in the scheduler, and only in this test mode.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

CLOCK_FILE_ENV = "TIDEFLOW_TEST_CLOCK_FILE"
FILE_POLL_SECONDS = 0.05
MAX_SYSTEM_WAIT_SECONDS = 60.0
"""A system-clock waiter looks again at least this often (the wall clock may jump)."""


class Clock:
    """Base of the clocks: :meth:`now`, and how long a waiter may sleep in real time."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        raise NotImplementedError

    def seconds_until(self, until: datetime | None) -> float | None:
        """Real seconds a waiter for clock time ``until`` may sleep before looking again.

        ``None`` means "until woken" (``until`` is ``None`` on a clock that does not move by
        itself, or a manual clock whose jumps wake waiters through :meth:`add_listener`).
        """
        raise NotImplementedError

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` whenever this clock jumps (only manual clocks do)."""


class SystemClock(Clock):
    """Real time."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.now(UTC)

    def seconds_until(self, until: datetime | None) -> float | None:
        """The real time left (capped, as the wall clock may be adjusted)."""
        if until is None:
            return MAX_SYSTEM_WAIT_SECONDS
        left = (until - self.now()).total_seconds()
        return max(0.0, min(left, MAX_SYSTEM_WAIT_SECONDS))


class ManualClock(Clock):
    """A clock that only moves when told to (tests).

    Args:
        start: Its initial time (default 2024-01-01T00:00:00Z).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2024, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> datetime:
        """The time it was last set to."""
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (aware) and wake every listener."""
        with self._lock:
            self._now = when
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by ``delta`` (seconds or a timedelta); return the new time."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        self.set(self._now + step)
        return self._now

    def seconds_until(self, until: datetime | None) -> float | None:
        """0 when ``until`` has passed, else ``None``: only a jump (a listener) wakes."""
        return 0.0 if until is not None and until <= self._now else None

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every jump."""
        with self._lock:
            self._listeners.append(listener)


class FileClock(Clock):
    """Test only: the time is the epoch seconds written in ``path`` (re-read on every call).

    A missing or unreadable file reads as the real time, so a test can start the server first
    and pin the time afterwards.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        """The time in the file."""
        try:
            return datetime.fromtimestamp(float(self.path.read_text().strip()), UTC)
        except (OSError, ValueError):
            return datetime.now(UTC)

    def seconds_until(self, until: datetime | None) -> float | None:
        """Poll: at most :data:`FILE_POLL_SECONDS` (the file may change any time)."""
        if until is not None and until <= self.now():
            return 0.0
        return FILE_POLL_SECONDS


def clock_from_env() -> Clock:
    """A :class:`FileClock` when ``TIDEFLOW_TEST_CLOCK_FILE`` is set, else the system clock."""
    path = os.environ.get(CLOCK_FILE_ENV)
    return FileClock(Path(path)) if path else SystemClock()
