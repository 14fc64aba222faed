"""The spark platform: each attempt of a ``spark`` job is one ``spark-submit`` on this host.

The attempt's lifecycle is the supervisor's (:mod:`tideflow.executors.supervisor`); what is
Spark's own, and why:

- **Launch**: ``spark-submit`` runs a one-line bootstrap script that calls the engine's driver
  (:mod:`tideflow.engines.spark.driver`), with the master (``spark_master`` from the job's
  config, else the executor's option, else ``local[*]``) and ``--conf`` pairs (``spark_conf``,
  the job's over the executor's). It is started in its own session with ``posix_spawn``, not
  :class:`subprocess.Popen`, because the job outlives the executor and the server: nothing here
  may own it beyond its pid. Its output is appended to the attempt's log. Before it starts,
  ``$TIDEFLOW_HOME/spark/<job execution>.claim`` is created exclusively and then given the
  pid, so no two executor instances on one home ever submit the same attempt, and one that
  crashed between submitting and recording the launch is found again (:meth:`SparkPlatform.find`).
- **Observe**: Spark processors never call the Tideflow server (``job_token`` is off), so the
  driver talks through its log (progress lines of :mod:`tideflow.domain.progress`): its pid,
  the application id (the job execution's ``external_id``), RUNNING and its result. A
  re-attached attempt's log is read again from its start and nothing is missed; its ``metric``
  lines, and the plan's datasets as lineage (before a batch job's FINISHED, once a streaming
  job is RUNNING), are recorded once per attempt (:mod:`tideflow.executors.reporting`).
  No result at all is a failure carrying the last lines of the log (a missing Java, a bad
  master URL, ...).
- **Stop**: SIGTERM to the Python driver, which stops its streaming queries (they commit their
  checkpoints) and the session, after which ``spark-submit`` exits; to the whole process group
  while the driver's pid is not known yet. A kill is SIGKILL to the group, and so is the end of
  ``spark-submit`` (the group's leftovers).

Nothing heavy happens before a job needs it: the constructor imports no PySpark and starts no
thread. A host without PySpark fails the job (naming the ``[spark]`` extra), never the server.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tideflow import pids
from tideflow.compiler.generator import default_registry as engines
from tideflow.domain.attempt import ATTEMPT_DIR_VARIABLE, write_atomically
from tideflow.domain.status import JobStatus
from tideflow.errors import InvalidArgumentError, TideflowError
from tideflow.executors.base import ExecutorContext, settings_from_options
from tideflow.executors.platform import (
    Attempt,
    Observation,
    Platform,
    Started,
    as_int,
    read_json_object,
)
from tideflow.executors.reporting import JobReporter, read_progress
from tideflow.executors.spec import scrubbed_environment
from tideflow.executors.watch import EXIT_FILE, read_exit

DEFAULT_MASTER = "local[*]"
DEFAULT_CONF: Mapping[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.log.level": "WARN",
}
"""Conf every submission gets unless the executor's or job's ``spark_conf`` overrides it."""
MAX_ERROR = 2000
"""The longest failure text built from the log's tail."""
CLAIMS = "spark"
"""The folder of the home holding the attempts' claim files."""
CLAIM_WAIT = 30.0
"""Seconds to wait for the pid of an attempt another live launcher claimed."""
NEVER_SUBMITTED = "the attempt was claimed but never submitted (a crash while launching)"
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
class _Watch:
    """What the platform has read about one attempt (its log so far, its process).

    Guarded by ``lock``: the supervision thread observes while a STOP may arrive on another.
    """

    reporter: JobReporter
    lock: threading.Lock = field(default_factory=threading.Lock)
    offset: int = 0
    child: bool = False
    returncode: int | None = None
    driver_pid: int | None = None
    app_id: str | None = None
    running: bool = False
    result: tuple[JobStatus, str | None] | None = None
    ended: Observation | None = None


