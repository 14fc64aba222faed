"""The ``spark`` executor: each attempt of a ``spark`` job is one ``spark-submit`` on this host.

Life of an attempt (docs/engines.md tells users the same):

1. **Claimed** when its START arrives: ``$TIDEFLOW_HOME/spark/<job execution>.claim`` is created
   exclusively, so no two executor instances on one home ever launch the same attempt.
2. **Prepared** on a worker thread: its working directory
   ``$TIDEFLOW_HOME/work/<execution>/<job>/<attempt>/`` receives the code package, the control
   files of :mod:`tideflow.domain.attempt` and a one-line bootstrap script that calls the
   engine's driver (:mod:`tideflow.engines.spark.driver`).
3. **Submitted**: ``spark-submit`` from the installed PySpark package, with the master
   (``spark_master`` from the job's config, else the executor's option, else ``local[*]``) and
   ``--conf`` pairs (``spark_conf``, the job's over the executor's), in its own session, output
   appended to ``$TIDEFLOW_HOME/logs/jobs/<execution>/<job>/<attempt>.log`` (what ``tideflow job
   logs`` shows), with ``SPARK_LOCAL_IP=127.0.0.1`` and ``PYSPARK_PYTHON`` /
   ``PYSPARK_DRIVER_PYTHON`` set to the job's Python. Its pid and process start time go to
   ``$TIDEFLOW_HOME/spark/<job execution>.json``; the job becomes STARTING.
4. **RUNNING** once the driver reports its processors open; the Spark application id it
   reported is stored as the job execution's ``external_id``.
5. **Ended** by the process's exit: the driver's ``result`` line says FINISHED / FAILED (with
   the error) / STOPPED; a stop or timeout requested here takes precedence; no result at all is
   a FAILED carrying the last lines of the log (a missing Java, a bad master URL, ...).

The driver talks to the executor through its log (progress lines of
:mod:`tideflow.domain.progress`), so an executor on a restarted server re-reads the log of an
attempt it re-attaches to (by pid + start time, from the state file) and misses nothing.
Its ``metric`` lines become metric values of the job execution, and the plan's datasets its
lineage (before a batch job's FINISHED, once a streaming job is RUNNING), each once per attempt
(:mod:`tideflow.executors.reporting`).

STOP sends SIGTERM to the Python driver (which stops its streaming queries and the session,
after which ``spark-submit`` exits) -- or to the whole process group when the driver's pid is
not known yet -- and SIGKILL to the group after ``stop_grace`` seconds.

Nothing heavy happens before a job needs it: the constructor, :meth:`SparkExecutor.reconcile`
with no attempts and :meth:`SparkExecutor.poll` import no PySpark and start no thread. A host
without PySpark fails the job (naming the ``[spark]`` extra), never the server.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tideflow.client.package import extract_package
from tideflow.compiler.generator import default_registry as engines
from tideflow.compiler.plan import PlanJob, WorkflowPlan
from tideflow.domain.attempt import (
    ATTEMPT_DIR_VARIABLE,
    AttemptFiles,
    write_atomically,
)
from tideflow.domain.metadata import JobExecution
from tideflow.domain.scheduling import CommandAction, JobCommand, command_id
from tideflow.domain.status import JobStatus
from tideflow.errors import IllegalTransitionError, InvalidArgumentError, TideflowError
from tideflow.executors import process
from tideflow.executors.base import Executor, ExecutorContext, settings_from_options
from tideflow.executors.reporting import JobReporter, read_progress
from tideflow.executors.spec import attempt_spec, job_environment, scrubbed_environment

log = logging.getLogger(__name__)

DEFAULT_MASTER = "local[*]"
DEFAULT_CONF: Mapping[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.log.level": "WARN",
}
"""Conf every submission gets unless the executor's or job's ``spark_conf`` overrides it."""
MAX_ERROR = 2000
_STOPPED = "STOPPED"
_BOOTSTRAP = """\
# Written by Tideflow's spark executor: spark-submit runs this file, which runs the driver.
import importlib
import sys

