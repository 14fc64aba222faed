"""Injectable crash points, to prove exactly-once scheduling across crashes.

The scheduler calls :func:`reach` at each point below. Normally nothing happens. Two ways to
make it crash there:

* **A server process**: start it with ``TIDEFLOW_CRASH_AT=<point>`` and it ends at once with
  ``os._exit(137)`` (as if SIGKILLed: no cleanup, no commit) the first time it reaches the point.
  The process-kill crash suite restarts it and checks that every event caused its actions
  exactly once and no command was issued twice.
* **In-process tests**: :func:`set_hook` installs a callable that gets every point name and may
  raise (an exception inside a transaction rolls it back, like a crash before commit).

Points inside a transaction (``*.before_commit`` and the dispatcher's steps) test "crash before
commit: everything is redone identically"; ``*.after_commit`` points test "crash after commit:
nothing is redone".
"""

from __future__ import annotations

import os
from collections.abc import Callable

CRASH_ENV = "TIDEFLOW_CRASH_AT"
EXIT_CODE = 137

POINTS: tuple[str, ...] = (
    # The dispatcher, inside its transaction for one batch of events.
    "dispatch.batch_read",  # events read, nothing decided yet
    "dispatch.before_evaluate",  # an execution's rule states are loaded
    "dispatch.after_evaluate",  # rules evaluated, decisions not applied
    "dispatch.after_job_execution",  # a job attempt row was created
    "dispatch.after_command",  # a command was written to the outbox
    "dispatch.after_execution_end",  # an execution was marked FINISHED / FAILED / STOPPED
    "dispatch.after_trigger",  # a start_on rule started an execution
    "dispatch.before_offset_commit",  # everything written but the consumer offset
    "dispatch.before_commit",  # offset written, transaction not committed
    "dispatch.after_commit",  # the batch is committed
    # The timer service.
    "timer.before_fire",  # due timers locked, no event appended
    "timer.after_event",  # PERIODIC event appended, next fire time not moved
    "timer.before_commit",  # event appended and timer moved, not committed
    "timer.after_commit",  # the firing is committed
    # The API (start_execution and restart_job are "start", stop_execution / stop_job "stop").
    "start.after_job_execution",
    "start.after_command",
    "start.after_execution_end",
    "start.before_commit",  # an execution, its jobs and commands written, not committed
    "start.after_commit",
    "stop.after_command",
    "stop.after_execution_end",
    "stop.before_commit",
    "stop.after_commit",
    "take.before_commit",  # commands claimed, not committed
    "take.after_commit",  # commands claimed and committed, not yet handed to the executor
    "complete.after_commit",
    # The local executor (in the server process), launching and ending job attempts.
    "launch.before_spawn",  # the attempt is prepared, the fork server not asked yet
    "launch.after_spawn",  # the fork server spawned it, launch.json not written
    "launch.before_starting",  # launch.json written, STARTING not committed
    "launch.after_starting",  # STARTING committed, the START command not completed
    "job.after_running",  # RUNNING committed
    "job.after_end",  # FINISHED / FAILED / STOPPED committed, its commands not completed
    "executor.after_stop_signal",  # a STOP's SIGTERM sent (or the attempt dequeued)
)

_hook: Callable[[str], None] | None = None


def set_hook(hook: Callable[[str], None] | None) -> None:
    """Install (or remove, with ``None``) a callable called with every point reached."""
    global _hook
    _hook = hook


def reach(point: str) -> None:
    """Mark that the scheduler reached ``point`` (crash there if asked to)."""
    if _hook is not None:
        _hook(point)
    if os.environ.get(CRASH_ENV) == point:
        os._exit(EXIT_CODE)
