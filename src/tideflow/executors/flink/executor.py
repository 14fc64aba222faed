"""The ``flink`` executor: each attempt is one PyFlink program submitted to a Flink cluster.

Life of an attempt (docs/engines.md tells users the same):

1. **Prepared** on a worker thread: the working directory ``$TIDEFLOW_HOME/work/<execution>/
   <job>/<attempt>/`` receives the extracted code package, ``plan.json`` and ``attempt.json``;
   the cluster is found -- the job's ``flink_address`` config, else the executor's
   ``flink_address`` option, else ``$TIDEFLOW_FLINK_ADDRESS``, else the local cluster under
   ``$TIDEFLOW_HOME/engines/flink/cluster``, started now if it is down.
2. **Submitted** by Flink's client, ``$FLINK_HOME/bin/flink run -d -py <bootstrap> -pyfs
   <workdir>``, in its own session, its output appended to ``$TIDEFLOW_HOME/logs/jobs/
   <execution>/<job>/<attempt>.log`` (the job's log); the job becomes STARTING with the client's
   pid. The in-engine driver (:mod:`tideflow.engines.flink.driver`) builds the program and
   writes the Flink job id to ``flink_job.json``.
3. **Watched** over the REST API: Flink's ``RUNNING`` with every task deployed -> RUNNING (the
   Flink job id is stored as
   the job execution's ``external_id``), ``FINISHED`` -> FINISHED, ``FAILED`` -> FAILED with
   Flink's root exception, ``CANCELED`` -> STOPPED. A client that exits non-zero before
   submitting fails the attempt with the driver's one-line error.
4. **Stopped**: a streaming job stops with a savepoint under ``$TIDEFLOW_HOME/engines/flink/
   savepoints/<execution>/<job>/<attempt>`` (``stop_with="savepoint"``, the default) or is
   cancelled (``stop_with="cancel"``, and always for batch jobs); a failed savepoint falls back
   to a cancel. A later attempt of the same streaming job resumes from the newest savepoint of
   an earlier attempt (``restore_savepoint=false`` to start afresh).

Metrics and lineage (:mod:`tideflow.executors.reporting`): while a job runs, its record and
byte counts are read from the REST API every ``metrics_interval`` seconds and once more when it
ends, each a value of ``records_in`` / ``records_out`` / ``bytes_in`` / ``bytes_out`` (so far)
tagged ``engine=flink``; ``metric`` lines the driver printed while building the program
(``ctx.log_metric``) are recorded from the log. Lineage from the plan is recorded before a batch
job's FINISHED and once a streaming job is RUNNING, once per attempt.

When an attempt ends, Flink's failure text and the tail of the TaskManagers' logs (with a link
to them in Flink's web UI) are appended to the job's log.

Attempt state -- client pid, Flink job id, cluster address, savepoint -- is persisted in
``flink.json`` beside ``plan.json``, so an attempt is never submitted twice (a START for a job
execution that left INIT, or whose directory holds ``flink.json``, is re-attached) and a new
executor instance (a restarted server) re-attaches in :meth:`FlinkExecutor.reconcile`.

Nothing heavy happens before a job needs it: the constructor, ``reconcile([])`` and ``poll()``
touch no cluster and import no PyFlink (PyFlink never enters this environment at all; the
client runs in PyFlink's own virtual environment). A missing environment fails the job with
the command that creates it, never the server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tideflow.client.package import extract_package
from tideflow.compiler.generator import default_registry as engines
from tideflow.compiler.plan import PlanJob, WorkflowPlan
from tideflow.domain.attempt import AttemptFiles, write_atomically
from tideflow.domain.scheduling import JobCommand
from tideflow.domain.status import JobStatus
from tideflow.errors import IllegalTransitionError, InvalidArgumentError, TideflowError
from tideflow.executors import process
from tideflow.executors.base import Executor, ExecutorContext, settings_from_options
from tideflow.executors.flink.cluster import LocalFlinkCluster, package_java_opts
from tideflow.executors.flink.environment import FlinkEnvironment, default_venv
from tideflow.executors.flink.rest import FlinkRest, FlinkRestError, normalise_address
from tideflow.executors.reporting import JobReporter, read_progress
from tideflow.executors.spec import attempt_spec
from tideflow.settings import scrubbed_environment

log = logging.getLogger(__name__)

ADDRESS_VARIABLE = "TIDEFLOW_FLINK_ADDRESS"
STATE_FILE = "flink.json"
JOB_FILE = "flink_job.json"  # written by the driver (tideflow.engines.flink.driver.JOB_FILE)
BOOTSTRAP = "_tideflow_flink_main.py"
_BOOTSTRAP_SOURCE = """\
import sys
sys.path.insert(0, {workdir!r})
from tideflow.engines.flink.driver import main
sys.exit(main({workdir!r}))
"""
_RUNNING_STATES = frozenset({"RUNNING"})
_STARTING_STATES = frozenset({"INITIALIZING", "CREATED", "RECONCILING"})


@dataclass(frozen=True)
class FlinkSettings:
    """The flink executor's options (``ExecutorContext.options``).

    Attributes:
        flink_address: REST address of a running cluster; empty for the local one.
        venv: The PyFlink environment (default ``$TIDEFLOW_FLINK_VENV`` or
            ``$TIDEFLOW_HOME/engines/flink/venv``).
        stop_with: ``savepoint`` or ``cancel``: how STOP ends a streaming job.
        poll_interval: Seconds between two looks at the running attempts.
        submit_timeout: Seconds the client may take to submit a job.
        task_slots: Slots of the local cluster's TaskManager.
        max_workers: Attempts prepared / submitted at once.
        metrics_interval: Seconds between two readings of a running job's record and byte
            counts (one more is taken when it ends).
    """

    flink_address: str = ""
    venv: str = ""
    stop_with: str = "savepoint"
    poll_interval: float = 0.5
    submit_timeout: float = 300.0
    task_slots: int = 8
    max_workers: int = 4
    metrics_interval: float = 30.0

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> FlinkSettings:
        """Settings from an options mapping; unknown keys are refused.

        Raises:
            InvalidArgumentError: An unknown option or a bad ``stop_with``.
        """
        settings = settings_from_options(cls, options, "flink")
        _check_stop_with(settings.stop_with)
        return settings


def _check_stop_with(value: str) -> None:
    if value not in ("savepoint", "cancel"):
        raise InvalidArgumentError(
            f"stop_with must be 'savepoint' or 'cancel', got {value!r}", field="stop_with"
        )


@dataclass
class _Attempt:
    """What the executor knows about one attempt (persisted in ``flink.json``)."""

    command: JobCommand
    files: AttemptFiles
    log: Path
    streaming: bool = False
    stop_with: str = "savepoint"
    address: str | None = None
    pid: int | None = None
    pid_started: int | None = None
    client: subprocess.Popen[bytes] | None = None
    client_exit: int | None = None
    job_id: str | None = None
    reported: JobStatus = JobStatus.INIT
    stop_requested: bool = False
    stop_sent: bool = False
    savepoint_trigger: str | None = None
    savepoint: str | None = None
    submitted_at: float = 0.0
    received: float = field(default_factory=time.monotonic)
    running_at: float | None = None
    ended: bool = False
    start_done: bool = False
    waiting_commands: list[str] = field(default_factory=list)
    reporter: JobReporter | None = None
    log_offset: int = 0
    metrics_at: float = 0.0
    lineage_done: bool = False

    @property
    def key(self) -> str:
        return str(self.command.job_execution_id)

    @property
    def state_file(self) -> Path:
        return self.files.control / STATE_FILE

    def save(self) -> None:
        state = {
            "address": self.address,
            "pid": self.pid,
            "pid_started": self.pid_started,
            "job_id": self.job_id,
            "streaming": self.streaming,
            "stop_with": self.stop_with,
            "stop_requested": self.stop_requested,
            "savepoint_trigger": self.savepoint_trigger,
            "savepoint": self.savepoint,
            "log": str(self.log),
        }
        write_atomically(self.state_file, json.dumps(state))


class FlinkExecutor(Executor):
    """Job attempts as PyFlink programs on a Flink cluster (local by default)."""

    name = "flink"
    supports_stop = True
    supports_reattach = True
    supports_requirements = False

    def __init__(self, context: ExecutorContext) -> None:
        super().__init__(context)
        self.settings = FlinkSettings.from_options(context.options)
        self.home = Path(context.home)
        self.host = socket.gethostname()
        self._lock = threading.Lock()
        self._attempts: dict[str, _Attempt] = {}
        self._workers: ThreadPoolExecutor | None = None
        self._watcher: threading.Thread | None = None
        self._closed = threading.Event()
        self._latencies: dict[int, float] = {}

    # -- where things are ----------------------------------------------------------------------

    def environment(self) -> FlinkEnvironment:
        """The PyFlink environment jobs are built in."""
        if self.settings.venv:
            return FlinkEnvironment(Path(self.settings.venv).expanduser().resolve())
        return FlinkEnvironment(default_venv({**os.environ, "TIDEFLOW_HOME": str(self.home)}))

    def local_cluster(self) -> LocalFlinkCluster:
        """The local cluster the executor starts when no address is configured."""
        return LocalFlinkCluster(
            self.home / "engines" / "flink" / "cluster",
            self.environment(),
            task_slots=self.settings.task_slots,
        )

    def workdir(self, execution_id: int, job: str, attempt: int) -> Path:
        """The working directory of an attempt."""
        return self.home / "work" / str(execution_id) / job / str(attempt)

    def log_path(self, execution_id: int, job: str, attempt: int) -> Path:
        """The log file of an attempt (what ``tideflow job logs`` shows)."""
        return self.home / "logs" / "jobs" / str(execution_id) / job / f"{attempt}.log"

    def savepoint_dir(self, execution_id: int, job: str, attempt: int) -> Path:
        """Where a STOP puts an attempt's savepoint."""
        return (
            self.home / "engines" / "flink" / "savepoints" / str(execution_id) / job / str(attempt)
        )

    # -- commands ------------------------------------------------------------------------------

    def launch(self, command: JobCommand, plan: WorkflowPlan) -> None:
        """Prepare and submit the attempt on a worker thread; returns at once."""
        job = plan.job(command.job)
        with self._lock:
            if self._closed.is_set():
                raise TideflowError("the flink executor is closed")
            if str(command.job_execution_id) in self._attempts:
                return  # a duplicate: the attempt is already ours
            attempt = self._new_attempt(command)
            attempt.streaming = job.streaming
            self._attempts[attempt.key] = attempt
        self._pool().submit(self._prepare_and_submit, attempt, plan)

    def stop(self, command: JobCommand) -> None:
        """Stop the attempt: a savepoint (streaming) or a cancel; returns at once."""
        with self._lock:
            attempt = self._attempts.get(str(command.job_execution_id))
        if attempt is None:
            self._pool().submit(self._stop_unknown, command)
            return
        with self._lock:
            attempt.waiting_commands.append(command.command_id)
            attempt.stop_requested = True
        self._ensure_watcher()

    def _stop_unknown(self, command: JobCommand) -> None:
        """A STOP for an attempt not held here: never started, ended, or an earlier instance's."""
        try:
            job = self.context.executions.get_job_execution(
                command.project, command.job_execution_id
            )
            if job.status is JobStatus.INIT:
                self.context.executions.set_job_status(
                    command.project, command.job_execution_id, JobStatus.STOPPED
                )
            elif not job.status.is_terminal:
                files = AttemptFiles(self.workdir(job.execution_id, job.job, job.attempt))
                if (files.control / STATE_FILE).exists():
                    self.reconcile([command])
                    with self._lock:
                        held = str(command.job_execution_id) in self._attempts
                    if held:
                        self.stop(command)
                        return
        except IllegalTransitionError:
            pass
        except Exception:  # the executor's edge: log and let the command be retried
            log.exception("stopping job execution %s failed", command.job_execution_id)
            return
        self.context.on_command_done(command.command_id)

    def _new_attempt(self, command: JobCommand) -> _Attempt:
        files = AttemptFiles(self.workdir(command.execution_id, command.job, command.attempt))
        log_path = self.log_path(command.execution_id, command.job, command.attempt)
        reporter = JobReporter(
            project=command.project,
            job_execution_id=command.job_execution_id,
            engine="flink",
            control=files.control,
            log_path=log_path,
            metrics=self.context.metrics,
            lineage=self.context.lineage,
        )
        return _Attempt(
            command=command,
            files=files,
            log=log_path,
            stop_with=self.settings.stop_with,
            reporter=reporter,
        )

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._workers is None:
                self._workers = ThreadPoolExecutor(
                    max_workers=self.settings.max_workers, thread_name_prefix="flink-submit"
                )
            return self._workers

    # -- preparation and submission ------------------------------------------------------------

    def _prepare_and_submit(self, attempt: _Attempt, plan: WorkflowPlan) -> None:
        command = attempt.command
        try:
            job = self.context.executions.get_job_execution(
                command.project, command.job_execution_id
            )
            if job.status is not JobStatus.INIT or attempt.state_file.exists():
                self._adopt(attempt)
                return
            self._prepare(attempt, plan)
            self._submit(attempt, plan)
        except TideflowError as exc:
            self._end_before_start(attempt, str(exc))
        except Exception as exc:  # the executor's edge: the job fails, the executor goes on
            log.exception("submitting job execution %s failed", command.job_execution_id)
            self._end_before_start(attempt, f"submitting the Flink job failed: {exc!r}")

    def _prepare(self, attempt: _Attempt, plan: WorkflowPlan) -> None:
        command = attempt.command
        job = plan.job(command.job)
        runtime = engines.get(job.engine).runtime
        if runtime != "tideflow.engines.flink.driver:main":
            raise InvalidArgumentError(
                f"job {command.job!r} has engine {job.engine!r}: the flink executor runs only "
                "engine='flink' jobs",
                field="engine",
            )
        stop_with = str(job.config.get("stop_with", self.settings.stop_with))
        _check_stop_with(stop_with)
        attempt.stop_with = stop_with
        workdir = attempt.files.workdir
        shutil.rmtree(workdir, ignore_errors=True)  # half-prepared by a crashed instance
        workdir.mkdir(parents=True)
        attempt.log.parent.mkdir(parents=True, exist_ok=True)
        attempt.log.touch()
        workflows = self.context.workflows
        snapshot = workflows.get_snapshot(command.project, command.snapshot_id)
        if snapshot.code_sha256:
            extract_package(workflows.get_package(command.project, command.snapshot_id), workdir)
        attempt.files.control.mkdir()
        spec = attempt_spec(self.context, command)
        write_atomically(attempt.files.plan, plan.to_json())
        write_atomically(attempt.files.spec, spec.to_json())
        (attempt.files.control / BOOTSTRAP).write_text(
            _BOOTSTRAP_SOURCE.format(workdir=str(workdir))
        )

    def _address(
        self, plan: WorkflowPlan, job_name: str, out: Any
    ) -> tuple[str, LocalFlinkCluster | None]:
        """The cluster's REST address (starting the local cluster if that is the one)."""
        configured = (
            str(plan.job(job_name).config.get("flink_address") or "")
            or self.settings.flink_address
            or os.environ.get(ADDRESS_VARIABLE, "")
        )
        if configured:
            return normalise_address(configured), None
        cluster = self.local_cluster()
        address = cluster.running_address()
        if address is None:
            out.write(f"[tideflow] starting the local Flink cluster in {cluster.root}\n")
            out.flush()
            address = cluster.ensure_started()
        return address, cluster

    def _submit(self, attempt: _Attempt, plan: WorkflowPlan) -> None:
        command = attempt.command
        environment = self.environment()
        environment.require()
        with open(attempt.log, "ab", buffering=0) as out:
            writer = _LineWriter(out)
            address, cluster = self._address(plan, command.job, writer)
            attempt.address = address
            flink_home = environment.flink_home()
            env = (
                cluster.env(flink_home)
                if cluster is not None
                else _remote_env(
                    environment,
                    flink_home,
                    self.home / "engines" / "flink" / "client-conf",
                    address,
                )
            )
            env["PYTHONUNBUFFERED"] = "1"
            workdir = str(attempt.files.workdir)
            env["PYTHONPATH"] = workdir
            argv = [
                str(flink_home / "bin" / "flink"),
                "run",
                "-d",
                "-m",
                address.split("://", 1)[-1],
                "-pyexec",
                str(environment.python),
                "-pyclientexec",
                str(environment.python),
                "-pyfs",
                workdir,
            ]
            savepoint = self._restore_point(attempt, plan)
            if savepoint is not None:
                argv += ["-s", savepoint, "--allowNonRestoredState"]
                writer.write(f"[tideflow] resuming from savepoint {savepoint}\n")
            argv += ["-py", str(attempt.files.control / BOOTSTRAP)]
            writer.write(f"[tideflow] submitting to Flink at {address}: {' '.join(argv)}\n")
            with self._lock:
                stopped = attempt.stop_requested
            if stopped:
                self._report_end(attempt, JobStatus.STOPPED, None)
                return
            client = subprocess.Popen(
                argv,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # Reaped on a thread of its own: the client outlives this executor's interest in it
        # (a closed executor, a re-attaching one), and an unreaped Popen warns when collected.
        threading.Thread(
            target=_reap, args=(attempt, client), name="flink-client-reaper", daemon=True
        ).start()
        with self._lock:
            attempt.client = client
            attempt.pid = client.pid
            attempt.pid_started = process.start_time(client.pid)
            attempt.submitted_at = time.monotonic()
        attempt.save()
        try:
            self._set_status(attempt, JobStatus.STARTING, pid=client.pid, host=self.host)
        except IllegalTransitionError:
            process.signal_group(client.pid, signal.SIGKILL)  # stopped meanwhile: never run
            with self._lock:
                attempt.ended = True
                self._attempts.pop(attempt.key, None)
            self._start_done(attempt)
            return
        self._start_done(attempt)
        self._ensure_watcher()

    def _restore_point(self, attempt: _Attempt, plan: WorkflowPlan) -> str | None:
        """The newest savepoint of an earlier attempt of this streaming job, if resuming."""
        job = plan.job(attempt.command.job)
        if not job.streaming or not bool(job.config.get("restore_savepoint", True)):
            return None
        command = attempt.command
        for earlier in range(command.attempt - 1, 0, -1):
            state = AttemptFiles(self.workdir(command.execution_id, command.job, earlier))
            saved = state.read_json(state.control / STATE_FILE) or {}
            if saved.get("savepoint"):
                return str(saved["savepoint"])
        return None

    # -- watching ------------------------------------------------------------------------------

    def _ensure_watcher(self) -> None:
        with self._lock:
            if self._watcher is not None and self._watcher.is_alive():
                return
            if self._closed.is_set():
                return
            self._watcher = threading.Thread(target=self._watch, name="flink-watch", daemon=True)
            self._watcher.start()

    def _watch(self) -> None:
        while not self._closed.wait(self.settings.poll_interval):
            with self._lock:
                attempts = [a for a in self._attempts.values() if not a.ended]
            if not attempts:
                continue
            for attempt in attempts:
                try:
                    self._check(attempt)
                except Exception:  # the watcher must survive one attempt's trouble
                    log.exception("watching job execution %s failed", attempt.key)

    def _check(self, attempt: _Attempt) -> None:
        if attempt.pid is None and attempt.job_id is None:
            return  # still being prepared
        self._read_metric_lines(attempt)
        if attempt.job_id is None:
            found = attempt.files.read_json(attempt.files.control / JOB_FILE)
            if found and found.get("job_id"):
                attempt.job_id = str(found["job_id"])
                attempt.save()
        client_done = self._client_exited(attempt)
        if attempt.stop_requested and not attempt.stop_sent:
            self._send_stop(attempt)
        if attempt.job_id is None:
            if client_done:
                self._client_failed(attempt)
            elif (
                time.monotonic() - attempt.submitted_at > self.settings.submit_timeout
                and attempt.submitted_at
            ):
                assert attempt.pid is not None
                process.signal_group(attempt.pid, signal.SIGKILL)
                self._report_end(
                    attempt,
                    JobStatus.FAILED,
                    f"the Flink client did not submit the job within {self.settings.submit_timeout:g} s",
                )
            return
        if attempt.savepoint_trigger is not None:
            self._check_savepoint(attempt)
        assert attempt.address is not None
        try:
            state, tasks_running = FlinkRest(attempt.address).job_status(attempt.job_id)
        except FlinkRestError as exc:
            log.debug("flink job %s: %s", attempt.job_id, exc)
            return  # a transient outage: look again next time
        if state is None:
            self._report_end(
                attempt,
                JobStatus.FAILED,
                f"Flink at {attempt.address} no longer knows job {attempt.job_id}",
            )
        elif state in _RUNNING_STATES:
            if attempt.reported is JobStatus.STARTING and tasks_running:
                attempt.running_at = time.monotonic()
                self._latencies[attempt.command.job_execution_id] = (
                    attempt.running_at - attempt.received
                )
                self._set_status(attempt, JobStatus.RUNNING, external_id=attempt.job_id)
            if attempt.reported is JobStatus.RUNNING:
                if attempt.streaming and not attempt.lineage_done:
                    self._record_lineage(attempt)  # a streaming job's lineage: once RUNNING
                if time.monotonic() >= attempt.metrics_at:
                    attempt.metrics_at = time.monotonic() + self.settings.metrics_interval
                    self._record_job_metrics(attempt)
        elif state == "FINISHED":
            if attempt.savepoint_trigger is not None:
                self._check_savepoint(attempt)  # it completed since the look above
            if attempt.stop_requested or attempt.savepoint is not None:
                self._report_end(attempt, JobStatus.STOPPED, None)
            else:
                self._report_end(attempt, JobStatus.FINISHED, None)
        elif state == "CANCELED":
            self._report_end(attempt, JobStatus.STOPPED, None)
        elif state == "FAILED":
            text = FlinkRest(attempt.address).failure(attempt.job_id)
            self._report_end(
                attempt,
                JobStatus.FAILED,
                _summary(text) or f"Flink job {attempt.job_id} failed",
                detail=text,
            )

    def _client_exited(self, attempt: _Attempt) -> bool:
        if attempt.client_exit is not None:
            return True
        if attempt.client is not None:
            return False  # its reaper records the exit
        if attempt.pid is not None and process.is_alive(attempt.pid, attempt.pid_started):
            return False
        attempt.client_exit = -1  # an earlier instance's client, gone
        return True

    def _client_failed(self, attempt: _Attempt) -> None:
        """The client exited without a Flink job id: the driver's error, or the client's."""
        if attempt.stop_requested:
            self._report_end(attempt, JobStatus.STOPPED, None)
            return
        result = attempt.files.read_result()
        if result is not None and result.error:
            error = result.error
        else:
            error = (
                f"the Flink client exited with code {attempt.client_exit} before submitting: "
                + _last_error_line(attempt.log)
            )
        self._report_end(attempt, JobStatus.FAILED, error)

    def _send_stop(self, attempt: _Attempt) -> None:
        if attempt.job_id is None:
            # Not submitted yet: end the client (again each look, until it exits or a job id
            # shows up after all -- then that job is stopped below).
            attempt.save()
            if attempt.pid is not None and not self._client_exited(attempt):
                process.signal_group(attempt.pid, signal.SIGTERM)
            return
        attempt.stop_sent = True
        attempt.save()
        assert attempt.address is not None
        rest = FlinkRest(attempt.address)
        with _append(attempt.log) as out:
            if attempt.streaming and attempt.stop_with == "savepoint":
                target = self.savepoint_dir(
                    attempt.command.execution_id, attempt.command.job, attempt.command.attempt
                )
                try:
                    attempt.savepoint_trigger = rest.stop_with_savepoint(
                        attempt.job_id, f"file://{target}"
                    )
                    out.write(
                        f"[tideflow] stopping Flink job {attempt.job_id} with a savepoint in {target}\n"
                    )
                    attempt.save()
                    return
                except FlinkRestError as exc:
                    out.write(f"[tideflow] stop with savepoint refused ({exc}); cancelling\n")
            out.write(f"[tideflow] cancelling Flink job {attempt.job_id}\n")
            with contextlib.suppress(FlinkRestError):
                rest.cancel(attempt.job_id)

    def _check_savepoint(self, attempt: _Attempt) -> None:
        assert attempt.address is not None
        assert attempt.job_id is not None
        trigger = attempt.savepoint_trigger
        assert trigger is not None
        try:
            status, location, failure = FlinkRest(attempt.address).savepoint_status(
                attempt.job_id, trigger
            )
        except FlinkRestError:
            return
        if status != "COMPLETED":
            return
        attempt.savepoint_trigger = None
        with _append(attempt.log) as out:
            if location:
                attempt.savepoint = location.removeprefix("file:")
                out.write(f"[tideflow] savepoint written: {location}\n")
            else:
                out.write(
                    f"[tideflow] the savepoint failed ({_summary(failure or '')}); cancelling\n"
                )
                with contextlib.suppress(FlinkRestError):
                    FlinkRest(attempt.address).cancel(attempt.job_id)
        attempt.save()

    # -- the end of an attempt -----------------------------------------------------------------

    def _report_end(
        self, attempt: _Attempt, status: JobStatus, error: str | None, *, detail: str = ""
    ) -> None:
        with self._lock:
            if attempt.ended:
                return
            attempt.ended = True
        with contextlib.suppress(OSError), _append(attempt.log) as out:
            if detail:
                out.write(f"[tideflow] Flink reports the job failed:\n{detail[:8000]}\n")
            if attempt.address is not None and attempt.job_id is not None:
                tail = FlinkRest(attempt.address).taskmanager_log_tail()
                if tail:
                    out.write(f"[tideflow] TaskManager log tail:\n{tail}\n")
            out.write(
                f"[tideflow] the job ended {status.value}" + (f": {error}" if error else "") + "\n"
            )
        self._read_metric_lines(attempt)
        self._record_job_metrics(attempt)  # the final counts
        try:
            if status is JobStatus.FINISHED and attempt.reported is JobStatus.STARTING:
                self._set_status(attempt, JobStatus.RUNNING, external_id=attempt.job_id)
            if status is JobStatus.FINISHED and not attempt.lineage_done:
                self._record_lineage(attempt)  # before FINISHED: rules it fires see the lineage
            extra: dict[str, Any] = {"error": error}
            if attempt.job_id is not None:
                extra["external_id"] = attempt.job_id
            if (
                attempt.client_exit is not None
                and attempt.client_exit >= 0
                and attempt.job_id is None
            ):
                extra["exit_code"] = attempt.client_exit
            self._set_status(attempt, status, **extra)
        except IllegalTransitionError as exc:
            log.warning("job execution %s already ended: %s", attempt.key, exc)
        finally:
            with self._lock:
                self._attempts.pop(attempt.key, None)
                done = list(attempt.waiting_commands)
            self._start_done(attempt)
            for command in done:
                self.context.on_command_done(command)

    # -- metrics and lineage --------------------------------------------------------------------

    def _read_metric_lines(self, attempt: _Attempt) -> None:
        """Record the ``metric`` lines the driver printed (``ctx.log_metric`` at build time)."""
        if attempt.reporter is None:
            return
        lines, attempt.log_offset = read_progress(attempt.log, attempt.log_offset)
        attempt.reporter.record_lines(lines, attempt.log_offset)

    def _record_job_metrics(self, attempt: _Attempt) -> None:
        """One reading of the job's record and byte counts (so far), as metric values."""
        if attempt.reporter is None or attempt.address is None or attempt.job_id is None:
            return
        try:
            totals = FlinkRest(attempt.address).job_metrics(attempt.job_id)
        except FlinkRestError as exc:
            log.debug("flink job %s metrics: %s", attempt.job_id, exc)
            return
        for name, value in (totals or {}).items():
            attempt.reporter.log_metric(name, value)

    def _record_lineage(self, attempt: _Attempt) -> None:
        """Record the datasets the plan's read / write nodes name, once per attempt."""
        attempt.lineage_done = True
        try:
            plan = WorkflowPlan.from_json(attempt.files.plan.read_text())
            job: PlanJob = plan.job(attempt.command.job)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("no plan for the lineage of job execution %s: %s", attempt.key, exc)
            return
        if attempt.reporter is not None:
            attempt.reporter.record_lineage(job)

    def _end_before_start(self, attempt: _Attempt, error: str) -> None:
        log.warning("job execution %s failed before it started: %s", attempt.key, error)
        with contextlib.suppress(OSError):
            attempt.log.parent.mkdir(parents=True, exist_ok=True)
            with open(attempt.log, "a") as out:
                out.write(f"[tideflow] the job did not start: {error}\n")
        self._report_end(attempt, JobStatus.FAILED, error)

    def _start_done(self, attempt: _Attempt) -> None:
        if not attempt.start_done:
            attempt.start_done = True
            self.context.on_command_done(attempt.command.command_id)

    def _set_status(self, attempt: _Attempt, status: JobStatus, **extra: Any) -> None:
        command = attempt.command
        if attempt.reported is JobStatus.INIT and attempt.log.exists():
            extra["log_uri"] = str(attempt.log)
        extra = {k: v for k, v in extra.items() if v is not None}
        self.context.executions.set_job_status(
            command.project, command.job_execution_id, status, **extra
        )
        attempt.reported = status

    # -- re-attachment -------------------------------------------------------------------------

    def reconcile(self, attempts: Sequence[JobCommand]) -> None:
        """Re-attach to attempts submitted by an earlier instance (their ``flink.json``)."""
        for command in attempts:
            files = AttemptFiles(self.workdir(command.execution_id, command.job, command.attempt))
            if not (files.control / STATE_FILE).exists():
                continue
            with self._lock:
                if str(command.job_execution_id) in self._attempts:
                    continue
                attempt = self._new_attempt(command)
                self._attempts[attempt.key] = attempt
            self._adopt(attempt)

    def _adopt(self, attempt: _Attempt) -> None:
        """Watch an attempt submitted earlier, or end it when there is nothing to watch."""
        command = attempt.command
        job = self.context.executions.get_job_execution(command.project, command.job_execution_id)
        saved = attempt.files.read_json(attempt.state_file)
        if job.status.is_terminal or saved is None:
            with self._lock:
                attempt.ended = True
                self._attempts.pop(attempt.key, None)
            if not job.status.is_terminal:
                attempt.reported = job.status
                with self._lock:
                    attempt.ended = False
                self._report_end(
                    attempt, JobStatus.FAILED, "the attempt was lost before Flink took it"
                )
                return
            self._start_done(attempt)
            return
        with self._lock:
            attempt.address = saved.get("address")
            attempt.pid = saved.get("pid")
            attempt.pid_started = saved.get("pid_started")
            attempt.job_id = saved.get("job_id")
            attempt.streaming = bool(saved.get("streaming"))
            attempt.stop_with = str(saved.get("stop_with") or self.settings.stop_with)
            attempt.stop_requested = attempt.stop_requested or bool(saved.get("stop_requested"))
            attempt.savepoint_trigger = saved.get("savepoint_trigger")
            attempt.savepoint = saved.get("savepoint")
            attempt.stop_sent = attempt.savepoint_trigger is not None
            attempt.reported = job.status
        if job.status is JobStatus.INIT and attempt.pid is not None:
            with contextlib.suppress(IllegalTransitionError):
                self._set_status(attempt, JobStatus.STARTING, pid=attempt.pid, host=self.host)
        self._start_done(attempt)
        log.info("re-attached to job execution %s (flink job %s)", attempt.key, attempt.job_id)
        self._ensure_watcher()

    def poll(self) -> None:
        """Nothing to do: a watcher thread runs while attempts are live."""

    # -- inspection and shutdown ---------------------------------------------------------------

    def active(self) -> list[int]:
        """Job execution ids of the attempts held now."""
        with self._lock:
            return [a.command.job_execution_id for a in self._attempts.values() if not a.ended]

    def latency(self, job_execution_id: int) -> float | None:
        """Seconds from its START to RUNNING reported, for attempts this instance launched."""
        return self._latencies.get(job_execution_id)

    def close(self) -> None:
        """Stop watching; Flink jobs keep running (and are re-attached later)."""
        self._closed.set()
        with self._lock:
            workers, self._workers = self._workers, None
            watcher = self._watcher
        if workers is not None:
            workers.shutdown(wait=True, cancel_futures=True)
        if watcher is not None:
            watcher.join(10)


def _reap(attempt: _Attempt, client: subprocess.Popen[bytes]) -> None:
    """Wait for the Flink client to exit and record its exit code."""
    attempt.client_exit = client.wait()


class _LineWriter:
    """Text lines onto a binary log file."""

    def __init__(self, out: Any) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text.encode())

    def flush(self) -> None:
        self.out.flush()


