"""Several servers on one database: ``cluster_member`` and the leader's ``cluster_lease``.

Both tables are new; nothing existing changes. The lease table starts with its one row, held by
nobody at epoch 0, so that servers starting together only ever lock and update it (two
inserting it at once would collide).

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here rather than imported from tideflow.store (see 0001).
MICRO_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "cluster_member",
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("addresses", sa.Text(), nullable=False),
        sa.Column("start_time", MICRO_DATETIME, nullable=False),
        sa.Column("heartbeat", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_cluster_member")),
    )
    lease = op.create_table(
        "cluster_lease",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=True),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cluster_lease")),
    )
    op.bulk_insert(lease, [{"name": "leader", "holder": None, "epoch": 0, "expires": 0.0}])


def downgrade() -> None:
    op.drop_table("cluster_lease")
    op.drop_table("cluster_member")
