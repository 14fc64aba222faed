"""A real Tideflow server for tests: its own process, a free loopback port, a temporary store.

    with TideflowTestServer() as server:
        client = server.client(project="demo")
        ...

The server runs ``tideflow server start`` in a child process (as in production), on ports the
OS picks, with ``$TIDEFLOW_HOME`` and the SQLite store in a temporary directory unless given.
:meth:`TideflowTestServer.kill` (SIGKILL) and :meth:`restart` on the same port and store let
tests check what survives a crash.

A server on the default store starts from a copy of a SQLite store migrated once per test
process (the schema only, nothing else): the migrations cost 0.3-0.8 s of every start, and a
suite starts dozens of servers. A server given ``db_url`` migrates its own store, as in
production (tests/rpc/test_server.py checks that a fresh database is migrated at first start).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tideflow.client import Client, connect
from tideflow.errors import UnavailableError

START_TIMEOUT = 60.0

_template_lock = threading.Lock()
_template: Path | None = None


def migrated_template() -> Path:
    """A SQLite store with the current schema and no rows, made once per process.

    Copied into a default store before its server starts, it is what the server's own
    migration would make of an empty file, without the migration's time.
    """
    global _template
    with _template_lock:
        if _template is None or not _template.exists():
            from tideflow.store import Store  # the store's libraries only when a server starts

            directory = Path(tempfile.mkdtemp(prefix="tideflow-template-"))
            atexit.register(shutil.rmtree, directory, True)
            path = directory / "tideflow.db"
            Store.open(f"sqlite:///{path}").close()
            _template = path
        return _template


class TideflowTestServer:
    """A server process for one test (or session).

    Args:
        db_url: The store; a SQLite file in the temporary home by default.
        home: ``$TIDEFLOW_HOME`` for the server; a temporary directory by default (removed on
            :meth:`close`).
        args: Extra ``tideflow server start`` options (``["--auth", "required"]``).
        env: Extra environment variables for the server process.
        ready_file: Where the server announces its ports; ``ready.json`` in the home by
            default (give another disk's path to start a server on a full home).
    """

    def __init__(
        self,
        *,
        db_url: str | None = None,
        home: Path | None = None,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        ready_file: Path | None = None,
    ) -> None:
        self._own_home = home is None
        self.home = Path(tempfile.mkdtemp(prefix="tideflow-test-")) if home is None else home
        self._default_store = db_url is None
        self.db_url = db_url or f"sqlite:///{self.home / 'tideflow.db'}"
        self.args = list(args)
        self.env = dict(env or {})
        self.ready_file = ready_file or self.home / "ready.json"
        self.process: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self._port = 0

    @property
    def url(self) -> str:
        """``grpc://127.0.0.1:PORT`` of the running server."""
        return str(self.info["url"])

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the server's HTTP side."""
        return str(self.info["http_url"])

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.home / "logs" / "server.log"

    def start(self) -> TideflowTestServer:
        """Start the server and wait until it serves.

        Raises:
            UnavailableError: It exited or did not become ready in time (its output is included).
        """
        self.home.mkdir(parents=True, exist_ok=True)
        store = self.home / "tideflow.db"
        if self._default_store and not store.exists():
            shutil.copyfile(migrated_template(), store)
        ready = self.ready_file
        ready.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "tideflow",
            "server",
            "start",
            "--db",
            self.db_url,
            "--port",
            str(self._port),
            "--http-port",
            "0",
            "--ready-file",
            str(ready),
            *self.args,
        ]
        output = open(self.home / "server.out", "ab")  # noqa: SIM115 - closed by the child's end
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TIDEFLOW_HOME": str(self.home), **self.env},
        )
        output.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.exists():
            code = self.process.poll()
            if code is not None or time.monotonic() > deadline:
                self._kill_quietly()
                tail = (self.home / "server.out").read_text(errors="replace")[-3000:]
                how = f"exit status {code}" if code is not None else f"{START_TIMEOUT:.0f} s"
                raise UnavailableError(f"test server did not start ({how}):\n{tail}")
            time.sleep(0.02)
        self.info = json.loads(ready.read_text())
        self._port = int(self.info["grpc_port"])  # a restart keeps the address
        return self

    def client(self, project: str = "default", *, token: str | None = None) -> Client:
        """A remote client of this server."""
        return connect(self.url, project=project, token=token)

    def stop(self, timeout: float = 30.0) -> int:
        """Stop gracefully (SIGTERM); return the exit status."""
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.process = None
        return code

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        self._kill_quietly()

    def restart(self) -> TideflowTestServer:
        """Stop (if running) and start again on the same port and store."""
        if self.process is not None:
            self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and remove the temporary home."""
        self.stop()
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def _kill_quietly(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> TideflowTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
