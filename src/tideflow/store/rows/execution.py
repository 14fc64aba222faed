"""Tables of workflows, their snapshots and executions, job executions, actions and lineage."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tideflow.domain.limits import MAX_KEY_LENGTH, MAX_URI_LENGTH
from tideflow.domain.lineage import LineageKind, LineageRef
from tideflow.domain.metadata import (
    ExecutionAction,
    JobExecution,
    Snapshot,
    Workflow,
    WorkflowExecution,
)
from tideflow.domain.status import ExecutionStatus, JobAction, JobStatus
from tideflow.store.rows.base import ID, NAME_LENGTH, STATUS_LENGTH, Base, RowData
from tideflow.store.types import LONG_TEXT, JSONText, UTCDateTime

SHA256_LENGTH = 64


def offsets(value: Any) -> tuple[int, ...]:
    """Stored trigger offsets (a JSON list, or NULL for none) as a tuple."""
    return tuple(int(offset) for offset in value or ())


class WorkflowRow(Base):
    """A submitted workflow of a project."""

    __tablename__ = "workflow"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    project_id: Mapped[int] = mapped_column(ID, ForeignKey("project.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    # No foreign key: snapshot -> workflow already points the other way, and a cycle of
    # foreign keys would complicate deletes on every backend for no gain.
    latest_snapshot_id: Mapped[int | None] = mapped_column(ID)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def to_domain(cls, row: RowData) -> Workflow:
        """The :class:`Workflow` of a result row of this table."""
        return Workflow(
            name=row["name"],
            latest_snapshot_id=row["latest_snapshot_id"],
            create_time=row["create_time"],
            update_time=row["update_time"],
        )


class SnapshotRow(Base):
    """A submitted plan and code package of a workflow."""

    __tablename__ = "workflow_snapshot"
    # Resubmitting the same content looks the snapshot up by (workflow, identity).
    __table_args__ = (Index(None, "workflow_id", "identity"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    workflow_id: Mapped[int] = mapped_column(
        ID, ForeignKey("workflow.id", ondelete="CASCADE"), index=True
    )
    plan: Mapped[str] = mapped_column(LONG_TEXT)
    code_uri: Mapped[str] = mapped_column(String(MAX_URI_LENGTH))
    code_sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH))
    # SHA-256 over canonical content (files + plan); '' for snapshots stored without one.
    identity: Mapped[str] = mapped_column(String(SHA256_LENGTH), server_default="")
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def to_domain(cls, row: RowData, workflow: str) -> Snapshot:
        """The :class:`Snapshot` of a result row of this table."""
        return Snapshot(
            snapshot_id=row["id"],
            workflow=workflow,
            plan=row["plan"],
            code_uri=row["code_uri"],
            code_sha256=row["code_sha256"],
            create_time=row["create_time"],
            identity=row["identity"] or "",
        )


class WorkflowExecutionRow(Base):
    """One run of a workflow."""

    __tablename__ = "workflow_execution"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    workflow_id: Mapped[int] = mapped_column(
        ID, ForeignKey("workflow.id", ondelete="CASCADE"), index=True
    )
    snapshot_id: Mapped[int] = mapped_column(
        ID, ForeignKey("workflow_snapshot.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(STATUS_LENGTH))
    params: Mapped[Any] = mapped_column(JSONText)
    context: Mapped[str | None] = mapped_column(String(MAX_KEY_LENGTH))
    start_time: Mapped[datetime] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @classmethod
    def to_domain(cls, row: RowData, workflow: str) -> WorkflowExecution:
        """The :class:`WorkflowExecution` of a result row of this table."""
        return WorkflowExecution(
            execution_id=row["id"],
            workflow=workflow,
            snapshot_id=row["snapshot_id"],
            status=ExecutionStatus(row["status"]),
            params=row["params"] or {},
            context=row["context"],
            start_time=row["start_time"],
            end_time=row["end_time"],
        )


class JobExecutionRow(Base):
    """One attempt of a job in a workflow execution."""

    __tablename__ = "job_execution"
    __table_args__ = (
        UniqueConstraint("execution_id", "job", "attempt"),
        # The live attempts of an execution, without reading its ended ones (0015).
        Index(None, "execution_id", "status"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    execution_id: Mapped[int] = mapped_column(
        ID, ForeignKey("workflow_execution.id", ondelete="CASCADE")
    )
    job: Mapped[str] = mapped_column(String(NAME_LENGTH))
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(STATUS_LENGTH))
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    log_uri: Mapped[str | None] = mapped_column(String(MAX_URI_LENGTH))
    host: Mapped[str | None] = mapped_column(String(MAX_KEY_LENGTH))
    pid: Mapped[int | None] = mapped_column(Integer)
    external_id: Mapped[str | None] = mapped_column(String(MAX_KEY_LENGTH))
    # The attempt, not its START command, carries what it was started for: commands are
    # one-shot outbox entries (a STOP has no trigger), while the attempt is what a retry
    # copies the trigger from, what every executor reads before launching and what the API
    # shows. A JSON list of event offsets (NULL: none); the events stay in the log.
    trigger_offsets: Mapped[list[int] | None] = mapped_column(JSONText)
    # In a cluster, the member that launched or adopted the attempt (NULL on a single server):
    # only it may report the attempt's status. ``home`` / ``home_host`` are where the attempt's
    # files are (the ``$TIDEFLOW_HOME`` of the member that took it, and that member's host), so
    # a member on that host can re-attach the attempt when its owner dies.
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    home: Mapped[str | None] = mapped_column(String(MAX_URI_LENGTH))
    home_host: Mapped[str | None] = mapped_column(String(255))

    @classmethod
    def to_domain(cls, row: RowData, workflow: str) -> JobExecution:
        """The :class:`JobExecution` of a result row of this table."""
        return JobExecution(
            job_execution_id=row["id"],
            execution_id=row["execution_id"],
            workflow=workflow,
            job=row["job"],
            attempt=row["attempt"],
            status=JobStatus(row["status"]),
            create_time=row["create_time"],
            start_time=row["start_time"],
            end_time=row["end_time"],
            exit_code=row["exit_code"],
            error=row["error"],
            log_uri=row["log_uri"],
            host=row["host"],
            pid=row["pid"],
            external_id=row["external_id"],
            trigger_offsets=offsets(row.get("trigger_offsets")),
        )


class ExecutionActionRow(Base):
    """An action taken in a workflow execution, with the rule and event offset behind it."""

    __tablename__ = "execution_action"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    execution_id: Mapped[int] = mapped_column(
        ID, ForeignKey("workflow_execution.id", ondelete="CASCADE"), index=True
    )
    job: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    action: Mapped[str] = mapped_column(String(STATUS_LENGTH))
    rule: Mapped[str] = mapped_column(Text)
    event_offset: Mapped[int | None] = mapped_column(BigInteger)
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    trigger_offsets: Mapped[list[int] | None] = mapped_column(JSONText)

    @classmethod
    def to_domain(cls, row: RowData) -> ExecutionAction:
        """The :class:`ExecutionAction` of a result row of this table."""
        return ExecutionAction(
            action_id=row["id"],
            execution_id=row["execution_id"],
            job=row["job"],
            action=JobAction(row["action"]),
            rule=row["rule"],
            event_offset=row["event_offset"],
            time=row["time"],
            trigger_offsets=offsets(row.get("trigger_offsets")),
        )


class LineageRecordRow(Base):
    """One ``record_lineage`` call of a job execution: the entries written together.

    A model version's own inputs are the inputs of the record that names it as an output, so a
    streaming trainer that logs many versions gives each one its own range.
    """

    __tablename__ = "lineage_record"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    project_id: Mapped[int] = mapped_column(ID, ForeignKey("project.id", ondelete="CASCADE"))
    job_execution_id: Mapped[int] = mapped_column(
        ID, ForeignKey("job_execution.id", ondelete="CASCADE"), index=True
    )
    time: Mapped[datetime] = mapped_column(UTCDateTime)


class LineageEntryRow(Base):
    """One input or output of a job execution, part of one :class:`LineageRecordRow`.

    Entities are referenced by kind, name and version rather than foreign keys: a dataset
    version is not a row of its own, and lineage should survive the entity being deleted.
    ``record_id`` is always set (revision 0009 gave older entries one record per job
    execution); it is nullable and has no foreign key only because a column is added in place
    that way on every backend -- the record and its entries go with their job execution.
    """

    __tablename__ = "lineage_entry"
    __table_args__ = (Index(None, "project_id", "kind", "name", "version"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    project_id: Mapped[int] = mapped_column(ID, ForeignKey("project.id", ondelete="CASCADE"))
    job_execution_id: Mapped[int] = mapped_column(
        ID, ForeignKey("job_execution.id", ondelete="CASCADE"), index=True
    )
    record_id: Mapped[int | None] = mapped_column(ID, index=True)
    direction: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(STATUS_LENGTH))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    version: Mapped[int | None] = mapped_column(Integer)
    start_offset: Mapped[int | None] = mapped_column(BigInteger)
    end_offset: Mapped[int | None] = mapped_column(BigInteger)
    time: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def to_ref(cls, row: RowData) -> LineageRef:
        """The :class:`LineageRef` of a result row of this table."""
        return LineageRef(
            kind=LineageKind(row["kind"]),
            name=row["name"],
            version=row["version"],
            start_offset=row["start_offset"],
            end_offset=row["end_offset"],
        )
