"""A local Ray head on loopback: what the ray executor submits to when no cluster is named.

Started on first need (never by an idle executor) with ``ray start --head --block`` in its own
session, so it outlives the server that started it -- Ray jobs re-attach after a server restart
only if their cluster is still there. Everything listens on 127.0.0.1: ``--node-ip-address``,
the dashboard host, and ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (which makes Ray's own address
lookups answer loopback). Every port is picked free, never Ray's defaults: 6379 (the GCS) is
often a local Redis, and two heads (two Tideflow homes) must not collide. ``RAY_AUTH_MODE`` is
set explicitly (``disabled`` unless the environment says otherwise) so Ray neither guesses nor
warns.

The head is recorded in ``<directory>/head.json`` (pid, start time, dashboard URL); an executor
on the same home reuses a live one. :meth:`LocalRayHead.stop` ends the head's whole process
group (``ray stop`` would end every Ray cluster of the user on this machine).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tideflow import pids
from tideflow.domain.attempt import write_atomically
from tideflow.errors import TideflowError
from tideflow.settings import scrubbed_environment

log = logging.getLogger(__name__)

PORT_OPTIONS = (
    "port",
    "dashboard-port",
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
    "metrics-export-port",
    "node-manager-port",
    "object-manager-port",
    "ray-client-server-port",
)
"""``ray start`` port options given free ports (Ray's defaults collide on a shared machine)."""

READY_LINE = b"will now block forever"
"""What ``ray start --block`` prints once the node is up."""
CRASH = b"Check failed"
"""What a raylet that gave up during startup logs (it aborts; ``ray start`` notices late)."""

_started: list[subprocess.Popen[bytes]] = []
"""Heads started by this process: kept referenced, since they outlive their Popen on purpose."""


def ray_environment(
    base: Mapping[str, str] | None = None, *, stop_wait: float | None = None
) -> dict[str, str]:
    """``base`` with the settings a loopback head needs.

    ``base`` defaults to this process's environment without its Tideflow settings: Ray's
    workers, and so the jobs they run, inherit the head's environment, and a job must not see
    the server's ``$TIDEFLOW_HOME``, ``$TIDEFLOW_DB`` or token (it gets its own variables
    through the job's runtime environment).
    """
    env = dict(scrubbed_environment() if base is None else base)
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    env.setdefault("RAY_AUTH_MODE", "disabled")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # The raylet waits this long for its Python agents; they start slowly on a busy machine.
    env.setdefault("RAY_agent_register_timeout_ms", "300000")
    # On SIGTERM `ray start --block` first drains the node for Serve's proxies (30 s by
    # default), meanwhile keeping the GCS up: a local head stopped on purpose has nothing to
    # drain, and its stop sat out the whole wait before everything was SIGKILLed.
    env.setdefault("RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S", "0")
    if stop_wait is not None:
        env["RAY_JOB_STOP_WAIT_TIME_S"] = str(max(1, round(stop_wait)))
    return env


def ray_command() -> list[str]:
    """How to run Ray's CLI: beside this interpreter, else on ``PATH``.

    Raises:
        TideflowError: Ray is not installed.
    """
    beside = Path(sys.executable).with_name("ray")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("ray")
    if found:
        return [found]
    raise TideflowError(
        "Ray is not installed: install the ray extra (pip install 'tideflow[ray]') or name a "
        "running cluster with ray_address"
    )


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dashboard_alive(url: str, timeout: float = 2.0) -> bool:
    """Whether a Ray dashboard (the Job Submission API) answers at ``url``."""
    try:
        with urllib.request.urlopen(f"{url}/api/version", timeout=timeout) as answer:
            return bool(answer.status == 200)
    except (OSError, ValueError):
        return False


class LocalRayHead:
    """The local head recorded in ``directory`` (started on demand, stopped on request).

    Args:
        directory: Where ``head.json``, its lock and the head's output live.
        num_cpus: CPUs the head offers (``None``: Ray counts them).
        stop_wait: Seconds Ray waits after SIGTERM before it SIGKILLs a stopped job.
        start_timeout: Seconds the head gets to answer (each try).
        start_attempts: Tries to start it.
        startup_nice: Niceness the head starts with, back to 0 once it is up. Ray's raylet
            gives its Python agents a fixed 15 s to come up and aborts otherwise, which a
            CPU-starved machine misses; a negative value (needs the privilege) gives the head
            (its process and its session's scheduling autogroup) the CPU for those seconds.
    """

    def __init__(
        self,
        directory: Path,
        *,
        num_cpus: int | None = None,
        stop_wait: float = 10.0,
        start_timeout: float = 120.0,
        start_attempts: int = 3,
        startup_nice: int = 0,
    ) -> None:
        self.directory = Path(directory)
        self.num_cpus = num_cpus
        self.stop_wait = stop_wait
        self.start_timeout = start_timeout
        self.start_attempts = start_attempts
        self.startup_nice = startup_nice
        digest = hashlib.sha256(str(self.directory.resolve()).encode()).hexdigest()[:10]
        # Ray's socket paths live under its temp dir: keep it short (AF_UNIX allows ~107).
        self.temp_dir = Path(tempfile.gettempdir()) / f"tideflow-ray-{digest}"

    @property
    def record(self) -> Path:
        """``head.json``: the running head's pid, start time and addresses."""
        return self.directory / "head.json"

    def recorded(self) -> dict[str, Any] | None:
        """``head.json``, if the head it names still runs."""
        try:
            data: dict[str, Any] = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return None
        if not pids.is_alive(int(data["pid"]), data.get("started")):
            return None
        return data

    def address(self) -> str:
        """The dashboard URL of the running head, starting one if there is none.

        Raises:
            TideflowError: Ray is missing, or the head did not come up (its output is quoted).
        """
        with self._locked():
            data = self.recorded()
            if data is not None and dashboard_alive(str(data["dashboard"])):
                return str(data["dashboard"])
            if data is not None:  # alive but deaf: a half-dead head is replaced
                self._kill(int(data["pid"]))
            # Ray gives its raylet a fixed 30 s to register; on a loaded machine that can fail.
            for attempt in range(1, self.start_attempts + 1):
                try:
                    return self._start()
                except TideflowError:
                    if attempt == self.start_attempts:
                        raise
                    log.warning("the local Ray head did not start; trying again", exc_info=True)
            raise AssertionError("unreachable")

    def _start(self) -> str:
        ports = {name: free_port() for name in PORT_OPTIONS}
        argv = [
            *ray_command(),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            "--dashboard-host=127.0.0.1",
            "--include-dashboard=true",
            "--disable-usage-stats",
            f"--temp-dir={self.temp_dir}",
            *(f"--{name}={port}" for name, port in ports.items()),
        ]
        if self.num_cpus is not None:
            argv.append(f"--num-cpus={self.num_cpus}")
        output = self.directory / "head.log"
        started_at = time.monotonic()
        output.touch()
        offset = output.stat().st_size
        earlier = _session(self.temp_dir)
        with open(output, "ab") as out:
            head = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=ray_environment(stop_wait=self.stop_wait),
                start_new_session=True,
            )
        if self.startup_nice:  # before `ray start` spawns anything: its children inherit it
            _renice(head.pid, self.startup_nice)
        _started.append(head)
        url = f"http://127.0.0.1:{ports['dashboard-port']}"
        deadline = started_at + self.start_timeout
        # Up once `ray start` says it blocks (the node registered) and the dashboard answers.
        while not (_said(output, offset, READY_LINE) and dashboard_alive(url)):
            crashed = _session(self.temp_dir) != earlier and _said(
                self.temp_dir / "session_latest" / "logs" / "raylet.out", 0, CRASH
            )
            if crashed or head.poll() is not None or time.monotonic() > deadline:
                self._kill(head.pid, 5.0)
                tail = output.read_bytes()[offset:].decode(errors="replace")[-2000:]
                raise TideflowError(f"the local Ray head did not start ({argv!r}):\n{tail}")
            time.sleep(0.25)
        if self.startup_nice:
            _renice(head.pid, 0, group=True)
        record = {
            "pid": head.pid,
            "started": pids.start_time(head.pid),
            "dashboard": url,
            "gcs": f"127.0.0.1:{ports['port']}",
            "temp_dir": str(self.temp_dir),
        }
        write_atomically(self.record, json.dumps(record))
        log.info(
            "started a local Ray head (pid %s) at %s in %.1f s",
            head.pid,
            url,
            time.monotonic() - started_at,
        )
        return url

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the recorded head (its whole process group); ``False`` if none ran."""
        with self._locked():
            data = self.recorded()
            self.record.unlink(missing_ok=True)
            if data is None:
                return False
            self._kill(int(data["pid"]), timeout)
            return True

    @staticmethod
    def _kill(pid: int, timeout: float = 10.0) -> None:
        """SIGTERM the head's process group (``ray start --block`` shuts Ray down), then KILL."""
        pids.signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.1)
        pids.signal_group(pid, signal.SIGKILL)
        for head in [h for h in _started if h.pid == pid]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                head.wait(10)
            _started.remove(head)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One head per directory, even with several executors (processes) on it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "head.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _renice(pid: int, nice: int, *, group: bool = False) -> None:
    """Set the niceness of ``pid`` (or its process group) and of its session's autogroup.

    The head runs in its own session, so Linux's autogroup scheduler shares the CPU between it
    and other sessions by the autogroup's niceness, not the processes' own: both are set.
    Without the privilege this does nothing.
    """
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PGRP if group else os.PRIO_PROCESS, pid, nice)
    with contextlib.suppress(OSError), open(f"/proc/{pid}/autogroup", "w") as autogroup:
        autogroup.write(str(nice))


def _session(temp_dir: Path) -> str | None:
    """The session directory Ray's ``session_latest`` points to now."""
    try:
        return os.readlink(temp_dir / "session_latest")
    except OSError:
        return None


def _said(path: Path, offset: int, text: bytes) -> bool:
    """Whether ``path`` holds ``text`` after byte ``offset``."""
    try:
        with open(path, "rb") as out:
            out.seek(offset)
            return text in out.read()
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    # A head we started and that exited is a zombie until reaped: reap it, then look again.
    for head in [h for h in _started if h.pid == pgid]:
        if head.poll() is not None:
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                return False
    return True
