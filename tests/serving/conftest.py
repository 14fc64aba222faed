"""A real server (with the local executor) for the serving tests, and waiting helpers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from tideflow.testing import TideflowTestServer

T = TypeVar("T")
WAIT = 60.0


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TideflowTestServer]:
    with TideflowTestServer(home=tmp_path_factory.mktemp("serving-home")) as running:
        yield running


def wait_until(check: Callable[[], T | None], *, what: str, timeout: float = WAIT) -> T:
    """Return ``check()`` once it is truthy; fail naming ``what`` after ``timeout`` seconds.

    For conditions no event announces (an HTTP server up, a file grown); everything the event
    log announces is waited for on a listener instead.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def unique(prefix: str, _counter: list[int] = [0]) -> str:  # noqa: B006 - a process counter
    """A name no other test of the session uses."""
    _counter[0] += 1
    return f"{prefix}{_counter[0]}"


def first(items: Any) -> Any:
    """The only element of ``items``."""
    (item,) = items
    return item
