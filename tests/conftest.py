"""Shared fixtures: processors for workflows under test, and a store per backend.

``store_url`` is session scoped and parametrised over SQLite, PostgreSQL and MariaDB (one
migrated database per backend per session), so every suite that uses it is a contract suite
run against all three; each test gets its own project, so tests share a database without
seeing each other's entities.

``job_server`` is the one server of a session that executor rigs' jobs talk to: jobs speak only
the API, so a job that sends an event or logs a metric needs a server, not a store URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import tideflow as tide
from tests.databases import server_database
from tideflow.client import Client, connect
from tideflow.store import Store
from tideflow.testing import TideflowTestServer

# The kit's fixtures, as a user's conftest turns them on; then what ends a session (the shared
# clusters' stops, a pytest-xdist worker's coverage data) before pytest-xdist may kill a worker.
pytest_plugins = ["tideflow.testing.plugin", "tests.session_end"]


class Echo(tide.Processor):
    """Returns its inputs unchanged: enough to build and compile graphs."""

    def process(self, ctx: Any, inputs: Sequence[Any]) -> Any:
        return list(inputs)


ENGINE_MARKERS = ("flink", "spark", "ray")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep each engine's tests on one pytest-xdist worker (``--dist loadgroup``).

    Its cluster (a Flink cluster, a Ray head, Spark's JVMs) then starts once per run, not once
    per worker: two of them would not fit beside each other on a 2-core machine.
    """
    for item in items:
        for marker in ENGINE_MARKERS:
            if item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.xdist_group(marker))
                break


@pytest.fixture(scope="session")
def job_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TideflowTestServer]:
    """A real server that runs no executors of its own, for the jobs of executor rigs.

    A rig opens this server's SQLite store in-process (with a project of its own), runs an
    executor on a home of its own, and hands it ``server_url=job_server.url``: its jobs then
    reach the rig's entities through the API, as jobs of a real server do. Started once per
    session (per xdist worker, so each engine's group gets one): a server takes seconds.
    """
    server = TideflowTestServer(
        home=tmp_path_factory.mktemp("job-server"), env={"TIDEFLOW_EXECUTORS": ""}
    )
    with server:
        yield server


@pytest.fixture
def echo() -> Echo:
    return Echo()


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
    ],
)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def store_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database of ``backend`` shared by the session."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'tideflow.db'}"
        Store.open(url).close()
        yield url
        return
    with server_database(backend) as url:
        Store.open(url).close()
        yield url


@pytest.fixture
def empty_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of ``backend`` for this test only."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with server_database(backend) as url:
        yield url


@pytest.fixture
def project() -> str:
    return f"p_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store.open(store_url) as opened:
        yield opened


@pytest.fixture
def client(store_url: str, project: str) -> Iterator[Client]:
    with connect(store_url, project=project) as opened:
        yield opened


# -- where the suite's time goes -------------------------------------------------------------

_FILE_SECONDS: dict[str, float] = {}
FILES_SHOWN = 15


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add each phase's time (set-up, call, teardown) to its test file's total."""
    path = report.nodeid.split("::", 1)[0]
    _FILE_SECONDS[path] = _FILE_SECONDS.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The slowest test files, so the long tail of the suite stays visible (issue 20)."""
    if not _FILE_SECONDS:
        return
    total = sum(_FILE_SECONDS.values())
    slowest = sorted(_FILE_SECONDS.items(), key=lambda item: item[1], reverse=True)
    terminalreporter.write_sep("=", f"slowest {min(FILES_SHOWN, len(slowest))} test files")
    for path, seconds in slowest[:FILES_SHOWN]:
        share = 100 * seconds / total if total else 0.0
        terminalreporter.write_line(f"{seconds:8.1f}s {share:5.1f}%  {path}")
    terminalreporter.write_line(f"{total:8.1f}s in all, {len(slowest)} files")
