"""Pytest fixtures for tests of Tideflow workflows (registered under ``pytest11``).

Installing Tideflow makes them available to every pytest run in that environment:

* ``tideflow_clock`` -- a :class:`~tideflow.scheduler.clock.ManualClock`;
* ``tideflow_server`` -- an :class:`~tideflow.testing.InProcessServer` on that clock, with the
  local executor, in the test's temporary directory;
* ``tideflow_project`` -- the project name ``tideflow_client`` works in (``"test"``; override
  the fixture to change it);
* ``tideflow_client`` -- a client of ``tideflow_server`` in that project;
* ``tideflow_server_process`` -- a :class:`~tideflow.testing.TideflowTestServer` (a child
  process: slower to start, but it can be killed and restarted).

All are function scoped: each test gets a fresh store. A suite that wants one server for many
tests builds its own broader-scoped fixture from the same classes. The names all start with
``tideflow_`` so they cannot shadow a project's own ``server`` or ``client`` fixtures.

Nothing of Tideflow beyond this module is imported when pytest starts: the fixtures import the
kit when first used, so the plugin costs nothing in test runs that do not use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tideflow.client import Client
    from tideflow.scheduler.clock import ManualClock
    from tideflow.testing import InProcessServer, TideflowTestServer


@pytest.fixture
def tideflow_clock() -> ManualClock:
    """A scheduler clock that stands still until the test moves it."""
    from tideflow.scheduler.clock import ManualClock

    return ManualClock()


@pytest.fixture
def tideflow_server(tmp_path: Path, tideflow_clock: ManualClock) -> Iterator[InProcessServer]:
    """A server in this process on ``tideflow_clock``, with a fresh home and store."""
    from tideflow.testing import InProcessServer

    with InProcessServer(home=tmp_path / "tideflow-home", clock=tideflow_clock) as server:
        yield server


@pytest.fixture
def tideflow_project() -> str:
    """The project ``tideflow_client`` works in."""
    return "test"


@pytest.fixture
def tideflow_client(tideflow_server: InProcessServer, tideflow_project: str) -> Iterator[Client]:
    """A client of ``tideflow_server`` in ``tideflow_project``."""
    with tideflow_server.client(tideflow_project) as client:
        yield client


@pytest.fixture
def tideflow_server_process(tmp_path: Path) -> Iterator[TideflowTestServer]:
    """A server in a child process, with a fresh home and store."""
    from tideflow.testing import TideflowTestServer

    with TideflowTestServer(home=tmp_path / "tideflow-process-home") as server:
        yield server
