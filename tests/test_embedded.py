"""Embedded mode: ``tide.init`` starts or attaches to one local server per TIDEFLOW_HOME.

Every test runs with TIDEFLOW_HOME in a temporary directory and stops the server it started
(``tideflow server stop``, then SIGKILL as a last resort) whatever happens.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import tideflow as tide
from tideflow.client.default import get_default_client, set_default_client
from tideflow.client.embedded import pid_alive, running_server
from tideflow.errors import FailedPreconditionError
from tideflow.testing import run_cli, wait_until
from tideflow.testing.cli import cli_environment

INIT_SCRIPT = """
import json, sys
import tideflow as tide
client = tide.init(project=sys.argv[1])
client.models.list()
print(json.dumps({"url": client.url}))
client.close()
"""


def _tideflow(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, home=home, timeout=90)


def _server_file(home: Path) -> dict[str, object]:
    return dict(json.loads((home / "server.json").read_text()))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "home"
    path.mkdir()
    for variable in [k for k in os.environ if k.startswith("TIDEFLOW_")]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("TIDEFLOW_HOME", str(path))
    previous = set_default_client(None)
    try:
        yield path
    finally:
        client = set_default_client(previous)
        if client is not None:
            client.close()
        info = running_server(path)
        if info is not None:  # a CLI start costs seconds on a loaded machine: only if needed
            _tideflow(path, "server", "stop")
            if pid_alive(int(str(info["pid"]))):
                os.kill(int(str(info["pid"])), signal.SIGKILL)


def test_init_starts_a_server_attaches_to_it_and_server_stop_stops_it(home: Path) -> None:
    client = tide.init(project="demo")
    info = _server_file(home)
    assert client.url == info["url"]
    assert str(info["url"]).startswith("grpc://127.0.0.1:")
    assert info["db"] == f"sqlite:///{home / 'tideflow.db'}"
    assert get_default_client() is client
    client.models.create("ctr")

    again = tide.init(project="demo")  # attaches: same server, the first client is closed
    assert _server_file(home)["pid"] == info["pid"]
    assert get_default_client() is again
    assert [m.name for m in again.models.list().items] == ["ctr"]

    other = subprocess.run(
        [sys.executable, "-c", INIT_SCRIPT, "demo"],
        env=cli_environment(home=home),
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    assert json.loads(other.stdout)["url"] == info["url"]
    assert _server_file(home)["pid"] == info["pid"]
    assert (home / "logs" / "server.log").exists()

    # A second server for the same home is refused while this one runs (one server start
    # for this test and the stop below, formerly two tests of their own: issue 20).
    second = _tideflow(home, "server", "start", "--port", "0", "--http-port", "0")
    assert second.returncode == 1
    assert f"a Tideflow server (pid {info['pid']}) already serves this TIDEFLOW_HOME" in (
        second.stderr
    )
    assert _server_file(home) == info

    # `tideflow server stop` stops the embedded server and forgets it.
    pid = int(str(info["pid"]))
    stopped = _tideflow(home, "server", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert f"Tideflow server (pid {pid}) stopped" in stopped.stdout
    assert not pid_alive(pid)
    assert not (home / "server.json").exists()
    status = _tideflow(home, "server", "status")
    assert status.returncode == 1


def test_two_scripts_calling_init_at_once_share_one_server(home: Path) -> None:
    scripts = [
        subprocess.Popen(
            [sys.executable, "-c", INIT_SCRIPT, f"p{i}"],
            env=cli_environment(home=home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [script.communicate(timeout=90) for script in scripts]
    assert [script.returncode for script in scripts] == [0, 0], outputs
    urls = {json.loads(out)["url"] for out, _ in outputs}
    assert urls == {_server_file(home)["url"]}
    # One server process: the second script found the first one's server.json.
    started = (home / "logs" / "server.log").read_text().count("Tideflow server serving")
    assert started == 1


def test_a_taken_port_moves_the_server_to_the_next_free_one(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tideflow.client import embedded

    with socket.socket() as blocker:
        # The port the server tries first is one this test holds (any free one, set as the
        # embedded port): 50051 itself may be another test's local server's, on another
        # pytest-xdist worker, for minutes -- or let go just before init runs.
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = int(blocker.getsockname()[1])
        monkeypatch.setattr(embedded, "EMBEDDED_PORT", taken)
        client = tide.init(project="demo")
        port = int(str(_server_file(home)["grpc_port"]))
        assert taken < port <= taken + embedded.PORT_SEARCH
        assert client.url.endswith(f":{port}")
        client.models.create("works")


def test_a_dead_server_file_is_replaced(home: Path) -> None:
    (home / "server.json").write_text(json.dumps({"url": "grpc://127.0.0.1:1", "pid": 2**22 + 7}))
    client = tide.init(project="demo")
    assert client.url != "grpc://127.0.0.1:1"
    assert client.models.list() is not None


def test_init_attaches_to_a_named_server(home: Path) -> None:
    from tideflow.testing import TideflowTestServer

    with TideflowTestServer(home=home / "remote") as server:
        host_port = server.url.removeprefix("grpc://")
        client = tide.init("remote_project", server=host_port)
        assert client.url == server.url
        client.models.create("m")
        assert get_default_client().models.get("m").name == "m"
    assert running_server(home) is None  # no local server was started


def test_without_init_there_is_no_default_client(home: Path) -> None:
    with pytest.raises(FailedPreconditionError, match=r"call tide.init\(project=...\) first"):
        get_default_client()


def test_an_exited_process_not_yet_reaped_is_not_alive() -> None:
    """A stopped daemon server stays a zombie until init reaps it (lazily on some machines):
    `tideflow server stop` must not wait for that."""
    child = subprocess.Popen(["sleep", "60"])
    try:
        assert pid_alive(child.pid)
        child.kill()

        def zombie() -> bool:
            with open(f"/proc/{child.pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] == "Z"

        wait_until(zombie, timeout=30, what="the child to exit (unreaped)")
        assert not pid_alive(child.pid)  # kill(pid, 0) alone still finds it
    finally:
        child.kill()
        child.wait()
    assert not pid_alive(child.pid)
