"""API tokens and the deduplication log of mutating RPCs.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MICRO_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
BLOB = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_token",
        sa.Column("token_id", ID, autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("create_time", MICRO_DATETIME, nullable=False),
        sa.Column("revoke_time", MICRO_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_token_token_hash")),
    )
    op.create_table(
        "rpc_request",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=256), nullable=False),
        sa.Column("response", BLOB, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("create_time", MICRO_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_rpc_request")),
    )
    op.create_index(
        op.f("ix_rpc_request_create_time"), "rpc_request", ["create_time"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_rpc_request_create_time"), table_name="rpc_request")
    op.drop_table("rpc_request")
    op.drop_table("api_token")
