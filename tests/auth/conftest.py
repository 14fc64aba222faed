"""A real server with ``--auth required`` per module, and tokens issued on its store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tideflow.client import connect
from tideflow.metadata import AccessService
from tideflow.store import Store
from tideflow.testing import TideflowTestServer

Issue = Callable[[str, str], str]


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TideflowTestServer]:
    """A server process requiring tokens, its TIDEFLOW_HOME a temporary directory."""
    server = TideflowTestServer(home=tmp_path_factory.mktemp("home"), args=["--auth", "required"])
    try:
        server.start()
        yield server
    finally:
        server.close()


def issuer(db_url: str) -> Issue:
    """``issue(project, role)`` -> a new token of ``role`` in ``project`` (project created)."""

    def issue(project: str, role: str) -> str:
        with connect(db_url, project=project):  # makes sure the project exists
            pass
        with Store.open(db_url) as store:
            _, token = AccessService(store).create_token(project, role, name=f"{role} test")
        return token

    return issue


@pytest.fixture(scope="module")
def issue(auth_server: TideflowTestServer) -> Issue:
    return issuer(auth_server.db_url)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary TIDEFLOW_HOME for this test (and the processes it starts)."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("TIDEFLOW_HOME", str(path))
    for variable in ("TIDEFLOW_DB", "TIDEFLOW_SERVER", "TIDEFLOW_TOKEN", "TIDEFLOW_PROJECT"):
        monkeypatch.delenv(variable, raising=False)
    return path
