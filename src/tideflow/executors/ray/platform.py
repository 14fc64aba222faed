"""The Ray platform: each attempt is a Ray job, submitted and watched over Job Submission.

What the supervisor (:mod:`tideflow.executors.supervisor`) does not do for it:

- **Where**: the job config's ``ray_address``, else the ``address`` option (``tideflow server
  start --ray-address``), else a local head on loopback started on first need
  (:mod:`tideflow.executors.ray.head`). Ray is imported only then: an idle executor costs
  nothing, and without Ray a job FAILS naming the ``ray`` extra while the server runs on.
- **Launch**: the submission id is derived from the home and the job execution and reserved
  (with the cluster) before submitting, so no attempt reaches Ray twice: Ray refuses a second
  submission under one id, and after a crash :meth:`RayPlatform.find` asks Ray for it. The
  prepared working directory travels as the runtime environment's ``working_dir`` and the
  entrypoint is Tideflow's own runtime (:mod:`tideflow.executors.ray.entry`), which connects
  back to the server like a local job. A head that just started says "try again later" until
  its job agent is up: the submission is retried for ``submit_timeout`` seconds.
- **Observe**: Ray's status, and its log -- copied as it grows to the attempt's log, so
  ``tideflow job logs`` works as for local jobs, also for a remote cluster. The runtime's
  RUNNING and its result reach the server only through that log (marker lines); where the
  copy stands is kept under ``$TIDEFLOW_HOME/ray/attempts/`` so a restarted server copies no
  line twice.
- **Stop**: ``stop_job``: SIGTERM, and Ray's own SIGKILL after ``stop_wait`` seconds (so the
  supervisor never kills: there is nothing harder to ask for).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import shlex
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tideflow.compiler.generator import default_registry as engines
from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.attempt import write_atomically
from tideflow.domain.scheduling import JobCommand
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
from tideflow.executors.ray.entry import RESULT_MARKER, RUNNING_MARKER
from tideflow.executors.ray.head import LocalRayHead

log = logging.getLogger(__name__)

ADDRESS_CONFIG = "ray_address"
"""The job config key naming a job's Ray cluster."""
ENTRY_MODULE = "tideflow.executors.ray.entry"
"""The module the job's entrypoint runs (``python -m``)."""
PROGRESS = "attempts"
"""The folder of ``<home>/ray`` that holds how far each attempt's log was copied."""
SUBMIT_RETRY = 0.25
"""Seconds between two submissions refused for now (the job agent of a head just started)."""
_MISSING = "Ray is not installed: install the ray extra (pip install 'tideflow[ray]')"
_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
"""Ray's statuses of an ended job."""
_ENDS = frozenset({"FINISHED", "FAILED", "STOPPED"})
"""The statuses a runtime's result may carry."""


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
            starts, for a busy machine; see :class:`~tideflow.executors.ray.head.LocalRayHead`).
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


