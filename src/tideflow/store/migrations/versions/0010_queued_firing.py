"""Queued firings: START rules that fire while their job is busy wait for it.

``queued_firing`` holds, per running execution, the firings of rules with ``on_busy="queue"``
or ``"latest"`` that wait for their job's live attempt to end (id order is start order). Rows
are written and removed in the scheduler's transactions, so a queue survives a restart and
each firing starts exactly once. Nothing existing changes.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here rather than imported from tideflow.store (see 0001).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MICRO_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "queued_firing",
        sa.Column("id", ID, nullable=False),
        sa.Column("execution_id", ID, nullable=False),
        sa.Column("job", sa.String(length=128), nullable=False),
        sa.Column("rule_index", sa.Integer(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("event_offset", sa.BigInteger(), nullable=False),
        sa.Column("trigger_offsets", LONG_TEXT, nullable=True),
        sa.Column("create_time", MICRO_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["workflow_execution.id"],
            name=op.f("fk_queued_firing_execution_id_workflow_execution"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queued_firing")),
    )
    op.create_index(
        op.f("ix_queued_firing_execution_id"), "queued_firing", ["execution_id"], unique=False
    )


def downgrade() -> None:
    # The table's indexes go with it (MariaDB refuses to drop the index of a foreign key).
    op.drop_table("queued_firing")
