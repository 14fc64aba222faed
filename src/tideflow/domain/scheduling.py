"""The contract between the scheduler and the executors: job commands (the outbox).

The scheduler decides; executors act. Every decision to start or stop a job attempt is a
:class:`JobCommand` written in the same transaction as the decision (and the consumed event
offset). Its id is deterministic -- ``<execution>:<job>:<attempt>:<action>`` -- so a command is
issued at most once even if the scheduler re-runs its decision after a crash, and an executor
that sees the same id twice runs it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class CommandAction(StrEnum):
    """What an executor is told to do with one job attempt."""

    START = "START"
    STOP = "STOP"


class CommandStatus(StrEnum):
    """Where a command is in the outbox."""

    PENDING = "PENDING"
    TAKEN = "TAKEN"
    DONE = "DONE"


def command_id(execution_id: int, job: str, attempt: int, action: CommandAction) -> str:
    """The deterministic id of a command."""
    return f"{execution_id}:{job}:{attempt}:{action}"


@dataclass(frozen=True)
class JobCommand:
    """One instruction for an executor.

    Attributes:
        command_id: ``<execution>:<job>:<attempt>:<action>`` (see :func:`command_id`).
        project: The project of the execution.
        workflow: The workflow's name.
        execution_id: The workflow execution.
        snapshot_id: The snapshot (plan + code package) the execution is pinned to.
        job: The job's name.
        attempt: The attempt number (1 for the first run).
        job_execution_id: The job execution row of this attempt.
        action: Start or stop the attempt.
        executor: Which executor plugin runs it (``local``, ``ray``...), from the job's platform.
        status: Where it is in the outbox.
        not_before: Do not start before this time (retry backoff), if set.
        create_time: When the scheduler issued it.
    """

    command_id: str
    project: str
    workflow: str
    execution_id: int
    snapshot_id: int
    job: str
    attempt: int
    job_execution_id: int
    action: CommandAction
    executor: str = "local"
    status: CommandStatus = CommandStatus.PENDING
    not_before: datetime | None = None
    create_time: datetime | None = None


@dataclass(frozen=True)
class QueuedFiring:
    """A rule's firing that waits for its busy job (``on_busy="queue"`` or ``"latest"``).

    Attributes:
        queue_id: Assigned by the store; firings of a job start in this order.
        execution_id: The workflow execution.
        job: The job to start once its live attempt ends.
        rule_index: The rule that fired (its index in the plan's rules).
        rule: The rule, described (what the action records say).
        event_offset: The event the rule fired on.
        trigger_offsets: The events the rule held on: the attempt's ``ctx.triggers``.
    """

    queue_id: int
    execution_id: int
    job: str
    rule_index: int
    rule: str
    event_offset: int
    trigger_offsets: tuple[int, ...] = ()


@dataclass(frozen=True)
class AttemptOwner:
    """A cluster member as the owner of the commands it takes and the attempts it launches.

    On a single server there is none: nothing is owned, and the server re-attaches its own
    attempts after a restart by the records in its home. In a cluster every command a
    member's executor takes and every attempt it launches carries ``member_id``; only the
    owner reports an attempt's status, and when it dies the leader hands its attempts to a
    live member (see docs/ha.md).

    Attributes:
        member_id: The member's id (new at every process start).
        host: The host it reports (``$TIDEFLOW_MEMBER_HOST``, else the machine's name):
            local processes are re-attached only by a member on the same host.
        home: Its ``$TIDEFLOW_HOME``, where the attempts it launches keep their files.
        lease: Seconds without a heartbeat after which a member counts as dead.
    """

    member_id: str
    host: str
    home: str
    lease: float


@dataclass(frozen=True)
class OwnedAttempt:
    """A launched attempt with its owner and where its files are.

    Attributes:
        start: Its START command.
        owner: The member that owns it.
        home: The ``$TIDEFLOW_HOME`` holding its files (``None``: not recorded).
        home_host: The host of that home.
        owner_host: The owner's host as its member row says (``None``: the row is gone).
    """

    start: JobCommand
    owner: str
    home: str | None
    home_host: str | None
    owner_host: str | None = None
