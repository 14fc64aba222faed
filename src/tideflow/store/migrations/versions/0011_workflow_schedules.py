"""Workflow schedules: the next tick of each workflow, and every tick handled.

``schedule_timer`` holds, per workflow, the snapshot whose ``wf.schedule`` it follows and the
next tick (``NULL``: that snapshot has none); the scheduler fills it when it sees a new latest
snapshot. ``schedule_tick`` records each tick -- the execution it started, or why it was
skipped -- keyed by (workflow, tick time), so a tick starts at most once. Nothing existing
changes: workflows submitted before get their row the first time the scheduler looks.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here rather than imported from tideflow.store (see 0001).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MICRO_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _workflow_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workflow_id"],
        ["workflow.id"],
        name=op.f(f"fk_{table}_workflow_id_workflow"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "schedule_timer",
        sa.Column("workflow_id", ID, nullable=False),
        sa.Column("snapshot_id", ID, nullable=False),
        sa.Column("next_tick_time", MICRO_DATETIME, nullable=True),
        _workflow_fk("schedule_timer"),
        sa.PrimaryKeyConstraint("workflow_id", name=op.f("pk_schedule_timer")),
    )
    op.create_index(
        op.f("ix_schedule_timer_next_tick_time"),
        "schedule_timer",
        ["next_tick_time"],
        unique=False,
    )
    op.create_table(
        "schedule_tick",
        sa.Column("workflow_id", ID, nullable=False),
        sa.Column("tick_time", MICRO_DATETIME, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("execution_id", ID, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("backfill", sa.Boolean(), nullable=False),
        sa.Column("create_time", MICRO_DATETIME, nullable=False),
        _workflow_fk("schedule_tick"),
        sa.PrimaryKeyConstraint("workflow_id", "tick_time", name=op.f("pk_schedule_tick")),
    )


def downgrade() -> None:
    # Tables go whole, indexes with them (MariaDB refuses to drop the index of a foreign key).
    op.drop_table("schedule_tick")
    op.drop_table("schedule_timer")
