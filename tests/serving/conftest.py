"""A real server (with the local executor) for the serving tests, and waiting helpers."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest

import tideflow.testing as kit
from tideflow.testing import TideflowTestServer

WAIT = 60.0


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TideflowTestServer]:
    with TideflowTestServer(home=tmp_path_factory.mktemp("serving-home")) as running:
        yield running


# For conditions no event announces (an HTTP server up, a file grown); everything the event log
# announces is waited for on a listener instead.
wait_until = functools.partial(kit.wait_until, timeout=WAIT)


def unique(prefix: str, _counter: list[int] = [0]) -> str:  # noqa: B006 - a process counter
    """A name no other test of the session uses."""
    _counter[0] += 1
    return f"{prefix}{_counter[0]}"


def first(items: Any) -> Any:
    """The only element of ``items``."""
    (item,) = items
    return item
