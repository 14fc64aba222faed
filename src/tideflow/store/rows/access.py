"""Tables of the edges: API tokens, the responses kept to deduplicate retried calls, the audit list."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, LargeBinary, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from tideflow.domain.access import ApiToken, Role
from tideflow.domain.audit import AuditEntry
from tideflow.store.rows.base import ID, NAME_LENGTH, STATUS_LENGTH, Base, RowData
from tideflow.store.types import UTCDateTime

RESPONSE_BLOB = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


class ApiTokenRow(Base):
    """An API token: only its SHA-256 is stored, never the token itself."""

    __tablename__ = "api_token"

    token_id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    project: Mapped[str] = mapped_column(String(NAME_LENGTH))
    role: Mapped[str] = mapped_column(String(STATUS_LENGTH))
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    revoke_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    job_execution_id: Mapped[int | None] = mapped_column(ID, index=True)
    execution_id: Mapped[int | None] = mapped_column(ID)

    @classmethod
    def to_domain(cls, row: RowData) -> ApiToken:
        """The :class:`ApiToken` of a result row of this table (never its hash)."""
        return ApiToken(
            token_id=row["token_id"],
            name=row["name"],
            project=row["project"],
            role=Role(row["role"]),
            create_time=row["create_time"],
            revoke_time=row["revoke_time"],
            job_execution_id=row["job_execution_id"],
            execution_id=row["execution_id"],
        )


class RpcRequestRow(Base):
    """The response to a mutating call, kept by its caller and client-generated request id.

    A retried call (its response was lost) finds its first response here and gets it again
    instead of being applied twice. The key includes the caller -- its project and token
    (``token_id`` 0 without one) -- so a request id reused by another caller is a new call,
    never a way to read someone else's response.
    """

    __tablename__ = "rpc_request"

    project: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    token_id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=False)
    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    method: Mapped[str] = mapped_column(String(256))
    response: Mapped[bytes] = mapped_column(RESPONSE_BLOB)
    size: Mapped[int] = mapped_column(BigInteger)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AuditEntryRow(Base):
    """One write action of the web API: who asked, what, and how it ended."""

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_project_audit_id", "project", "audit_id"),)

    audit_id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(NAME_LENGTH))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(512))
    actor: Mapped[str] = mapped_column(String(NAME_LENGTH))
    token_id: Mapped[int | None] = mapped_column(ID)
    outcome: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def to_domain(cls, row: RowData) -> AuditEntry:
        """The :class:`AuditEntry` of a result row of this table."""
        return AuditEntry(
            audit_id=row["audit_id"],
            project=row["project"],
            action=row["action"],
            target=row["target"],
            actor=row["actor"],
            token_id=row["token_id"],
            outcome=row["outcome"],
            detail=row["detail"],
            create_time=row["create_time"],
        )
