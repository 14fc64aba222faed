"""Snapshot identity: a SHA-256 over canonical content, so resubmitting reuses a snapshot.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workflow_snapshot") as batch:
        batch.add_column(
            sa.Column("identity", sa.String(length=64), server_default="", nullable=False)
        )
    op.create_index(
        op.f("ix_workflow_snapshot_workflow_id_identity"),
        "workflow_snapshot",
        ["workflow_id", "identity"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_workflow_snapshot_workflow_id_identity"), table_name="workflow_snapshot")
    with op.batch_alter_table("workflow_snapshot") as batch:
        batch.drop_column("identity")
