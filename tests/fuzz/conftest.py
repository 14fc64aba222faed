"""One real server for the fuzz suite, fenced in a sandbox it must not write outside its home in.

The sandbox holds the server's home a few folders down (``d1/d2/d3/d4/home``, so an escape by
``../`` lands in a folder we watch), the server's working directory (``cwd``, where a relative
path would land) and its ``TMPDIR`` (``tmp``, where a leaked temporary file would stay). After
every test :func:`guard` checks the property's two other halves: nothing new in the sandbox
outside the home, and the server still up (its process, ``/healthz`` and a gRPC read).

See docs/testing.md ("The fuzz suite") for the budget and the long run.
"""

from __future__ import annotations

import contextlib
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tideflow.client import Client
from tideflow.client.remote.channel import RpcChannel
from tideflow.errors import AlreadyExistsError
from tideflow.rpc.v1 import notification_pb2 as n
from tideflow.rpc.v1 import notification_pb2_grpc as ng
from tideflow.testing import TideflowTestServer

PROJECT = "fuzz"


@dataclass
class Sandbox:
    """The folder around the server's home, and what may change in it."""

    root: Path
    home: Path
    cwd: Path
    tmp: Path

    def outside_home(self) -> set[str]:
        """Every path under the sandbox but not under the home (folders end in ``/``)."""
        found: set[str] = set()
        for folder, dirs, files in os.walk(self.root):
            here = Path(folder)
            if here == self.home:
                dirs.clear()
                continue
            found.update(f"{(here / d).relative_to(self.root)}/" for d in dirs)
            found.update(str((here / f).relative_to(self.root)) for f in files)
        return found - {f"{self.home.relative_to(self.root)}/"}


@dataclass
class FuzzServer:
    """The running server, its sandbox and a raw channel to it (project ``fuzz``)."""

    server: TideflowTestServer
    sandbox: Sandbox
    channel: RpcChannel

    def assert_healthy(self) -> None:
        """The process runs, ``/healthz`` answers 200 and a gRPC read succeeds."""
        process = self.server.process
        assert process is not None
        assert process.poll() is None, f"the server exited with {process.returncode}"
        with urllib.request.urlopen(f"{self.server.http_url}/healthz", timeout=10) as response:
            assert response.status == 200
        stub = ng.NotificationServiceStub(self.channel.channel)
        stub.GetLatestOffset(
            n.GetLatestOffsetRequest(), metadata=self.channel.metadata(mutating=False), timeout=10
        )


def ensure_project(client: Client) -> None:
    """Create the fuzz project unless it exists (a fuzzed ``DeleteProject`` may drop it)."""
    with contextlib.suppress(AlreadyExistsError):
        client.services.projects.create_project(PROJECT)


def seed(server: TideflowTestServer) -> None:
    """A few entities with the names the strategies favour, so requests reach past NOT_FOUND."""
    with server.client(PROJECT) as client:
        ensure_project(client)
        client.models.create("ctr", description="fuzzed")
        version = client.models.create_version("ctr", uri="file:///dev/null")
        client.models.set_alias("ctr", "champion", version.version)
        client.datasets.register("clicks", uri="file:///dev/null", format="jsonl")
        client.events.send("ctr", "0.5", event_type="DRIFT_DETECTED", sender="fuzz")


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServer]:
    root = tmp_path_factory.mktemp("fuzz-sandbox")
    sandbox = Sandbox(
        root=root,
        home=root / "d1" / "d2" / "d3" / "d4" / "home",
        cwd=root / "cwd",
        tmp=root / "tmp",
    )
    for folder in (sandbox.home, sandbox.cwd, sandbox.tmp):
        folder.mkdir(parents=True)
    server = TideflowTestServer(home=sandbox.home, env={"TMPDIR": str(sandbox.tmp)})
    with contextlib.chdir(sandbox.cwd):  # the child inherits it: relative paths land here
        server.start()
    seed(server)
    channel = RpcChannel(server.url, project=PROJECT)
    try:
        yield FuzzServer(server=server, sandbox=sandbox, channel=channel)
    finally:
        channel.close()
        server.close()


@pytest.fixture(autouse=True)
def guard(fuzz_server: FuzzServer) -> Iterator[None]:
    """After each test (one batch of examples): no write outside the home, the server up."""
    before = fuzz_server.sandbox.outside_home()
    yield
    try:
        fuzz_server.assert_healthy()
    except grpc.RpcError as error:  # pragma: no cover - the failure message is the point
        pytest.fail(f"the server is not healthy after the batch: {error}")
    written = sorted(fuzz_server.sandbox.outside_home() - before)
    assert written == [], f"the server wrote outside its home: {written}"
