"""A real Tideflow server inside the test's own process, on a clock the test can drive.

    with InProcessServer(clock=ManualClock()) as server:
        client = server.client("demo")
        server.clock.advance(3600)   # timers and backoffs due in the next hour fire now

It is the production server (:class:`tideflow.server.app.TideflowServer`: gRPC, HTTP, the
scheduler and its executors) started on free loopback ports with a temporary home and SQLite
store -- without a child process, so it starts in about the time migrations take and a test can
hand it a :class:`~tideflow.scheduler.clock.ManualClock`. Clients reach it over gRPC like any
other server's. What it cannot show is what survives a crash: use
:class:`~tideflow.testing.process.TideflowTestServer` (a server process) for that.

Jobs run by its executors are processes of their own, as in production: stopping the server
leaves running jobs running, so a test stops the executions it leaves unfinished.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tideflow.client import Client, connect
from tideflow.scheduler.clock import Clock
from tideflow.server.app import TideflowServer
from tideflow.server.config import ServerConfig

DEFAULT_EXECUTORS = ("local",)


class InProcessServer:
    """A server in this process for one test (or module, or session).

    Args:
        home: ``$TIDEFLOW_HOME`` of the server (logs, blobs, job working directories); a
            temporary directory by default (removed on :meth:`close`).
        db_url: The store; a SQLite file in the home by default.
        clock: The scheduler's clock (a :class:`~tideflow.scheduler.clock.ManualClock` for
            tests of timers and backoffs); the system clock by default.
        executors: The executors to run (``()`` for none, when the test plays the executor);
            local processes by default.
        auth: ``optional`` (the default on loopback) or ``required``.
    """

    def __init__(
        self,
        *,
        home: Path | None = None,
        db_url: str | None = None,
        clock: Clock | None = None,
        executors: Sequence[str] = DEFAULT_EXECUTORS,
        auth: str | None = None,
    ) -> None:
        self._own_home = home is None
        self.home = Path(tempfile.mkdtemp(prefix="tideflow-test-")) if home is None else home
        self.db_url = db_url or f"sqlite:///{self.home / 'tideflow.db'}"
        self.clock = clock
        self.executors = tuple(executors)
        self.auth = auth
        self.server: TideflowServer | None = None

    @property
    def url(self) -> str:
        """``grpc://127.0.0.1:PORT`` of the running server."""
        return self._running().url

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the server's HTTP side (UI, JSON API, /metrics)."""
        return str(self._running().info()["http_url"])

    def start(self) -> InProcessServer:
        """Open (and migrate) the store and serve; return at once when serving."""
        self.home.mkdir(parents=True, exist_ok=True)
        config = ServerConfig(
            db_url=self.db_url, home=self.home, port=0, http_port=0, auth=self.auth
        )
        server = TideflowServer(config, clock=self.clock, executors=self.executors)
        try:
            server.start()
        except BaseException:
            server.stop()
            raise
        self.server = server
        return self

    def client(self, project: str = "default", *, token: str | None = None) -> Client:
        """A remote client of this server (the caller closes it)."""
        return connect(self.url, project=project, token=token)

    def stop(self) -> None:
        """Stop serving (running jobs keep running, as with a real server)."""
        if self.server is not None:
            self.server.stop()
            self.server = None

    def close(self) -> None:
        """Stop, and remove the temporary home."""
        self.stop()
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def _running(self) -> TideflowServer:
        if self.server is None:
            raise RuntimeError("the in-process test server is not running: call start() first")
        return self.server

    def __enter__(self) -> InProcessServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
