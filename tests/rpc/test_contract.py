"""The in-process contract suites, run again through a real server over gRPC.

Every test below is imported from its suite and runs with the remote ``client`` of
``conftest.py``. Tests that drive a store directly (not the client) stay in their suites.
"""

# ruff: noqa: F403
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notification.test_delivery import *
from tests.notification.test_log import *
from tests.store.test_metadata import *
from tests.store.test_models import *
from tideflow.client import Client
from tideflow.metadata import ExecutionService, WorkflowService
from tideflow.store import Store

# These exercise NotificationService on a store of their own, not the client.
for _local_only in (
    "test_a_commit_wakes_the_listener_without_polling",
    "test_close_unblocks_a_waiting_iterator",
):
    del globals()[_local_only]


@pytest.fixture
def server_store(store_url: str) -> Iterator[Store]:
    """The server's store, opened beside it (for what has no RPC yet: executions, jobs)."""
    with Store.open(store_url) as store:
        yield store


@pytest.fixture
def workflows(server_store: Store) -> WorkflowService:
    return WorkflowService(server_store)


@pytest.fixture
def executions(server_store: Store) -> ExecutionService:
    return ExecutionService(server_store)


def test_the_client_is_remote(client: Client) -> None:
    assert client.url.startswith("grpc://")
