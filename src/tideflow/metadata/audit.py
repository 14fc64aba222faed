"""AuditService: record the write actions people take through the web API, and list them.

An entry is written after the action's own transaction, in one of its own: the services that
act (scheduler, Model Center, notification) own their transactions, and an action that failed
is worth recording too (who tried to deploy what, and why it was refused). Texts are cut to
their column sizes rather than refused: a long event key must not make its audit fail.
"""

from __future__ import annotations

from tideflow.domain.audit import AuditEntry
from tideflow.domain.limits import check_name
from tideflow.store import Store
from tideflow.store.cursor import check_limit, decode_cursor, encode_cursor
from tideflow.store.repositories.audit import AuditRepository
from tideflow.store.types import utcnow

MAX_DETAIL = 4000
"""Characters of ``detail`` kept (arguments or an error message)."""


def _cut(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


class AuditService:
    """The audit list of every project."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def record(
        self,
        project: str,
        *,
        action: str,
        target: str,
        actor: str,
        token_id: int | None,
        outcome: str,
        detail: str = "",
    ) -> AuditEntry:
        """Append one entry (its own transaction)."""
        now = utcnow()
        return self._store.run(
            lambda c: AuditRepository(c).create(
                project=project,
                action=_cut(action, 64),
                target=_cut(target, 512),
                actor=_cut(actor, 128),
                token_id=token_id,
                outcome=_cut(outcome, 64),
                detail=_cut(detail, MAX_DETAIL),
                now=now,
            )
        )

    def list_entries(
        self, project: str, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[AuditEntry], str | None]:
        """A page of the project's entries, newest first, and the next page's cursor.

        Raises:
            InvalidArgumentError: A bad project name, limit or cursor.
        """
        check_name(project, "project")
        check_limit(limit)
        before = decode_cursor("audit", cursor)
        found = self._store.run(
            lambda c: AuditRepository(c).list(project, before=before, limit=limit + 1),
            write=False,
        )
        more = len(found) > limit
        found = found[:limit]
        return found, (encode_cursor("audit", found[-1].audit_id) if more else None)
