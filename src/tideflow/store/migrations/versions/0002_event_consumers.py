"""Event consumers' committed offsets; event values up to the 1 MiB limit on MariaDB.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

MICRO_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_consumer",
        sa.Column("namespace", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("update_time", MICRO_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("namespace", "name", name=op.f("pk_event_consumer")),
    )
    # MariaDB's TEXT holds 64 KiB; event values may be up to 1 MiB.
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        op.alter_column(
            "event",
            "value",
            existing_type=sa.Text(),
            type_=mysql.LONGTEXT(),
            existing_nullable=False,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        op.alter_column(
            "event",
            "value",
            existing_type=mysql.LONGTEXT(),
            type_=sa.Text(),
            existing_nullable=False,
        )
    op.drop_table("event_consumer")
