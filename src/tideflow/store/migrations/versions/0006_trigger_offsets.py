"""Triggers: the events an attempt was started for, on the attempt and on the action.

``job_execution.trigger_offsets`` and ``execution_action.trigger_offsets`` are JSON lists of
event offsets; existing rows keep NULL (nothing recorded: an attempt started before this
revision gets no ``ctx.trigger`` if it is retried).

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# Spelled out here rather than imported from tideflow.store (see 0001).
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("job_execution", "execution_action")


# Plain ALTER TABLE, not batch mode: SQLite (>= 3.35) adds and drops a plain column in place,
# whereas a batch "recreate" of job_execution would DROP the table -- and with foreign keys on,
# that deletes the commands and lineage that reference it.


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("trigger_offsets", LONG_TEXT, nullable=True))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "trigger_offsets")