class SparkPlatform(Platform):
    """Attempts as ``spark-submit`` processes of this host."""

    name = "spark"
    supports_stop = True
    supports_reattach = True
    supports_requirements = False
    job_token = False

    def __init__(self, context: ExecutorContext) -> None:
        super().__init__(context)
        self.settings = settings = SparkSettings.from_options(context.options)
        self.stop_grace = settings.stop_grace
        self.poll_interval = settings.poll_interval
        self.host = socket.gethostname()
        self._lock = threading.Lock()
        self._watches: dict[int, _Watch] = {}

    def claim_path(self, job_execution_id: int) -> Path:
        """The file that gives an attempt's submission to one launcher, then holds its pid."""
        return self.home / CLAIMS / f"{job_execution_id}.claim"

    # -- launch --------------------------------------------------------------------------------

    def check(self, attempt: Attempt) -> None:
        """The job's engine has a driver, and there is a ``spark-submit`` to run it."""
        job = attempt.job
        engine = None if job is None else job.engine
        if engine is None or engines.get(engine).runtime is None:
            raise InvalidArgumentError(
                f"engine {engine!r} has no driver the spark executor can submit", field="engine"
            )
        self._spark_submit()

    def prepare(self, attempt: Attempt) -> None:
        """The bootstrap script; the ``spark-submit`` command and its environment."""
        job = attempt.job
        assert job is not None
        runtime = engines.get(job.engine).runtime
        workdir = attempt.workdir
        bootstrap = attempt.files.control / "spark_main.py"
        write_atomically(bootstrap, _BOOTSTRAP.format(runtime=runtime))
        master = str(job.config.get("spark_master") or self.settings.spark_master)
        conf = {**DEFAULT_CONF, **_conf(self.settings.spark_conf, "executor option spark_conf")}
        conf.update(_conf(job.config.get("spark_conf"), f"job {job.name!r} config spark_conf"))
        name = f"tideflow:{attempt.command.workflow}.{job.name}"
        argv = [self._spark_submit(), "--master", master, "--name", name]
        for key, value in sorted(conf.items()):
            argv += ["--conf", f"{key}={value}"]
        argv += [*self.settings.submit_args, str(bootstrap), str(workdir)]
        python = self.settings.python or sys.executable
        env = scrubbed_environment()
        env.update(
            {
                **attempt.env,
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
        attempt.scratch["submit"] = (argv, env)

    def launch(self, attempt: Attempt) -> Started:
        """Claim the attempt, then start ``spark-submit``; one claimed before is found instead."""
        claim = self.claim_path(attempt.key)
        if not self._claim(claim):
            found = self.find(attempt)  # a duplicate, or another instance's: watch that one
            if found is None:
                raise TideflowError(NEVER_SUBMITTED)
            return found
        argv, env = attempt.scratch.pop("submit")
        try:
            exit_file = attempt.files.control / EXIT_FILE
            pid = _spawn(_watched(argv, exit_file), env, attempt.workdir, attempt.log)
        except OSError as exc:
            raise TideflowError(f"spark-submit could not be started: {exc}") from exc
        started = pids.start_time(pid)
        attempt.handle.update(pid=pid, started=started, host=self.host)
        watch = self._watch(attempt)
        watch.child = True
        claimed = read_json_object(claim) or {}
        write_atomically(claim, json.dumps({**claimed, "pid": pid, "started": started}))
        return Started(pid=pid, host=self.host)

    def find(self, attempt: Attempt) -> Started | None:
        """The ``spark-submit`` the attempt's claim names, waiting a while for a live claimer.

        Raises:
            TideflowError: The attempt was claimed, but its launcher is gone without a pid.
        """
        claim = self.claim_path(attempt.key)
        deadline = time.monotonic() + CLAIM_WAIT
        while True:
            if not claim.exists():
                return None  # nothing claimed it: it never ran
            claimed = read_json_object(claim) or {}
            pid = as_int(claimed.get("pid"))
            if pid is not None:
                host = str(claimed.get("host") or self.host)
                attempt.handle.update(pid=pid, started=as_int(claimed.get("started")), host=host)
                self._watch(attempt)
                return Started(pid=pid, host=host)
            launcher = as_int(claimed.get("launcher"))
            launcher_alive = launcher is not None and pids.is_alive(
                launcher, as_int(claimed.get("launcher_started"))
            )
            if not launcher_alive or time.monotonic() >= deadline or self._ended(attempt):
                raise TideflowError(NEVER_SUBMITTED)
            time.sleep(0.2)  # the launcher writes the pid right after spark-submit starts

    def _claim(self, claim: Path) -> bool:
        """Take the attempt's submission; ``False`` if some launcher took it before."""
        claim.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        me = os.getpid()
        text = {"host": self.host, "launcher": me, "launcher_started": pids.start_time(me)}
        try:
            os.write(fd, json.dumps(text).encode())
        finally:
            os.close(fd)
        return True

    def _ended(self, attempt: Attempt) -> bool:
        command = attempt.command
        job = self.context.executions.get_job_execution(command.project, command.job_execution_id)
        return job.status.is_terminal

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

    # -- observation ---------------------------------------------------------------------------

    def observe(self, attempt: Attempt) -> Observation:
        """The driver's progress lines so far, and whether ``spark-submit`` still runs."""
        watch = self._watch(attempt)
        with watch.lock:
            if watch.ended is not None:
                return watch.ended
            self._read(attempt, watch)
            pid = as_int(attempt.handle.get("pid"))
            if pid is None:
                failure = "the Spark job's process is unknown and it left no result"
            elif self._alive(pid, as_int(attempt.handle.get("started")), watch):
                return Observation(running=watch.running, external_id=watch.app_id)
            else:
                self._read(attempt, watch)  # what the driver wrote just before the end
                pids.signal_group(pid, signal.SIGKILL)  # leftovers of the group, if any
                returncode = watch.returncode
                if returncode is None:  # not our child: its watcher's record
                    returncode = read_exit(attempt.files.control / EXIT_FILE)[0]
                how = "exited" if returncode is None else f"exited with code {returncode}"
                failure = f"spark-submit {how} without a result: {_log_tail(attempt.log)}"
            exited, ended_at = read_exit(attempt.files.control / EXIT_FILE)
            watch.ended = Observation(
                running=watch.running,
                ended=True,
                result=watch.result,
                failure=None if watch.result is not None else failure,
                exit_code=watch.returncode if watch.returncode is not None else exited,
                ended_at=ended_at,
                external_id=watch.app_id,
            )
            return watch.ended

    def stop(self, attempt: Attempt, *, kill: bool) -> None:
        """SIGTERM to the driver (the group while it is unknown); SIGKILL to the group to kill."""
        pid = as_int(attempt.handle.get("pid"))
        if pid is None:
            return
        if kill:
            pids.signal_group(pid, signal.SIGKILL)
            return
        watch = self._watch(attempt)
        with watch.lock:
            if watch.ended is None:
                self._read(attempt, watch)  # the driver's pid, if it said it meanwhile
            driver = watch.driver_pid
        if driver is not None and _group_of(driver) == pid:
            with contextlib.suppress(OSError):
                os.kill(driver, signal.SIGTERM)
        else:
            pids.signal_group(pid, signal.SIGTERM)

    def on_running(self, attempt: Attempt) -> None:
        """A streaming job's lineage: its datasets are in use from now on."""
        job = attempt.job
        if job is not None and job.streaming:
            self._watch(attempt).reporter.record_lineage(job)

    def on_end(self, attempt: Attempt, status: JobStatus) -> None:
        """A finished job's lineage, before FINISHED: rules it fires see the lineage."""
        job = attempt.job
        if status is JobStatus.FINISHED and job is not None:
            self._watch(attempt).reporter.record_lineage(job)

    def forget(self, attempt: Attempt) -> None:
        """Its watch goes; its claim stays, so the attempt is never submitted again."""
        with self._lock:
            self._watches.pop(attempt.key, None)

    def application_id(self, job_execution_id: int) -> str | None:
        """The Spark application id of an attempt being watched, once the driver said it."""
        with self._lock:
            watch = self._watches.get(job_execution_id)
        return None if watch is None else watch.app_id

    def _watch(self, attempt: Attempt) -> _Watch:
        """The attempt's watch, made on first use (a re-attached attempt's reads its log anew)."""
        with self._lock:
            watch = attempt.scratch.get("watch")
            if not isinstance(watch, _Watch):
                command = attempt.command
                reporter = JobReporter(
                    project=command.project,
                    job_execution_id=command.job_execution_id,
                    engine="spark",
                    control=attempt.files.control,
                    log_path=attempt.log,
                    metrics=self.context.metrics,
                    lineage=self.context.lineage,
                )
                watch = attempt.scratch["watch"] = _Watch(reporter=reporter)
            self._watches[attempt.key] = watch
            return watch

    def _read(self, attempt: Attempt, watch: _Watch) -> None:
        """Act on the progress lines the driver appended to the log since the last read."""
        lines, watch.offset = read_progress(attempt.log, watch.offset)
        for _, fields in lines:
            event = fields["event"]
            if event == "started":
                watch.driver_pid = as_int(fields.get("pid"))
            elif event == "app":
                watch.app_id = str(fields["app_id"])
            elif event == "running":
                watch.running = True
            elif event == "result":
                watch.result = (JobStatus(str(fields["status"])), fields.get("error"))
        watch.reporter.record_lines(lines, watch.offset)  # metric lines, once per attempt

    @staticmethod
    def _alive(pid: int, started: int | None, watch: _Watch) -> bool:
        """Whether spark-submit still runs; reaps it (and keeps its exit code) when ours."""
        if watch.child:
            try:
                reaped, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere
                watch.child = False
            else:
                if reaped == 0:
                    return True
                watch.returncode = os.waitstatus_to_exitcode(status)
                return False
        if pids.is_alive(pid, started):
            return True
        if started is not None and pids.start_time(pid) == started:
            # A zombie: spawned by an earlier executor instance in this same process (reap it).
            with contextlib.suppress(ChildProcessError):
                reaped, status = os.waitpid(pid, os.WNOHANG)
                if reaped:
                    watch.returncode = os.waitstatus_to_exitcode(status)
        return False


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


def _watched(argv: list[str], exit_file: Path) -> list[str]:
    """``argv`` under a watcher that records its exit code and end time (:mod:`..watch`).

    ``spark-submit`` is a child of the server; when the server is down as it ends, only the
    watcher's file keeps how it ended.
    """
    return [sys.executable, "-m", "tideflow.executors.watch", str(exit_file), "--", *argv]


def _spawn(argv: list[str], env: Mapping[str, str], cwd: Path, log_path: Path) -> int:
    """Start ``argv`` in ``cwd`` in a new session, output appended to ``log_path``; its pid.

    ``sh`` changes directory, then execs (the pid stays).
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
