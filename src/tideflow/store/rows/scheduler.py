"""Tables of the scheduler: rule states, the job-command outbox, timers and routing indexes.

* ``rule_state`` -- what each rule of a running execution remembers (JSON of
  :class:`~tideflow.scheduler.rules.RuleState`), one row per (execution, rule index).
* ``job_command`` -- the outbox executors take commands from; ``command_id`` is deterministic
  (``<execution>:<job>:<attempt>:<action>``), so a decision redone after a crash cannot issue a
  command twice.
* ``scheduler_timer`` -- the next fire time of each periodic rule of a running execution.
* ``execution_route`` -- (namespace, key) -> running execution, for every key a rule of the
  execution listens to (``'*'`` for wildcard keys): routing an event is one indexed lookup,
  whatever the number of workflows and executions.
* ``workflow_trigger`` -- the same for ``start_on`` rules of each workflow's latest snapshot, and
  ``trigger_state`` their rule states (per event context for ``per_context`` workflows).
* ``workflow_schedule`` -- per workflow: paused, and the cap on running executions.
* ``queued_firing`` -- firings of START rules that wait for their busy job (``on_busy`` queue /
  latest), started in id order as the job's attempts end; dropped when the execution ends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tideflow.domain.limits import MAX_KEY_LENGTH
from tideflow.domain.scheduling import CommandAction, CommandStatus, JobCommand, QueuedFiring
from tideflow.store.rows.base import ID, NAME_LENGTH, STATUS_LENGTH, Base, RowData
from tideflow.store.types import JSONText, UTCDateTime

COMMAND_ID_LENGTH = 200
EXECUTOR_LENGTH = 64


class RuleStateRow(Base):
    """The state of one rule in one running execution."""

    __tablename__ = "rule_state"

    execution_id: Mapped[int] = mapped_column(
        ID, ForeignKey("workflow_execution.id", ondelete="CASCADE"), primary_key=True
    )
    rule_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[Any] = mapped_column(JSONText)


class JobCommandRow(Base):
    """One command of the outbox."""

    __tablename__ = "job_command"
    __table_args__ = (Index(None, "executor", "status"),)

    command_id: Mapped[str] = mapped_column(String(COMMAND_ID_LENGTH), primary_key=True)
    execution_id: Mapped[int] = mapped_column(
        ID, ForeignKey("workflow_execution.id", ondelete="CASCADE"), index=True
    )
    job_execution_id: Mapped[int] = mapped_column(
        ID, ForeignKey("job_execution.id", ondelete="CASCADE"), index=True
    )
    project: Mapped[str] = mapped_column(String(NAME_LENGTH))
    workflow: Mapped[str] = mapped_column(String(NAME_LENGTH))
    snapshot_id: Mapped[int] = mapped_column(ID)
    job: Mapped[str] = mapped_column(String(NAME_LENGTH))
    attempt: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(STATUS_LENGTH))
    executor: Mapped[str] = mapped_column(String(EXECUTOR_LENGTH))
    status: Mapped[str] = mapped_column(String(STATUS_LENGTH))
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    taken_by: Mapped[str | None] = mapped_column(String(MAX_KEY_LENGTH))
    taken_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    member: Mapped[str | None] = mapped_column(String(64))
    """The cluster member whose executor took the command (NULL: a single server, a client)."""

    @classmethod
    def to_domain(cls, row: RowData) -> JobCommand:
        """The :class:`JobCommand` of a result row of this table."""
        return JobCommand(
            command_id=row["command_id"],
            project=row["project"],
            workflow=row["workflow"],
            execution_id=row["execution_id"],
            snapshot_id=row["snapshot_id"],
            job=row["job"],
            attempt=row["attempt"],
            job_execution_id=row["job_execution_id"],
            action=CommandAction(row["action"]),
            executor=row["executor"],
            status=CommandStatus(row["status"]),
            not_before=row["not_before"],
            create_time=row["create_time"],
        )

    @classmethod
    def values(cls, command: JobCommand) -> dict[str, Any]:
        """Column values for storing ``command``."""
        return {
            "command_id": command.command_id,
            "execution_id": command.execution_id,
            "job_execution_id": command.job_execution_id,
            "project": command.project,
            "workflow": command.workflow,
            "snapshot_id": command.snapshot_id,
            "job": command.job,
            "attempt": command.attempt,
            "action": command.action.value,
            "executor": command.executor,
            "status": command.status.value,
            "not_before": command.not_before,
            "create_time": command.create_time,
            "taken_by": None,
            "taken_time": None,
        }


class TimerRow(Base):
    """When a periodic rule of a running execution fires next."""

    __tablename__ = "scheduler_timer"

    execution_id: Mapped[int] = mapped_column(
        ID, ForeignKey("workflow_execution.id", ondelete="CASCADE"), primary_key=True
    )
    rule_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    next_fire_time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ExecutionRouteRow(Base):
    """A key (or ``'*'``) of a namespace that some rule of a running execution listens to."""

    __tablename__ = "execution_route"

    namespace: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    execution_id: Mapped[int] = mapped_column(
        ID,
        ForeignKey("workflow_execution.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    )


class WorkflowTriggerRow(Base):
    """A key (or ``'*'``) a ``start_on`` rule of a workflow's latest snapshot listens to."""

    __tablename__ = "workflow_trigger"
    __table_args__ = (Index(None, "namespace", "key"),)

    workflow_id: Mapped[int] = mapped_column(
        ID, ForeignKey("workflow.id", ondelete="CASCADE"), primary_key=True
    )
    rule_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(NAME_LENGTH))
    snapshot_id: Mapped[int] = mapped_column(ID)


class TriggerStateRow(Base):
    """The state of one ``start_on`` rule of a workflow, per event context ('' if none)."""

    __tablename__ = "trigger_state"

    workflow_id: Mapped[int] = mapped_column(
        ID, ForeignKey("workflow.id", ondelete="CASCADE"), primary_key=True
    )
    context: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    rule_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[Any] = mapped_column(JSONText)


class WorkflowScheduleRow(Base):
    """Scheduling settings of a workflow (absent: not paused, no cap)."""

    __tablename__ = "workflow_schedule"

    workflow_id: Mapped[int] = mapped_column(
        ID, ForeignKey("workflow.id", ondelete="CASCADE"), primary_key=True
    )
    paused: Mapped[bool] = mapped_column(Boolean)
    max_active_executions: Mapped[int | None] = mapped_column(Integer)


class QueuedFiringRow(Base):
    """A rule's firing waiting for its job's live attempt to end."""

    __tablename__ = "queued_firing"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    execution_id: Mapped[int] = mapped_column(
        ID, ForeignKey("workflow_execution.id", ondelete="CASCADE"), index=True
    )
    job: Mapped[str] = mapped_column(String(NAME_LENGTH))
    rule_index: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(Text)
    event_offset: Mapped[int] = mapped_column(BigInteger)
    trigger_offsets: Mapped[list[int] | None] = mapped_column(JSONText)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def to_domain(cls, row: RowData) -> QueuedFiring:
        """The :class:`QueuedFiring` of a result row of this table."""
        return QueuedFiring(
            queue_id=row["id"],
            execution_id=row["execution_id"],
            job=row["job"],
            rule_index=row["rule_index"],
            rule=row["rule"],
            event_offset=row["event_offset"],
            trigger_offsets=tuple(row["trigger_offsets"] or ()),
        )