module, _, function = {runtime!r}.partition(":")
sys.exit(getattr(importlib.import_module(module), function)(sys.argv[1]))
"""


@dataclass(frozen=True)
class SparkSettings:
    """The spark executor's options (``ExecutorContext.options``).

    Attributes:
        spark_master: Master URL when the job's config names none (``local[*]``,
            ``spark://host:7077``, ``yarn``, ``k8s://...``): passed through to ``spark-submit``.
        spark_conf: ``--conf`` pairs for every job (a job's own ``spark_conf`` wins).
        spark_submit: The ``spark-submit`` to run; by default the installed PySpark's.
        python: The jobs' Python (``PYSPARK_PYTHON``); by default this interpreter.
        submit_args: Extra ``spark-submit`` arguments (``--packages``, ``--executor-memory`` ...).
        stop_grace: Seconds between SIGTERM and SIGKILL on a stop or timeout.
        poll_interval: Seconds between two checks of the running attempts.
    """

    spark_master: str = DEFAULT_MASTER
    spark_conf: Mapping[str, Any] = field(default_factory=dict)
    spark_submit: str | None = None
    python: str | None = None
    submit_args: tuple[str, ...] = ()
    stop_grace: float = 20.0
    poll_interval: float = 0.25

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SparkSettings:
        """Settings from an options mapping; unknown keys are refused.

        Raises:
            InvalidArgumentError: An unknown option.
        """
        return settings_from_options(cls, options, "spark")


@dataclass
class _Attempt:
    """What the executor knows about one attempt."""

    command: JobCommand
    workdir: Path
    log: Path
    state: Path
    timeout: float | None = None
    plan: WorkflowPlan | None = None
    child: bool = False
    returncode: int | None = None
    pid: int | None = None
    started: int | None = None
    driver_pid: int | None = None
    app_id: str | None = None
    running: bool = False
    result: tuple[str, str | None] | None = None
    offset: int = 0
    reported: JobStatus = JobStatus.INIT
    stop_reason: str | None = None
    kill_at: float | None = None
    deadline: float | None = None
    ended: bool = False
    start_done: bool = False
    waiting_commands: list[str] = field(default_factory=list)
    reporter: JobReporter | None = None
    job: PlanJob | None = None
    lineage_done: bool = False

    @property
    def key(self) -> int:
        return self.command.job_execution_id


class SparkExecutor(Executor):
    """Spark jobs as ``spark-submit`` processes: supervised, stoppable, re-attached."""

    name = "spark"
    supports_stop = True
    supports_reattach = True
    supports_requirements = False

    def __init__(self, context: ExecutorContext) -> None:
        super().__init__(context)
        self.settings = SparkSettings.from_options(context.options)
        self.home = Path(context.home)
        self.host = socket.gethostname()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._attempts: dict[int, _Attempt] = {}
        self._closed = False
        self._workers: ThreadPoolExecutor | None = None
        self._supervisor: threading.Thread | None = None

    # -- paths ---------------------------------------------------------------------------------

    def workdir(self, execution_id: int, job: str, attempt: int) -> Path:
        """The working directory of an attempt."""
        return self.home / "work" / str(execution_id) / job / str(attempt)

    def log_path(self, execution_id: int, job: str, attempt: int) -> Path:
        """The log of an attempt (spark-submit's output)."""
        return self.home / "logs" / "jobs" / str(execution_id) / job / f"{attempt}.log"

    def state_path(self, job_execution_id: int) -> Path:
        """Where an attempt's pid, start time and application id are kept."""
        return self.home / "spark" / f"{job_execution_id}.json"

    # -- commands ------------------------------------------------------------------------------

    def launch(self, command: JobCommand, plan: WorkflowPlan) -> None:
        """Submit the attempt on a worker thread; a START seen before is ignored."""
        job = plan.job(command.job)
        with self._lock:
            if self._closed:
                raise TideflowError("the spark executor is closed")
            if command.job_execution_id in self._attempts:
                return
            attempt = self._new_attempt(command, job.timeout)
            attempt.plan = plan
            self._attempts[attempt.key] = attempt
        self._pool().submit(self._start, attempt)

    def stop(self, command: JobCommand) -> None:
        """Stop an attempt gracefully (SIGTERM to the driver, SIGKILL after the grace period)."""
        with self._lock:
            attempt = self._attempts.get(command.job_execution_id)
            if attempt is not None:
                attempt.waiting_commands.append(command.command_id)
                self._request_stop(attempt, _STOPPED)
                return
        self._pool().submit(self._stop_unknown, command)

    def _stop_unknown(self, command: JobCommand) -> None:
        """A STOP for an attempt this instance does not hold: never started, ended, or not ours yet."""
        try:
            job = self.context.executions.get_job_execution(
                command.project, command.job_execution_id
            )
            if job.status is JobStatus.INIT and not self.state_path(job.job_execution_id).exists():
                self.context.executions.set_job_status(
                    command.project, command.job_execution_id, JobStatus.STOPPED
                )
            elif not job.status.is_terminal and self.state_path(job.job_execution_id).exists():
                start = replace(
                    command,
                    action=CommandAction.START,
                    command_id=command_id(
                        command.execution_id, command.job, command.attempt, CommandAction.START
                    ),
                )
                self.reconcile([start])
                with self._lock:
                    held = command.job_execution_id in self._attempts
                if held:
                    self.stop(command)
                    return
        except IllegalTransitionError:
            pass
        except Exception:  # the executor's edge: log, let the command be delivered again
            log.exception("stopping job execution %s failed", command.job_execution_id)
            return
        self.context.on_command_done(command.command_id)

    # -- launching -----------------------------------------------------------------------------

    def _new_attempt(self, command: JobCommand, timeout: float | None) -> _Attempt:
        workdir = self.workdir(command.execution_id, command.job, command.attempt)
        log_path = self.log_path(command.execution_id, command.job, command.attempt)
        reporter = JobReporter(
            project=command.project,
            job_execution_id=command.job_execution_id,
            engine="spark",
            control=AttemptFiles(workdir).control,
            log_path=log_path,
            metrics=self.context.metrics,
            lineage=self.context.lineage,
        )
        return _Attempt(
            command=command,
            workdir=workdir,
            log=log_path,
            state=self.state_path(command.job_execution_id),
            timeout=timeout,
            reporter=reporter,
        )

    def _start(self, attempt: _Attempt) -> None:
        command = attempt.command
        try:
            job = self.context.executions.get_job_execution(
                command.project, command.job_execution_id
            )
            if job.status.is_terminal:
                self._forget(attempt)
                self._start_done(attempt)
                return
            if not self._claim(attempt):
                self._adopt_claimed(attempt, job)
                return
            assert attempt.plan is not None
            argv, env = self._prepare(attempt, attempt.plan)
        except TideflowError as exc:
            self._end_before_start(attempt, str(exc))
            return
        except Exception as exc:  # the executor's edge: the job fails, the executor goes on
            log.exception("preparing spark job execution %s failed", command.job_execution_id)
            self._end_before_start(attempt, f"preparing the Spark job failed: {exc!r}")
            return
        with self._lock:
            stopped = attempt.stop_reason is not None
        if stopped:
            self._report_end(attempt, JobStatus.STOPPED, None)
            return
        try:
            pid = _spawn(argv, env, attempt.workdir, attempt.log)
        except OSError as exc:
            self._end_before_start(attempt, f"spark-submit could not be started: {exc}")
            return
        with self._lock:
            attempt.child = True
            attempt.pid = pid
            attempt.started = process.start_time(pid)
            if attempt.timeout:
                attempt.deadline = time.monotonic() + attempt.timeout
        self._write_state(attempt)
        try:
            self._set_status(
                attempt,
                JobStatus.STARTING,
                pid=pid,
                host=self.host,
                log_uri=str(attempt.log),
            )
        except IllegalTransitionError:  # stopped by someone else meanwhile: must not run
            process.signal_group(pid, signal.SIGKILL)
            with self._lock:
                attempt.stop_reason = attempt.stop_reason or _STOPPED
        self._start_done(attempt)
        with self._lock:
            if attempt.stop_reason is not None:
                self._request_stop(attempt, attempt.stop_reason)
        self._ensure_supervisor()

    def _claim(self, attempt: _Attempt) -> bool:
        """Take the attempt for this instance; ``False`` if some instance took it before."""
        claim = attempt.state.with_suffix(".claim")
        claim.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        os.write(fd, json.dumps({"host": self.host, "pid": os.getpid()}).encode())
        os.close(fd)
        return True

    def _adopt_claimed(self, attempt: _Attempt, job: JobExecution) -> None:
        """Another instance (or an earlier one) took this attempt: watch its process."""
        deadline = time.monotonic() + 30
        while not attempt.state.exists() and time.monotonic() < deadline:
            current = self.context.executions.get_job_execution(
                attempt.command.project, attempt.key
            )
            if current.status.is_terminal:
                break
            time.sleep(0.2)  # the claimer writes the state file right after spark-submit starts
        if not attempt.state.exists():
            job = self.context.executions.get_job_execution(attempt.command.project, attempt.key)
            if job.status.is_terminal:
                self._forget(attempt)
                self._start_done(attempt)
                return
            self._end_before_start(
                attempt, "the attempt was claimed but never submitted (a crash while launching)"
            )
            return
        job = self.context.executions.get_job_execution(attempt.command.project, attempt.key)
        self._adopt(attempt, job)

    def _prepare(self, attempt: _Attempt, plan: WorkflowPlan) -> tuple[list[str], dict[str, str]]:
        """Working directory, code, control files; the spark-submit command and environment."""
        command = attempt.command
        job = plan.job(command.job)
        submit = self._spark_submit()
        runtime = engines.get(job.engine).runtime
        if runtime is None:
            raise InvalidArgumentError(
                f"engine {job.engine!r} has no driver the spark executor can submit",
                field="engine",
            )
        workdir = attempt.workdir
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        attempt.log.parent.mkdir(parents=True, exist_ok=True)
        attempt.log.touch()
        workflows = self.context.workflows
        snapshot = workflows.get_snapshot(command.project, command.snapshot_id)
        if snapshot.code_sha256:
            extract_package(workflows.get_package(command.project, command.snapshot_id), workdir)
        files = AttemptFiles(workdir)
        files.control.mkdir(exist_ok=True)
        spec = attempt_spec(self.context, command, server_url=self.context.server_url)
        write_atomically(files.plan, plan.to_json())
        write_atomically(files.spec, spec.to_json())
        bootstrap = files.control / "spark_main.py"
        write_atomically(bootstrap, _BOOTSTRAP.format(runtime=runtime))
        master = str(job.config.get("spark_master") or self.settings.spark_master)
        conf = {**DEFAULT_CONF, **_conf(self.settings.spark_conf, "executor option spark_conf")}
        conf.update(_conf(job.config.get("spark_conf"), f"job {job.name!r} config spark_conf"))
        argv = [submit, "--master", master, "--name", f"tideflow:{command.workflow}.{job.name}"]
        for key, value in sorted(conf.items()):
            argv += ["--conf", f"{key}={value}"]
        argv += [*self.settings.submit_args, str(bootstrap), str(workdir)]
        python = self.settings.python or sys.executable
        env = scrubbed_environment()
        env.update(
            {
                **job_environment(self.context, command, token=False),
                "SPARK_LOCAL_IP": "127.0.0.1",
                "PYSPARK_PYTHON": python,
                "PYSPARK_DRIVER_PYTHON": python,
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(workdir), os.environ.get("PYTHONPATH", "")) if p
                ),
                ATTEMPT_DIR_VARIABLE: str(workdir),
            }
        )
        with open(attempt.log, "a") as out:
            out.write(f"[tideflow] spark-submit --master {master} (job execution {attempt.key})\n")
        return argv, env

    def _spark_submit(self) -> str:
        """The ``spark-submit`` to run.

        Raises:
            InvalidArgumentError: PySpark is not installed (and no ``spark_submit`` was given).
        """
        if self.settings.spark_submit:
            submit = shutil.which(self.settings.spark_submit)
            if submit is None:
                raise InvalidArgumentError(
                    f"spark-submit not found: the spark executor's spark_submit option names "
                    f"{self.settings.spark_submit!r}, which is not an executable",
                    field="spark_submit",
                )
            return submit
        spec = importlib.util.find_spec("pyspark")
        if spec is None or not spec.submodule_search_locations:
            raise InvalidArgumentError(
                "PySpark is not installed in Tideflow's environment: install the spark extra "
                "(pip install 'tideflow[spark]') or give the spark executor a spark_submit path",
                field="engine",
            )
        return str(Path(next(iter(spec.submodule_search_locations))) / "bin" / "spark-submit")

    def _write_state(self, attempt: _Attempt) -> None:
        write_atomically(
            attempt.state,
            json.dumps(
                {
                    "pid": attempt.pid,
                    "started": attempt.started,
                    "host": self.host,
                    "time": time.time(),
                    "log": str(attempt.log),
                    "workdir": str(attempt.workdir),
                    "timeout": attempt.timeout,
                }
            ),
        )

    # -- supervision ---------------------------------------------------------------------------

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._workers is None:
                self._workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="spark-launch")
            return self._workers

    def _ensure_supervisor(self) -> None:
        with self._lock:
            if self._closed or (self._supervisor is not None and self._supervisor.is_alive()):
                return
            self._supervisor = threading.Thread(
                target=self._supervise, name="spark-supervisor", daemon=True
            )
            self._supervisor.start()

    def _supervise(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                self._wake.wait(self.settings.poll_interval)
                if self._closed:
                    return
                watched = [a for a in self._attempts.values() if a.pid is not None and not a.ended]
            for attempt in watched:
                try:
                    self._check(attempt)
                except Exception:  # the supervisor survives one attempt's trouble
                    log.exception("supervising spark job execution %s failed", attempt.key)

    def _check(self, attempt: _Attempt) -> None:
        self._read_progress(attempt)
        now = time.monotonic()
        assert attempt.pid is not None
        with self._lock:
            if attempt.kill_at is not None and now >= attempt.kill_at:
                attempt.kill_at = None
                process.signal_group(attempt.pid, signal.SIGKILL)
            if attempt.deadline is not None and now >= attempt.deadline:
                attempt.deadline = None
                self._request_stop(attempt, f"timed out after {attempt.timeout:g} s")
        if attempt.running and attempt.reported is JobStatus.STARTING:
            with contextlib.suppress(IllegalTransitionError):
                self._set_status(attempt, JobStatus.RUNNING, external_id=attempt.app_id)
        if attempt.reported is JobStatus.RUNNING and not attempt.lineage_done:
            job = self._job(attempt)
            if job is not None and job.streaming:  # a streaming job's lineage: once RUNNING
                self._record_lineage(attempt)
        alive = self._alive(attempt)
        if not alive:
            self._read_progress(attempt)
            self._finish(attempt)

    def _alive(self, attempt: _Attempt) -> bool:
        """Whether spark-submit still runs; reaps it (and keeps its exit code) when ours."""
        assert attempt.pid is not None
        if attempt.child:
            try:
                pid, status = os.waitpid(attempt.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere
                attempt.child = False
            else:
                if pid == 0:
                    return True
                attempt.returncode = os.waitstatus_to_exitcode(status)
                return False
        if process.is_alive(attempt.pid, attempt.started):
            return True
        if attempt.started is not None and process.start_time(attempt.pid) == attempt.started:
            # A zombie: spawned by an earlier executor instance in this same process (reap it).
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(attempt.pid, os.WNOHANG)
                attempt.returncode = os.waitstatus_to_exitcode(status)
        return False

    def _read_progress(self, attempt: _Attempt) -> None:
        """Act on the progress lines the driver appended to the log since the last read."""
        lines, attempt.offset = read_progress(attempt.log, attempt.offset)
        for _, fields in lines:
            event = fields["event"]
            if event == "started":
                attempt.driver_pid = int(fields["pid"])
            elif event == "app":
                attempt.app_id = str(fields["app_id"])
            elif event == "running":
                attempt.running = True
            elif event == "result":
                attempt.result = (str(fields["status"]), fields.get("error"))
        if attempt.reporter is not None:  # metric lines, each recorded once per attempt
            attempt.reporter.record_lines(lines, attempt.offset)

    def _job(self, attempt: _Attempt) -> PlanJob | None:
        """The attempt's job in its plan (a re-attached attempt's from its ``plan.json``)."""
        if attempt.job is None:
            plan = attempt.plan
            if plan is None:
                try:
                    plan = WorkflowPlan.from_json(AttemptFiles(attempt.workdir).plan.read_text())
                except (OSError, ValueError, KeyError):
                    return None
            with contextlib.suppress(KeyError):
                attempt.job = plan.job(attempt.command.job)
        return attempt.job

    def _record_lineage(self, attempt: _Attempt) -> None:
        """Record the datasets the plan's read / write nodes name, once per attempt."""
        job = self._job(attempt)
        if attempt.reporter is not None and job is not None:
            attempt.reporter.record_lineage(job)
        attempt.lineage_done = True

    def _request_stop(self, attempt: _Attempt, reason: str) -> None:
        """Ask the attempt to stop (called with the lock held); its exit ends it.

        The driver gets SIGTERM first (it stops its queries and the session, then spark-submit
        exits); the whole group when the driver is not known yet; SIGKILL after the grace.
        """
        if attempt.stop_reason is None:
            attempt.stop_reason = reason
        if attempt.pid is None or attempt.ended:
            return  # not submitted yet: _start acts on stop_reason
        target = attempt.driver_pid
        if target is not None and _group_of(target) == attempt.pid:
            with contextlib.suppress(OSError):
                os.kill(target, signal.SIGTERM)
        else:
            process.signal_group(attempt.pid, signal.SIGTERM)
        if attempt.kill_at is None:
            attempt.kill_at = time.monotonic() + self.settings.stop_grace
        self._wake.notify_all()

    # -- the end of an attempt -----------------------------------------------------------------

    def _finish(self, attempt: _Attempt) -> None:
        """spark-submit is gone: record how the attempt ended."""
        with self._lock:
            if attempt.ended:
                return
            attempt.ended = True
            reason = attempt.stop_reason
        returncode = attempt.returncode
        assert attempt.pid is not None
        process.signal_group(attempt.pid, signal.SIGKILL)  # leftovers of the group, if any
        error: str | None = None
        if reason == _STOPPED:
            status = JobStatus.STOPPED
        elif reason is not None:
            status, error = JobStatus.FAILED, reason
        elif attempt.result is not None:
            status, error = JobStatus(attempt.result[0]), attempt.result[1]
        else:
            status = JobStatus.FAILED
            how = "exited" if returncode is None else f"exited with code {returncode}"
            error = f"spark-submit {how} without a result: {_log_tail(attempt.log)}"
        self._report_end(attempt, status, error, exit_code=returncode)

    def _report_end(
        self,
        attempt: _Attempt,
        status: JobStatus,
        error: str | None,
        *,
        exit_code: int | None = None,
    ) -> None:
        try:
            if status is JobStatus.FINISHED and attempt.reported is JobStatus.STARTING:
                self._set_status(attempt, JobStatus.RUNNING, external_id=attempt.app_id)
            if status is JobStatus.FINISHED and not attempt.lineage_done:
                self._record_lineage(attempt)  # before FINISHED: rules it fires see the lineage
            self._set_status(
                attempt,
                status,
                error=None if error is None else error[:MAX_ERROR],
                exit_code=exit_code,
                external_id=attempt.app_id,
            )
        except IllegalTransitionError as exc:
            log.warning("spark job execution %s already ended: %s", attempt.key, exc)
        finally:
            with self._lock:
                attempt.ended = True
                done = list(attempt.waiting_commands)
                self._attempts.pop(attempt.key, None)
            self._start_done(attempt)
            for command in done:
                self.context.on_command_done(command)

    def _end_before_start(self, attempt: _Attempt, error: str) -> None:
        log.warning("spark job execution %s failed before it started: %s", attempt.key, error)
        with contextlib.suppress(OSError):
            attempt.log.parent.mkdir(parents=True, exist_ok=True)
            with open(attempt.log, "a") as out:
                out.write(f"[tideflow] the Spark job did not start: {error}\n")
        self._report_end(attempt, JobStatus.FAILED, error)

    def _forget(self, attempt: _Attempt) -> None:
        with self._lock:
            attempt.ended = True
            self._attempts.pop(attempt.key, None)

    def _start_done(self, attempt: _Attempt) -> None:
        if not attempt.start_done:
            attempt.start_done = True
            self.context.on_command_done(attempt.command.command_id)

    def _set_status(self, attempt: _Attempt, status: JobStatus, **extra: Any) -> None:
        command = attempt.command
        if "log_uri" not in extra and attempt.reported is JobStatus.INIT and attempt.log.exists():
            extra["log_uri"] = str(attempt.log)
        extra = {key: value for key, value in extra.items() if value is not None}
        self.context.executions.set_job_status(
            command.project, command.job_execution_id, status, **extra
        )
        attempt.reported = status

    # -- re-attachment -------------------------------------------------------------------------

    def reconcile(self, attempts: Sequence[JobCommand]) -> None:
        """Re-attach to this host's live Spark attempts; end those whose process is gone."""
        for command in attempts:
            job = self.context.executions.get_job_execution(
                command.project, command.job_execution_id
            )
            if job.host not in (None, self.host) or job.status.is_terminal:
                continue
            state = self.state_path(command.job_execution_id)
            if not state.exists():
                continue  # not submitted by a spark executor on this home
            with self._lock:
                if command.job_execution_id in self._attempts:
                    continue
                attempt = self._new_attempt(command, None)
                self._attempts[attempt.key] = attempt
            self._adopt(attempt, job)

    def _adopt(self, attempt: _Attempt, job: JobExecution) -> None:
        """Watch an attempt submitted earlier (pid + start time from its state file)."""
        try:
            saved = json.loads(attempt.state.read_text())
        except (OSError, ValueError):
            saved = {}
        with self._lock:
            attempt.pid = int(saved["pid"]) if saved.get("pid") else job.pid
            attempt.started = saved.get("started")
            attempt.reported = job.status
            attempt.timeout = saved.get("timeout")
            if attempt.timeout:
                elapsed = time.time() - float(saved.get("time") or time.time())
                attempt.deadline = time.monotonic() + attempt.timeout - elapsed
        if job.status is JobStatus.INIT and attempt.pid is not None:
            with contextlib.suppress(IllegalTransitionError):
                self._set_status(attempt, JobStatus.STARTING, pid=attempt.pid, host=self.host)
        self._start_done(attempt)
        if attempt.pid is None:
            self._read_progress(attempt)
            self._finish_without_process(attempt)
            return
        self._read_progress(attempt)  # the driver's pid, app id and state so far
        log.info("re-attached to spark job execution %s (pid %s)", attempt.key, attempt.pid)
        self._ensure_supervisor()
        with self._lock:
            self._wake.notify_all()

    def _finish_without_process(self, attempt: _Attempt) -> None:
        with self._lock:
            attempt.ended = True
        status, error = (
            (JobStatus(attempt.result[0]), attempt.result[1])
            if attempt.result is not None
            else (JobStatus.FAILED, "the Spark job's process is unknown and it left no result")
        )
        self._report_end(attempt, status, error)

    # -- inspection and shutdown ---------------------------------------------------------------

    def application_id(self, job_execution_id: int) -> str | None:
        """The Spark application id of an attempt this executor holds, once reported."""
        with self._lock:
            attempt = self._attempts.get(job_execution_id)
            return None if attempt is None else attempt.app_id

    def active(self) -> list[int]:
        """Job execution ids of the attempts held now (submitting to stopping)."""
        with self._lock:
            return sorted(self._attempts)

    def close(self) -> None:
        """Stop supervising; running Spark jobs keep running (and are re-attached later)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake.notify_all()
            workers, supervisor = self._workers, self._supervisor
        if workers is not None:
            workers.shutdown(wait=True, cancel_futures=True)
        if supervisor is not None:
            supervisor.join(10)


def _conf(value: Any, what: str) -> dict[str, str]:
    """``spark_conf`` as string pairs.

    Raises:
        InvalidArgumentError: It is not a mapping.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(f"{what} must be a mapping of Spark conf keys to values")
    return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}


def _spawn(argv: list[str], env: Mapping[str, str], cwd: Path, log_path: Path) -> int:
    """Start ``argv`` in ``cwd`` in a new session, output appended to ``log_path``; its pid.

    ``posix_spawn`` rather than :class:`subprocess.Popen`: the job outlives this executor
    instance (and the server), so nothing here may own it beyond its pid; the executor reaps it
    with ``waitpid`` while it watches. ``sh`` changes directory, then execs (the pid stays).
    """
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    shell = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', str(cwd), *argv]
    return os.posix_spawn(shell[0], shell, dict(env), file_actions=actions, setsid=True)


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _log_tail(path: Path, lines: int = 6) -> str:
    """The last meaningful lines of a log, on one line (what a failure without a result shows)."""
    try:
        with open(path, "rb") as log_file:
            log_file.seek(0, os.SEEK_END)
            log_file.seek(max(0, log_file.tell() - 16384))
            text = log_file.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    tail = " | ".join(kept[-lines:]) or "(empty log)"
    return tail if len(tail) <= MAX_ERROR - 200 else "..." + tail[-(MAX_ERROR - 203) :]
