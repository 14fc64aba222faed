"""What an executor tells an attempt: the :class:`~tideflow.domain.attempt.AttemptSpec`.

Every executor writes ``attempt.json`` through :func:`attempt_spec`, so every engine's job
receives the same identity, the execution's parameters and the events it was started for
(``ctx.trigger`` / ``ctx.triggers``) -- the whole events, read from the log when the attempt is
prepared: a job needs no call to the server to know why it runs, and Spark or Flink
processors, which have no client, get them as well.
"""

from __future__ import annotations

from tideflow.domain.attempt import AttemptSpec
from tideflow.domain.scheduling import JobCommand
from tideflow.executors.base import ExecutorContext


def attempt_spec(
    context: ExecutorContext,
    command: JobCommand,
    *,
    heartbeat_interval: float = 1.0,
    server_url: str | None = None,
    db_url: str | None = None,
) -> AttemptSpec:
    """The spec of the attempt a START ``command`` names.

    Args:
        context: The executor's context (where the execution and the attempt are read).
        command: The START command.
        heartbeat_interval: Seconds between two heartbeats of the job, if it beats.
        server_url: The server the job connects back to, if it does.
        db_url: The store URL for jobs when there is no server (in-process use and tests).

    Raises:
        NotFoundError: The execution or the attempt no longer exists.
    """
    executions = context.executions
    execution = executions.get_execution(command.project, command.execution_id)
    return AttemptSpec(
        project=command.project,
        workflow=command.workflow,
        execution_id=command.execution_id,
        snapshot_id=command.snapshot_id,
        job=command.job,
        attempt=command.attempt,
        job_execution_id=command.job_execution_id,
        params=dict(execution.params),
        heartbeat_interval=heartbeat_interval,
        server_url=server_url,
        db_url=db_url,
        triggers=executions.attempt_triggers(command.project, command.job_execution_id),
    )