class RayPlatform(Platform):
    """Attempts as Ray jobs on a Ray cluster (a named one, or a local head)."""

    name = "ray"
    supports_stop = True
    supports_reattach = True
    host_bound = False  # a submission is found by its id on its cluster, from any host
    supports_requirements = False
    job_token = True
    stop_grace = None

    def __init__(self, context: ExecutorContext) -> None:
        super().__init__(context)
        self.settings = settings = RaySettings.from_options(context.options)
        self.poll_interval = settings.poll_interval
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._copying: dict[int, threading.Lock] = {}
        self._head: LocalRayHead | None = None
        self._home_tag = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:8]

    # -- names and places ----------------------------------------------------------------------

    def submission_id(self, command: JobCommand) -> str:
        """The attempt's Ray submission id: unique per home and job execution, and stable."""
        job = re.sub(r"[^A-Za-z0-9_-]", "_", command.job)[:40]
        return f"tideflow-{self._home_tag}-{command.job_execution_id}-{job}-{command.attempt}"

    def progress_path(self, attempt: Attempt) -> Path:
        """Where the copy of the attempt's Ray log stands (offset, RUNNING seen)."""
        return self.home / "ray" / PROGRESS / f"{attempt.key}.log.json"

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

    def address(self, plan: WorkflowPlan | None) -> str:
        """The job's cluster: its config, the executor's option, or the local head."""
        configured: Any = None
        if plan is not None and plan.jobs:
            configured = plan.jobs[0].config.get(ADDRESS_CONFIG)
        address = str(configured or self.settings.address or "")
        if not address:
            return self.local_head.address()
        return address if "://" in address else f"http://{address}"

    # -- launch --------------------------------------------------------------------------------

    def check(self, attempt: Attempt) -> None:
        """Only engines with a runtime run on Ray (the Python engine's)."""
        job = attempt.job
        _runtime(None if job is None else job.engine)

    def reserve(self, attempt: Attempt) -> None:
        """The submission id and the cluster, persisted before anything reaches Ray."""
        attempt.handle.update(
            submission_id=self.submission_id(attempt.command),
            address=self.address(attempt.plan),
        )

    def launch(self, attempt: Attempt) -> Started:
        """Submit the prepared attempt (once: Ray refuses a second one under its id)."""
        command = attempt.command
        job = attempt.job
        runtime = _runtime(None if job is None else job.engine)
        submission_id, address = self._where(attempt)
        python = self.settings.python or sys.executable
        entrypoint = shlex.join([python, "-m", ENTRY_MODULE, runtime])
        client = self._client(address)
        options: dict[str, Any] = {}
        if self.settings.entrypoint_num_cpus is not None:
            options["entrypoint_num_cpus"] = self.settings.entrypoint_num_cpus
        deadline = time.monotonic() + self.settings.submit_timeout
        while True:
            try:
                client.submit_job(
                    entrypoint=entrypoint,
                    submission_id=submission_id,
                    runtime_env=self._runtime_env(attempt),
                    metadata={"tideflow_job": f"{command.workflow}.{command.job}"},
                    **options,
                )
                break
            except RuntimeError as exc:
                if "already exists" in str(exc):
                    break  # submitted by an earlier instance that crashed before recording it
                # A head that just started answers before its job agent is up.
                if "try again later" not in str(exc) or time.monotonic() > deadline:
                    raise TideflowError(f"Ray refused job {submission_id}: {exc}") from exc
            except OSError as exc:  # requests' ConnectionError: a busy or restarting dashboard
                if time.monotonic() > deadline:
                    raise TideflowError(
                        f"cannot reach the Ray cluster at {address}: {exc}"
                    ) from exc
            time.sleep(SUBMIT_RETRY)
        _append(
            attempt.log,
            f"[tideflow] submitted to the Ray cluster at {address} as {submission_id}\n",
        )
        return _started(submission_id, address)

    def find(self, attempt: Attempt) -> Started | None:
        """Whether Ray knows the attempt's submission (``None``: it never reached Ray)."""
        if not attempt.handle.get("submission_id") or not attempt.handle.get("address"):
            self.reserve(attempt)  # no record: the deterministic id tells where to look
        submission_id, address = self._where(attempt)
        try:
            self._client(address).get_job_info(submission_id)
        except RuntimeError as exc:
            if _unknown(exc):
                return None
            raise TideflowError(f"cannot ask the Ray cluster at {address}: {exc}") from exc
        except OSError as exc:
            raise TideflowError(f"cannot reach the Ray cluster at {address}: {exc}") from exc
        return _started(submission_id, address)

    def _runtime_env(self, attempt: Attempt) -> dict[str, Any]:
        extra = dict(self.settings.runtime_env)
        env_vars = {
            **dict(extra.pop("env_vars", {}) or {}),
            **attempt.env,
            "RAY_JOB_STOP_WAIT_TIME_S": str(max(1, round(self.settings.stop_wait))),
        }
        return {**extra, "working_dir": str(attempt.workdir), "env_vars": env_vars}

    # -- observation ---------------------------------------------------------------------------

    def observe(self, attempt: Attempt) -> Observation:
        """Ray's status, and the log's new lines copied (with the markers they carry)."""
        submission_id, address = self._where(attempt)
        scratch = attempt.scratch
        if scratch.get("stop"):
            self.stop(attempt, kill=False)
        with self._copy_lock(attempt):
            self._restore(attempt)
            was_running = bool(scratch["running"])
            try:
                client = self._client(address)
                info = client.get_job_info(submission_id)
                status = str(info.status.value)
                ended = status in _TERMINAL
                self._copy_log(attempt, str(client.get_job_logs(submission_id)), final=ended)
            except RuntimeError as exc:
                if not _unknown(exc):
                    raise
                return Observation(ended=True, failure=f"Ray job {submission_id} is gone")
            except (OSError, TideflowError) as exc:  # unreachable for now: look again later
                log.warning("cannot look at Ray job %s: %s", submission_id, exc)
                return Observation(running=was_running)
        running = bool(scratch["running"])
        if not ended:
            return Observation(running=running)
        result = _result(scratch.get("result"))
        failure: str | None = None
        if result is None and status == "STOPPED":
            result = (JobStatus.STOPPED, None)
        elif result is None and status == "FAILED":
            message = str(getattr(info, "message", "") or "").strip()
            failure = f"the Ray job failed: {message[:1500]}"
        # RUNNING reported only now (seen in this same look, or a FINISHED job never seen
        # RUNNING) is stamped now: Ray's earlier end time would then precede the job's start.
        finishes = failure is None and (result is None or result[0] is JobStatus.FINISHED)
        end_time = _number(getattr(info, "end_time", None))
        if end_time is not None and not was_running and (running or finishes):
            end_time = None
        return Observation(
            running=running,
            ended=True,
            result=result,
            failure=failure,
            exit_code=as_int(getattr(info, "driver_exit_code", None)),
            ended_at=None if end_time is None else end_time / 1000,
        )

    def _restore(self, attempt: Attempt) -> None:
        """Where an earlier instance left off copying the log: no line is copied twice."""
        scratch = attempt.scratch
        if "offset" not in scratch:
            progress = read_json_object(self.progress_path(attempt)) or {}
            scratch["offset"] = as_int(progress.get("offset")) or 0
            scratch["running"] = bool(scratch.get("running") or progress.get("running"))

    def _copy_log(self, attempt: Attempt, text: str, *, final: bool) -> None:
        """Append the Ray log's new complete lines to the attempt's log; read the markers."""
        scratch = attempt.scratch
        new = text[scratch["offset"] :]
        if not final:
            new = new[: new.rfind("\n") + 1]
        if not new:
            return
        scratch["offset"] += len(new)
        kept: list[str] = []
        for line in new.splitlines(keepends=True):
            if line.startswith(RUNNING_MARKER):
                scratch["running"] = True
            elif line.startswith(RESULT_MARKER):
                with contextlib.suppress(ValueError):
                    scratch["result"] = json.loads(line[len(RESULT_MARKER) :])
            else:
                kept.append(line)
        if kept:
            _append(attempt.log, "".join(kept))
        path = self.progress_path(attempt)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        progress = {"offset": scratch["offset"], "running": scratch["running"]}
        write_atomically(path, json.dumps(progress))

    # -- stop and the end ----------------------------------------------------------------------

    def stop(self, attempt: Attempt, *, kill: bool) -> None:
        """Ray's ``stop_job`` (SIGTERM, then Ray's SIGKILL after ``stop_wait``), also to kill."""
        submission_id, address = self._where(attempt)
        attempt.scratch["stop"] = True
        try:
            self._client(address).stop_job(submission_id)
        except RuntimeError:
            pass  # not there (any more): nothing to stop
        except (OSError, TideflowError) as exc:  # unreachable for now: sent again when observed
            log.warning("cannot stop Ray job %s yet: %s", submission_id, exc)
            return
        attempt.scratch["stop"] = False

    def forget(self, attempt: Attempt) -> None:
        """Its end is recorded: no more of its log is copied."""
        with self._lock:
            self._copying.pop(attempt.key, None)
        with contextlib.suppress(OSError):
            self.progress_path(attempt).unlink(missing_ok=True)

    # -- Ray -----------------------------------------------------------------------------------

    def _where(self, attempt: Attempt) -> tuple[str, str]:
        """The attempt's submission id and cluster address (from its handle)."""
        handle = attempt.handle
        return str(handle["submission_id"]), str(handle["address"])

    def _copy_lock(self, attempt: Attempt) -> threading.Lock:
        """One copier per attempt (a re-attached attempt is observed from two threads)."""
        with self._lock:
            return self._copying.setdefault(attempt.key, threading.Lock())

    def _client(self, address: str) -> Any:
        """A Job Submission client for ``address`` (Ray imported here, on first need)."""
        with self._lock:
            client = self._clients.get(address)
        if client is not None:
            return client
        try:
            from ray.job_submission import JobSubmissionClient
        except ImportError as exc:
            raise TideflowError(f"{_MISSING}: {exc}") from exc
        try:
            client = JobSubmissionClient(address)
        except (OSError, RuntimeError, ValueError) as exc:
            raise TideflowError(f"cannot reach the Ray cluster at {address}: {exc}") from exc
        with self._lock:
            return self._clients.setdefault(address, client)


def _runtime(engine: str | None) -> str:
    """The runtime entry point of ``engine``'s jobs."""
    runtime: str | None = None
    if engine is not None:
        with contextlib.suppress(InvalidArgumentError):
            runtime = engines.get(engine).runtime
    if runtime is None:
        raise InvalidArgumentError(
            f"engine {engine!r} has no runtime the ray executor can run (Ray runs Python jobs)",
            field="engine",
        )
    return runtime


def _started(submission_id: str, address: str) -> Started:
    return Started(host=urlparse(address).netloc or None, external_id=submission_id)


def _unknown(exc: RuntimeError) -> bool:
    """Whether Ray's error says it has no such job."""
    return "does not exist" in str(exc) or "404" in str(exc)


def _result(result: Any) -> tuple[JobStatus, str | None] | None:
    """The runtime's ``result.json`` (relayed by the RESULT marker) as a status and error."""
    if not isinstance(result, dict) or result.get("status") not in _ENDS:
        return None
    error = result.get("error")
    return JobStatus(result["status"]), None if error is None else str(error)


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as out:
        out.write(text)
