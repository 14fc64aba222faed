"""The audit list: every write action of the web API, with who did it and how it ended.

``audit_entry`` is append-only and read newest first per project (the index on
``(project, audit_id)``). Nothing existing changes.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here rather than imported from tideflow.store (see 0001).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MICRO_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column("audit_id", ID, autoincrement=True, nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=512), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("token_id", ID, nullable=True),
        sa.Column("outcome", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("create_time", MICRO_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("audit_id", name=op.f("pk_audit_entry")),
    )
    op.create_index(
        "ix_audit_entry_project_audit_id", "audit_entry", ["project", "audit_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("audit_entry")
