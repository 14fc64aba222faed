"""Scheduler: rule states, the job-command outbox, timers, routing indexes, workflow settings.

Revision ID: 0005
Revises: 0004
"""

import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# Spelled out here rather than imported from tideflow.store (see 0001).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
MICRO_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _execution_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["execution_id"],
        ["workflow_execution.id"],
        name=op.f(f"fk_{table}_execution_id_workflow_execution"),
        ondelete="CASCADE",
    )


def _workflow_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workflow_id"],
        ["workflow.id"],
        name=op.f(f"fk_{table}_workflow_id_workflow"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "rule_state",
        sa.Column("execution_id", ID, nullable=False),
        sa.Column("rule_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("state", LONG_TEXT, nullable=False),
        _execution_fk("rule_state"),
        sa.PrimaryKeyConstraint("execution_id", "rule_index", name=op.f("pk_rule_state")),
    )
    op.create_table(
        "job_command",
        sa.Column("command_id", sa.String(length=200), nullable=False),
        sa.Column("execution_id", ID, nullable=False),
        sa.Column("job_execution_id", ID, nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("workflow", sa.String(length=128), nullable=False),
        sa.Column("snapshot_id", ID, nullable=False),
        sa.Column("job", sa.String(length=128), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("executor", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("not_before", MICRO_DATETIME, nullable=True),
        sa.Column("create_time", MICRO_DATETIME, nullable=False),
        sa.Column("taken_by", sa.String(length=256), nullable=True),
        sa.Column("taken_time", MICRO_DATETIME, nullable=True),
        _execution_fk("job_command"),
        sa.ForeignKeyConstraint(
            ["job_execution_id"],
            ["job_execution.id"],
            name=op.f("fk_job_command_job_execution_id_job_execution"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("command_id", name=op.f("pk_job_command")),
    )
    op.create_index(op.f("ix_job_command_execution_id"), "job_command", ["execution_id"])
    op.create_index(op.f("ix_job_command_job_execution_id"), "job_command", ["job_execution_id"])
    op.create_index(op.f("ix_job_command_executor_status"), "job_command", ["executor", "status"])
    op.create_table(
        "scheduler_timer",
        sa.Column("execution_id", ID, nullable=False),
        sa.Column("rule_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("next_fire_time", MICRO_DATETIME, nullable=False),
        _execution_fk("scheduler_timer"),
        sa.PrimaryKeyConstraint("execution_id", "rule_index", name=op.f("pk_scheduler_timer")),
    )
    op.create_index(
        op.f("ix_scheduler_timer_next_fire_time"), "scheduler_timer", ["next_fire_time"]
    )
    op.create_table(
        "execution_route",
        sa.Column("namespace", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("execution_id", ID, nullable=False),
        _execution_fk("execution_route"),
        sa.PrimaryKeyConstraint(
            "namespace", "key", "execution_id", name=op.f("pk_execution_route")
        ),
    )
    op.create_index(op.f("ix_execution_route_execution_id"), "execution_route", ["execution_id"])
    trigger = op.create_table(
        "workflow_trigger",
        sa.Column("workflow_id", ID, nullable=False),
        sa.Column("rule_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("namespace", sa.String(length=128), nullable=False),
        sa.Column("snapshot_id", ID, nullable=False),
        _workflow_fk("workflow_trigger"),
        sa.PrimaryKeyConstraint(
            "workflow_id", "rule_index", "key", name=op.f("pk_workflow_trigger")
        ),
    )
    op.create_index(
        op.f("ix_workflow_trigger_namespace_key"), "workflow_trigger", ["namespace", "key"]
    )
    op.create_table(
        "trigger_state",
        sa.Column("workflow_id", ID, nullable=False),
        sa.Column("context", sa.String(length=256), nullable=False),
        sa.Column("rule_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("state", LONG_TEXT, nullable=False),
        _workflow_fk("trigger_state"),
        sa.PrimaryKeyConstraint(
            "workflow_id", "context", "rule_index", name=op.f("pk_trigger_state")
        ),
    )
    op.create_table(
        "workflow_schedule",
        sa.Column("workflow_id", ID, nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("max_active_executions", sa.Integer(), nullable=True),
        _workflow_fk("workflow_schedule"),
        sa.PrimaryKeyConstraint("workflow_id", name=op.f("pk_workflow_schedule")),
    )
    _backfill_triggers(trigger)


def _match_keys(condition: dict[str, Any]) -> Iterator[str]:
    ((tag, body),) = condition.items()
    if tag == "match":
        yield body["key"]
    elif tag in ("all_of", "any_of"):
        for sub in body:
            yield from _match_keys(sub)


def _backfill_triggers(trigger: sa.Table) -> None:
    """Index the ``start_on`` rules of every workflow's latest snapshot submitted before."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT w.id, w.latest_snapshot_id, p.name, s.plan FROM workflow w "
            "JOIN project p ON p.id = w.project_id "
            "JOIN workflow_snapshot s ON s.id = w.latest_snapshot_id"
        )
    ).all()
    values = []
    for workflow_id, snapshot_id, namespace, plan in rows:
        try:
            rules = json.loads(plan).get("rules", [])
        except (ValueError, AttributeError):
            continue
        for index, rule in enumerate(rules):
            if rule.get("job") is None and rule.get("kind") == "start_on":
                for key in sorted(set(_match_keys(rule["condition"]))):
                    values.append(
                        {
                            "workflow_id": workflow_id,
                            "rule_index": index,
                            "key": key,
                            "namespace": namespace,
                            "snapshot_id": snapshot_id,
                        }
                    )
    if values:
        bind.execute(trigger.insert(), values)


def downgrade() -> None:
    op.drop_table("workflow_schedule")
    op.drop_table("trigger_state")
    op.drop_index(op.f("ix_workflow_trigger_namespace_key"), table_name="workflow_trigger")
    op.drop_table("workflow_trigger")
    op.drop_index(op.f("ix_execution_route_execution_id"), table_name="execution_route")
    op.drop_table("execution_route")
    op.drop_index(op.f("ix_scheduler_timer_next_fire_time"), table_name="scheduler_timer")
    op.drop_table("scheduler_timer")
    op.drop_index(op.f("ix_job_command_executor_status"), table_name="job_command")
    op.drop_index(op.f("ix_job_command_job_execution_id"), table_name="job_command")
    op.drop_index(op.f("ix_job_command_execution_id"), table_name="job_command")
    op.drop_table("job_command")
    op.drop_table("rule_state")
