"""An index on ``job_execution (execution_id, status)``: the live attempts of an execution.

The scheduler reads an execution's live attempts for every event that reaches it. An execution
that restarts a job per event (a validator started for each new model version) keeps an ended
attempt per event, and without this index each read went through all of them.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_job_execution_execution_id_status", "job_execution", ["execution_id", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_job_execution_execution_id_status", table_name="job_execution")
