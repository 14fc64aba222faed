"""The request log is keyed by the caller: project, token and request id.

``rpc_request`` was keyed by the client's request id alone, so a caller who reused (or
guessed) another project's request id got that project's stored response. Its primary key is
now ``(project, token_id, request_id)``; ``token_id`` is 0 for calls without a token.

The table is dropped and created again rather than altered: the rows already in it name no
caller, so none of them could ever match a call under the new key, and on SQLite changing a
primary key means recreating the table anyway. What that forgets is the deduplication of a
call made before the upgrade and retried after it (the server is stopped in between; clients
retry for seconds, and rows are kept a day only to answer such retries).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here rather than imported from tideflow.store (see 0001).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MICRO_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
BLOB = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


def _create(*, scoped: bool) -> None:
    caller: list[sa.Column[object]] = []
    if scoped:
        caller = [
            sa.Column("project", sa.String(length=128), nullable=False),
            sa.Column("token_id", ID, autoincrement=False, nullable=False),
        ]
    key = ["project", "token_id", "request_id"] if scoped else ["request_id"]
    op.create_table(
        "rpc_request",
        *caller,
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=256), nullable=False),
        sa.Column("response", BLOB, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("create_time", MICRO_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint(*key, name=op.f("pk_rpc_request")),
    )
    op.create_index(
        op.f("ix_rpc_request_create_time"), "rpc_request", ["create_time"], unique=False
    )


def _drop() -> None:
    op.drop_index(op.f("ix_rpc_request_create_time"), table_name="rpc_request")
    op.drop_table("rpc_request")


def upgrade() -> None:
    _drop()
    _create(scoped=True)


def downgrade() -> None:
    _drop()
    _create(scoped=False)
