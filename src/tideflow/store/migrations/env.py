"""Alembic environment of Tideflow: online only, on the connection Tideflow passes in."""

from alembic import context

from tideflow.store.rows import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "Tideflow's migrations run through `tideflow db upgrade --db URL`, not the alembic CLI"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    compare_type=True,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
