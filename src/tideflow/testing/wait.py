"""Waiting in tests for what no event announces: poll a predicate until it holds.

Conditions the event log announces are best waited for on a listener; everything else (a file
written by a job, an HTTP server up, a row a process wrote) is polled with :func:`wait_until`.
It returns the predicate's truthy value, so a wait doubles as a look-up, and a timeout fails
the test with an :class:`AssertionError` that says what was awaited and the last value seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
DEFAULT_INTERVAL = 0.05


class WaitTimeout(AssertionError):
    """:func:`wait_until` ran out of time: a test failure, not an error of the code under test.

    Attributes:
        what: What was awaited.
        timeout: The seconds waited.
        last: The predicate's last (falsy) value.
    """

    def __init__(self, what: str, timeout: float, last: object) -> None:
        super().__init__(f"timed out after {timeout:g} s waiting for {what} (last value: {last!r})")
        self.what = what
        self.timeout = timeout
        self.last = last


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "",
    interval: float = DEFAULT_INTERVAL,
) -> T:
    """Call ``predicate()`` until it returns something truthy, and return that.

    Args:
        predicate: Checked at once, then every ``interval`` seconds; its exceptions propagate.
        timeout: Seconds before giving up.
        what: What is awaited, for the failure message (default: the predicate's name).
        interval: Seconds between checks.

    Raises:
        WaitTimeout: ``predicate()`` was still falsy after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(
                what or getattr(predicate, "__qualname__", repr(predicate)), timeout, value
            )
        time.sleep(interval)
