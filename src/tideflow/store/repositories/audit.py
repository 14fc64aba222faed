"""SQL of the audit list: append an entry, read a project's entries newest first."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from tideflow.domain.audit import AuditEntry
from tideflow.store.repositories import inserted_id
from tideflow.store.rows.access import AuditEntryRow
from tideflow.store.rows.base import table_of

AUDIT = table_of(AuditEntryRow)


class AuditRepository:
    """Audit entries: append and list (they are never changed or deleted here)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def create(
        self,
        *,
        project: str,
        action: str,
        target: str,
        actor: str,
        token_id: int | None,
        outcome: str,
        detail: str,
        now: datetime,
    ) -> AuditEntry:
        """Append one entry."""
        values = {
            "project": project,
            "action": action,
            "target": target,
            "actor": actor,
            "token_id": token_id,
            "outcome": outcome,
            "detail": detail,
            "create_time": now,
        }
        result = self._connection.execute(AUDIT.insert(), values)
        return AuditEntryRow.to_domain({**values, "audit_id": inserted_id(result)})

    def list(self, project: str, *, before: int | None, limit: int) -> list[AuditEntry]:
        """Up to ``limit`` entries of ``project`` with an id below ``before``, newest first."""
        query = (
            select(AUDIT)
            .where(AUDIT.c.project == project)
            .order_by(AUDIT.c.audit_id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(AUDIT.c.audit_id < before)
        return [AuditEntryRow.to_domain(r._mapping) for r in self._connection.execute(query)]
