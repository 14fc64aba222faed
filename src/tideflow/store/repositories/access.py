"""SQL of API tokens: rows hold the token's SHA-256, never the token."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update

from tideflow.domain.access import ApiToken, Role
from tideflow.errors import NotFoundError
from tideflow.store.repositories import inserted_id
from tideflow.store.rows.access import ApiTokenRow
from tideflow.store.rows.base import table_of

TOKEN = table_of(ApiTokenRow)

# Prebuilt: this lookup runs on every authenticated call.
_FIND = select(TOKEN).where(TOKEN.c.token_hash == bindparam("token_hash"))


class TokenRepository:
    """API tokens: create, find by hash, list, revoke."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def create(
        self,
        token_hash: str,
        name: str,
        project: str,
        role: Role,
        now: datetime,
        *,
        job_execution_id: int | None = None,
        execution_id: int | None = None,
    ) -> ApiToken:
        """Insert a token (``token_hash`` is unique: hashes of random tokens never collide)."""
        values = {
            "token_hash": token_hash,
            "name": name,
            "project": project,
            "role": role.value,
            "create_time": now,
            "job_execution_id": job_execution_id,
            "execution_id": execution_id,
        }
        result = self._connection.execute(TOKEN.insert(), values)
        return ApiToken(
            token_id=inserted_id(result),
            name=name,
            project=project,
            role=role,
            create_time=now,
            job_execution_id=job_execution_id,
            execution_id=execution_id,
        )

    def find(self, token_hash: str) -> ApiToken | None:
        """The token whose hash is ``token_hash`` (revoked or not), if any."""
        row = self._connection.execute(_FIND, {"token_hash": token_hash}).first()
        return None if row is None else ApiTokenRow.to_domain(row._mapping)

    def get(self, token_id: int) -> ApiToken:
        """The token ``token_id``.

        Raises:
            NotFoundError: No such token.
        """
        row = self._connection.execute(select(TOKEN).where(TOKEN.c.token_id == token_id)).first()
        if row is None:
            raise NotFoundError("API token", token_id)
        return ApiTokenRow.to_domain(row._mapping)

    def list(self, project: str | None) -> list[ApiToken]:
        """Tokens of ``project`` (every project's when ``None``), oldest first."""
        query = select(TOKEN).order_by(TOKEN.c.token_id)
        if project is not None:
            query = query.where(TOKEN.c.project == project)
        return [ApiTokenRow.to_domain(row._mapping) for row in self._connection.execute(query)]

    def revoke(self, token_id: int, now: datetime) -> ApiToken:
        """Mark the token revoked (revoking twice keeps the first time).

        Raises:
            NotFoundError: No such token.
        """
        self._connection.execute(
            update(TOKEN)
            .where(TOKEN.c.token_id == token_id, TOKEN.c.revoke_time.is_(None))
            .values(revoke_time=now)
        )
        return self.get(token_id)

    def revoke_for_attempt(self, job_execution_id: int, now: datetime) -> int:
        """Revoke the tokens minted for attempt ``job_execution_id``; how many were live."""
        return int(
            self._connection.execute(
                update(TOKEN)
                .where(TOKEN.c.job_execution_id == job_execution_id, TOKEN.c.revoke_time.is_(None))
                .values(revoke_time=now)
            ).rowcount
        )
