"""Attempts and commands owned by a cluster member (issue 17, item 3).

``job_command.member`` is the member whose executor took the command; ``job_execution.owner``
the member that launched (or adopted) the attempt, with ``home`` / ``home_host`` saying where
the attempt's files (working directory, log, launch record) are: the ``$TIDEFLOW_HOME`` and
the host of the member that took it; ``cluster_member.home`` is each member's home (a server
restarted on a home replaces the member that ran there before) and ``cluster_member.executors``
the executors it runs (a JSON list: a dead member's attempts go only to a member that runs
theirs). Every column is nullable and existing rows keep
NULL: an attempt of a single server (SQLite, or one started before this revision) has no
owner, and behaves as before.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE, not batch mode (see 0006): a batch "recreate" of job_execution would drop
# the commands and lineage that reference it.


def upgrade() -> None:
    op.add_column("job_command", sa.Column("member", sa.String(length=64), nullable=True))
    op.add_column("job_execution", sa.Column("owner", sa.String(length=64), nullable=True))
    op.add_column("job_execution", sa.Column("home", sa.String(length=2048), nullable=True))
    op.add_column("job_execution", sa.Column("home_host", sa.String(length=255), nullable=True))
    op.create_index("ix_job_execution_owner", "job_execution", ["owner"])
    op.add_column("cluster_member", sa.Column("home", sa.String(length=2048), nullable=True))
    op.add_column("cluster_member", sa.Column("executors", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("cluster_member", "executors")
    op.drop_column("cluster_member", "home")
    op.drop_index("ix_job_execution_owner", table_name="job_execution")
    op.drop_column("job_execution", "home_host")
    op.drop_column("job_execution", "home")
    op.drop_column("job_execution", "owner")
    op.drop_column("job_command", "member")
