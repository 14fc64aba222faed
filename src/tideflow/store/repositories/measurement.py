"""SQL of metrics and lineage: what job executions measured, read and wrote."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select

from tideflow.domain.lineage import LineageRecord
from tideflow.domain.metadata import Metric
from tideflow.store.repositories import inserted_id
from tideflow.store.repositories.catalog import DATASET
from tideflow.store.repositories.model import MODEL, VERSION
from tideflow.store.repositories.project import project_id_query
from tideflow.store.repositories.workflow import EXECUTION, JOB, WORKFLOW
from tideflow.store.rows.base import table_of
from tideflow.store.rows.execution import LineageEntryRow
from tideflow.store.rows.metadata import MetricRow

METRIC = table_of(MetricRow)
LINEAGE = table_of(LineageEntryRow)
INPUT = "input"
OUTPUT = "output"


class MetricRepository:
    """Metric values of a project."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def insert(self, values: Mapping[str, Any]) -> int:
        """Store one metric value; returns its id."""
        return inserted_id(self._c.execute(METRIC.insert(), values))

    def list(self, project: str, filters: Mapping[str, Any], limit: int) -> list[Metric]:
        """Up to ``limit`` metrics matching every filter, in the order they were logged.

        ``filters`` keys: ``metric_id``, ``name``, ``job_execution_id``, ``model``, ``version``,
        ``dataset``.
        """
        query = (
            select(
                METRIC,
                MODEL.c.name.label("model"),
                VERSION.c.version.label("version"),
                DATASET.c.name.label("dataset"),
            )
            .outerjoin(VERSION, VERSION.c.id == METRIC.c.model_version_id)
            .outerjoin(MODEL, MODEL.c.id == VERSION.c.model_id)
            .outerjoin(DATASET, DATASET.c.id == METRIC.c.dataset_id)
            .where(METRIC.c.project_id == project_id_query(project))
        )
        columns = {
            "metric_id": METRIC.c.id,
            "name": METRIC.c.name,
            "job_execution_id": METRIC.c.job_execution_id,
            "model": MODEL.c.name,
            "version": VERSION.c.version,
            "dataset": DATASET.c.name,
        }
        for key, value in filters.items():
            query = query.where(columns[key] == value)
        rows = self._c.execute(query.order_by(METRIC.c.id).limit(limit))
        return [MetricRow.to_domain(row._mapping) for row in rows]


class LineageRepository:
    """Inputs and outputs of job executions."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def insert(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Store lineage entries (one statement for all of them)."""
        if entries:
            self._c.execute(LINEAGE.insert(), list(entries))

    def job_executions_with(
        self, project: str, direction: str, kind: str, name: str, version: int | None
    ) -> list[int]:
        """Ids of the job executions with this entity as an input or an output, oldest first.

        A ``version`` of ``None`` matches every version.
        """
        query = select(LINEAGE.c.job_execution_id).where(
            LINEAGE.c.project_id == project_id_query(project),
            LINEAGE.c.direction == direction,
            LINEAGE.c.kind == kind,
            LINEAGE.c.name == name,
        )
        if version is not None:
            query = query.where(LINEAGE.c.version == version)
        ids = self._c.execute(query.distinct()).scalars()
        return sorted(int(i) for i in ids)

    def records(self, job_execution_ids: Iterable[int]) -> list[LineageRecord]:
        """The full lineage of each job execution, in the order given."""
        ids = list(job_execution_ids)
        if not ids:
            return []
        query = (
            select(
                LINEAGE,
                JOB.c.execution_id,
                JOB.c.job,
                WORKFLOW.c.name.label("workflow"),
            )
            .join(JOB, JOB.c.id == LINEAGE.c.job_execution_id)
            .join(EXECUTION, EXECUTION.c.id == JOB.c.execution_id)
            .join(WORKFLOW, WORKFLOW.c.id == EXECUTION.c.workflow_id)
            .where(LINEAGE.c.job_execution_id.in_(ids))
            .order_by(LINEAGE.c.id)
        )
        grouped: dict[int, dict[str, Any]] = {}
        for row in self._c.execute(query):
            record = grouped.setdefault(
                row.job_execution_id,
                {
                    "job_execution_id": row.job_execution_id,
                    "execution_id": row.execution_id,
                    "workflow": row.workflow,
                    "job": row.job,
                    INPUT: [],
                    OUTPUT: [],
                    "time": row.time,
                },
            )
            record[row.direction].append(LineageEntryRow.to_ref(row._mapping))
            record["time"] = max(record["time"], row.time)
        return [
            LineageRecord(
                job_execution_id=r["job_execution_id"],
                execution_id=r["execution_id"],
                workflow=r["workflow"],
                job=r["job"],
                inputs=tuple(r[INPUT]),
                outputs=tuple(r[OUTPUT]),
                time=r["time"],
            )
            for r in (grouped[i] for i in ids if i in grouped)
        ]
