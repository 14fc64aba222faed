"""The Python job runtime: runs one attempt of a ``python`` job in the current process.

Entry point: :func:`run_attempt` (``tideflow.engines.python.runtime:run_attempt``, the
engine's ``runtime``), called by an executor in the job's process with the attempt's working
directory -- the extracted code package plus the control files of
:mod:`tideflow.domain.attempt`. The job is read from ``plan.json`` written there by the
executor (a one-job plan with its processors' payloads), not fetched from the server: starting
a job needs no connection at all.

Semantics (docs/executors.md):

- The working directory goes first on ``sys.path``; processors are unpickled (cloudpickle), so
  classes pickled by reference import from the code package.
- ``open(ctx)`` runs for every processor, in the plan's topological order. Then the job is
  RUNNING (``running`` file + status pipe).
- ``process(ctx, inputs)`` is called **once** per node, in topological order; ``inputs`` holds
  one entry per data edge, each the upstream's output (or element ``i`` of its tuple for nodes
  with several outputs). This holds for batch and streaming jobs alike: in a streaming job a
  processor typically returns a generator (or loops over a listener) that runs until stopped.
- A node whose output nobody consumes (a sink) and that returned an iterator is drained after
  every node has been called, in order -- that is what drives a lazily chained streaming job.
- ``close(ctx)`` runs for every opened processor, in reverse order, when the job ends: after
  success, after a failure and after SIGTERM (a STOP).
- SIGTERM sets ``ctx.stopping`` and raises :class:`JobStopped` (a ``BaseException``, so user
  code's ``except Exception`` does not swallow it) in the main thread, at most once; the
  attempt ends STOPPED once ``close`` has run.
- A processor's exception is the user's failure: its traceback goes to the log, a one-line
  summary naming node and phase to ``result.json`` (the job execution's ``error``), and the
  attempt ends FAILED with exit code 1.
- A heartbeat thread touches the ``heartbeat`` file every ``heartbeat_interval`` seconds.
- A job whose only node is a ``tide.command`` runs its program instead of processors
  (:mod:`tideflow.engines.python.command`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tideflow import logs
from tideflow.compiler.plan import PlanJob, WorkflowPlan
from tideflow.domain.attempt import (
    RUNNING_LINE,
    STATUS_FD_VARIABLE,
    AttemptFiles,
    AttemptResult,
    AttemptSpec,
    write_atomically,
)
from tideflow.engines.python.command import is_command_job, run_command
from tideflow.engines.python.context import AttemptState, RuntimeContext
from tideflow.errors import UserCodeError
from tideflow.sdk.processor import Processor, as_processor

log = logging.getLogger("tideflow.runtime")
MAX_ERROR = 2000


class JobStopped(BaseException):
    """Raised in the main thread when the attempt receives SIGTERM."""


class Heartbeat:
    """Touches the heartbeat file every ``interval`` seconds on a daemon thread."""

    def __init__(self, path: Path, interval: float) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tideflow-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        """Beat once now, then keep beating."""
        self.path.touch()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def stop(self) -> None:
        """Stop beating (the executor will consider the job dead after its timeout)."""
        self._stop.set()


_heartbeat: Heartbeat | None = None


def current_heartbeat() -> Heartbeat | None:
    """The heartbeat of the attempt running in this process, if any."""
    return _heartbeat


def run_attempt(workdir: str) -> int:
    """Run the attempt prepared in ``workdir``; return the process exit code.

    0 when it FINISHED or was STOPPED, 1 when it FAILED (``result.json`` says which).
    """
    global _heartbeat
    files = AttemptFiles(workdir)
    _configure_logging()
    status_fd = _status_fd()
    spec = AttemptSpec.from_json(files.spec.read_text())
    logs.set_process_ids(  # every line of the job carries them (as JSON fields with json)
        project=spec.project,
        workflow=spec.workflow,
        execution_id=spec.execution_id,
        job=spec.job,
        attempt=spec.attempt,
        job_execution_id=spec.job_execution_id,
    )
    _heartbeat = Heartbeat(files.heartbeat, spec.heartbeat_interval).start()
    sys.path.insert(0, str(files.workdir))
    plan = WorkflowPlan.from_json(files.plan.read_text())
    job = plan.job(spec.job)
    if is_command_job(job):
        return _run_command_job(files, spec, job, status_fd)
    state = AttemptState(spec, job)
    stopper = _install_sigterm(state)
    runner = _JobRunner(state, plan, job)
    log.info(
        "job %s.%s attempt %s (execution %s) starting, pid %s",
        spec.workflow,
        spec.job,
        spec.attempt,
        spec.execution_id,
        os.getpid(),
    )
    failure: BaseException | None = None
    try:
        runner.open()
        _signal_running(files, status_fd)
        runner.run()
    except BaseException as exc:  # the job's process edge: every outcome is recorded
        failure = exc
    stopper.closing = True  # from now on SIGTERM only sets the flag: close must run
    close_failure = runner.close()
    result = _result(failure if failure is not None else close_failure)
    write_atomically(files.result, result.to_json())
    log.info("job %s.%s attempt %s ended %s", spec.workflow, spec.job, spec.attempt, result.status)
    with contextlib.suppress(Exception):
        state.close()
    _heartbeat.stop()
    return 1 if result.status == "FAILED" else 0


def _run_command_job(
    files: AttemptFiles, spec: AttemptSpec, job: PlanJob, status_fd: int | None
) -> int:
    """Run a ``tide.command`` job (:mod:`tideflow.engines.python.command`); its exit code."""
    log.info(
        "command job %s.%s attempt %s (execution %s) starting, pid %s",
        spec.workflow,
        spec.job,
        spec.attempt,
        spec.execution_id,
        os.getpid(),
    )
    try:
        result, code = run_command(
            spec,
            job.nodes[0],
            workdir=files.workdir,
            running=lambda: _signal_running(files, status_fd),
        )
    except Exception as exc:  # the job's process edge: every outcome is recorded
        log.error("the command job failed in the runtime:\n%s", traceback.format_exc())
        result, code = AttemptResult("FAILED", f"{type(exc).__name__}: {exc}"), 1
    result = AttemptResult(result.status, None if result.error is None else _one_line(result.error))
    write_atomically(files.result, result.to_json())
    log.info("job %s.%s attempt %s ended %s", spec.workflow, spec.job, spec.attempt, result.status)
    if _heartbeat is not None:
        _heartbeat.stop()
    return code


class _Stopper:
    """The SIGTERM handler: sets the stop flag, and raises :class:`JobStopped` once."""

    def __init__(self, state: AttemptState) -> None:
        self.state = state
        self.raised = False
        self.closing = False

    def __call__(self, signum: int, frame: types.FrameType | None) -> None:
        self.state.stopping.set()
        if not self.raised and not self.closing:
            self.raised = True
            log.info("stop requested (SIGTERM): closing processors")
            raise JobStopped()


def _install_sigterm(state: AttemptState) -> _Stopper:
    stopper = _Stopper(state)
    signal.signal(signal.SIGTERM, stopper)
    return stopper


class _JobRunner:
    """Opens, runs and closes the processors of one job."""

    def __init__(self, state: AttemptState, plan: WorkflowPlan, job: PlanJob) -> None:
        import cloudpickle  # preloaded by the fork server

        self.job = job
        self.processors: dict[str, Processor] = {}
        self.contexts: dict[str, RuntimeContext] = {}
        self.opened: list[str] = []
        loaded: dict[str, Any] = {}
        for node in job.nodes:
            self.contexts[node.name] = RuntimeContext(state, node)
            if node.processor is None:
                continue
            if node.processor not in loaded:
                loaded[node.processor] = _user_call(
                    node.name, "unpickling", cloudpickle.loads, plan.payloads[node.processor]
                )
            self.processors[node.name] = as_processor(loaded[node.processor])

    def open(self) -> None:
        for node in self.job.nodes:
            if node.name in self.processors:
                processor = self.processors[node.name]
                _user_call(node.name, "open", processor.open, self.contexts[node.name])
                self.opened.append(node.name)

    def run(self) -> None:
        outputs: dict[str, Any] = {}
        consumed: set[str] = set()
        for node in self.job.nodes:
            inputs = []
            for ref in node.inputs:
                consumed.add(ref.node)
                value: Any = outputs.get(ref.node)
                producer = self.job.node(ref.node)
                inputs.append(value[ref.index] if producer.outputs > 1 else value)
            processor = self.processors.get(node.name)
            if processor is None:
                outputs[node.name] = inputs[0] if len(inputs) == 1 else inputs
                continue
            outputs[node.name] = _user_call(
                node.name, "process", processor.process, self.contexts[node.name], inputs
            )
        for node in self.job.nodes:  # drive lazy (streaming) chains from their sinks
            value = outputs.get(node.name)
            if node.name not in consumed and _is_lazy(value):
                _user_call(node.name, "process", _drain, value)

    def close(self) -> UserCodeError | None:
        """Close every opened processor (last first); return the first failure, if any."""
        first: UserCodeError | None = None
        for name in reversed(self.opened):
            try:
                _user_call(name, "close", self.processors[name].close, self.contexts[name])
            except JobStopped:
                continue
            except UserCodeError as exc:
                log.error("%s\n%s", exc, exc.user_traceback.rstrip())
                first = first or exc
        self.opened.clear()
        return first


def _result(failure: BaseException | None) -> AttemptResult:
    """How the attempt ended, given the first exception it met (``None``: it finished)."""
    if failure is None:
        return AttemptResult("FINISHED")
    if isinstance(failure, JobStopped):
        return AttemptResult("STOPPED")
    if isinstance(failure, UserCodeError):
        if getattr(failure, "phase", "") != "close":  # those were logged as they happened
            log.error("%s\n%s", failure, failure.user_traceback.rstrip())
        return AttemptResult("FAILED", _one_line(str(failure)))
    log.error("the job failed in the runtime:\n%s", "".join(traceback.format_exception(failure)))
    return AttemptResult("FAILED", _one_line(f"{type(failure).__name__}: {failure}"))


def _user_call(node: str, phase: str, function: Callable[..., Any], *args: Any) -> Any:
    """Call user code; its exception becomes a :class:`UserCodeError` keeping the traceback."""
    try:
        return function(*args)
    except JobStopped:
        raise
    except Exception as exc:
        error = UserCodeError(
            f"node {node!r} failed in {phase}: {type(exc).__name__}: {exc}",
            node=node,
            user_traceback=traceback.format_exc(),
        )
        error.phase = phase  # type: ignore[attr-defined]
        raise error from exc


def _is_lazy(value: Any) -> bool:
    return isinstance(value, Iterator)


def _drain(value: Iterator[Any]) -> None:
    for _ in value:
        pass


def _signal_running(files: AttemptFiles, status_fd: int | None) -> None:
    files.running.touch()
    if status_fd is not None:
        with contextlib.suppress(OSError):
            os.write(status_fd, RUNNING_LINE)
            os.close(status_fd)


def _status_fd() -> int | None:
    text = os.environ.pop(STATUS_FD_VARIABLE, None)
    if not text:
        return None
    fd = int(text)
    try:
        os.set_inheritable(fd, False)  # the job's own subprocesses must not hold it
    except OSError:
        return None
    return fd


def _configure_logging() -> None:
    """Log to stderr (the attempt's log) in the server's format: text or JSON lines."""
    root = logging.getLogger()
    if not root.handlers:
        try:
            chosen = logs.parse_format(os.environ.get(logs.LOG_FORMAT_VARIABLE))
        except ValueError:  # only a server sets it; a mistyped one must not fail the job
            chosen = logs.LogFormat.TEXT
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logs.formatter(chosen))
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_ERROR else line[: MAX_ERROR - 3] + "..."
