"""The Flink platform: each attempt is one PyFlink program that Flink's client submits to a cluster.

What the supervisor (:mod:`tideflow.executors.supervisor`) does not do for it:

- **Launch**: the cluster is found -- the job's ``flink_address`` config, else the executor's
  ``flink_address`` option, else ``$TIDEFLOW_FLINK_ADDRESS``, else the local cluster under
  ``$TIDEFLOW_HOME/engines/flink/cluster``, started on first need -- and Flink's client,
  ``$FLINK_HOME/bin/flink run -d -py <bootstrap> -pyfs <workdir>``, runs in its own session in
  PyFlink's own environment (PyFlink never enters the server's), its output appended to the
  job's log. The in-engine driver (:mod:`tideflow.engines.flink.driver`) builds the program
  and writes the Flink job id to ``flink_job.json``; the client gets no server settings and no
  token: Flink processors run on TaskManagers and never call the server.
- **Find**: the client is started once. Before it, the platform claims the attempt
  (``O_EXCL``) in ``$TIDEFLOW_HOME/engines/flink/attempts/<job execution>.json``, its own file
  beside the supervisor's record, and writes the client's pid there right after. No claim:
  the attempt never started. A claim with a pid or a Flink job id: it started. A claim with
  neither (a crash while starting the client): nobody can know, and it is not submitted again.
- **Observe**: the Flink job's state over the REST API: ``RUNNING`` with every task deployed
  is running; ``FINISHED`` ends well, ``CANCELED`` ends STOPPED, ``FAILED`` with Flink's root
  exception; a client that exits before submitting fails with the driver's one-line error.
  The end time is Flink's, also for a job that ended while the server was down.
- **Stop**: a streaming job stops with a savepoint under ``$TIDEFLOW_HOME/engines/flink/
  savepoints/<execution>/<job>/<attempt>`` (``stop_with="savepoint"``, the default), any other
  job is cancelled; a refused or failed savepoint falls back to a cancel, and a kill cancels.
  Flink ends the job by itself (no grace period): a savepoint takes as long as its state.
  A later attempt of the same streaming job resumes from the newest savepoint of an earlier
  one (``restore_savepoint=false`` to start afresh). The stop in progress is kept in the
  platform's file, so a restarted server carries it on.

Metrics and lineage (:mod:`tideflow.executors.reporting`): while a job runs, its record and
byte counts are read from the REST API every ``metrics_interval`` seconds and once more when it
ends, each a value of ``records_in`` / ``records_out`` / ``bytes_in`` / ``bytes_out`` (so far)
tagged ``engine=flink``; ``metric`` lines the driver printed while building the program are
recorded from the log. Lineage from the plan is recorded before a batch job's FINISHED and once
a streaming job is RUNNING. When an attempt ends, Flink's failure text and the tail of the
TaskManagers' logs are appended to the job's log.

Nothing heavy happens before a job needs it: the constructor touches no cluster and imports no
PyFlink. A missing environment fails the job with the command that creates it, never the server.
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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tideflow import pids
from tideflow.compiler.generator import default_registry as engines
from tideflow.compiler.plan import PlanJob
from tideflow.domain.attempt import write_atomically
from tideflow.domain.status import JobStatus
from tideflow.errors import InvalidArgumentError, TideflowError
from tideflow.executors.base import ExecutorContext, settings_from_options
from tideflow.executors.flink.cluster import (
    CLIENT_JAVA_OPTS,
    LocalFlinkCluster,
    package_java_opts,
)
from tideflow.executors.flink.environment import FlinkEnvironment, default_venv
from tideflow.executors.flink.rest import FlinkRest, FlinkRestError, normalise_address
from tideflow.executors.platform import (
    Attempt,
    Observation,
    Platform,
    Started,
    as_int,
    describe_signal_exit,
)
from tideflow.executors.reporting import JobReporter, read_progress
from tideflow.settings import scrubbed_environment

log = logging.getLogger(__name__)

ADDRESS_VARIABLE = "TIDEFLOW_FLINK_ADDRESS"
JOB_FILE = "flink_job.json"  # written by the driver (tideflow.engines.flink.driver.JOB_FILE)
BOOTSTRAP = "_tideflow_flink_main.py"
DRIVER = "tideflow.engines.flink.driver:main"
_BOOTSTRAP_SOURCE = """\
import sys
sys.path.insert(0, {workdir!r})
from tideflow.engines.flink.driver import main
sys.exit(main({workdir!r}))
"""
_RUNNING_STATES = frozenset({"RUNNING"})


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
        max_workers: Attempts launched (cluster found, client started) at once.
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


class _Live:
    """What the platform knows about one attempt in memory (``attempt.scratch``)."""

    def __init__(self, reporter: JobReporter) -> None:
        self.reporter = reporter
        self.client: subprocess.Popen[bytes] | None = None
        self.client_exit: int | None = None
        self.client_gone = False
        self.submitted_at: float | None = None
        self.stop: str | None = None  # "savepoint" or "cancel": what was asked
        self.stop_sent = False
        self.trigger: str | None = None
        self.metrics_at = 0.0
        self.log_offset = 0
        self.lineage_done = False
        self.detail = ""
        self.error: str | None = None
        self.ended = False


class FlinkPlatform(Platform):
    """Attempts as PyFlink programs on a Flink cluster (local by default)."""

    name = "flink"
    supports_stop = True
    supports_reattach = True
    supports_requirements = False
    job_token = False
    max_running = None
    stop_grace = None

    def __init__(self, context: ExecutorContext) -> None:
        super().__init__(context)
        self.settings = settings = FlinkSettings.from_options(context.options)
        self.poll_interval = settings.poll_interval
        self.host = socket.gethostname()
        self.claims = self.home / "engines" / "flink" / "attempts"
        self._lock = threading.Lock()
        self._launching = threading.BoundedSemaphore(max(1, settings.max_workers))

    # -- where things are ----------------------------------------------------------------------

    def environment(self) -> FlinkEnvironment:
        """The PyFlink environment jobs are built in."""
        if self.settings.venv:
            return FlinkEnvironment(Path(self.settings.venv).expanduser().resolve())
        return FlinkEnvironment(default_venv({**os.environ, "TIDEFLOW_HOME": str(self.home)}))

    def local_cluster(self) -> LocalFlinkCluster:
        """The local cluster started when no address is configured."""
        return LocalFlinkCluster(
            self.home / "engines" / "flink" / "cluster",
            self.environment(),
            task_slots=self.settings.task_slots,
        )

    def savepoint_dir(self, execution_id: int, job: str, attempt: int) -> Path:
        """Where a STOP puts an attempt's savepoint."""
        return (
            self.home / "engines" / "flink" / "savepoints" / str(execution_id) / job / str(attempt)
        )

    def claim_path(self, job_execution_id: int) -> Path:
        """The platform's own file of an attempt: its claim, client pid and stop in progress."""
        return self.claims / f"{job_execution_id}.json"

    # -- launch --------------------------------------------------------------------------------

    def check(self, attempt: Attempt) -> None:
        """Only ``engine='flink'`` jobs, with a valid ``stop_with``, in a set-up environment."""
        job = attempt.job
        engine = None if job is None else job.engine
        runtime = None
        with contextlib.suppress(InvalidArgumentError):
            runtime = None if engine is None else engines.get(engine).runtime
        if job is None or runtime != DRIVER:
            raise InvalidArgumentError(
                f"job {attempt.command.job!r} has engine {engine!r}: the flink executor runs "
                "only engine='flink' jobs",
                field="engine",
            )
        _check_stop_with(str(job.config.get("stop_with", self.settings.stop_with)))
        self.environment().require()

    def prepare(self, attempt: Attempt) -> None:
        """The bootstrap script Flink's client runs (it calls the driver)."""
        (attempt.files.control / BOOTSTRAP).write_text(
            _BOOTSTRAP_SOURCE.format(workdir=str(attempt.workdir))
        )

    def reserve(self, attempt: Attempt) -> None:
        """How the attempt stops: known before it runs."""
        job = attempt.job
        assert job is not None
        attempt.handle.update(
            streaming=job.streaming,
            stop_with=str(job.config.get("stop_with", self.settings.stop_with)),
        )

    def launch(self, attempt: Attempt) -> Started:
        """Claim the attempt, find (or start) the cluster and start Flink's client."""
        job = attempt.job
        assert job is not None
        with self._launching:
            self._claim(attempt)
            try:
                client = self._start_client(attempt, job)
            except BaseException:
                # No client was started: the attempt may be launched again.
                self.claim_path(attempt.key).unlink(missing_ok=True)
                raise
        live = self._live(attempt)
        live.client = client
        live.submitted_at = time.monotonic()
        attempt.handle.update(pid=client.pid, pid_started=pids.start_time(client.pid))
        self._save(attempt, live)
        # Reaped on a thread of its own: the client outlives the platform's interest in it
        # (a closed executor, a re-attaching one), and an unreaped Popen warns when collected.
        threading.Thread(
            target=self._reap, args=(attempt, live, client), name="flink-client-reaper", daemon=True
        ).start()
        return Started(pid=client.pid, host=self.host)

    def _start_client(self, attempt: Attempt, job: PlanJob) -> subprocess.Popen[bytes]:
        """Flink's client for the attempt, started on the cluster it names."""
        environment = self.environment()
        with open(attempt.log, "ab", buffering=0) as out:
            writer = _LineWriter(out)
            address, cluster = self._address(job, writer)
            attempt.handle["address"] = address
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
            workdir = str(attempt.workdir)
            env["PYTHONUNBUFFERED"] = "1"
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
            savepoint = self._restore_point(attempt, job)
            if savepoint is not None:
                argv += ["-s", savepoint, "--allowNonRestoredState"]
                writer.write(f"[tideflow] resuming from savepoint {savepoint}\n")
            argv += ["-py", str(attempt.files.control / BOOTSTRAP)]
            writer.write(f"[tideflow] submitting to Flink at {address}: {' '.join(argv)}\n")
            return subprocess.Popen(
                argv,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _claim(self, attempt: Attempt) -> None:
        """Mark the attempt launched before its client exists: it is never submitted twice."""
        self.claims.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.claim_path(attempt.key)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise TideflowError(
                f"job execution {attempt.key} was already submitted to Flink (its claim "
                f"{path} exists): it is not submitted twice"
            ) from None
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps({"claimed": time.time()}))

    def _address(self, job: PlanJob, out: _LineWriter) -> tuple[str, LocalFlinkCluster | None]:
        """The cluster's REST address (starting the local cluster if that is the one)."""
        configured = (
            str(job.config.get("flink_address") or "")
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

    def _restore_point(self, attempt: Attempt, job: PlanJob) -> str | None:
        """The newest complete savepoint of an earlier attempt of this streaming job, if resuming."""
        if not job.streaming or not bool(job.config.get("restore_savepoint", True)):
            return None
        command = attempt.command
        for earlier in range(command.attempt - 1, 0, -1):
            folder = self.savepoint_dir(command.execution_id, command.job, earlier)
            written = [m.parent for m in folder.glob("savepoint-*/_metadata") if m.is_file()]
            if written:
                return str(max(written, key=lambda p: p.stat().st_mtime))
        return None

    def _reap(self, attempt: Attempt, live: _Live, client: subprocess.Popen[bytes]) -> None:
        """Wait for Flink's client to exit and record its exit code."""
        live.client_exit = client.wait()
        self.notify(attempt.key)

    def find(self, attempt: Attempt) -> Started | None:
        """The client this platform claimed the attempt for, if it claimed it."""
        claimed = self._read_claim(attempt.key)
        if claimed is None:
            return None  # the claim comes before the client: none, no client
        for name in ("address", "pid", "pid_started"):
            if claimed.get(name) is not None:
                attempt.handle[name] = claimed[name]
        job_id = self._job_id(attempt)
        pid = as_int(attempt.handle.get("pid"))
        if pid is None and job_id is None:
            raise TideflowError(
                f"job execution {attempt.key}: the Flink client may have been started before a "
                "crash and left no trace (no pid, no Flink job id); it is not submitted again"
            )
        return Started(pid=pid, host=self.host, external_id=job_id)

    # -- observation ---------------------------------------------------------------------------

    def observe(self, attempt: Attempt) -> Observation:
        """The client until it submitted the job, then the Flink job over the REST API."""
        live = self._live(attempt)
        seen = self._observe(attempt, live)
        live.ended = live.ended or seen.ended
        return seen

    def _observe(self, attempt: Attempt, live: _Live) -> Observation:
        self._read_metric_lines(attempt, live)
        client_done = self._client_exited(attempt, live)
        job_id = self._job_id(attempt)  # after the client's exit: it writes the id first
        if live.stop is not None and not live.stop_sent:
            self._send_stop(attempt, live)
        if job_id is None:
            if client_done:
                return self._client_failed(attempt, live)
            timeout = self.settings.submit_timeout
            if live.submitted_at is not None and time.monotonic() - live.submitted_at > timeout:
                self._signal_client(attempt, signal.SIGKILL)
                live.error = f"the Flink client did not submit the job within {timeout:g} s"
                return Observation(ended=True, failure=live.error)
            return Observation()
        address = str(attempt.handle.get("address"))
        rest = FlinkRest(address)
        if live.trigger is not None:
            self._check_savepoint(attempt, live)
        try:
            state, tasks_running = rest.job_status(job_id)
        except FlinkRestError as exc:
            log.debug("flink job %s: %s", job_id, exc)
            return Observation(external_id=job_id)  # a transient outage: look again next time
        if state is None:
            live.error = f"Flink at {address} no longer knows job {job_id}"
            return Observation(ended=True, failure=live.error, external_id=job_id)
        if state in _RUNNING_STATES:
            # Also for a job found again already RUNNING (no on_running for it).
            if tasks_running and time.monotonic() >= live.metrics_at:
                self._record_job_metrics(attempt, live)
            return Observation(running=tasks_running, external_id=job_id)
        if state not in ("FINISHED", "CANCELED", "FAILED"):
            return Observation(external_id=job_id)
        ended_at = _end_time(rest, job_id)
        if state == "FINISHED":
            if live.trigger is not None:
                self._check_savepoint(attempt, live)  # it completed since the look above
            stopped = live.stop is not None
            return Observation(
                ended=True,
                result=(JobStatus.STOPPED, None) if stopped else None,
                ended_at=ended_at,
                external_id=job_id,
            )
        if state == "CANCELED":
            return Observation(
                ended=True, result=(JobStatus.STOPPED, None), ended_at=ended_at, external_id=job_id
            )
        live.detail = rest.failure(job_id)
        live.error = _summary(live.detail) or f"Flink job {job_id} failed"
        return Observation(ended=True, failure=live.error, ended_at=ended_at, external_id=job_id)

    def _client_exited(self, attempt: Attempt, live: _Live) -> bool:
        if live.client_exit is not None or live.client_gone:
            return True
        if live.client is not None:
            return False  # its reaper records the exit
        pid = as_int(attempt.handle.get("pid"))
        if pid is not None and pids.is_alive(pid, as_int(attempt.handle.get("pid_started"))):
            return False
        live.client_gone = True  # an earlier instance's client, gone
        return True

    def _client_failed(self, attempt: Attempt, live: _Live) -> Observation:
        """The client exited without a Flink job id: the driver's error, or the client's."""
        result = attempt.files.read_result()
        if result is not None and result.error:
            live.error = result.error
        else:
            client = describe_signal_exit(live.client_exit, "the Flink client")
            live.error = f"{client} before submitting: " + _last_error_line(attempt.log)
        return Observation(ended=True, failure=live.error, exit_code=live.client_exit)

    def _job_id(self, attempt: Attempt) -> str | None:
        """The Flink job id, once the driver wrote it."""
        job_id = attempt.handle.get("job_id")
        if job_id is None:
            found = attempt.files.read_json(attempt.files.control / JOB_FILE)
            if found and found.get("job_id"):
                job_id = attempt.handle["job_id"] = str(found["job_id"])
        return None if job_id is None else str(job_id)

    # -- stopping ------------------------------------------------------------------------------

    def stop(self, attempt: Attempt, *, kill: bool) -> None:
        """Stop with a savepoint (a streaming job, ``stop_with="savepoint"``) or cancel."""
        live = self._live(attempt)
        savepoint = bool(attempt.handle.get("streaming")) and (
            attempt.handle.get("stop_with", self.settings.stop_with) == "savepoint"
        )
        with self._lock:
            if kill:
                again = live.stop != "cancel"
                live.stop = "cancel"
                live.stop_sent = live.stop_sent and not again
            elif live.stop is None:
                live.stop = "savepoint" if savepoint else "cancel"
        if kill:
            self._signal_client(attempt, signal.SIGKILL)
        self._send_stop(attempt, live)
        self.notify(attempt.key)

    def _send_stop(self, attempt: Attempt, live: _Live) -> None:
        job_id = self._job_id(attempt)
        if job_id is None:
            # Not submitted yet: end the client (again each look, until it exits or a job id
            # shows up after all -- then that job is stopped).
            self._save(attempt, live)
            if not self._client_exited(attempt, live):
                self._signal_client(attempt, signal.SIGTERM)
            return
        with self._lock:
            if live.stop_sent:
                return
            live.stop_sent = True
        self._save(attempt, live)
        rest = FlinkRest(str(attempt.handle.get("address")))
        with _append(attempt.log) as out:
            if live.stop == "savepoint":
                command = attempt.command
                target = self.savepoint_dir(command.execution_id, command.job, command.attempt)
                try:
                    live.trigger = rest.stop_with_savepoint(job_id, f"file://{target}")
                    out.write(
                        f"[tideflow] stopping Flink job {job_id} with a savepoint in {target}\n"
                    )
                    self._save(attempt, live)
                    return
                except FlinkRestError as exc:
                    out.write(f"[tideflow] stop with savepoint refused ({exc}); cancelling\n")
            out.write(f"[tideflow] cancelling Flink job {job_id}\n")
            with contextlib.suppress(FlinkRestError):
                rest.cancel(job_id)

    def _check_savepoint(self, attempt: Attempt, live: _Live) -> None:
        job_id = self._job_id(attempt)
        trigger = live.trigger
        if job_id is None or trigger is None:
            return
        rest = FlinkRest(str(attempt.handle.get("address")))
        try:
            status, location, failure = rest.savepoint_status(job_id, trigger)
        except FlinkRestError:
            return
        if status != "COMPLETED":
            return
        live.trigger = None
        with _append(attempt.log) as out:
            if location:
                out.write(f"[tideflow] savepoint written: {location}\n")
            else:
                out.write(
                    f"[tideflow] the savepoint failed ({_summary(failure or '')}); cancelling\n"
                )
                with contextlib.suppress(FlinkRestError):
                    rest.cancel(job_id)
        self._save(attempt, live)

    def _signal_client(self, attempt: Attempt, signum: signal.Signals) -> None:
        live = self._live(attempt)
        pid = as_int(attempt.handle.get("pid"))
        if pid is not None and not self._client_exited(attempt, live):
            pids.signal_group(pid, signum)

    # -- hooks ---------------------------------------------------------------------------------

    def on_running(self, attempt: Attempt) -> None:
        """A streaming job's lineage (its counts were read when its tasks were seen running)."""
        if attempt.handle.get("streaming"):
            self._record_lineage(attempt, self._live(attempt))

    def on_end(self, attempt: Attempt, status: JobStatus) -> None:
        """Flink's account in the log, the final counts, and a finished job's lineage."""
        live = self._live(attempt)
        job_id = self._job_id(attempt)
        address = attempt.handle.get("address")
        error = live.error if status is JobStatus.FAILED else None
        with contextlib.suppress(OSError), _append(attempt.log) as out:
            if live.detail:
                out.write(f"[tideflow] Flink reports the job failed:\n{live.detail[:8000]}\n")
            if address is not None and job_id is not None:
                tail = FlinkRest(str(address)).taskmanager_log_tail()
                if tail:
                    out.write(f"[tideflow] TaskManager log tail:\n{tail}\n")
            out.write(
                f"[tideflow] the job ended {status.value}" + (f": {error}" if error else "") + "\n"
            )
        self._read_metric_lines(attempt, live)
        self._record_job_metrics(attempt, live)  # the final counts
        if status is JobStatus.FINISHED:
            self._record_lineage(attempt, live)  # before FINISHED: rules it fires see it

    def forget(self, attempt: Attempt) -> None:
        """Its end is recorded: its claim goes -- unless the end was never seen.

        The supervisor also lets go of an attempt whose launch it could not record; its START
        comes again, and only the claim tells it the client was started.
        """
        live = attempt.scratch.get("flink")
        if isinstance(live, _Live) and live.ended:
            with contextlib.suppress(OSError):
                self.claim_path(attempt.key).unlink(missing_ok=True)

    # -- metrics and lineage -------------------------------------------------------------------

    def _read_metric_lines(self, attempt: Attempt, live: _Live) -> None:
        """Record the ``metric`` lines the driver printed (``ctx.log_metric`` at build time)."""
        lines, live.log_offset = read_progress(attempt.log, live.log_offset)
        live.reporter.record_lines(lines, live.log_offset)

    def _record_job_metrics(self, attempt: Attempt, live: _Live) -> None:
        """One reading of the job's record and byte counts (so far), as metric values."""
        live.metrics_at = time.monotonic() + self.settings.metrics_interval
        job_id = self._job_id(attempt)
        address = attempt.handle.get("address")
        if address is None or job_id is None:
            return
        try:
            totals = FlinkRest(str(address)).job_metrics(job_id)
        except FlinkRestError as exc:
            log.debug("flink job %s metrics: %s", job_id, exc)
            return
        for name, value in (totals or {}).items():
            live.reporter.log_metric(name, value)

    def _record_lineage(self, attempt: Attempt, live: _Live) -> None:
        """Record the datasets the plan's read / write nodes name, once per attempt."""
        if live.lineage_done:
            return
        live.lineage_done = True
        job = attempt.job
        if job is None:
            log.warning("no plan for the lineage of job execution %s", attempt.key)
            return
        live.reporter.record_lineage(job)

    # -- the platform's own state --------------------------------------------------------------

    def _live(self, attempt: Attempt) -> _Live:
        """The attempt's in-memory state; for one found again, its stop in progress too."""
        with self._lock:
            live = attempt.scratch.get("flink")
            if isinstance(live, _Live):
                return live
            command = attempt.command
            live = _Live(
                JobReporter(
                    project=command.project,
                    job_execution_id=command.job_execution_id,
                    engine="flink",
                    control=attempt.files.control,
                    log_path=attempt.log,
                    metrics=self.context.metrics,
                    lineage=self.context.lineage,
                )
            )
            saved = self._read_claim(attempt.key) or {}
            if saved.get("stop") in ("savepoint", "cancel"):
                live.stop = str(saved["stop"])
            trigger = saved.get("trigger")
            live.trigger = None if trigger is None else str(trigger)
            live.stop_sent = live.trigger is not None  # a cancel is sent again, harmlessly
            attempt.scratch["flink"] = live
            return live

    def _save(self, attempt: Attempt, live: _Live) -> None:
        handle = attempt.handle
        state = {
            "address": handle.get("address"),
            "pid": handle.get("pid"),
            "pid_started": handle.get("pid_started"),
            "stop": live.stop,
            "trigger": live.trigger,
        }
        with contextlib.suppress(OSError):
            write_atomically(self.claim_path(attempt.key), json.dumps(state))

    def _read_claim(self, job_execution_id: int) -> dict[str, Any] | None:
        try:
            data = json.loads(self.claim_path(job_execution_id).read_text() or "{}")
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


class _LineWriter:
    """Text lines onto a binary log file."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text.encode())

    def flush(self) -> None:
        self.out.flush()


@contextlib.contextmanager
def _append(path: Path) -> Iterator[IO[str]]:
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
        "env.java.opts.client": CLIENT_JAVA_OPTS,
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
    # The client runs user code: no server settings for it.
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


def _end_time(rest: FlinkRest, job_id: str) -> float | None:
    """When Flink says the job ended (seconds since the epoch), if it says."""
    with contextlib.suppress(FlinkRestError):
        return rest.job_end_time(job_id)
    return None


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