@contextlib.contextmanager
def _append(path: Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as out:
        yield out


def _remote_env(
    environment: FlinkEnvironment, flink_home: Path, conf_dir: Path, address: str
) -> dict[str, str]:
    """The client's environment for a remote cluster: a conf dir naming its REST address."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    host, _, port = address.split("://", 1)[-1].partition(":")
    python = str(environment.python)
    settings = {
        "env.java.opts.all": package_java_opts(flink_home),
        "rest.address": host,
        "rest.port": int(port or 8081),
        "python.executable": python,
        "python.client.executable": python,
    }
    (conf_dir / "config.yaml").write_text(
        "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items())
    )
    for name in ("log4j-cli.properties", "log4j.properties"):
        source = flink_home / "conf" / name
        if source.exists():
            shutil.copy(source, conf_dir / name)
    env = {
        k: v for k, v in scrubbed_environment().items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env.update(
        {
            "FLINK_HOME": str(flink_home),
            "FLINK_CONF_DIR": str(conf_dir),
            "FLINK_LOG_DIR": str(conf_dir.parent / "client-log"),
            "PATH": f"{environment.python.parent}:{env.get('PATH', '')}",
        }
    )
    return env


def _summary(text: str) -> str:
    """The first line of a Java stack trace or message, trimmed."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:1000]
    return ""


def _last_error_line(path: Path) -> str:
    """The most telling line of a client log: the last one naming an error."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "no output"
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return line.strip()[:1000]
    return lines[-1].strip()[:1000] if lines else "no output"
