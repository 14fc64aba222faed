"""``tide.init``: the default client, on the local server of ``$TIDEFLOW_HOME`` or a remote one.

With no server named, ``init`` starts -- or attaches to -- *one* local server per
``$TIDEFLOW_HOME``:

- A running server announces itself in ``$TIDEFLOW_HOME/server.json`` (``url``, ports, ``pid``,
  ``db``); it writes the file once serving and removes it when it stops. A file whose ``pid`` is
  dead (the server was killed), or is now another program's (pids are reused), counts as no
  server: on Linux the process's command line must be ``tideflow ... server ...``.
- Checking and starting happen under an exclusive ``fcntl.flock`` on
  ``$TIDEFLOW_HOME/server.lock``, so two scripts calling ``init`` at once start one server: the
  second waits for the lock, then finds the first one's ``server.json``.
- The server is started by ``tideflow server start --daemon`` (in its own session, so it
  outlives the script; it runs until ``tideflow server stop``) on loopback, gRPC port 50051 and
  HTTP port 8080, or the next free ones (``--port-search``). Its store and blob store are the
  defaults of the environment (``$TIDEFLOW_DB``, else ``$TIDEFLOW_HOME/tideflow.db``).

The daemon launcher exits once the server serves, so the server is never a child of the
script (no zombie to reap, nothing to wait for at exit).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tideflow.client.default import set_default_client
from tideflow.client.local import Client, connect
from tideflow.errors import InvalidArgumentError, UnavailableError
from tideflow.pids import is_alive
from tideflow.settings import Settings

SERVER_FILE = "server.json"
LOCK_FILE = "server.lock"
EMBEDDED_PORT = 50051
EMBEDDED_HTTP_PORT = 8080
PORT_SEARCH = 100
START_TIMEOUT = 90.0

_owned: Client | None = None


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs (possibly as another user); an exited one is not.

    A daemon server is no child of whoever stops it: once it exits it stays a zombie until
    init reaps it, which :func:`tideflow.pids.is_alive` sees through, so ``tideflow server
    stop`` does not wait out init's reaping delay.
    """
    return is_alive(pid)


def is_tideflow_server(pid: int) -> bool:
    """Whether process ``pid`` runs ``tideflow ... server ...`` (by its ``/proc`` command line).

    Where ``/proc`` cannot tell (not Linux, or not allowed to read it) the answer is ``True``:
    the pid is trusted as before.
    """
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no such process -- or no /proc at all
    except OSError:
        return True
    args = [arg.decode(errors="replace") for arg in raw.split(b"\0")]
    command = any(arg == "tideflow" or Path(arg).name == "tideflow" for arg in args)
    return command and "server" in args


def server_process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live Tideflow server process (not a dead one's reused pid)."""
    return pid_alive(pid) and is_tideflow_server(pid)


def running_server(home: Path) -> dict[str, Any] | None:
    """The ``server.json`` of the local server of ``home`` if that server is alive."""
    try:
        info = json.loads((home / SERVER_FILE).read_text())
        pid = int(info["pid"])
        url = str(info["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not url or not server_process_alive(pid):
        return None
    return dict(info)


def ensure_local_server(home: Path) -> dict[str, Any]:
    """The ``server.json`` of the local server of ``home``, starting the server if none runs.

    Raises:
        UnavailableError: The server could not be started (the message says why and where
            its log is).
    """
    info = running_server(home)
    if info is not None:
        return info
    import fcntl

    home.mkdir(parents=True, exist_ok=True)
    with open(home / LOCK_FILE, "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when the file closes
        info = running_server(home)  # another script may have started it while we waited
        if info is not None:
            return info
        return _start_server(home)


def _start_server(home: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "tideflow",
        "server",
        "start",
        "--daemon",
        "--host",
        "127.0.0.1",
        "--port",
        str(EMBEDDED_PORT),
        "--http-port",
        str(EMBEDDED_HTTP_PORT),
        "--port-search",
        str(PORT_SEARCH),
    ]
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            env={**os.environ, "TIDEFLOW_HOME": str(home)},
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise UnavailableError(
            f"the local Tideflow server did not start within {START_TIMEOUT:.0f} s; "
            f"see {home / 'logs'}"
        ) from e
    info = running_server(home)
    if done.returncode != 0 or info is None:
        output = (done.stdout + done.stderr).strip()
        raise UnavailableError(
            f"could not start the local Tideflow server (exit status {done.returncode}); "
            f"see {home / 'logs'}: {output[-2000:]}"
        )
    return info


def server_url(server: str) -> str:
    """``server`` as a URL: ``host:port`` gets ``grpc://``.

    Raises:
        InvalidArgumentError: Neither a ``grpc://`` / ``grpcs://`` URL nor ``host:port``.
    """
    if server.startswith(("grpc://", "grpcs://")):
        return server
    if "://" in server:
        raise InvalidArgumentError(
            f"not a server address: {server!r}; use grpc://HOST:PORT or grpcs://HOST:PORT",
            field="server",
        )
    return f"grpc://{server}"


def init(
    project: str | None = None,
    *,
    server: str | None = None,
    token: str | None = None,
    ca: str | Path | None = None,
) -> Client:
    """Connect to Tideflow and make the client the default one of this process.

    Args:
        project: The project to work in (default ``$TIDEFLOW_PROJECT``, else ``default``).
        server: ``grpc://HOST:PORT`` (or ``grpcs://`` for TLS, or ``HOST:PORT``) of a running
            server (default ``$TIDEFLOW_SERVER``). Without one, the local server of
            ``$TIDEFLOW_HOME`` is used, started in the background first if it is not running.
        token: API token for servers that require one (default ``$TIDEFLOW_TOKEN``).
        ca: PEM file of the CA of a TLS server (default ``$TIDEFLOW_CA_FILE``).

    Returns:
        The client, also what ``tideflow.client.default.get_default_client()`` now returns.
        A client that an earlier ``init`` made is closed.

    Raises:
        UnavailableError: The local server could not be started.
        InvalidArgumentError: A malformed server address or project name.
    """
    global _owned
    settings = Settings.from_env()
    chosen = server or settings.server
    # No server named: the local one of $TIDEFLOW_HOME, started if needed.
    url = server_url(chosen) if chosen else str(ensure_local_server(settings.home)["url"])
    client = connect(url, project=project or settings.project, token=token or settings.token, ca=ca)
    previous = set_default_client(client)
    if previous is not None and previous is _owned:
        previous.close()
    _owned = client
    return client
