"""Flink test fixtures: the session's PyFlink environment and cluster, a server that uses them."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.engines.flink.cluster import JOBS, flink_address, flink_environment
from tideflow.client import Client
from tideflow.testing import TideflowTestServer


@pytest.fixture(scope="session")
def flink_rest() -> str:
    """The REST address of the session's local Flink cluster."""
    return flink_address()


@pytest.fixture(scope="session")
def flinkjobs() -> Iterator[Any]:
    """The processors module ``tests/engines/flink/jobs/flinkjobs.py``, importable here."""
    sys.path.insert(0, str(JOBS))
    try:
        import flinkjobs

        yield flinkjobs
    finally:
        sys.path.remove(str(JOBS))


@pytest.fixture(scope="session")
def flink_server(flink_rest: str) -> Iterator[TideflowTestServer]:
    """A real server whose flink executor submits to the session's cluster."""
    environment = flink_environment()
    server = TideflowTestServer(
        env={
            "TIDEFLOW_EXECUTORS": "local,flink",
            "TIDEFLOW_FLINK_ADDRESS": flink_rest,
            "TIDEFLOW_FLINK_VENV": str(environment.path),
        }
    )
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def flink_client(flink_server: TideflowTestServer) -> Iterator[Client]:
    """A client of the Flink test server, on a fresh project."""
    client = flink_server.client(project=f"f{uuid.uuid4().hex[:8]}")
    try:
        yield client
    finally:
        client.close()
