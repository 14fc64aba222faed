"""The ray executor: Python-engine jobs (``platform="ray"``) as Ray jobs on a Ray cluster.

Life of an attempt (docs/executors.md tells users the same):

1. **Prepared** on a worker thread, as the local executor does it: the verified, extracted code
   package and the control files of :mod:`tideflow.domain.attempt` (``attempt.json`` with the
   connect-back settings, ``plan.json``) in ``$TIDEFLOW_HOME/work/<execution>/<job>/<attempt>/``.
2. **Submitted** through Ray's Job Submission API with that directory as the runtime
   environment's ``working_dir`` and ``python -m tideflow.executors.ray_entry <runtime>`` as the
   entrypoint: the job runs Tideflow's own runtime and connects back to the server over gRPC
   (``TIDEFLOW_SERVER`` / ``TIDEFLOW_TOKEN`` in the runtime environment's variables), like a
   local job. The submission id is derived from the home and the job execution, and written to
   ``$TIDEFLOW_HOME/ray/attempts/<project>/<job execution>.json`` *before* submitting, so no
   instance ever submits an attempt twice (Ray refuses a second submission under one id, and a
   later instance finds the file and re-attaches). The job becomes STARTING with the submission
   id as its ``external_id``.
3. **RUNNING** when the runtime reports its processors open (a marker line in the job's log,
   relayed by :mod:`tideflow.executors.ray_entry`), not when Ray starts the entrypoint.
4. **Ended** by Ray's status: SUCCEEDED -> FINISHED (or what the runtime's result says),
   FAILED -> FAILED with the runtime's one-line error (else Ray's message), STOPPED -> STOPPED.

A supervisor thread (started with the first attempt, not before) polls each live attempt every
``poll_interval`` seconds: its status, and its log, appended to
``$TIDEFLOW_HOME/logs/jobs/<execution>/<job>/<attempt>.log`` as it grows -- so ``tideflow job
logs`` works as for local jobs, also for a remote cluster. STOP calls ``stop_job``: Ray sends
SIGTERM, the runtime closes the processors and ends STOPPED (Ray SIGKILLs after ``stop_wait``
seconds). A job ``timeout`` stops the job and ends it FAILED.

Where: the job config's ``ray_address``, else the ``address`` option (``tideflow server start
--ray-address``), else a local head on loopback that the executor starts on first need
(:mod:`tideflow.executors.ray_head`). Ray is imported only then; without it the job FAILS with
an error naming the ``ray`` extra, and the server runs on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tideflow.client.package import extract_package
from tideflow.compiler.generator import default_registry as engines
from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.attempt import AttemptFiles, write_atomically
from tideflow.domain.scheduling import CommandAction, JobCommand, command_id
from tideflow.domain.status import JobStatus
from tideflow.errors import IllegalTransitionError, InvalidArgumentError, TideflowError
from tideflow.executors.base import Executor, ExecutorContext, settings_from_options
from tideflow.executors.ray_entry import RESULT_MARKER, RUNNING_MARKER
from tideflow.executors.ray_head import LocalRayHead
from tideflow.executors.spec import attempt_spec, job_environment

log = logging.getLogger(__name__)

ADDRESS_CONFIG = "ray_address"
"""The job config key naming a job's Ray cluster."""
ENTRY_MODULE = "tideflow.executors.ray_entry"
_MISSING = "Ray is not installed: install the ray extra (pip install 'tideflow[ray]')"


