"""Initial schema: event log, Model Center and Metadata Service tables.

Revision ID: 0001
Revises: (none)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# Spelled out here rather than imported from tideflow.store, so that later changes to the
# rows can never change what this migration does.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
MICRO_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event",
        sa.Column("offset", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("namespace", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("sender", sa.String(length=256), nullable=False),
        sa.Column("context", LONG_TEXT, nullable=False),
        sa.Column("create_time", MICRO_DATETIME, nullable=False),
        sa.Column("idempotency_key", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("offset", name=op.f("pk_event")),
        sa.UniqueConstraint(
            "namespace", "idempotency_key", name=op.f("uq_event_namespace_idempotency_key")
        ),
    )
    op.create_index(
        op.f("ix_event_namespace_key_offset"), "event", ["namespace", "key", "offset"], unique=False
    )
    op.create_index(
        op.f("ix_event_namespace_offset"), "event", ["namespace", "offset"], unique=False
    )

    event_sequence = op.create_table(
        "event_sequence",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_sequence")),
    )
    # The single row of the offset counter (see tideflow.store.rows.event).
    op.bulk_insert(event_sequence, [{"id": 1, "last": 0}])
    op.create_table(
        "project",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("create_time", MICRO_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project")),
        sa.UniqueConstraint("name", name=op.f("uq_project_name")),
    )
    op.create_table(
        "artifact",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("uri", sa.String(length=2048), nullable=False),
        sa.Column("kind", sa.String(length=128), nullable=False),
        sa.Column("properties", LONG_TEXT, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("create_time", MICRO_DATETIME, nullable=False),
        sa.Column("update_time", MICRO_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_artifact_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifact")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_artifact_project_id_name")),
    )
    op.create_table(
        "dataset",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("uri", sa.String(length=2048), nullable=False),
        sa.Column("format", sa.String(length=128), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("schema", LONG_TEXT, nullable=False),
        sa.Column("properties", LONG_TEXT, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("create_time", MICRO_DATETIME, nullable=False),
        sa.Column("update_time", MICRO_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_dataset_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_dataset_project_id_name")),
    )
    op.create_table(
        "registered_model",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", LONG_TEXT, nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.Column("create_time", MICRO_DATETIME, nullable=False),
        sa.Column("update_time", MICRO_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_registered_model_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registered_model")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_registered_model_project_id_name")),
    )
    op.create_table(
        "workflow",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("latest_snapshot_id", ID, nullable=True),
        sa.Column("create_time", MICRO_DATETIME, nullable=False),
        sa.Column("update_time", MICRO_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_workflow_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_workflow_project_id_name")),
    )
    op.create_table(
        "workflow_snapshot",
        sa.Column("id", ID, nullable=False),
        sa.Column("workflow_id", ID, nullable=False),
        sa.Column(
            "plan",
            sa.Text()
            .with_variant(mysql.LONGTEXT(), "mariadb")
            .with_variant(mysql.LONGTEXT(), "mysql"),
            nullable=False,
        ),
        sa.Column("code_uri", sa.String(length=2048), nullable=False),
        sa.Column("code_sha256", sa.String(length=64), nullable=False),
        sa.Column("create_time", MICRO_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflow.id"],
            name=op.f("fk_workflow_snapshot_workflow_id_workflow"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_snapshot")),
    )
    op.create_index(
        op.f("ix_workflow_snapshot_workflow_id"), "workflow_snapshot", ["workflow_id"], unique=False
    )

    op.create_table(
        "workflow_execution",
        sa.Column("id", ID, nullable=False),
        sa.Column("workflow_id", ID, nullable=False),
        sa.Column("snapshot_id", ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("params", LONG_TEXT, nullable=False),
        sa.Column("context", sa.String(length=256), nullable=True),
        sa.Column("start_time", MICRO_DATETIME, nullable=False),
        sa.Column("end_time", MICRO_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["workflow_snapshot.id"],
            name=op.f("fk_workflow_execution_snapshot_id_workflow_snapshot"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflow.id"],
            name=op.f("fk_workflow_execution_workflow_id_workflow"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_execution")),
    )
    op.create_index(
        op.f("ix_workflow_execution_snapshot_id"),
        "workflow_execution",
        ["snapshot_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_workflow_execution_workflow_id"),
        "workflow_execution",
        ["workflow_id"],
        unique=False,
    )

    op.create_table(
        "execution_action",
        sa.Column("id", ID, nullable=False),
        sa.Column("execution_id", ID, nullable=False),
        sa.Column("job", sa.String(length=128), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("event_offset", sa.BigInteger(), nullable=True),
        sa.Column("time", MICRO_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["workflow_execution.id"],
            name=op.f("fk_execution_action_execution_id_workflow_execution"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_action")),
    )
    op.create_index(
        op.f("ix_execution_action_execution_id"), "execution_action", ["execution_id"], unique=False
    )

    op.create_table(
        "job_execution",
        sa.Column("id", ID, nullable=False),
        sa.Column("execution_id", ID, nullable=False),
        sa.Column("job", sa.String(length=128), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("create_time", MICRO_DATETIME, nullable=False),
        sa.Column("start_time", MICRO_DATETIME, nullable=True),
        sa.Column("end_time", MICRO_DATETIME, nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("log_uri", sa.String(length=2048), nullable=True),
        sa.Column("host", sa.String(length=256), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("external_id", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["workflow_execution.id"],
            name=op.f("fk_job_execution_execution_id_workflow_execution"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_execution")),
        sa.UniqueConstraint(
            "execution_id", "job", "attempt", name=op.f("uq_job_execution_execution_id_job_attempt")
        ),
    )
    op.create_table(
        "lineage_entry",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("job_execution_id", ID, nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("start_offset", sa.BigInteger(), nullable=True),
        sa.Column("end_offset", sa.BigInteger(), nullable=True),
        sa.Column("time", MICRO_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_execution_id"],
            ["job_execution.id"],
            name=op.f("fk_lineage_entry_job_execution_id_job_execution"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_lineage_entry_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_entry")),
    )
    op.create_index(
        op.f("ix_lineage_entry_job_execution_id"),
        "lineage_entry",
        ["job_execution_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_lineage_entry_project_id_kind_name_version"),
        "lineage_entry",
        ["project_id", "kind", "name", "version"],
        unique=False,
    )

    op.create_table(
        "model_version",
        sa.Column("id", ID, nullable=False),
        sa.Column("model_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("uri", sa.String(length=2048), nullable=False),
        sa.Column("flavor", sa.String(length=128), nullable=False),
        sa.Column("metrics", LONG_TEXT, nullable=False),
        sa.Column("params", LONG_TEXT, nullable=False),
        sa.Column("tags", LONG_TEXT, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("job_execution_id", ID, nullable=True),
        sa.Column("create_time", MICRO_DATETIME, nullable=False),
        sa.Column("update_time", MICRO_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_execution_id"],
            ["job_execution.id"],
            name=op.f("fk_model_version_job_execution_id_job_execution"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_model.id"],
            name=op.f("fk_model_version_model_id_registered_model"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_version")),
        sa.UniqueConstraint("model_id", "version", name=op.f("uq_model_version_model_id_version")),
    )
    op.create_index(
        op.f("ix_model_version_job_execution_id"),
        "model_version",
        ["job_execution_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_model_version_model_id_status_version"),
        "model_version",
        ["model_id", "status", "version"],
        unique=False,
    )

    op.create_table(
        "metric",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=True),
        sa.Column("time", MICRO_DATETIME, nullable=False),
        sa.Column("tags", LONG_TEXT, nullable=False),
        sa.Column("job_execution_id", ID, nullable=True),
        sa.Column("model_version_id", ID, nullable=True),
        sa.Column("dataset_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dataset.id"],
            name=op.f("fk_metric_dataset_id_dataset"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_execution_id"],
            ["job_execution.id"],
            name=op.f("fk_metric_job_execution_id_job_execution"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_version.id"],
            name=op.f("fk_metric_model_version_id_model_version"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_metric_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric")),
    )
    op.create_index(op.f("ix_metric_dataset_id"), "metric", ["dataset_id"], unique=False)
    op.create_index(
        op.f("ix_metric_job_execution_id"), "metric", ["job_execution_id"], unique=False
    )
    op.create_index(
        op.f("ix_metric_model_version_id"), "metric", ["model_version_id"], unique=False
    )
    op.create_index(
        op.f("ix_metric_project_id_name"), "metric", ["project_id", "name"], unique=False
    )

    op.create_table(
        "model_alias",
        sa.Column("id", ID, nullable=False),
        sa.Column("model_id", ID, nullable=False),
        sa.Column("alias", sa.String(length=128), nullable=False),
        sa.Column("version_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_model.id"],
            name=op.f("fk_model_alias_model_id_registered_model"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_version.id"],
            name=op.f("fk_model_alias_version_id_model_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_alias")),
        sa.UniqueConstraint("model_id", "alias", name=op.f("uq_model_alias_model_id_alias")),
    )
    op.create_index(op.f("ix_model_alias_version_id"), "model_alias", ["version_id"], unique=False)

    op.create_table(
        "model_status_change",
        sa.Column("id", ID, nullable=False),
        sa.Column("version_id", ID, nullable=False),
        sa.Column("previous", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("time", MICRO_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_version.id"],
            name=op.f("fk_model_status_change_version_id_model_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_status_change")),
    )
    op.create_index(
        op.f("ix_model_status_change_version_id"),
        "model_status_change",
        ["version_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_model_status_change_version_id"), table_name="model_status_change")
    op.drop_table("model_status_change")
    op.drop_index(op.f("ix_model_alias_version_id"), table_name="model_alias")
    op.drop_table("model_alias")
    op.drop_index(op.f("ix_metric_project_id_name"), table_name="metric")
    op.drop_index(op.f("ix_metric_model_version_id"), table_name="metric")
    op.drop_index(op.f("ix_metric_job_execution_id"), table_name="metric")
    op.drop_index(op.f("ix_metric_dataset_id"), table_name="metric")
    op.drop_table("metric")
    op.drop_index(op.f("ix_model_version_model_id_status_version"), table_name="model_version")
    op.drop_index(op.f("ix_model_version_job_execution_id"), table_name="model_version")
    op.drop_table("model_version")
    op.drop_index(op.f("ix_lineage_entry_project_id_kind_name_version"), table_name="lineage_entry")
    op.drop_index(op.f("ix_lineage_entry_job_execution_id"), table_name="lineage_entry")
    op.drop_table("lineage_entry")
    op.drop_table("job_execution")
    op.drop_index(op.f("ix_execution_action_execution_id"), table_name="execution_action")
    op.drop_table("execution_action")
    op.drop_index(op.f("ix_workflow_execution_workflow_id"), table_name="workflow_execution")
    op.drop_index(op.f("ix_workflow_execution_snapshot_id"), table_name="workflow_execution")
    op.drop_table("workflow_execution")
    op.drop_index(op.f("ix_workflow_snapshot_workflow_id"), table_name="workflow_snapshot")
    op.drop_table("workflow_snapshot")
    op.drop_table("workflow")
    op.drop_table("registered_model")
    op.drop_table("dataset")
    op.drop_table("artifact")
    op.drop_table("project")
    op.drop_table("event_sequence")
    op.drop_index(op.f("ix_event_namespace_offset"), table_name="event")
    op.drop_index(op.f("ix_event_namespace_key_offset"), table_name="event")
    op.drop_table("event")
