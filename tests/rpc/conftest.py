"""One real server process for the session; each test talks to it in a project of its own.

``store_url`` is the server's own SQLite file, so the contract suites that open an in-process
client or store beside the ``client`` fixture (another project, a second writer) run unchanged:
they now check a remote client against what an in-process one wrote, and the reverse.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tideflow.client import Client
from tideflow.testing import TideflowTestServer


@pytest.fixture(scope="session")
def server() -> Iterator[TideflowTestServer]:
    with TideflowTestServer() as running:
        yield running


@pytest.fixture
def store_url(server: TideflowTestServer) -> str:
    return server.db_url


@pytest.fixture
def client(server: TideflowTestServer, project: str) -> Iterator[Client]:
    with server.client(project) as opened:
        yield opened
