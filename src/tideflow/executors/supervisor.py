"""The attempt supervisor: the one lifecycle of a job attempt, whatever platform runs it.

Life of an attempt (docs/executors.md tells users the same):

1. **Queued** when its START arrives; at most the platform's ``max_running`` attempts are
   active (preparing, launching, starting, running or stopping) at once, the rest wait in
   arrival order.
2. **Prepared** on a worker thread: its working directory
   ``$TIDEFLOW_HOME/work/<execution>/<job>/<attempt>/`` receives the verified, extracted code
   package and the control files of :mod:`tideflow.domain.attempt` (``attempt.json`` with the
   trigger, ``plan.json``), its log file is created under
   ``$TIDEFLOW_HOME/logs/jobs/<execution>/<job>/<attempt>.log``, and the platform adds what it
   needs (:meth:`~tideflow.executors.platform.Platform.prepare`). A preparation that fails --
   a package over the server's limits, a full disk ("no space left under <dir>") -- ends the
   attempt FAILED with that reason, never leaves it INIT, and removes its working directory.
3. **Launched** by the platform. Before it, the platform's reserved handle is written to
   ``$TIDEFLOW_HOME/attempts/<executor>/<job execution>.json`` (the server's own file, never
   the job's); after it, the full handle. The job becomes STARTING (pid, host, external id).
4. **RUNNING** when the job's runtime reports its processors open.
5. **Ended** as observed by the platform: a stop, timeout or missed heartbeat requested here
   takes precedence; then the runtime's own result; then the platform's account (an exit code,
   a cluster's message). The exit code and the end time are the attempt's own, also when it
   ended while the server was down.

The supervisor never runs an attempt twice: a START whose job execution has left INIT, or whose
handle was recorded, is re-attached (found again by the platform's
:meth:`~tideflow.executors.platform.Platform.find`) rather than launched. Attempts outlive the
server; :meth:`AttemptSupervisor.reconcile` re-attaches to them after a restart and ends those
that ended meanwhile.

STOP asks the platform for a graceful stop and kills after its ``stop_grace``; a job
``timeout`` does the same and ends the attempt FAILED ("timed out after N s"); a job whose
heartbeat is older than the platform's ``heartbeat_timeout`` is killed at once and FAILED.

Threads: commands arrive on the command loop's thread; preparation and launching run on a small
pool; one supervision thread observes live attempts every ``poll_interval`` (sooner when the
platform calls :attr:`~tideflow.executors.platform.Platform.notify`). Attempt state is guarded by
one lock; store writes and platform calls happen outside it.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import shutil
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from tideflow.client.package import extract_package
from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.attempt import (
    AttemptFiles,
    read_control_file,
    write_atomically,
)
from tideflow.domain.metadata import JobExecution
from tideflow.domain.scheduling import CommandAction, JobCommand, OwnedAttempt, command_id
from tideflow.domain.status import JobStatus
from tideflow.errors import (
    IllegalTransitionError,
    InvalidArgumentError,
    NotOwnerError,
    TideflowError,
)
from tideflow.executors.base import Executor, ExecutorContext, job_plan
from tideflow.executors.identity import hand_over, pass_through_below
from tideflow.executors.platform import (
    Attempt,
    Observation,
    Platform,
    Started,
    read_json_object,
)
from tideflow.executors.spec import attempt_spec, job_environment
from tideflow.scheduler import crash
from tideflow.store.blob import no_space_is_exhaustion

log = logging.getLogger(__name__)

MAX_PLAN_BYTES = 256 << 20
"""The largest ``plan.json`` re-read after a restart (it is in the job's folder)."""
MAX_ERROR = 4000
"""The longest error text reported (a log tail can be long)."""
RECORDS = "attempts"
"""The folder of the home holding the supervisor's records of launched attempts."""
STOPPED = "STOPPED"
"""The stop reason of a STOP command (the attempt ends STOPPED, not FAILED)."""


class _Phase(enum.Enum):
    QUEUED = "queued"
    PREPARING = "preparing"
    LAUNCHING = "launching"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    ENDED = "ended"


_ACTIVE = frozenset(
    {_Phase.PREPARING, _Phase.LAUNCHING, _Phase.STARTING, _Phase.RUNNING, _Phase.STOPPING}
)
_WATCHED = frozenset({_Phase.STARTING, _Phase.RUNNING, _Phase.STOPPING})


@dataclass
class _Entry:
    """What the supervisor knows about one attempt beside what the platform sees."""

    attempt: Attempt
    timeout: float | None = None
    phase: _Phase = _Phase.QUEUED
    reported: JobStatus = JobStatus.INIT
    start_done: bool = False
    stop_reason: str | None = None
    kill_at: float | None = None
    deadline: float | None = None
    launched_wall: float = 0.0
    received: float = field(default_factory=time.monotonic)
    launched_at: float | None = None
    started: Started | None = None
    watched_since: float = field(default_factory=time.time)
    waiting_commands: list[str] = field(default_factory=list)
    home: Path | None = None
    """The ``$TIDEFLOW_HOME`` holding the attempt's files (``None``: the executor's own)."""


class AttemptSupervisor(Executor):
    """An :class:`~tideflow.executors.base.Executor` made of the one lifecycle and a platform.

    Subclasses name their platform (``platform = LocalPlatform``) and are registered under the
    platform's name; see :mod:`tideflow.executors.local` for the smallest.
    """

    platform_class: ClassVar[type[Platform]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        platform = getattr(cls, "platform_class", None)
        if platform is not None:
            cls.name = platform.name
            cls.supports_stop = platform.supports_stop
            cls.supports_reattach = platform.supports_reattach
            cls.supports_requirements = platform.supports_requirements
            cls.supports_job_user = platform.supports_job_user
            cls.host_bound = platform.host_bound

    def __init__(self, context: ExecutorContext) -> None:
        super().__init__(context)
        self.home = Path(context.home)
        self.platform = self.platform_class(context)
        self.platform.notify = self._notify
        self.owner = context.owner
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._entries: dict[int, _Entry] = {}
        self._queue: deque[_Entry] = deque()
        self._dirty: set[int] = set()
        self._closed = False
        self._workers: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._latencies: OrderedDict[int, tuple[float | None, float | None]] = OrderedDict()

    # -- paths ---------------------------------------------------------------------------------

    def workdir(
        self, execution_id: int, job: str, attempt: int, *, home: Path | None = None
    ) -> Path:
        """The working directory of an attempt (under ``home``, by default this executor's)."""
        return (home or self.home) / "work" / str(execution_id) / job / str(attempt)

    def log_path(
        self, execution_id: int, job: str, attempt: int, *, home: Path | None = None
    ) -> Path:
        """The log file of an attempt (under ``home``, by default this executor's)."""
        return (home or self.home) / "logs" / "jobs" / str(execution_id) / job / f"{attempt}.log"

    def record_path(self, job_execution_id: int, *, home: Path | None = None) -> Path:
        """The supervisor's record of an attempt's launch (handle, stop reason)."""
        return (home or self.home) / RECORDS / self.name / f"{job_execution_id}.json"

    # -- commands ------------------------------------------------------------------------------

    def launch(self, command: JobCommand, plan: WorkflowPlan) -> None:
        """Queue the attempt; it starts as soon as fewer than ``max_running`` are active."""
        timeout = plan.job(command.job).timeout
        with self._lock:
            if self._closed:
                raise TideflowError(f"the {self.name} executor is closed")
            if command.job_execution_id in self._entries:
                return  # a duplicate: the attempt is already ours
            entry = self._new_entry(command, timeout)
            entry.attempt.plan = plan
            self._entries[entry.attempt.key] = entry
            self._queue.append(entry)
            self._pump()

    def stop(self, command: JobCommand) -> None:
        """Stop an attempt: dequeue it, or ask its platform to stop it (kill after grace)."""
        with self._lock:
            entry = self._entries.get(command.job_execution_id)
            if entry is None:
                self._pool_locked().submit(self._stop_unknown, command)
                return
            entry.waiting_commands.append(command.command_id)
            if entry.phase is _Phase.QUEUED:
                self._queue.remove(entry)
                entry.stop_reason = STOPPED
                entry.phase = _Phase.ENDED
                ended = True
            else:
                ended = False
        if ended:
            self._report_end(entry, JobStatus.STOPPED, None)
            return
        self._request_stop(entry, STOPPED, kill=False)
        crash.reach("executor.after_stop_signal")

    def _stop_unknown(self, command: JobCommand) -> None:
        """A STOP for an attempt this executor does not hold: not launched, ended, or orphaned."""
        try:
            job = self.context.executions.get_job_execution(
                command.project, command.job_execution_id
            )
            if not job.status.is_terminal:
                self.reconcile([_start_of(command)])  # ours from an earlier instance?
                with self._lock:
                    adopted = command.job_execution_id in self._entries
                if adopted:
                    self.stop(command)
                    return
                if job.status is JobStatus.INIT:  # never launched: it never will be
                    self.context.executions.set_job_status(
                        command.project,
                        command.job_execution_id,
                        JobStatus.STOPPED,
                        owner=self._member,
                        owner_lease=self._lease,
                    )
        except (IllegalTransitionError, NotOwnerError):
            pass  # it moved on by itself meanwhile, or another member holds it
        except Exception:  # the executor's edge: log and let the command be retried
            log.exception("stopping job execution %s failed", command.job_execution_id)
            return
        self.context.on_command_done(command.command_id)

    def _new_entry(
        self, command: JobCommand, timeout: float | None, *, home: Path | None = None
    ) -> _Entry:
        home = home or self.home
        workdir = self.workdir(command.execution_id, command.job, command.attempt, home=home)
        attempt = Attempt(
            command=command,
            files=AttemptFiles(workdir),
            log=self.log_path(command.execution_id, command.job, command.attempt, home=home),
        )
        return _Entry(attempt=attempt, timeout=timeout, home=home)

    def _files_home(self, home: str | None, host: str | None) -> Path:
        """Where an attempt's files are for this executor: their home if on this host."""
        if self.owner is not None and home is not None and host == self.owner.host:
            return Path(home)
        return self.home

    def _place(self, entry: _Entry) -> None:
        """Move a START's entry to its attempt's home (a dead member's, on this host).

        The member that took the START before may have begun launching the attempt: its
        launch record and its process's claim are in that home, and the attempt must be
        found there, never launched a second time.
        """
        if self.owner is None:
            return
        command = entry.attempt.command
        home = self._files_home(*self.context.executions.attempt_home(command.job_execution_id))
        if home != entry.home:
            moved = self._new_entry(command, entry.timeout, home=home)
            entry.attempt.files, entry.attempt.log = moved.attempt.files, moved.attempt.log
            entry.home = home

    def _pump(self) -> None:
        """Start queued attempts while there is room (called with the lock held)."""
        limit = self.platform.max_running
        active = sum(1 for e in self._entries.values() if e.phase in _ACTIVE)
        while self._queue and (limit is None or active < limit) and not self._closed:
            entry = self._queue.popleft()
            entry.phase = _Phase.PREPARING
            active += 1
            self._pool_locked().submit(self._start, entry)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            return self._pool_locked()

    def _pool_locked(self) -> ThreadPoolExecutor:
        if self._workers is None:
            workers = min(8, self.platform.max_running or 8)
            self._workers = ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix=f"{self.name}-prepare"
            )
        return self._workers

    # -- preparation and launch ----------------------------------------------------------------

    def _start(self, entry: _Entry) -> None:
        attempt = entry.attempt
        command = attempt.command
        try:
            job = self.context.executions.get_job_execution(
                command.project, command.job_execution_id
            )
            if job.status.is_terminal:
                self._drop(entry)
                return
            self._place(entry)
            record = self._read_record(attempt.key, home=entry.home)
            if record is not None or job.status is not JobStatus.INIT:
                if record is not None:
                    attempt.handle = dict(record.get("handle") or {})
                    entry.stop_reason = entry.stop_reason or record.get("stop_reason")
                if self._resume(entry, job, record):
                    return
            self._check_paths(attempt, entry.home)
            self.platform.check(attempt)
            try:
                with no_space_is_exhaustion(str(entry.home or self.home)):
                    self._prepare(entry)
                    self.platform.prepare(attempt)
            except BaseException:
                # Half-prepared (a refused package, a full disk): nothing of it may stay.
                shutil.rmtree(attempt.workdir, ignore_errors=True)
                raise
            with self._lock:
                stopped = entry.stop_reason is not None
                if stopped:
                    entry.phase = _Phase.ENDED
            if stopped:
                self._report_end(entry, JobStatus.STOPPED, None)
                return
            self.platform.reserve(attempt)
            self._write_record(entry, launched=False)
            with self._lock:
                entry.phase = _Phase.LAUNCHING
            crash.reach("launch.before_spawn")
            started = self.platform.launch(attempt)
        except TideflowError as exc:
            self._end_before_start(entry, str(exc))
            return
        except Exception as exc:  # the executor's edge: the job fails, the executor goes on
            log.exception("starting job execution %s failed", command.job_execution_id)
            self._end_before_start(entry, f"starting the job failed: {exc!r}")
            return
        try:
            crash.reach("launch.after_spawn")
            with self._lock:
                entry.started = started
                entry.launched_wall = time.time()
                entry.launched_at = time.monotonic()
                if entry.timeout:
                    entry.deadline = entry.launched_at + entry.timeout
            self._write_record(entry, launched=True)
            self._report_starting(entry, started)
        except Exception:  # launched, but not recorded: its START comes again and finds it
            log.exception("recording the launch of job execution %s failed", attempt.key)
            self._abandon(entry)

    def _resume(self, entry: _Entry, job: JobExecution, record: dict[str, Any] | None) -> bool:
        """Attach to an attempt launched before (by any instance); ``False``: launch it now."""
        attempt = entry.attempt
        if record is not None and record.get("launched"):
            started: Started | None = _started_of(record)
        else:
            started = self.platform.find(attempt)
            if started is not None:
                entry.started = started
                self._write_record(entry, launched=True)
        if started is None:
            if job.status is JobStatus.INIT:
                return False
            raise TideflowError(
                f"job execution {job.job_execution_id} is {job.status.value} but this "
                f"{self.name} executor has no record of launching it"
            )
        self._adopt(entry, job, started, record)
        return True

    def _check_paths(self, attempt: Attempt, home: Path | None = None) -> None:
        """Refuse an attempt whose names would put its files outside their folders.

        The server validates every name of a plan it stores; this is the second line of
        defence, for the paths built from them.

        Raises:
            InvalidArgumentError: The job's name leaves the folder.
        """
        home = home or self.home
        if not self._contained(attempt, home):
            raise InvalidArgumentError(
                f"job name {attempt.command.job!r} would put the attempt's files outside "
                f"{home / 'work'} and {home / 'logs' / 'jobs'}",
                field="job",
            )

    def _contained(self, attempt: Attempt, home: Path | None = None) -> bool:
        home = home or self.home
        pairs = ((home / "work", attempt.workdir), (home / "logs" / "jobs", attempt.log))
        for base, path in pairs:
            resolved, root = os.path.normpath(path), os.path.normpath(base)
            if os.path.commonpath([resolved, root]) != root or resolved == root:
                return False
        return True

    def _prepare(self, entry: _Entry) -> None:
        """Working directory, log, code, control files and environment of the attempt."""
        attempt = entry.attempt
        command = attempt.command
        workdir = attempt.workdir
        user = self.context.job_user
        shutil.rmtree(workdir, ignore_errors=True)  # half-prepared by a crashed instance
        if user is not None:  # the folders above are made passable, never writable, by it
            home = entry.home or self.home
            pass_through_below(home / "work", workdir.parent, user)
            pass_through_below(home / "logs" / "jobs", attempt.log.parent, user)
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
            package = workflows.get_package(command.project, command.snapshot_id)
            extract_package(package, workdir, workflows.package_limits)
        attempt.files.control.mkdir()
        spec = attempt_spec(
            self.context,
            command,
            heartbeat_interval=self.platform.heartbeat_interval,
            server_url=self.context.server_url,
        )
        assert attempt.plan is not None
        write_atomically(attempt.files.plan, attempt.plan.to_json())
        write_atomically(attempt.files.spec, spec.to_json())
        attempt.env = job_environment(self.context, command, token=self.platform.job_token)
        if user is not None:  # from here on it is the job's: written only link-proof
            hand_over(workdir, user)

    def _report_starting(self, entry: _Entry, started: Started) -> None:
        attempt = entry.attempt
        crash.reach("launch.before_starting")
        try:
            self._set_status(
                entry,
                JobStatus.STARTING,
                pid=started.pid,
                host=started.host,
                external_id=started.external_id,
            )
            crash.reach("launch.after_starting")
        except NotOwnerError as exc:  # taken for dead meanwhile: the new owner finds the job
            self._lost(entry, exc)
            return
        except IllegalTransitionError:
            # Someone else ended the job meanwhile (it was stopped): it must not run.
            self.platform.stop(attempt, kill=True)
            with self._lock:
                entry.stop_reason = entry.stop_reason or STOPPED
                entry.phase = _Phase.STOPPING
            self._start_done(entry)
            self._watch(entry)
            return
        self._start_done(entry)
        with self._lock:
            if entry.phase is _Phase.LAUNCHING:
                entry.phase = _Phase.STARTING
            stop = entry.stop_reason
        if stop is not None:  # stopped while launching
            self._request_stop(entry, stop, kill=False)
        self._watch(entry)

    # -- supervision ---------------------------------------------------------------------------

    def _notify(self, key: int) -> None:
        """The platform saw attempt ``key`` change: observe it now."""
        with self._lock:
            self._dirty.add(key)
            self._wake.notify_all()

    def _watch(self, entry: _Entry) -> None:
        """Make sure the supervision thread runs, and looks at ``entry`` soon."""
        with self._lock:
            if self._closed:
                return
            self._dirty.add(entry.attempt.key)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._supervise, name=f"{self.name}-supervisor", daemon=True
                )
                self._thread.start()
            self._wake.notify_all()

    def _supervise(self) -> None:
        interval = self.platform.poll_interval
        next_round = 0.0
        while True:
            with self._lock:
                if self._closed:
                    return
                now = time.monotonic()
                if not self._dirty and now < next_round:
                    self._wake.wait(next_round - now)
                if self._closed:
                    return
                now = time.monotonic()
                if now >= next_round:
                    keys = [k for k, e in self._entries.items() if e.phase in _WATCHED]
                    next_round = now + interval
                else:
                    keys = [k for k in self._dirty if k in self._entries]
                self._dirty.clear()
                watched = [self._entries[k] for k in keys if self._entries[k].phase in _WATCHED]
            for entry in watched:
                try:
                    self._check(entry)
                except Exception:  # the supervisor must survive one attempt's trouble
                    log.exception("supervising job execution %s failed", entry.attempt.key)

    def _check(self, entry: _Entry) -> None:
        attempt = entry.attempt
        platform = self.platform
        now = time.monotonic()
        kill = timed_out = False
        with self._lock:
            if entry.kill_at is not None and now >= entry.kill_at:
                entry.kill_at = None
                kill = True
            if entry.deadline is not None and now >= entry.deadline:
                entry.deadline = None
                timed_out = True
        if kill:
            platform.stop(attempt, kill=True)
        if timed_out:
            self._request_stop(entry, f"timed out after {entry.timeout:g} s", kill=False)
        seen = platform.observe(attempt)
        if platform.heartbeats and entry.stop_reason is None and not seen.ended:
            beat = seen.heartbeat or entry.launched_wall
            limit = platform.heartbeat_timeout
            if beat and time.time() - beat > limit:
                self._request_stop(entry, f"no heartbeat for {limit:g} s", kill=True)
        if seen.running and entry.reported is JobStatus.STARTING:
            self._report_running(entry, seen)
        if seen.ended:
            self._finish(entry, seen)

    def _report_running(self, entry: _Entry, seen: Observation) -> None:
        with self._lock:
            if entry.phase is _Phase.STARTING:
                entry.phase = _Phase.RUNNING
            if entry.launched_at is not None:
                running_at = time.monotonic()
                self._latencies[entry.attempt.key] = (
                    entry.launched_at - entry.received,
                    running_at - entry.received,
                )
                if len(self._latencies) > 1000:
                    self._latencies.popitem(last=False)
        try:
            self._set_status(entry, JobStatus.RUNNING, external_id=seen.external_id)
        except NotOwnerError as exc:
            self._lost(entry, exc)
            return
        except IllegalTransitionError:
            return  # ended meanwhile (a stop): its end is reported from its exit
        crash.reach("job.after_running")
        self.platform.on_running(entry.attempt)

    def _request_stop(self, entry: _Entry, reason: str, *, kill: bool) -> None:
        """Ask the platform to stop the attempt; its end is then observed.

        The first reason stands (a stop during a timeout's grace period stays a timeout).
        """
        grace = self.platform.stop_grace
        with self._lock:
            if entry.stop_reason is None:
                entry.stop_reason = reason
            if entry.phase not in _WATCHED:
                return  # not launched yet: _start / _report_starting act on stop_reason
            entry.phase = _Phase.STOPPING
            if kill:
                entry.kill_at = None
            elif grace is not None and entry.kill_at is None:
                entry.kill_at = time.monotonic() + grace
        with contextlib.suppress(OSError):
            self._write_record(entry, launched=True)
        self.platform.stop(entry.attempt, kill=kill)
        self._notify(entry.attempt.key)

    # -- the end of an attempt -----------------------------------------------------------------

    def _finish(self, entry: _Entry, seen: Observation) -> None:
        """The attempt is over: record how it ended."""
        with self._lock:
            if entry.phase is _Phase.ENDED:
                return
            entry.phase = _Phase.ENDED
            reason = entry.stop_reason
        error: str | None = None
        if reason == STOPPED:
            status = JobStatus.STOPPED
        elif reason is not None:
            status, error = JobStatus.FAILED, reason
        elif seen.result is not None:
            status, error = seen.result
        elif seen.failure is None:
            status = JobStatus.FINISHED
        else:
            status, error = JobStatus.FAILED, seen.failure
        with contextlib.suppress(Exception):
            if entry.reported is not JobStatus.INIT:
                self.platform.on_end(entry.attempt, status)
        ended_at = None
        if seen.ended_at is not None and seen.ended_at < entry.watched_since:
            # It ended before this supervisor looked (the server was down): its own end time.
            # One seen live is recorded now, after what on_end recorded (its lineage).
            ended_at = datetime.fromtimestamp(seen.ended_at, UTC)
        self._report_end(
            entry,
            status,
            error,
            exit_code=seen.exit_code,
            ended_at=ended_at,
            external_id=seen.external_id,
        )

    def _report_end(
        self,
        entry: _Entry,
        status: JobStatus,
        error: str | None,
        *,
        exit_code: int | None = None,
        ended_at: datetime | None = None,
        external_id: str | None = None,
    ) -> None:
        try:
            if status is JobStatus.FINISHED and entry.reported is JobStatus.STARTING:
                # Refused when already RUNNING: a re-attached attempt's running report (another
                # thread) committed it first. Its end must still be recorded; had it ended
                # instead, the end below is refused too and lands in "already ended".
                with contextlib.suppress(IllegalTransitionError):
                    self._set_status(entry, JobStatus.RUNNING, external_id=external_id)
            self._set_status(
                entry,
                status,
                error=None if error is None else error[:MAX_ERROR],
                exit_code=exit_code,
                at=ended_at,
            )
            crash.reach("job.after_end")
            recorded = True
        except NotOwnerError as exc:  # its new owner reports its end: records stay for it
            self._lost(entry, exc)
            return
        except IllegalTransitionError as exc:
            log.warning("job execution %s already ended: %s", entry.attempt.key, exc)
            recorded = True
        except Exception:  # the store failed: the record stays, a restart ends it again
            log.exception("recording the end of job execution %s failed", entry.attempt.key)
            recorded = False
        if recorded:
            with contextlib.suppress(OSError):
                self.record_path(entry.attempt.key, home=entry.home).unlink(missing_ok=True)
            with contextlib.suppress(Exception):
                self.platform.forget(entry.attempt)
        self._drop(entry)

    def _drop(self, entry: _Entry) -> None:
        """Forget an ended attempt; complete its START and the commands waiting on it."""
        with self._lock:
            entry.phase = _Phase.ENDED
            if self._entries.get(entry.attempt.key) is entry:
                del self._entries[entry.attempt.key]
            done = list(entry.waiting_commands)
            entry.waiting_commands.clear()
            self._pump()
            self._wake.notify_all()
        self._start_done(entry)
        for command in done:
            self.context.on_command_done(command)

    def _abandon(self, entry: _Entry) -> None:
        """Let go of an attempt without completing its commands (they come again)."""
        with self._lock:
            if self._entries.get(entry.attempt.key) is entry:
                del self._entries[entry.attempt.key]
            self._pump()
        with contextlib.suppress(Exception):
            self.platform.forget(entry.attempt)

    def _start_done(self, entry: _Entry) -> None:
        """The START took effect (launched, or ended before launch): complete it once."""
        with self._lock:
            if entry.start_done:
                return
            entry.start_done = True
        self.context.on_command_done(entry.attempt.command.command_id)

    def _end_before_start(self, entry: _Entry, error: str) -> None:
        log.warning("job execution %s failed before it started: %s", entry.attempt.key, error)
        with self._lock:
            entry.phase = _Phase.ENDED
        if self._contained(entry.attempt, entry.home):
            with contextlib.suppress(OSError):
                entry.attempt.log.parent.mkdir(parents=True, exist_ok=True)
                with open(entry.attempt.log, "a") as out:
                    out.write(f"[tideflow] the job did not start: {error}\n")
        self._report_end(entry, JobStatus.FAILED, error)

    def _set_status(
        self, entry: _Entry, status: JobStatus, *, at: datetime | None = None, **extra: Any
    ) -> None:
        command = entry.attempt.command
        if (
            entry.reported is JobStatus.INIT
            and self._contained(entry.attempt, entry.home)
            and entry.attempt.log.exists()
        ):
            extra["log_uri"] = str(entry.attempt.log)  # also for a job that failed before starting
        extra = {key: value for key, value in extra.items() if value is not None}
        self.context.executions.set_job_status(
            command.project,
            command.job_execution_id,
            status,
            at=at,
            owner=self._member,
            owner_lease=self._lease,
            **extra,
        )
        entry.reported = status

    @property
    def _member(self) -> str | None:
        """The cluster member id status reports are checked against (``None``: no cluster)."""
        return None if self.owner is None else self.owner.member_id

    @property
    def _lease(self) -> float | None:
        """The member's lease, bounding how long a status report may hold its attempt's row."""
        return None if self.owner is None else self.owner.lease

    def _lost(self, entry: _Entry, exc: NotOwnerError) -> None:
        """Another member owns the attempt now: let go of it, leave the job alone."""
        log.warning(
            "letting go of job execution %s: %s (the job keeps running)", entry.attempt.key, exc
        )
        with self._lock:
            entry.phase = _Phase.ENDED
        self._abandon(entry)

    # -- records -------------------------------------------------------------------------------

    def _write_record(self, entry: _Entry, *, launched: bool) -> None:
        attempt = entry.attempt
        path = self.record_path(attempt.key, home=entry.home)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        started = entry.started
        record = {
            "handle": attempt.handle,
            "started": None
            if started is None
            else {"pid": started.pid, "host": started.host, "external_id": started.external_id},
            "launched": launched,
            "time": entry.launched_wall or None,
            "timeout": entry.timeout,
            "stop_reason": entry.stop_reason,
        }
        write_atomically(path, json.dumps(record))

    def _read_record(
        self, job_execution_id: int, *, home: Path | None = None
    ) -> dict[str, Any] | None:
        return read_json_object(self.record_path(job_execution_id, home=home))

    # -- re-attachment -------------------------------------------------------------------------

    def reconcile(self, attempts: Sequence[JobCommand]) -> None:
        """Re-attach to live attempts this home launched (their START commands).

        Those that ended while the server was down are ended with what they left (their
        result, exit code and end time). In a cluster each is taken over first (its owner
        was this server's previous process); one a live member owns is left to it.
        """
        for command in attempts:
            self._reattach(command)

    def adopt(self, attempts: Sequence[OwnedAttempt]) -> None:
        """Re-attach the attempts the cluster's leader handed to this member (owner died).

        Their files are where the dead member left them when it ran on this host (a local
        process is only ever handed to a member on its host); an attempt on a cluster handed
        over from another host is found again by the platform (:meth:`Platform.find`).
        Attempts this executor already watches are skipped: a call per heartbeat is cheap.

        ``attempts`` are all the launched attempts this member owns: one it watches that is
        not among them and that another member owns now was taken away while this member
        seemed dead (paused): it lets go of it here, before it could act on it (a timeout's
        kill), not only when its next report is refused.
        """
        owned_keys = {owned.start.job_execution_id for owned in attempts}
        for owned in attempts:
            with self._lock:
                if self._closed or owned.start.job_execution_id in self._entries:
                    continue
            home = self._files_home(owned.home, owned.home_host)
            self._reattach(owned.start, home=home, handed=True)
        member = self._member
        if member is None:
            return
        with self._lock:
            others = [
                e
                for key, e in self._entries.items()
                if e.phase in _WATCHED and key not in owned_keys
            ]
        for entry in others:  # rare: an attempt that ended just now, or one taken away
            key = entry.attempt.key
            owner = self.context.executions.attempt_owner(key)
            if owner is not None and owner != member:
                self._lost(
                    entry,
                    NotOwnerError(
                        f"member {member} no longer owns job execution {key}: member "
                        f"{owner} does (it was handed over while {member} seemed dead)"
                    ),
                )

    def _reattach(
        self, command: JobCommand, *, home: Path | None = None, handed: bool = False
    ) -> None:
        key = command.job_execution_id
        if home is None:
            home = self.home
            if self.owner is not None:
                home = self._files_home(*self.context.executions.attempt_home(key))
        record = self._read_record(key, home=home)
        if record is None and not handed:
            return  # not launched by this executor on this home
        job = self.context.executions.get_job_execution(command.project, key)
        if job.status.is_terminal:
            return
        if self.owner is not None and not self.context.executions.claim_attempt(key, self.owner):
            return  # a live member owns it: its reports are the attempt's
        timeout = None if record is None else record.get("timeout")
        with self._lock:
            if self._closed or key in self._entries:
                return
            entry = self._new_entry(command, timeout, home=home)
            if record is not None:
                entry.attempt.handle = dict(record.get("handle") or {})
                entry.stop_reason = record.get("stop_reason")
            self._entries[entry.attempt.key] = entry
        try:
            entry.attempt.plan = _read_plan(entry.attempt.files)
            if entry.attempt.plan is None and handed:  # its files are on another host
                snapshot = self.context.workflows.get_snapshot(command.project, command.snapshot_id)
                entry.attempt.plan = job_plan(WorkflowPlan.from_json(snapshot.plan), command.job)
            if record is not None and record.get("launched"):
                started: Started | None = _started_of(record)
            else:
                started = self.platform.find(entry.attempt)
                if started is not None:
                    entry.started = started
                    self._write_record(entry, launched=True)
            if started is None:
                if handed and job.status is not JobStatus.INIT:
                    raise TideflowError(
                        f"job execution {key} was handed to member {self._member} after its "
                        f"owner died, but its {self.name} attempt is nowhere to be found "
                        f"(looked under {home}): it was lost"
                    )
                with self._lock:
                    del self._entries[entry.attempt.key]
                return  # never launched: its START is delivered again and launches it
            self._adopt(entry, job, started, record)
        except TideflowError as exc:
            self._end_before_start(entry, str(exc))

    def _adopt(
        self, entry: _Entry, job: JobExecution, started: Started, record: dict[str, Any] | None
    ) -> None:
        """Watch an attempt launched earlier, or end it if it ended meanwhile."""
        entry.started = started
        entry.reported = job.status
        entry.watched_since = time.time()
        if job.status is JobStatus.INIT:
            # Before the supervisor can see it: were it found ended first, its end would be
            # reported from INIT while this STARTING lands, and be refused.
            try:
                self._set_status(
                    entry,
                    JobStatus.STARTING,
                    pid=started.pid,
                    host=started.host,
                    external_id=started.external_id,
                )
            except IllegalTransitionError:
                pass
            except NotOwnerError as exc:
                self._lost(entry, exc)
                return
        with self._lock:
            launched = (record or {}).get("time")
            entry.launched_wall = float(launched) if launched else time.time()
            if entry.timeout:
                elapsed = time.time() - entry.launched_wall
                entry.deadline = time.monotonic() + entry.timeout - elapsed
            entry.phase = (
                _Phase.STOPPING
                if entry.stop_reason is not None
                else _Phase.RUNNING
                if entry.reported is JobStatus.RUNNING
                else _Phase.STARTING
            )
            if entry.stop_reason is not None and self.platform.stop_grace is not None:
                entry.kill_at = time.monotonic() + self.platform.stop_grace
        self._start_done(entry)
        log.info("re-attached to %s job execution %s", self.name, entry.attempt.key)
        self._check(entry)
        self._watch(entry)

    # -- inspection and shutdown ---------------------------------------------------------------

    def poll(self) -> None:
        """Look at every live attempt soon (the command loop calls this between rounds)."""

    def active(self) -> list[int]:
        """Job execution ids of the attempts active now (preparing to stopping)."""
        with self._lock:
            return [k for k, e in self._entries.items() if e.phase in _ACTIVE]

    def queued(self) -> list[int]:
        """Job execution ids of the attempts waiting for room."""
        with self._lock:
            return [e.attempt.key for e in self._queue]

    def latency(self, job_execution_id: int) -> tuple[float | None, float | None]:
        """Seconds from its START to its launch, and to RUNNING reported.

        Kept for the last 1,000 attempts this executor launched that reached RUNNING.
        """
        with self._lock:
            return self._latencies.get(job_execution_id, (None, None))

    def close(self) -> None:
        """Stop supervising and close the platform; running jobs keep running."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake.notify_all()
            thread, workers = self._thread, self._workers
        if workers is not None:
            workers.shutdown(wait=True, cancel_futures=True)
        if thread is not None:
            thread.join(10)
        self.platform.close()


def _start_of(command: JobCommand) -> JobCommand:
    """The START command of the attempt a STOP ``command`` names."""
    action = CommandAction.START
    return replace(
        command,
        action=action,
        command_id=command_id(command.execution_id, command.job, command.attempt, action),
    )


def _started_of(record: dict[str, Any]) -> Started:
    started = record.get("started") or {}
    return Started(
        pid=started.get("pid"), host=started.get("host"), external_id=started.get("external_id")
    )


def _read_plan(files: AttemptFiles) -> WorkflowPlan | None:
    with contextlib.suppress(OSError, ValueError, TideflowError, KeyError):
        return WorkflowPlan.from_json(read_control_file(files.plan, limit=MAX_PLAN_BYTES))
    return None


__all__ = ["STOPPED", "AttemptSupervisor"]
