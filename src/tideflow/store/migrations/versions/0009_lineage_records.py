"""Lineage records: the entries of one ``record_lineage`` call belong together.

``lineage_record`` holds one row per call (project, job execution, time) and
``lineage_entry.record_id`` names the call an entry was written by, so a model version's
upstream is the inputs recorded with it rather than everything its job execution ever read
(a streaming trainer logs many versions in one attempt, each from its own offset range).

Existing entries get one record per job execution: what was recorded before this revision
cannot be told apart any more, so a version logged before it keeps the whole attempt's inputs.
The downgrade drops the column and the table (the calls are forgotten, the entries stay).

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here rather than imported from tideflow.store (see 0001).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MICRO_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

# Plain ALTER TABLE, not batch mode (see 0006): a batch "recreate" would drop lineage_entry.


def upgrade() -> None:
    op.create_table(
        "lineage_record",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("job_execution_id", ID, nullable=False),
        sa.Column("time", MICRO_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_execution_id"],
            ["job_execution.id"],
            name=op.f("fk_lineage_record_job_execution_id_job_execution"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_lineage_record_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_record")),
    )
    op.create_index(
        op.f("ix_lineage_record_job_execution_id"),
        "lineage_record",
        ["job_execution_id"],
        unique=False,
    )
    op.add_column("lineage_entry", sa.Column("record_id", ID, nullable=True))
    op.create_index(
        op.f("ix_lineage_entry_record_id"), "lineage_entry", ["record_id"], unique=False
    )
    entry = sa.table(
        "lineage_entry",
        sa.column("project_id", ID),
        sa.column("job_execution_id", ID),
        sa.column("record_id", ID),
        sa.column("time", MICRO_DATETIME),
    )
    record = sa.table(
        "lineage_record",
        sa.column("id", ID),
        sa.column("project_id", ID),
        sa.column("job_execution_id", ID),
        sa.column("time", MICRO_DATETIME),
    )
    op.execute(
        record.insert().from_select(
            ["project_id", "job_execution_id", "time"],
            sa.select(
                entry.c.project_id, entry.c.job_execution_id, sa.func.max(entry.c.time)
            ).group_by(entry.c.project_id, entry.c.job_execution_id),
        )
    )
    op.execute(
        entry.update().values(
            record_id=sa.select(record.c.id)
            .where(record.c.job_execution_id == entry.c.job_execution_id)
            .scalar_subquery()
        )
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_lineage_entry_record_id"), table_name="lineage_entry")
    op.drop_column("lineage_entry", "record_id")
    # The table's own indexes go with it (MariaDB refuses to drop the index of a foreign key).
    op.drop_table("lineage_record")
