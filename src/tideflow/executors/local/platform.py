"""The local platform: each attempt is a process on this host, started warm by a fork server.

What the supervisor (:mod:`tideflow.executors.supervisor`) does not do for it:

- **Launch**: the fork server (:mod:`tideflow.executors.local.forkserver`) forks the attempt
  in its own session, with stdout and stderr appended to the attempt's log. The child first
  claims ``spawned.json`` (``O_EXCL``), so an attempt spawned again after a crash runs once,
  and stays as the job's watcher, writing ``exit.json`` (exit code, end time) when the job
  ends -- also when the server is down then. A ``requirements.txt`` in the code package gets
  its environment (:mod:`tideflow.executors.local.environment`) and a fresh interpreter.
- **Observe**: the fork server reports RUNNING (the status pipe) and the exit; a process found
  again after a restart is watched by pid (checked against its start time), its ``running``
  file and its heartbeat file.
- **Stop**: SIGTERM to the process group, SIGKILL to kill.

With a job user (``--job-user``, :mod:`tideflow.executors.identity`), the process becomes that
OS user before it runs anything, and a pid read from the job's folder is believed only if that
user owns the process.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from tideflow import pids
from tideflow.client.package import REQUIREMENTS
from tideflow.compiler.generator import default_registry as engines
from tideflow.domain.attempt import ATTEMPT_DIR_VARIABLE, AttemptResult
from tideflow.domain.status import JobStatus
from tideflow.errors import InvalidArgumentError, TideflowError
from tideflow.executors.base import ExecutorContext, settings_from_options
from tideflow.executors.identity import JOB_DIRECTORIES, pass_through
from tideflow.executors.local.environment import RequirementsEnvironments
from tideflow.executors.local.forkserver import CLAIM_LOST_EXIT, ForkServer
from tideflow.executors.platform import (
    Attempt,
    Observation,
    Platform,
    Started,
    as_int,
    describe_signal_exit,
)
from tideflow.executors.watch import EXIT_FILE, read_exit

DEFAULT_PRELOAD = ("grpc", "cloudpickle", "tideflow.client", "tideflow.client.remote.connection")
_BOOT = (
    "import sys, importlib; m, _, f = sys.argv[1].partition(':'); "
    "sys.exit(getattr(importlib.import_module(m), f)(sys.argv[2]))"
)
"""How a cold (exec'd) interpreter calls the runtime entry point."""
SPAWN_TIMEOUT = 60.0
"""Seconds the fork server gets to answer a spawn."""


@dataclass(frozen=True)
class LocalSettings:
    """The local executor's options (``ExecutorContext.options``).

    Attributes:
        max_running: Attempts active at once; further STARTs wait.
        heartbeat_interval: Seconds between a job's heartbeats.
        heartbeat_timeout: A job whose heartbeat is older than this is killed and FAILED.
        stop_grace: Seconds between SIGTERM and SIGKILL on a stop or timeout.
        warm_start: Fork jobs from the warm fork server; ``False`` execs a fresh interpreter
            for each (slower; what requirements environments always do).
        preload: Modules the fork server imports beside the engines' runtimes.
        engines: Engines whose runtimes the fork server preloads.
        installer_args: Extra ``pip install`` options for requirements environments.
    """

    max_running: int = 16
    heartbeat_interval: float = 1.0
    heartbeat_timeout: float = 10.0
    stop_grace: float = 10.0
    warm_start: bool = True
    preload: tuple[str, ...] = DEFAULT_PRELOAD
    engines: tuple[str, ...] = ("python",)
    installer_args: tuple[str, ...] = ()

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> LocalSettings:
        """Settings from an options mapping; unknown keys are refused.

        Raises:
            InvalidArgumentError: An unknown option.
        """
        return settings_from_options(cls, options, "local")


class LocalPlatform(Platform):
    """Attempts as processes of this host, forked warm."""

    name = "local"
    supports_reattach = True
    supports_requirements = True
    supports_job_user = True
    heartbeats = True

    def __init__(self, context: ExecutorContext) -> None:
        super().__init__(context)
        self.settings = settings = LocalSettings.from_options(context.options)
        self.max_running = settings.max_running
        self.stop_grace = settings.stop_grace
        self.heartbeat_interval = settings.heartbeat_interval
        self.heartbeat_timeout = settings.heartbeat_timeout
        self.poll_interval = max(0.02, min(0.2, settings.heartbeat_timeout / 4))
        self.host = socket.gethostname()
        self.job_user = context.job_user
        if self.job_user is not None:
            pass_through(self.home, self.job_user)
            for name in JOB_DIRECTORIES:
                (self.home / name).mkdir(parents=True, exist_ok=True)
                pass_through(self.home / name, self.job_user)
        self.environments = RequirementsEnvironments(
            self.home / "envs", installer_args=settings.installer_args, job_user=self.job_user
        )
        self._lock = threading.Lock()
        self._runtimes: dict[str, str | None] = {}
        self._spawns: dict[str, Future[int]] = {}
        self._live: dict[int, Attempt] = {}
        preload = list(settings.preload)
        for engine in settings.engines:
            runtime = self._runtime(engine)
            if runtime is not None:
                preload.append(runtime.partition(":")[0])
        self._preload = preload
        self._fork: ForkServer | None = None
        self._closed = False
        self._fork_server()  # warm before the first job: its imports take a while

    # -- launch --------------------------------------------------------------------------------

    def check(self, attempt: Attempt) -> None:
        """Only engines with a runtime run here (the Python engine's, by default)."""
        job = attempt.job
        if job is None or self._runtime(job.engine) is None:
            engine = None if job is None else job.engine
            raise InvalidArgumentError(
                f"engine {engine!r} has no runtime the local executor can run", field="engine"
            )

    def prepare(self, attempt: Attempt) -> None:
        """The fork server's request; a ``requirements.txt`` gets its environment here."""
        job = attempt.job
        assert job is not None
        runtime = self._runtime(job.engine)
        workdir = attempt.workdir
        request: dict[str, Any] = {
            "cwd": str(workdir),
            "log": str(attempt.log),
            "env": {ATTEMPT_DIR_VARIABLE: str(workdir), **attempt.env},
            "claim": str(attempt.files.spawned),
            "exit": str(attempt.files.control / EXIT_FILE),
        }
        if self.job_user is not None:
            request["user"] = self.job_user.to_json()
        requirements = workdir / REQUIREMENTS
        if requirements.exists():
            python = self.environments.ensure(requirements, log=attempt.log)
            request["argv"] = [str(python), "-c", _BOOT, runtime, str(workdir)]
        elif not self.settings.warm_start:
            request["argv"] = [sys.executable, "-c", _BOOT, runtime, str(workdir)]
        else:
            request["entry"] = runtime
            request["arg"] = str(workdir)
        attempt.scratch["request"] = request

    def launch(self, attempt: Attempt) -> Started:
        """Have the fork server spawn the attempt; its pid comes back in a few ms."""
        spawned: Future[int] = Future()
        key = str(attempt.key)
        with self._lock:
            self._spawns[key] = spawned
            self._live[attempt.key] = attempt
        try:
            self._fork_server().spawn(key, **attempt.scratch.pop("request"))
            pid = spawned.result(SPAWN_TIMEOUT)
        except OSError as exc:
            raise TideflowError(f"the fork server is not available: {exc}") from exc
        except TimeoutError as exc:
            raise TideflowError(f"the fork server did not answer in {SPAWN_TIMEOUT:g} s") from exc
        finally:
            with self._lock:
                self._spawns.pop(key, None)
        attempt.handle.update(pid=pid, started=pids.start_time(pid), host=self.host)
        return Started(pid=pid, host=self.host)

    def find(self, attempt: Attempt) -> Started | None:
        """The process that claimed the attempt (``spawned.json``), if one did."""
        claimed = attempt.files.read_json(attempt.files.spawned)
        if claimed is None:
            return None  # nothing claimed it: it never ran
        pid = as_int(claimed.get("pid"))
        user = self.job_user
        if pid is not None and user is not None and pids.owner(pid) != user.uid:
            # spawned.json is in the job's folder: a job may have forged it to have this
            # executor signal someone else's processes. Not the job user's: not ours.
            pid = None
        attempt.handle.update(pid=pid, started=as_int(claimed.get("started")), host=self.host)
        with self._lock:
            self._live[attempt.key] = attempt
        return Started(pid=pid, host=self.host)

    # -- observation ---------------------------------------------------------------------------

    def observe(self, attempt: Attempt) -> Observation:
        """From the fork server's replies, or (a process found again) its pid and files."""
        scratch = attempt.scratch
        pid = as_int(attempt.handle.get("pid"))
        running = bool(scratch.get("running"))
        if not running and scratch.get("attached", True):
            running = attempt.files.running.exists()
        if "returncode" in scratch:
            returncode, ended_at = scratch["returncode"], scratch.get("ended_at")
        elif scratch.get("attached", True) and (
            pid is None or not pids.is_alive(pid, as_int(attempt.handle.get("started")))
        ):
            # Not a child of this fork server: its watcher's file says how it ended.
            returncode, ended_at = read_exit(attempt.files.control / EXIT_FILE)
        else:
            return Observation(running=running, heartbeat=attempt.files.heartbeat_time())
        result = attempt.files.read_result()
        return Observation(
            running=running,
            ended=True,
            result=_result(result),
            failure=None if result is not None or returncode == 0 else _describe(returncode),
            exit_code=returncode,
            ended_at=ended_at,
        )

    def stop(self, attempt: Attempt, *, kill: bool) -> None:
        """SIGTERM (SIGKILL to kill) the attempt's process group."""
        pid = as_int(attempt.handle.get("pid"))
        if pid is not None:
            pids.signal_group(pid, signal.SIGKILL if kill else signal.SIGTERM)

    def forget(self, attempt: Attempt) -> None:
        """No more replies are expected for it."""
        with self._lock:
            self._live.pop(attempt.key, None)

    # -- the fork server -----------------------------------------------------------------------

    def _runtime(self, engine: str) -> str | None:
        if engine not in self._runtimes:
            try:
                self._runtimes[engine] = engines.get(engine).runtime
            except InvalidArgumentError:
                self._runtimes[engine] = None
        return self._runtimes[engine]

    def _fork_server(self) -> ForkServer:
        with self._lock:
            if self._closed:
                raise TideflowError("the local executor is closed")
            if self._fork is None or not self._fork.alive:
                # With a job user, not the server's working directory: it is first on the
                # fork server's sys.path, and the job user must not be able to put modules there.
                cwd = "/" if self.job_user is not None else None
                self._fork = ForkServer(self._preload, self._on_message, cwd=cwd)
            return self._fork

    def _on_message(self, message: dict[str, Any]) -> None:
        """A fork server reply (on its reader thread)."""
        op = message["op"]
        if op == "ready":
            return
        if op == "eof":
            self._fork_server_gone()
            return
        key = str(message["key"])
        with self._lock:
            spawned = self._spawns.get(key)
            attempt = self._live.get(int(key))
        if op == "spawned" and spawned is not None:
            if "pid" in message:
                if attempt is not None:
                    attempt.scratch["attached"] = False  # its replies come from now on
                spawned.set_result(int(message["pid"]))
            else:
                error = str(message.get("error", "the job did not start"))
                spawned.set_exception(TideflowError(error))
            return
        if attempt is None:
            return
        if op == "running":
            attempt.scratch["running"] = True
        elif op == "exit":
            attempt.scratch["ended_at"] = read_exit(attempt.files.control / EXIT_FILE)[1]
            attempt.scratch["returncode"] = int(message["returncode"])
        self.notify(attempt.key)

    def _fork_server_gone(self) -> None:
        """The fork server exited: its children are watched by polling from now on."""
        with self._lock:
            if self._closed:
                return
            waiting = list(self._spawns.values())
            for attempt in self._live.values():
                attempt.scratch["attached"] = True
        for spawned in waiting:
            with contextlib.suppress(Exception):
                spawned.set_exception(
                    TideflowError("the fork server exited before starting the job")
                )

    def close(self) -> None:
        """Close the fork server; its children run on."""
        with self._lock:
            self._closed = True
            fork, self._fork = self._fork, None
        if fork is not None:
            fork.close()


def _describe(returncode: int | None) -> str:
    if returncode == CLAIM_LOST_EXIT:
        return "another process already runs this attempt (spawned before a crash); this one ran nothing"
    return describe_signal_exit(returncode)


def _result(result: AttemptResult | None) -> tuple[JobStatus, str | None] | None:
    return None if result is None else (JobStatus(result.status), result.error)
