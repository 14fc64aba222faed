"""Command jobs at run time: the python runtime runs a ``tide.command`` program as its child.

:func:`tideflow.engines.python.runtime.run_attempt` hands a job whose only node is a command
(:func:`is_command_job`) to :func:`run_command`, which keeps the attempt's contract as for
processors (heartbeat, ``running``, ``result.json``) with the program in their place:

- The templates of argv and env are filled in from the params and the trigger first
  (:mod:`tideflow.domain.command`); a placeholder the execution lacks fails the attempt before
  anything starts, naming it.
- The program starts in the job's working directory (the extracted code package, so ``bash
  prepare.sh`` finds the package's script) with the job's environment plus ``env``, stdin
  from ``/dev/null``; then the job is RUNNING.
- Its stdout and stderr, merged, are relayed line-agnostically to the job's own stdout -- the
  job's log -- keeping the last few KiB, so a failure can quote the last lines. A relay rather
  than inherited descriptors: the tail is known without reading the log back (the job user
  may not be able to, and on Ray the log is Ray's).
- SIGTERM (a STOP or a timeout) is forwarded to the program; when it has exited the attempt
  ends STOPPED whatever its exit code. The program stays in the job's process group, so the
  executor's SIGKILL after the grace period reaches it too.
- Exit code 0 ends the attempt FINISHED; any other FAILED with ``command exited with code N``
  (or ``killed by signal``) and the last lines of its output.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import threading
import types
from collections.abc import Callable
from pathlib import Path

from tideflow.compiler.plan import PlanJob, PlanNode
from tideflow.domain.attempt import AttemptFiles, AttemptResult, AttemptSpec
from tideflow.domain.command import placeholder_values, render_command
from tideflow.domain.graph import NodeKind
from tideflow.errors import InvalidArgumentError

log = logging.getLogger("tideflow.runtime")

TAIL_BYTES = 4096
"""How much of the program's latest output is kept for the failure message."""
TAIL_LINES = 5
"""How many of its last lines a failure quotes."""
RELAY_DRAIN = 2.0
"""Seconds the relay may go on after the program exited (a background child holding the pipe)."""


def is_command_job(job: PlanJob) -> bool:
    """Whether ``job`` is a command job (its one node is a ``tide.command``)."""
    return len(job.nodes) == 1 and job.nodes[0].kind is NodeKind.COMMAND


def run_command(
    spec: AttemptSpec, node: PlanNode, *, workdir: Path, running: Callable[[], None]
) -> tuple[AttemptResult, int]:
    """Run the command of ``node`` to its end.

    Args:
        spec: The attempt (its params and triggers fill in the templates).
        node: The command node.
        workdir: The job's working directory, where the program starts.
        running: Called once the program has started (the job is RUNNING).

    Returns:
        How the attempt ended, and the exit code for the job's process: the program's own
        when it failed with one (so the job execution shows it), 1 for other failures, else 0.
    """
    stopper = _Forwarder()
    previous = signal.signal(signal.SIGTERM, stopper)
    try:
        result, code = _run(spec, node, workdir, running, stopper)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if result.status != "FAILED":
        return result, 0
    return result, code if code is not None and 0 < code < 256 else 1


def _run(
    spec: AttemptSpec,
    node: PlanNode,
    workdir: Path,
    running: Callable[[], None],
    stopper: _Forwarder,
) -> tuple[AttemptResult, int | None]:
    """How the attempt ended, and the program's exit code if it ran."""
    try:
        argv, env = render_command(
            node.config, placeholder_values(spec.params, spec.triggers, spec.context)
        )
    except InvalidArgumentError as exc:
        log.error("%s", exc)
        return AttemptResult("FAILED", str(exc)), None
    if stopper.stopping:
        return AttemptResult("STOPPED"), None
    log.info("running %s in %s", shlex.join(argv), workdir)
    try:
        child = subprocess.Popen(
            argv,
            cwd=workdir,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    except OSError as exc:
        message = f"command {argv[0]!r} could not start: {exc.strerror or exc}"
        log.error("%s", message)
        return AttemptResult("FAILED", message), None
    stopper.attach(child)
    relay = _Relay(child.stdout.fileno() if child.stdout is not None else -1).start()
    running()
    code = child.wait()
    relay.join(RELAY_DRAIN)
    if child.stdout is not None and not relay.alive:
        child.stdout.close()
    # The executor writes stop.json before it signals: that covers a SIGTERM still pending
    # here when the program (signalled with the whole process group) has already exited.
    if stopper.stopping or AttemptFiles(workdir).stop.exists():
        log.info("the command ended on the stop request (exit code %s)", code)
        return AttemptResult("STOPPED"), code
    if code == 0:
        log.info("the command exited with code 0")
        return AttemptResult("FINISHED"), code
    if code < 0:
        message = f"command was killed by signal {_signal_name(-code)}"
    else:
        message = f"command exited with code {code}"
    tail = relay.last_lines()
    log.error("%s", message)
    if tail:
        message += f"; last output: {' | '.join(tail)}"
    return AttemptResult("FAILED", message), code


class _Forwarder:
    """The SIGTERM handler of a command job: remember the stop and pass it to the program."""

    def __init__(self) -> None:
        self.stopping = False
        self._child: subprocess.Popen[bytes] | None = None

    def attach(self, child: subprocess.Popen[bytes]) -> None:
        """Forward to ``child`` from now on (at once, if the stop came while it started)."""
        self._child = child
        if self.stopping:
            self._forward()

    def __call__(self, signum: int, frame: types.FrameType | None) -> None:
        self.stopping = True
        log.info("stop requested (SIGTERM): terminating the command")
        self._forward()

    def _forward(self) -> None:
        if self._child is not None and self._child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._child.send_signal(signal.SIGTERM)


class _Relay:
    """Copies the program's output to this process's stdout, keeping its tail."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.tail = bytearray()
        self._thread = threading.Thread(
            target=self._run, name="tideflow-command-relay", daemon=True
        )

    def start(self) -> _Relay:
        """Start copying."""
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        """Whether it is still copying."""
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the end of the output."""
        self._thread.join(timeout)

    def _run(self) -> None:
        if self.fd < 0:
            return
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            _write_all(chunk)
            self.tail += chunk
            del self.tail[:-TAIL_BYTES]

    def last_lines(self) -> list[str]:
        """The last non-blank lines of output (at most :data:`TAIL_LINES`)."""
        text = bytes(self.tail).decode(errors="replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return [line if len(line) <= 200 else line[:197] + "..." for line in lines[-TAIL_LINES:]]


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(1, view)
        except OSError:
            return  # the log is gone: the program's exit code still decides
        view = view[written:]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
