"""SQL of metrics and lineage: what job executions measured, read and wrote.

Lineage entries are grouped in records (one per ``record_lineage`` call). A job execution's
lineage is all its records together; a model version's is the record that wrote it
(:meth:`LineageRepository.version_records`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Select, bindparam, select

from tideflow.domain.lineage import LineageKind, LineageRecord
from tideflow.domain.metadata import Metric
from tideflow.store.repositories import inserted_id
from tideflow.store.repositories.catalog import DATASET
from tideflow.store.repositories.model import MODEL, VERSION
from tideflow.store.repositories.project import project_id_query
from tideflow.store.repositories.workflow import EXECUTION, JOB, WORKFLOW
from tideflow.store.rows.base import table_of
from tideflow.store.rows.execution import LineageEntryRow, LineageRecordRow
from tideflow.store.rows.metadata import MetricRow

METRIC = table_of(MetricRow)
LINEAGE = table_of(LineageEntryRow)
RECORD = table_of(LineageRecordRow)
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


def _entries_query() -> Select[Any]:
    """Lineage entries with their job execution's execution, job and workflow, by id."""
    return (
        select(
            LINEAGE,
            JOB.c.execution_id,
            JOB.c.job,
            WORKFLOW.c.name.label("workflow"),
        )
        .join(JOB, JOB.c.id == LINEAGE.c.job_execution_id)
        .join(EXECUTION, EXECUTION.c.id == JOB.c.execution_id)
        .join(WORKFLOW, WORKFLOW.c.id == EXECUTION.c.workflow_id)
        .order_by(LINEAGE.c.id)
    )


# Built once with bound parameters: every lineage record reads its job executions' records
# back, and building the statement anew cost several times running it.
_ENTRIES_OF_JOBS = _entries_query().where(
    LINEAGE.c.job_execution_id.in_(bindparam("job_ids", expanding=True))
)


class LineageRepository:
    """Inputs and outputs of job executions."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def insert(self, record: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]) -> int:
        """Store one record (``project_id``, ``job_execution_id``, ``time``) and its entries.

        Returns:
            The record's id (the entries are stored with it).
        """
        record_id = inserted_id(self._c.execute(RECORD.insert(), dict(record)))
        if entries:
            self._c.execute(
                LINEAGE.insert(), [{**entry, "record_id": record_id} for entry in entries]
            )
        return record_id

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
        """The full lineage of each job execution (all its records), in the order given."""
        ids = list(job_execution_ids)
        if not ids:
            return []
        rows = list(self._c.execute(_ENTRIES_OF_JOBS, {"job_ids": ids}))
        return self._grouped(ids, rows)

    def version_records(self, project: str, model: str, version: int) -> list[LineageRecord]:
        """The lineage of one model version: per job execution that wrote it, oldest first.

        Its inputs are those of the record(s) that name the version as an output; when those
        name no input, the job execution's inputs recorded without any model version (a job's
        declared datasets, recorded by its executor or before training) stand in. Its outputs
        are what the same record(s) wrote.
        """
        own = self._c.execute(
            select(LINEAGE.c.job_execution_id, LINEAGE.c.record_id)
            .where(
                LINEAGE.c.project_id == project_id_query(project),
                LINEAGE.c.direction == OUTPUT,
                LINEAGE.c.kind == LineageKind.MODEL_VERSION.value,
                LINEAGE.c.name == model,
                LINEAGE.c.version == version,
            )
            .distinct()
        ).all()
        if not own:
            return []
        jobs = sorted({int(row.job_execution_id) for row in own})
        rows = list(self._entries(LINEAGE.c.record_id.in_({row.record_id for row in own})))
        fed = {row.job_execution_id for row in rows if row.direction == INPUT}
        if unfed := [job for job in jobs if job not in fed]:
            versioned = select(LINEAGE.c.record_id).where(
                LINEAGE.c.job_execution_id.in_(unfed),
                LINEAGE.c.direction == OUTPUT,
                LINEAGE.c.kind == LineageKind.MODEL_VERSION.value,
            )
            rows += self._entries(
                LINEAGE.c.job_execution_id.in_(unfed),
                LINEAGE.c.direction == INPUT,
                LINEAGE.c.record_id.not_in(versioned),
            )
            rows.sort(key=lambda row: row.id)
        return self._grouped(jobs, rows)

    def _entries(self, *where: Any) -> list[Any]:
        return list(self._c.execute(_entries_query().where(*where)))

    @staticmethod
    def _grouped(ids: Sequence[int], rows: Iterable[Any]) -> list[LineageRecord]:
        grouped: dict[int, dict[str, Any]] = {}
        for row in rows:
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