@dataclass(frozen=True)
class RaySettings:
    """The ray executor's options (``ExecutorContext.options``).

    Attributes:
        address: The Ray cluster's Job Submission (dashboard) address, ``http://HOST:8265``,
            for jobs whose config names none; ``None`` starts a local head on loopback.
        python: The interpreter that runs a job's entrypoint on the cluster; this one's by
            default (right for a local head; a remote cluster needs its own with Tideflow).
        poll_interval: Seconds between two looks at a live job's status and log.
        stop_wait: Seconds Ray gives a stopped job between SIGTERM and SIGKILL.
        entrypoint_num_cpus: CPUs reserved for a job's entrypoint (Ray's default: none).
        runtime_env: More runtime-environment fields (``pip``, ``env_vars`` ...), merged under
            Tideflow's own.
        head_num_cpus: CPUs the local head offers (``None``: Ray counts them).
        head_start_timeout: Seconds the local head gets to answer.
        head_startup_nice: Niceness the local head starts with (negative: more CPU while it
            starts, for a busy machine; see :class:`~tideflow.executors.ray_head.LocalRayHead`).
        submit_timeout: Seconds a submission is retried while the cluster says "try again
            later" (a head that just started has no job agent yet).
    """

    address: str | None = None
    python: str | None = None
    poll_interval: float = 0.5
    stop_wait: float = 10.0
    entrypoint_num_cpus: float | None = None
    runtime_env: Mapping[str, Any] = field(default_factory=dict)
    head_num_cpus: int | None = None
    head_start_timeout: float = 120.0
    head_startup_nice: int = 0
    submit_timeout: float = 120.0

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> RaySettings:
        """Settings from an options mapping; unknown keys are refused.

        Raises:
            InvalidArgumentError: An unknown option.
        """
        return settings_from_options(cls, options, "ray")


@dataclass
class _Attempt:
    """What the executor knows about one attempt."""

    command: JobCommand
    log: Path
    record: Path
    submission_id: str
    plan: WorkflowPlan | None = None
    address: str | None = None
    submitted: bool = False
    reported: JobStatus = JobStatus.INIT
    stop_reason: str | None = None
    stop_sent: bool = False
    start_done: bool = False
    ended: bool = False
    log_offset: int = 0
    running_seen: bool = False
    result: dict[str, Any] | None = None
    deadline: float | None = None
    timeout: float | None = None
    received: float = field(default_factory=time.monotonic)
    running_at: float | None = None
    waiting_commands: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return str(self.command.job_execution_id)


_STOPPED = "STOPPED"


