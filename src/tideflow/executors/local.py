"""The local executor: each job attempt is a process on this host, started warm by a fork server.

Life of an attempt (docs/executors.md tells users the same):

1. **Queued** when its START arrives; at most ``max_running`` attempts are active (preparing,
   starting, running or stopping) at once, the rest wait in arrival order.
2. **Prepared** on a worker thread: its working directory
   ``$TIDEFLOW_HOME/work/<execution>/<job>/<attempt>/`` receives the verified, extracted code
   package and the control files of :mod:`tideflow.domain.attempt`; a ``requirements.txt``
   gets its environment (:mod:`tideflow.executors.environment`) or fails the job with the
   installer's error.
3. **Spawned** by the fork server (:mod:`tideflow.executors.forkserver`) in its own session,
   with stdout and stderr appended to ``$TIDEFLOW_HOME/logs/jobs/<execution>/<job>/<attempt>.log``;
   its pid is written to ``launch.json`` and the job becomes STARTING (with pid, host and log).
4. **RUNNING** when the runtime reports its processors open (status pipe, or the ``running``
   file for re-attached attempts).
5. **Ended** by its exit: the runtime's ``result.json`` says FINISHED / FAILED (with the user's
   error) / STOPPED; a stop, a timeout or a missed heartbeat requested by this executor takes
   precedence; no result at all is a FAILED with the exit code or signal.

With a job user (``--job-user``, :mod:`tideflow.executors.identity`), the attempt's process
becomes that OS user before it runs anything; its working directory, its log and its
project's data directory are handed to that user, the folders above them are passable by it
(``0710``), and the executor writes into the working directory only with
:func:`~tideflow.domain.attempt.write_control_file`.

STOP sends SIGTERM to the attempt's process group and SIGKILL after ``stop_grace`` seconds. A
job ``timeout`` does the same and ends the attempt FAILED ("timed out after N s"). A heartbeat
file older than ``heartbeat_timeout`` means a hung process: it is killed at once and FAILED.

The executor never runs an attempt twice: attempts are keyed by job execution; a START whose job
execution has left INIT, or whose working directory holds a ``launch.json``, is re-attached
rather than started. Jobs outlive the executor (own sessions); :meth:`LocalExecutor.reconcile`
re-attaches to them by pid (checked against its start time) and heartbeat, and ends those whose
process is gone from the ``result.json`` they left, or as FAILED.

Threads: commands arrive on the caller's thread; preparation runs on a small pool; the fork
server's replies are handled on its reader thread; a supervisor thread enforces deadlines and
polls re-attached processes. All attempt state is guarded by one lock; store writes happen
outside it.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import shutil
import signal
import socket
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tideflow.client.package import REQUIREMENTS, extract_package
from tideflow.compiler.generator import default_registry as engines
from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.attempt import (
    ATTEMPT_DIR_VARIABLE,
    AttemptFiles,
    read_control_file,
    write_atomically,
    write_control_file,
)
from tideflow.domain.metadata import JobExecution
from tideflow.domain.scheduling import CommandAction, JobCommand, command_id
from tideflow.domain.status import JobStatus
from tideflow.errors import IllegalTransitionError, InvalidArgumentError, TideflowError
from tideflow.executors import process
from tideflow.executors.base import Executor, ExecutorContext, settings_from_options
from tideflow.executors.environment import RequirementsEnvironments
from tideflow.executors.forkserver import CLAIM_LOST_EXIT, ForkServer
from tideflow.executors.identity import (
    JOB_DIRECTORIES,
    hand_over,
    pass_through,
    pass_through_below,
)
from tideflow.executors.spec import attempt_spec, job_environment
from tideflow.scheduler import crash

log = logging.getLogger(__name__)

DEFAULT_PRELOAD = ("grpc", "cloudpickle", "tideflow.client", "tideflow.client.remote.connection")
_BOOT = (
    "import sys, importlib; m, _, f = sys.argv[1].partition(':'); "
    "sys.exit(getattr(importlib.import_module(m), f)(sys.argv[2]))"
)
"""How a cold (exec'd) interpreter calls the runtime entry point."""
MAX_PLAN_BYTES = 256 << 20
"""The largest ``plan.json`` re-read after a restart (it is in the job's folder)."""


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


class _State(enum.Enum):
    QUEUED = "queued"
    PREPARING = "preparing"
    LAUNCHING = "launching"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    ENDED = "ended"


_ACTIVE = frozenset(
    {_State.PREPARING, _State.LAUNCHING, _State.STARTING, _State.RUNNING, _State.STOPPING}
)


@dataclass
class _Attempt:
    """What the executor knows about one attempt."""

    command: JobCommand
    files: AttemptFiles
    log: Path
    timeout: float | None
    plan: WorkflowPlan | None = None
    state: _State = _State.QUEUED
    start_done: bool = False
    pid: int | None = None
    started: int | None = None
    attached: bool = False
    launched_wall: float = 0.0
    received: float = field(default_factory=time.monotonic)
    spawned_at: float | None = None
    running_at: float | None = None
    reported: JobStatus = JobStatus.INIT
    stop_reason: str | None = None
    kill_at: float | None = None
    deadline: float | None = None
    returncode: int | None = None
    waiting_commands: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return str(self.command.job_execution_id)


_STOPPED = "STOPPED"


class LocalExecutor(Executor):
    """Job attempts as local processes, started warm, supervised, re-attached after restarts."""

    name = "local"
    supports_stop = True
    supports_reattach = True
    supports_requirements = True
    supports_job_user = True

    def __init__(self, context: ExecutorContext) -> None:
        super().__init__(context)
        self.settings = LocalSettings.from_options(context.options)
        self.home = Path(context.home)
        self.job_user = context.job_user
        if self.job_user is not None:
            pass_through(self.home, self.job_user)
            for name in JOB_DIRECTORIES:
                (self.home / name).mkdir(parents=True, exist_ok=True)
                pass_through(self.home / name, self.job_user)
        self.host = socket.gethostname()
        self.environments = RequirementsEnvironments(
            self.home / "envs",
            installer_args=self.settings.installer_args,
            job_user=self.job_user,
        )
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._attempts: dict[str, _Attempt] = {}
        self._queue: deque[_Attempt] = deque()
        self._closed = False
        self._workers = ThreadPoolExecutor(
            max_workers=min(8, self.settings.max_running), thread_name_prefix="local-prepare"
        )
        self._runtimes: dict[str, str | None] = {}
        self._latencies: OrderedDict[int, tuple[float | None, float | None]] = OrderedDict()
        preload = list(self.settings.preload)
        for engine in self.settings.engines:
            runtime = self._runtime(engine)
            if runtime is not None:
                preload.append(runtime.partition(":")[0])
        self._preload = preload
        self._fork: ForkServer | None = self._start_fork_server()
        self._supervisor = threading.Thread(
            target=self._supervise, name="local-supervisor", daemon=True
        )
        self._supervisor.start()

    # -- paths ---------------------------------------------------------------------------------

    def workdir(self, execution_id: int, job: str, attempt: int) -> Path:
        """The working directory of an attempt."""
        return self.home / "work" / str(execution_id) / job / str(attempt)

    def log_path(self, execution_id: int, job: str, attempt: int) -> Path:
        """The log file of an attempt."""
        return self.home / "logs" / "jobs" / str(execution_id) / job / f"{attempt}.log"

    # -- commands ------------------------------------------------------------------------------

    def launch(self, command: JobCommand, plan: WorkflowPlan) -> None:
        """Queue the attempt; it starts as soon as fewer than ``max_running`` are active."""
        job = plan.job(command.job)
        with self._lock:
            if self._closed:
                raise TideflowError("the local executor is closed")
            if str(command.job_execution_id) in self._attempts:
                return  # a duplicate: the attempt is already ours
            attempt = self._new_attempt(command, job.timeout)
            attempt.plan = plan
            self._attempts[attempt.key] = attempt
            self._queue.append(attempt)
            self._pump()

    def stop(self, command: JobCommand) -> None:
        """Stop an attempt: dequeue it, or SIGTERM its process group (SIGKILL after grace)."""
        with self._lock:
            attempt = self._attempts.get(str(command.job_execution_id))
            if attempt is None:
                self._workers.submit(self._stop_unknown, command)
                return
            attempt.waiting_commands.append(command.command_id)
            if attempt.state is _State.QUEUED:
                self._queue.remove(attempt)
                attempt.stop_reason = _STOPPED
                attempt.state = _State.ENDED
                ended = True
            else:
                ended = False
                if attempt.state is not _State.STOPPING:
                    self._request_stop(attempt, _STOPPED, graceful=True)
        crash.reach("executor.after_stop_signal")
        if ended:
            self._report_end(attempt, JobStatus.STOPPED, None)

    def _stop_unknown(self, command: JobCommand) -> None:
        """A STOP for an attempt this executor does not hold: it never started, or ended."""
        try:
            job = self.context.executions.get_job_execution(
                command.project, command.job_execution_id
            )
            if job.status is JobStatus.INIT:
                self.context.executions.set_job_status(
                    command.project, command.job_execution_id, JobStatus.STOPPED
                )
            elif not job.status.is_terminal and job.pid is not None and job.host == self.host:
                # Ours from an earlier instance, not re-attached yet: re-attach and stop it.
                action = CommandAction.START
                start = replace(
                    command,
                    action=action,
                    command_id=command_id(
                        command.execution_id, command.job, command.attempt, action
                    ),
                )
                self.reconcile([start])
                if str(command.job_execution_id) in self._attempts:
                    self.stop(command)
                    return
        except IllegalTransitionError:
            pass  # it moved on by itself meanwhile
        except Exception:  # the executor's edge: log and let the command be retried
            log.exception("stopping job execution %s failed", command.job_execution_id)
            return
        self.context.on_command_done(command.command_id)

    def _new_attempt(self, command: JobCommand, timeout: float | None) -> _Attempt:
        workdir = self.workdir(command.execution_id, command.job, command.attempt)
        return _Attempt(
            command=command,
            files=AttemptFiles(workdir),
            log=self.log_path(command.execution_id, command.job, command.attempt),
            timeout=timeout,
        )

    def _pump(self) -> None:
        """Start queued attempts while there is room (called with the lock held)."""
        active = sum(1 for a in self._attempts.values() if a.state in _ACTIVE)
        while self._queue and active < self.settings.max_running and not self._closed:
            attempt = self._queue.popleft()
            attempt.state = _State.PREPARING
            active += 1
            self._workers.submit(self._prepare, attempt)

    # -- preparation and spawning --------------------------------------------------------------

    def _prepare(self, attempt: _Attempt) -> None:
        command = attempt.command
        try:
            if self._resume_launched(attempt):
                return
            assert attempt.plan is not None
            request = self._prepare_files(attempt, attempt.plan)
        except TideflowError as exc:
            self._end_before_start(attempt, str(exc))
            return
        except Exception as exc:  # the executor's edge: the job fails, the executor goes on
            log.exception("preparing job execution %s failed", command.job_execution_id)
            self._end_before_start(attempt, f"preparing the job failed: {exc!r}")
            return
        with self._lock:
            if attempt.stop_reason is not None:
                attempt.state = _State.ENDED
                stopped = True
            else:
                attempt.state = _State.LAUNCHING
                stopped = False
        if stopped:
            self._report_end(attempt, JobStatus.STOPPED, None)
            return
        crash.reach("launch.before_spawn")
        try:
            self._fork_server().spawn(attempt.key, **request)
        except OSError as exc:
            self._end_before_start(attempt, f"the fork server is not available: {exc}")

    def _resume_launched(self, attempt: _Attempt) -> bool:
        """Whether the attempt was launched before (by any instance): then attach, not start."""
        command = attempt.command
        job = self.context.executions.get_job_execution(command.project, command.job_execution_id)
        # launch.json is written once the spawn is known; spawned.json by the process itself,
        # so a spawn whose reply a crash lost is found too.
        launched = attempt.files.read_json(attempt.files.launch) or attempt.files.read_json(
            attempt.files.spawned
        )
        if job.status is JobStatus.INIT and launched is None:
            return False
        if job.status.is_terminal:
            with self._lock:
                attempt.state = _State.ENDED
                self._attempts.pop(attempt.key, None)
                self._pump()
            self.context.on_command_done(command.command_id)
            return True
        self._adopt(attempt, job, launched or {})
        return True

    def _prepare_files(self, attempt: _Attempt, plan: WorkflowPlan) -> dict[str, Any]:
        """Working directory, code, control files, environment; the fork server request."""
        command = attempt.command
        job = plan.job(command.job)
        runtime = self._runtime(job.engine)
        if runtime is None:
            raise InvalidArgumentError(
                f"engine {job.engine!r} has no runtime the local executor can run", field="engine"
            )
        workdir = attempt.files.workdir
        user = self.job_user
        shutil.rmtree(workdir, ignore_errors=True)  # half-prepared by a crashed instance
        if user is not None:  # the folders above are made passable, never writable, by it
            pass_through_below(self.home / "work", workdir.parent, user)
            pass_through_below(self.home / "logs" / "jobs", attempt.log.parent, user)
            workdir.mkdir(mode=0o700)
            attempt.log.touch(mode=0o600)
            hand_over(attempt.log, user)
        else:
            workdir.mkdir(parents=True)
            attempt.log.parent.mkdir(parents=True, exist_ok=True)
            attempt.log.touch()
        workflows = self.context.workflows
        snapshot = workflows.get_snapshot(command.project, command.snapshot_id)
        if snapshot.code_sha256:
            extract_package(workflows.get_package(command.project, command.snapshot_id), workdir)
        attempt.files.control.mkdir()
        spec = attempt_spec(
            self.context,
            command,
            heartbeat_interval=self.settings.heartbeat_interval,
            server_url=self.context.server_url,
        )
        write_atomically(attempt.files.plan, plan.to_json())
        write_atomically(attempt.files.spec, spec.to_json())
        env = {ATTEMPT_DIR_VARIABLE: str(workdir), **job_environment(self.context, command)}
        request: dict[str, Any] = {
            "cwd": str(workdir),
            "log": str(attempt.log),
            "env": env,
            "claim": str(attempt.files.spawned),
        }
        if user is not None:  # from here on it is the job's: written only link-proof
            hand_over(workdir, user)
            request["user"] = user.to_json()
        requirements = workdir / REQUIREMENTS
        if requirements.exists():
            python = self.environments.ensure(requirements, log=attempt.log)
            request["argv"] = [str(python), "-c", _BOOT, runtime, str(workdir)]
        elif not self.settings.warm_start:
            request["argv"] = [sys.executable, "-c", _BOOT, runtime, str(workdir)]
        else:
            request["entry"] = runtime
            request["arg"] = str(workdir)
        return request

    def _runtime(self, engine: str) -> str | None:
        if engine not in self._runtimes:
            try:
                self._runtimes[engine] = engines.get(engine).runtime
            except InvalidArgumentError:
                self._runtimes[engine] = None
        return self._runtimes[engine]

    def _start_fork_server(self) -> ForkServer:
        # With a job user, not the server's working directory: it is first on the fork
        # server's sys.path, and the job user must not be able to put modules there.
        cwd = "/" if self.job_user is not None else None
        return ForkServer(self._preload, self._on_message, cwd=cwd)

    def _fork_server(self) -> ForkServer:
        with self._lock:
            if self._fork is None or not self._fork.alive:
                self._fork = self._start_fork_server()
            return self._fork

    # -- the fork server's replies (its reader thread) -----------------------------------------

    def _on_message(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "ready":
            return
        if op == "eof":
            self._fork_server_gone()
            return
        with self._lock:
            attempt = self._attempts.get(str(message["key"]))
        if attempt is None:
            return
        try:
            if op == "spawned":
                self._on_spawned(attempt, message)
            elif op == "running":
                self._on_running(attempt)
            elif op == "exit":
                attempt.returncode = int(message["returncode"])
                self._finish(attempt)
        except Exception:  # the reader thread must survive one attempt's trouble
            log.exception("handling %s of job execution %s failed", op, attempt.key)

    def _on_spawned(self, attempt: _Attempt, message: dict[str, Any]) -> None:
        if "pid" not in message:
            self._end_before_start(attempt, str(message.get("error", "the job did not start")))
            return
        pid = int(message["pid"])
        crash.reach("launch.after_spawn")
        with self._lock:
            attempt.pid = pid
            attempt.started = process.start_time(pid)
            attempt.launched_wall = time.time()
            attempt.spawned_at = time.monotonic()
            if attempt.timeout:
                attempt.deadline = attempt.spawned_at + attempt.timeout
        write_control_file(
            attempt.files.launch,
            json.dumps(
                {
                    "pid": pid,
                    "started": attempt.started,
                    "host": self.host,
                    "time": attempt.launched_wall,
                }
            ),
        )
        crash.reach("launch.before_starting")
        try:
            self._set_status(attempt, JobStatus.STARTING, pid=pid, host=self.host)
            crash.reach("launch.after_starting")
        except IllegalTransitionError:
            # Someone else ended the job meanwhile (it was stopped): it must not run.
            process.signal_group(pid, signal.SIGKILL)
            with self._lock:
                attempt.stop_reason = _STOPPED
            return
        self._start_done(attempt)
        with self._lock:
            if attempt.state is _State.LAUNCHING:
                attempt.state = _State.STARTING
            if attempt.stop_reason is not None:  # stopped while launching
                self._request_stop(attempt, attempt.stop_reason, graceful=True)

    def _on_running(self, attempt: _Attempt) -> None:
        with self._lock:
            if attempt.state is _State.STARTING:
                attempt.state = _State.RUNNING
            if attempt.reported is not JobStatus.STARTING:
                return
            attempt.running_at = time.monotonic()
            if attempt.spawned_at is not None:
                self._latencies[attempt.command.job_execution_id] = (
                    attempt.spawned_at - attempt.received,
                    attempt.running_at - attempt.received,
                )
                if len(self._latencies) > 1000:
                    self._latencies.popitem(last=False)
        self._set_status(attempt, JobStatus.RUNNING)
        crash.reach("job.after_running")

    def _fork_server_gone(self) -> None:
        """The fork server exited: its children are watched by polling from now on."""
        with self._lock:
            if self._closed:
                return
            orphans = [a for a in self._attempts.values() if a.state is _State.LAUNCHING]
            for attempt in self._attempts.values():
                if attempt.pid is not None:
                    attempt.attached = True
        log.warning("the fork server exited; running jobs are watched by polling")
        for attempt in orphans:
            self._end_before_start(attempt, "the fork server exited before starting the job")

    # -- supervision ---------------------------------------------------------------------------

    def _supervise(self) -> None:
        tick = max(0.02, min(0.2, self.settings.heartbeat_timeout / 4))
        while True:
            with self._lock:
                if self._closed:
                    return
                self._wake.wait(tick)
                if self._closed:
                    return
                watched = [
                    a for a in self._attempts.values() if a.state in _ACTIVE and a.pid is not None
                ]
            for attempt in watched:
                try:
                    self._check(attempt)
                except Exception:  # the supervisor must survive one attempt's trouble
                    log.exception("supervising job execution %s failed", attempt.key)

    def _check(self, attempt: _Attempt) -> None:
        now = time.monotonic()
        assert attempt.pid is not None
        with self._lock:
            if attempt.kill_at is not None and now >= attempt.kill_at:
                attempt.kill_at = None
                process.signal_group(attempt.pid, signal.SIGKILL)
            if attempt.deadline is not None and now >= attempt.deadline:
                attempt.deadline = None
                self._request_stop(attempt, f"timed out after {attempt.timeout:g} s", graceful=True)
            beat = attempt.files.heartbeat_time() or attempt.launched_wall
            limit = self.settings.heartbeat_timeout
            # A stopping attempt is killed at the end of its grace period anyway.
            if attempt.stop_reason is None and time.time() - beat > limit:
                self._request_stop(attempt, f"no heartbeat for {limit:g} s", graceful=False)
        if attempt.attached:
            if attempt.reported is JobStatus.STARTING and attempt.files.running.exists():
                self._on_running(attempt)
            if not process.is_alive(attempt.pid, attempt.started):
                self._finish(attempt)

    def _request_stop(self, attempt: _Attempt, reason: str, *, graceful: bool) -> None:
        """Signal the attempt's process group (with the lock held); its exit ends it.

        The first reason stands (a stop during a timeout's grace period stays a timeout).
        """
        if attempt.stop_reason is None:
            attempt.stop_reason = reason
        if attempt.pid is None:
            return  # not spawned yet: _prepare / _on_spawned act on stop_reason
        with contextlib.suppress(OSError):
            write_control_file(attempt.files.stop, json.dumps({"reason": attempt.stop_reason}))
        attempt.state = _State.STOPPING
        if graceful:
            process.signal_group(attempt.pid, signal.SIGTERM)
            if attempt.kill_at is None:
                attempt.kill_at = time.monotonic() + self.settings.stop_grace
        else:
            process.signal_group(attempt.pid, signal.SIGKILL)
            attempt.kill_at = None

    # -- the end of an attempt -----------------------------------------------------------------

    def _finish(self, attempt: _Attempt) -> None:
        """The attempt's process is gone: record how it ended."""
        with self._lock:
            if attempt.state is _State.ENDED:
                return
            attempt.state = _State.ENDED
            reason = attempt.stop_reason
        result = attempt.files.read_result()
        if reason is None:
            stopped = attempt.files.read_json(attempt.files.stop)
            reason = None if stopped is None else str(stopped.get("reason"))
        error: str | None = None
        if reason == _STOPPED:
            status = JobStatus.STOPPED
        elif reason is not None:
            status, error = JobStatus.FAILED, reason
        elif result is not None:
            status, error = JobStatus(result.status), result.error
        elif attempt.returncode == 0:
            status = JobStatus.FINISHED
        else:
            status, error = JobStatus.FAILED, _describe_exit(attempt.returncode)
        self._report_end(attempt, status, error)

    def _report_end(self, attempt: _Attempt, status: JobStatus, error: str | None) -> None:
        try:
            if status is JobStatus.FINISHED and attempt.reported is JobStatus.STARTING:
                self._set_status(attempt, JobStatus.RUNNING)
            self._set_status(attempt, status, error=error, exit_code=attempt.returncode)
            crash.reach("job.after_end")
        except IllegalTransitionError as exc:
            log.warning("job execution %s already ended: %s", attempt.key, exc)
        finally:
            with self._lock:
                attempt.state = _State.ENDED
                self._attempts.pop(attempt.key, None)
                done = list(attempt.waiting_commands)
                self._pump()
                self._wake.notify_all()
            self._start_done(attempt)
            for command in done:
                self.context.on_command_done(command)

    def _start_done(self, attempt: _Attempt) -> None:
        """The START took effect (launched, or ended before launch): complete it once."""
        if not attempt.start_done:
            attempt.start_done = True
            self.context.on_command_done(attempt.command.command_id)

    def _end_before_start(self, attempt: _Attempt, error: str) -> None:
        log.warning("job execution %s failed before it started: %s", attempt.key, error)
        with self._lock:
            attempt.state = _State.ENDED
        with contextlib.suppress(OSError):
            attempt.log.parent.mkdir(parents=True, exist_ok=True)
            with open(attempt.log, "a") as out:
                out.write(f"[tideflow] the job did not start: {error}\n")
        self._report_end(attempt, JobStatus.FAILED, error)

    def _set_status(self, attempt: _Attempt, status: JobStatus, **extra: Any) -> None:
        command = attempt.command
        if attempt.reported is JobStatus.INIT and attempt.log.exists():
            extra["log_uri"] = str(attempt.log)  # also for a job that failed before starting
        self.context.executions.set_job_status(
            command.project, command.job_execution_id, status, **extra
        )
        attempt.reported = status

    # -- re-attachment -------------------------------------------------------------------------

    def reconcile(self, attempts: Sequence[JobCommand]) -> None:
        """Re-attach to this host's live attempts (their START commands); end those now gone."""
        for command in attempts:
            job = self.context.executions.get_job_execution(
                command.project, command.job_execution_id
            )
            if job.host not in (None, self.host) or job.status.is_terminal:
                continue
            files = AttemptFiles(self.workdir(job.execution_id, job.job, job.attempt))
            if not files.spec.exists():
                continue  # not launched by a local executor on this home
            timeout = None
            with contextlib.suppress(OSError, ValueError, TideflowError, KeyError):
                plan = read_control_file(files.plan, limit=MAX_PLAN_BYTES)
                timeout = WorkflowPlan.from_json(plan).job(job.job).timeout
            with self._lock:
                if command.job_execution_id in self._attempt_ids():
                    continue
                attempt = self._new_attempt(command, timeout)
                attempt.state = _State.STARTING
                self._attempts[attempt.key] = attempt
            self._adopt(attempt, job, files.read_json(files.launch) or {})

    def _attempt_ids(self) -> set[int]:
        return {a.command.job_execution_id for a in self._attempts.values()}

    def _adopt(self, attempt: _Attempt, job: JobExecution, launched: Mapping[str, Any]) -> None:
        """Watch an attempt launched earlier (by pid), or end it if its process is gone."""
        pid = int(job.pid or launched.get("pid") or 0) or None
        started = launched.get("started")
        user = self.job_user
        if user is not None and pid is not None and process.owner(pid) != user.uid:
            # launch.json is in the job's folder: a job may have forged the pid to have this
            # executor signal someone else's processes. Not the job user's: not ours.
            pid = None
        attempt.reported = job.status
        if job.status is JobStatus.INIT and pid is not None:
            # Before the supervisor can see the pid: were the process found gone first, its end
            # would be reported from INIT while this STARTING lands, and be refused.
            with contextlib.suppress(IllegalTransitionError):
                self._set_status(attempt, JobStatus.STARTING, pid=pid, host=self.host)
        with self._lock:
            attempt.attached = True
            attempt.pid = pid
            attempt.started = int(started) if started is not None else None
            attempt.launched_wall = float(launched.get("time") or time.time())
            if attempt.timeout:
                elapsed = time.time() - attempt.launched_wall
                attempt.deadline = time.monotonic() + attempt.timeout - elapsed
            attempt.state = _State.RUNNING if job.status is JobStatus.RUNNING else _State.STARTING
        self._start_done(attempt)
        if attempt.pid is None or not process.is_alive(attempt.pid, attempt.started):
            self._finish(attempt)
        else:
            log.info("re-attached to job execution %s (pid %s)", attempt.key, attempt.pid)

    # -- inspection and shutdown ---------------------------------------------------------------

    def active(self) -> list[int]:
        """Job execution ids of the attempts active now (preparing to stopping)."""
        with self._lock:
            return [
                a.command.job_execution_id for a in self._attempts.values() if a.state in _ACTIVE
            ]

    def queued(self) -> list[int]:
        """Job execution ids of the attempts waiting for room."""
        with self._lock:
            return [a.command.job_execution_id for a in self._queue]

    def latency(self, job_execution_id: int) -> tuple[float | None, float | None]:
        """Seconds from its START to its process spawned, and to RUNNING reported.

        Kept for the last 1,000 attempts this executor launched that reached RUNNING.
        """
        with self._lock:
            return self._latencies.get(job_execution_id, (None, None))

    def close(self) -> None:
        """Stop supervising and the fork server; running jobs keep running."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake.notify_all()
        self._workers.shutdown(wait=True, cancel_futures=True)
        self._supervisor.join(10)
        if self._fork is not None:
            self._fork.close()
            self._fork = None


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "the job's process is gone and left no result"
    if returncode == CLAIM_LOST_EXIT:
        return "another process already runs this attempt (spawned before a crash); this one ran nothing"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"the job's process was killed by {name}"
    return f"the job's process exited with code {returncode}"
