"""Job tokens: an API token minted for one attempt names it (and its execution).

``api_token.job_execution_id`` and ``api_token.execution_id`` are NULL for people's tokens. A
job token is revoked in the transaction that ends its attempt, and it may read only its own
execution. No foreign key: a token outlives the rows it names only as a revoked record.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("job_execution_id", "execution_id")
# Spelled out here rather than imported from tideflow.store (see 0001).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ALTER TABLE (see 0006): SQLite adds a plain column in place.
    for column in COLUMNS:
        op.add_column("api_token", sa.Column(column, ID, nullable=True))
    op.create_index("ix_api_token_job_execution_id", "api_token", ["job_execution_id"])


def downgrade() -> None:
    op.drop_index("ix_api_token_job_execution_id", table_name="api_token")
    for column in COLUMNS:
        op.drop_column("api_token", column)