class RayExecutor(Executor):
    """Job attempts as Ray jobs, watched over the Job Submission API, re-attached after restarts."""

    name = "ray"
    supports_stop = True
    supports_reattach = True
    supports_requirements = False

    def __init__(self, context: ExecutorContext) -> None:
        super().__init__(context)
        self.settings = RaySettings.from_options(context.options)
        self.home = Path(context.home)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._attempts: dict[str, _Attempt] = {}
        self._closed = False
        self._workers: ThreadPoolExecutor | None = None
        self._supervisor: threading.Thread | None = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._head: LocalRayHead | None = None
        self._home_tag = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:8]
        self._latencies: dict[int, float] = {}

    # -- paths and names -----------------------------------------------------------------------

    def workdir(self, execution_id: int, job: str, attempt: int) -> Path:
        """The local working directory an attempt is prepared in (and submitted from)."""
        return self.home / "work" / str(execution_id) / job / str(attempt)

    def log_path(self, execution_id: int, job: str, attempt: int) -> Path:
        """The log file an attempt's Ray log is copied to."""
        return self.home / "logs" / "jobs" / str(execution_id) / job / f"{attempt}.log"

    def record_path(self, command: JobCommand) -> Path:
        """The file holding an attempt's submission id and cluster (written before submitting)."""
        return self.home / "ray" / "attempts" / command.project / f"{command.job_execution_id}.json"

    def submission_id(self, command: JobCommand) -> str:
        """The attempt's Ray submission id: unique per home and job execution, and stable."""
        job = re.sub(r"[^A-Za-z0-9_-]", "_", command.job)[:40]
        return f"tideflow-{self._home_tag}-{command.job_execution_id}-{job}-{command.attempt}"

    @property
    def local_head(self) -> LocalRayHead:
        """The local head jobs run on when no cluster is named (started on first need)."""
        with self._lock:
            if self._head is None:
                self._head = LocalRayHead(
                    self.home / "ray",
                    num_cpus=self.settings.head_num_cpus,
                    stop_wait=self.settings.stop_wait,
                    start_timeout=self.settings.head_start_timeout,
                    startup_nice=self.settings.head_startup_nice,
                )
            return self._head

    def latency(self, job_execution_id: int) -> float | None:
        """Seconds from an attempt's START to RUNNING reported (attempts this instance ran)."""
        with self._lock:
            return self._latencies.get(job_execution_id)

    # -- commands ------------------------------------------------------------------------------

    def launch(self, command: JobCommand, plan: WorkflowPlan) -> None:
        """Prepare and submit the attempt on a worker thread; returns at once."""
        job = plan.job(command.job)
        with self._lock:
            if self._closed:
                raise TideflowError("the ray executor is closed")
            if str(command.job_execution_id) in self._attempts:
                return  # a duplicate: the attempt is already ours
            attempt = self._new_attempt(command)
            attempt.plan = plan
            attempt.timeout = job.timeout
            self._attempts[attempt.key] = attempt
        self._pool().submit(self._prepare, attempt)

    def stop(self, command: JobCommand) -> None:
        """Stop an attempt: before submission it never runs; after, Ray's ``stop_job``."""
        with self._lock:
            attempt = self._attempts.get(str(command.job_execution_id))
            if attempt is not None:
                attempt.waiting_commands.append(command.command_id)
                if attempt.stop_reason is None:
                    attempt.stop_reason = _STOPPED
                self._wake.notify_all()
                return
        self._pool().submit(self._stop_unknown, command)

    def _stop_unknown(self, command: JobCommand) -> None:
        """A STOP for an attempt this instance does not hold: never started, ended, or orphaned."""
        try:
            job = self.context.executions.get_job_execution(
                command.project, command.job_execution_id
            )
            if job.status is JobStatus.INIT:
                recorded = _read_json(self.record_path(command))
                if recorded is not None:  # a crash between recording and reporting STARTING
                    self._stop_recorded(recorded)
                self.context.executions.set_job_status(
                    command.project, command.job_execution_id, JobStatus.STOPPED
                )
            elif not job.status.is_terminal:
                start = replace(
                    command,
                    action=CommandAction.START,
                    command_id=command_id(
                        command.execution_id, command.job, command.attempt, CommandAction.START
                    ),
                )
                self.reconcile([start])
                with self._lock:
                    adopted = str(command.job_execution_id) in self._attempts
                if adopted:
                    self.stop(command)
                    return
        except IllegalTransitionError:
            pass  # it moved on by itself meanwhile
        except Exception:  # the executor's edge: log and let the command be retried
            log.exception("stopping job execution %s failed", command.job_execution_id)
            return
        self.context.on_command_done(command.command_id)

    def _stop_recorded(self, recorded: Mapping[str, Any]) -> None:
        """Stop a recorded submission that may or may not have reached Ray."""
        address, submission_id = recorded.get("address"), recorded.get("submission_id")
        if not address or not submission_id:
            return
        with contextlib.suppress(RuntimeError):  # not there: it never reached Ray
            self._client(str(address)).stop_job(str(submission_id))

    def _new_attempt(self, command: JobCommand) -> _Attempt:
        return _Attempt(
            command=command,
            log=self.log_path(command.execution_id, command.job, command.attempt),
            record=self.record_path(command),
            submission_id=self.submission_id(command),
        )

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._workers is None:
                self._workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ray-submit")
            return self._workers

    # -- preparation and submission ------------------------------------------------------------

    def _prepare(self, attempt: _Attempt) -> None:
        command = attempt.command
        try:
            job = self.context.executions.get_job_execution(
                command.project, command.job_execution_id
            )
            if job.status.is_terminal:
                self._forget(attempt)
                return
            recorded = _read_json(attempt.record)
            launched_before = recorded is not None or job.status is not JobStatus.INIT
            if launched_before and self._resume(attempt, job.status, recorded):
                return
            assert attempt.plan is not None
            self._submit(attempt, attempt.plan)
        except TideflowError as exc:
            self._end_before_start(attempt, str(exc))
        except Exception as exc:  # the executor's edge: the job fails, the executor goes on
            log.exception("submitting job execution %s to Ray failed", command.job_execution_id)
            self._end_before_start(attempt, f"submitting the job to Ray failed: {exc!r}")

    def _resume(
        self, attempt: _Attempt, status: JobStatus, recorded: Mapping[str, Any] | None
    ) -> bool:
        """Attach to an attempt submitted before (by any instance); ``False``: submit it now."""
        address = str((recorded or {}).get("address") or "") or self._address(attempt.plan)
        attempt.address = address
        if recorded is not None:
            attempt.submission_id = str(recorded.get("submission_id") or attempt.submission_id)
        if self._ray_status(address, attempt.submission_id) is None:
            if status is JobStatus.INIT:
                return False  # recorded, but the submission never reached Ray: submit it now
            raise TideflowError(
                f"Ray job {attempt.submission_id} is gone from the cluster at {address}"
            )
        with self._lock:
            attempt.submitted = True
            attempt.reported = status
            self._restore_progress(attempt)
        if status is JobStatus.INIT:
            self._report_starting(attempt)
        self._start_done(attempt)
        self._watch()
        return True

    def _submit(self, attempt: _Attempt, plan: WorkflowPlan) -> None:
        command = attempt.command
        job = plan.job(command.job)
        runtime = self._runtime(job.engine)
        address = self._address(plan)
        attempt.address = address
        workdir = self._prepare_files(attempt, plan)
        attempt.record.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(
            attempt.record,
            json.dumps(
                {
                    "submission_id": attempt.submission_id,
                    "address": address,
                    "workdir": str(workdir),
                    "log": str(attempt.log),
                }
            ),
        )
        with self._lock:
            stopped = attempt.stop_reason is not None
        if stopped:
            self._end(attempt, JobStatus.STOPPED, None)
            return
        python = self.settings.python or sys.executable
        entrypoint = shlex.join([python, "-m", ENTRY_MODULE, runtime])
        runtime_env = self._runtime_env(command, workdir)
        client = self._client(address)
        options: dict[str, Any] = {}
        if self.settings.entrypoint_num_cpus is not None:
            options["entrypoint_num_cpus"] = self.settings.entrypoint_num_cpus
        deadline = time.monotonic() + self.settings.submit_timeout
        while True:
            try:
                client.submit_job(
                    entrypoint=entrypoint,
                    submission_id=attempt.submission_id,
                    runtime_env=runtime_env,
                    metadata={"tideflow_job": f"{command.workflow}.{command.job}"},
                    **options,
                )
                break
            except RuntimeError as exc:
                if "already exists" in str(exc):
                    break  # submitted by an earlier instance that crashed before reporting
                # A head that just started answers before its job agent is up.
                if "try again later" not in str(exc) or time.monotonic() > deadline:
                    raise TideflowError(f"Ray refused job {attempt.submission_id}: {exc}") from exc
            except OSError as exc:  # requests' ConnectionError: a busy or restarting dashboard
                if time.monotonic() > deadline:
                    raise TideflowError(
                        f"cannot reach the Ray cluster at {address}: {exc}"
                    ) from exc
            time.sleep(1.0)
        with self._lock:
            attempt.submitted = True
            if attempt.timeout:
                attempt.deadline = time.monotonic() + attempt.timeout
        _append(
            attempt.log,
            f"[tideflow] submitted to the Ray cluster at {address} as {attempt.submission_id}\n",
        )
        self._report_starting(attempt)
        self._start_done(attempt)
        self._watch()

    def _prepare_files(self, attempt: _Attempt, plan: WorkflowPlan) -> Path:
        """The attempt's working directory: code package and control files."""
        command = attempt.command
        files = AttemptFiles(self.workdir(command.execution_id, command.job, command.attempt))
        workdir = files.workdir
        shutil.rmtree(workdir, ignore_errors=True)  # half-prepared by a crashed instance
        workdir.mkdir(parents=True)
        attempt.log.parent.mkdir(parents=True, exist_ok=True)
        attempt.log.touch()
        workflows = self.context.workflows
        snapshot = workflows.get_snapshot(command.project, command.snapshot_id)
        if snapshot.code_sha256:
            extract_package(workflows.get_package(command.project, command.snapshot_id), workdir)
        files.control.mkdir()
        spec = attempt_spec(
            self.context,
            command,
            server_url=self.context.server_url,
        )
        write_atomically(files.plan, plan.to_json())
        write_atomically(files.spec, spec.to_json())
        return workdir

    def _runtime_env(self, command: JobCommand, workdir: Path) -> dict[str, Any]:
        extra = dict(self.settings.runtime_env)
        env_vars = {
            **dict(extra.pop("env_vars", {}) or {}),
            **job_environment(self.context, command),
            "RAY_JOB_STOP_WAIT_TIME_S": str(max(1, round(self.settings.stop_wait))),
        }
        return {**extra, "working_dir": str(workdir), "env_vars": env_vars}

    def _runtime(self, engine: str) -> str:
        try:
            runtime = engines.get(engine).runtime
        except InvalidArgumentError:
            runtime = None
        if runtime is None:
            raise InvalidArgumentError(
                f"engine {engine!r} has no runtime the ray executor can run (Ray runs Python jobs)",
                field="engine",
            )
        return runtime

    def _address(self, plan: WorkflowPlan | None) -> str:
        """The job's cluster: its config, the executor's option, or the local head."""
        configured: Any = None
        if plan is not None and plan.jobs:
            configured = plan.jobs[0].config.get(ADDRESS_CONFIG)
        address = str(configured or self.settings.address or "")
        if not address:
            return self.local_head.address()
        return address if "://" in address else f"http://{address}"

    def _client(self, address: str) -> Any:
        """A Job Submission client for ``address`` (Ray imported here, on first need)."""
        with self._clients_lock:
            client = self._clients.get(address)
            if client is None:
                try:
                    from ray.job_submission import JobSubmissionClient
                except ImportError as exc:
                    raise TideflowError(f"{_MISSING}: {exc}") from exc
                try:
                    client = JobSubmissionClient(address)
                except (OSError, RuntimeError, ValueError) as exc:
                    raise TideflowError(
                        f"cannot reach the Ray cluster at {address}: {exc}"
                    ) from exc
                self._clients[address] = client
            return client

    def _ray_status(self, address: str, submission_id: str) -> str | None:
        """Ray's status of ``submission_id`` (``None``: no such job)."""
        try:
            info = self._client(address).get_job_info(submission_id)
        except RuntimeError as exc:
            if "does not exist" in str(exc) or "404" in str(exc):
                return None
            raise
        return str(info.status.value)

    # -- supervision ---------------------------------------------------------------------------

    def _watch(self) -> None:
        """Make sure the supervisor runs (it starts with the first submitted attempt)."""
        with self._lock:
            if self._closed or (self._supervisor is not None and self._supervisor.is_alive()):
                self._wake.notify_all()
                return
            self._supervisor = threading.Thread(
                target=self._supervise, name="ray-supervisor", daemon=True
            )
            self._supervisor.start()

    def _supervise(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                watched = [a for a in self._attempts.values() if a.submitted and not a.ended]
            for attempt in watched:
                try:
                    self._check(attempt)
                except Exception:  # the supervisor must survive one attempt's trouble
                    log.exception("watching Ray job %s failed", attempt.submission_id)
            with self._lock:
                if self._closed:
                    return
                self._wake.wait(self.settings.poll_interval)

    def _check(self, attempt: _Attempt) -> None:
        assert attempt.address is not None
        client = self._client(attempt.address)
        with self._lock:
            if (
                attempt.deadline is not None
                and time.monotonic() >= attempt.deadline
                and attempt.stop_reason is None
            ):
                attempt.stop_reason = f"timed out after {attempt.timeout:g} s"
            send_stop = attempt.stop_reason is not None and not attempt.stop_sent
            attempt.stop_sent = attempt.stop_sent or send_stop
        if send_stop:
            client.stop_job(attempt.submission_id)
        try:
            info = client.get_job_info(attempt.submission_id)
        except RuntimeError as exc:
            if "does not exist" not in str(exc):
                raise
            self._end(attempt, JobStatus.FAILED, f"Ray job {attempt.submission_id} is gone")
            return
        status = str(info.status.value)
        terminal = status in ("SUCCEEDED", "FAILED", "STOPPED")
        self._copy_log(attempt, str(client.get_job_logs(attempt.submission_id)), final=terminal)
        if attempt.running_seen and attempt.reported is JobStatus.STARTING:
            self._report_running(attempt)
        if terminal:
            self._end_from_ray(attempt, status, info)

    def _copy_log(self, attempt: _Attempt, text: str, *, final: bool) -> None:
        """Append the Ray log's new complete lines to the attempt's log; read the markers."""
        new = text[attempt.log_offset :]
        if not final:
            new = new[: new.rfind("\n") + 1]
        if not new:
            return
        attempt.log_offset += len(new)
        kept: list[str] = []
        for line in new.splitlines(keepends=True):
            if line.startswith(RUNNING_MARKER):
                attempt.running_seen = True
            elif line.startswith(RESULT_MARKER):
                with contextlib.suppress(ValueError):
                    attempt.result = json.loads(line[len(RESULT_MARKER) :])
            else:
                kept.append(line)
        if kept:
            _append(attempt.log, "".join(kept))
        progress = {"offset": attempt.log_offset, "running": attempt.running_seen}
        write_atomically(_progress_path(attempt.record), json.dumps(progress))

    @staticmethod
    def _restore_progress(attempt: _Attempt) -> None:
        """Where an earlier instance left off copying the log (no line is copied twice)."""
        progress = _read_json(_progress_path(attempt.record)) or {}
        attempt.log_offset = int(progress.get("offset") or 0)
        attempt.running_seen = attempt.running_seen or bool(progress.get("running"))

    def _end_from_ray(self, attempt: _Attempt, status: str, info: Any) -> None:
        result = attempt.result or {}
        reason = attempt.stop_reason
        error: str | None = None
        exit_code = getattr(info, "driver_exit_code", None)
        if reason == _STOPPED:
            ended = JobStatus.STOPPED
        elif reason is not None:
            ended, error = JobStatus.FAILED, reason
        elif result.get("status") in ("FINISHED", "FAILED", "STOPPED"):
            ended, error = JobStatus(result["status"]), result.get("error")
        elif status == "SUCCEEDED":
            ended = JobStatus.FINISHED
        elif status == "STOPPED":
            ended = JobStatus.STOPPED
        else:
            message = str(getattr(info, "message", "") or "").strip()
            ended, error = JobStatus.FAILED, f"the Ray job failed: {message[:1500]}"
        self._end(attempt, ended, error, exit_code=exit_code)

    # -- status reports ------------------------------------------------------------------------

    def _set_status(self, attempt: _Attempt, status: JobStatus, **extra: Any) -> None:
        command = attempt.command
        if attempt.reported is JobStatus.INIT and attempt.log.exists():
            extra["log_uri"] = str(attempt.log)
        self.context.executions.set_job_status(
            command.project, command.job_execution_id, status, **extra
        )
        attempt.reported = status

    def _report_starting(self, attempt: _Attempt) -> None:
        host = urlparse(attempt.address or "").netloc or None
        try:
            self._set_status(
                attempt, JobStatus.STARTING, external_id=attempt.submission_id, host=host
            )
        except IllegalTransitionError:
            # Ended meanwhile (stopped before it was reported): it must not run.
            with self._lock:
                attempt.stop_reason = attempt.stop_reason or _STOPPED
            self._watch()

    def _report_running(self, attempt: _Attempt) -> None:
        attempt.running_at = time.monotonic()
        with self._lock:
            self._latencies[attempt.command.job_execution_id] = (
                attempt.running_at - attempt.received
            )
            if len(self._latencies) > 1000:
                self._latencies.pop(next(iter(self._latencies)))
        self._set_status(attempt, JobStatus.RUNNING)

    def _end(
        self,
        attempt: _Attempt,
        status: JobStatus,
        error: str | None,
        *,
        exit_code: int | None = None,
    ) -> None:
        with self._lock:
            if attempt.ended:
                return
            attempt.ended = True
        try:
            if status is JobStatus.FINISHED and attempt.reported is JobStatus.STARTING:
                self._set_status(attempt, JobStatus.RUNNING)
            self._set_status(attempt, status, error=error, exit_code=exit_code)
        except IllegalTransitionError as exc:
            log.warning("job execution %s already ended: %s", attempt.key, exc)
        finally:
            self._forget(attempt)

    def _forget(self, attempt: _Attempt) -> None:
        """Drop an ended attempt and complete the commands waiting on it."""
        with self._lock:
            attempt.ended = True
            if self._attempts.get(attempt.key) is attempt:
                del self._attempts[attempt.key]
            done = list(attempt.waiting_commands)
            attempt.waiting_commands.clear()
            self._wake.notify_all()
        self._start_done(attempt)
        for command in done:
            self.context.on_command_done(command)

    def _start_done(self, attempt: _Attempt) -> None:
        """The START took effect (submitted, or ended before): complete it once."""
        with self._lock:
            if attempt.start_done:
                return
            attempt.start_done = True
        self.context.on_command_done(attempt.command.command_id)

    def _end_before_start(self, attempt: _Attempt, error: str) -> None:
        log.warning("job execution %s failed before it started: %s", attempt.key, error)
        with contextlib.suppress(OSError):
            _append(attempt.log, f"[tideflow] the job did not start: {error}\n")
        self._end(attempt, JobStatus.FAILED, error)

    # -- re-attachment -------------------------------------------------------------------------

    def reconcile(self, attempts: Sequence[JobCommand]) -> None:
        """Re-attach to live attempts this home submitted to Ray (from their records)."""
        for command in attempts:
            record = self.record_path(command)
            recorded = _read_json(record)
            if recorded is None:
                continue  # not submitted to Ray from this home
            job = self.context.executions.get_job_execution(
                command.project, command.job_execution_id
            )
            if job.status.is_terminal or job.status is JobStatus.INIT:
                continue  # INIT: its START is delivered again, and launch() resumes it
            with self._lock:
                if self._closed or str(command.job_execution_id) in self._attempts:
                    continue
                attempt = self._new_attempt(command)
                attempt.submission_id = str(recorded.get("submission_id") or attempt.submission_id)
                attempt.address = str(recorded.get("address") or "")
                attempt.submitted = True
                attempt.start_done = True
                attempt.reported = job.status
                attempt.running_seen = job.status is JobStatus.RUNNING
                self._restore_progress(attempt)
                self._attempts[attempt.key] = attempt
            log.info("re-attached to Ray job %s", attempt.submission_id)
        if attempts:
            self._watch()

    # -- shutdown ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop watching; Ray jobs (and a local head) keep running and are re-attached later."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake.notify_all()
            supervisor, workers = self._supervisor, self._workers
        if workers is not None:
            workers.shutdown(wait=True, cancel_futures=True)
        if supervisor is not None:
            supervisor.join(10)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _progress_path(record: Path) -> Path:
    return record.with_suffix(".log.json")


def _append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as out:
        out.write(text)
