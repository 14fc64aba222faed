"""What an executor tells an attempt: the :class:`~tideflow.domain.attempt.AttemptSpec`.

Every executor writes ``attempt.json`` through :func:`attempt_spec`, so every engine's job
receives the same identity, the execution's parameters and context (``ctx.context``) and the
events it was started for (``ctx.trigger`` / ``ctx.triggers``) -- the whole events, read from
the log when the attempt is prepared: a job needs no call to the server to know why it runs,
and Spark or Flink processors, which have no client, get them as well.
"""

from __future__ import annotations

from pathlib import Path

from tideflow.domain.attempt import AttemptSpec
from tideflow.domain.scheduling import JobCommand
from tideflow.executors.base import ExecutorContext
from tideflow.executors.identity import hand_over, pass_through
from tideflow.logs import LOG_FORMAT_VARIABLE, current_format
from tideflow.settings import (
    DATA_DIR_VARIABLE,
    PROJECT_VARIABLE,
    SERVER_VARIABLE,
    TOKEN_VARIABLE,
    scrubbed_environment,
)

__all__ = ["attempt_spec", "job_environment", "project_data_dir", "scrubbed_environment"]

DATA_DIR = "data"
"""The folder of the home that holds one data directory per project."""


def attempt_spec(
    context: ExecutorContext,
    command: JobCommand,
    *,
    heartbeat_interval: float = 1.0,
    server_url: str | None = None,
) -> AttemptSpec:
    """The spec of the attempt a START ``command`` names.

    Args:
        context: The executor's context (where the execution and the attempt are read).
        command: The START command.
        heartbeat_interval: Seconds between two heartbeats of the job, if it beats.
        server_url: The server the job connects back to, if it does.

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
        data_dir=str(project_data_dir(context, command.project)),
        triggers=executions.attempt_triggers(command.project, command.job_execution_id),
        context=execution.context,
    )


def project_data_dir(context: ExecutorContext, project: str) -> Path:
    """``<home>/data/<project>``, made if missing: where the project's jobs hand files over.

    It is the one place under the home that jobs are given; the database, blobs, tokens and
    the rest stay the server's. With a job user (``--job-user``) the directory is that user's
    (with what it holds, when it was made before), and ``data/`` is passable but not listable.
    """
    path = context.home / DATA_DIR / project
    path.mkdir(parents=True, exist_ok=True)
    user = context.job_user
    if user is not None:
        pass_through(path.parent, user)
        if path.lstat().st_uid != user.uid:
            hand_over(path, user)
    return path


def job_environment(
    context: ExecutorContext, command: JobCommand, *, token: bool = True
) -> dict[str, str]:
    """The variables every job process of ``command`` gets (its token included).

    The token is minted for this attempt (``ExecutorContext.job_tokens``) and travels only in
    the environment: never in ``attempt.json``, a log line or a command line. Engines whose
    processors never call the server (Spark, Flink) pass ``token=False``.
    """
    env = {
        PROJECT_VARIABLE: command.project,
        DATA_DIR_VARIABLE: str(project_data_dir(context, command.project)),
        "PYTHONUNBUFFERED": "1",
        LOG_FORMAT_VARIABLE: current_format(),  # the server's --log-format
    }
    if context.server_url:
        env[SERVER_VARIABLE] = context.server_url
    if token and context.job_tokens is not None:
        env[TOKEN_VARIABLE] = context.job_tokens(command)
    return env
