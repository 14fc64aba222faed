"""Metrics and lineage: what job executions measured, read and wrote.

Lineage of a job execution is recorded in one call and one transaction (inputs and outputs
together) after every reference is checked, so a failed call leaves nothing behind and a reader
never sees half of an execution's lineage.

Each call is kept as one record, so lineage is per model version as well as per job
execution: :meth:`LineageService.upstream` of a version gives the inputs recorded *with* it
(``ctx.log_model(..., inputs=)`` records them in the call that names the version), not
everything its job execution read -- a streaming trainer that logs a version per window gives
each version its own offset range. A version recorded with no inputs falls back to the inputs
its job execution recorded apart from any model version (the datasets an executor records
from the plan for engine jobs, or a record made before training).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from tideflow.domain.limits import (
    MAX_TYPE_LENGTH,
    check_number,
    check_positive_int,
    check_text,
    dump_json,
)
from tideflow.domain.lineage import LineageKind, LineageRecord, LineageRef
from tideflow.domain.metadata import Metric
from tideflow.errors import InvalidArgumentError, NotFoundError
from tideflow.store import Store
from tideflow.store.cursor import MAX_PAGE_SIZE, check_limit
from tideflow.store.repositories.catalog import ArtifactRepository, DatasetRepository
from tideflow.store.repositories.measurement import (
    INPUT,
    OUTPUT,
    LineageRepository,
    MetricRepository,
)
from tideflow.store.repositories.model import ModelRepository
from tideflow.store.repositories.project import project_id
from tideflow.store.repositories.workflow import WorkflowRepository
from tideflow.store.types import utcnow


def _optional_int(value: object, what: str, minimum: int = 0) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidArgumentError(
            f"{what} must be a whole number >= {minimum}, got {value!r}", field=what
        )
    return value


def _model_version_id(c: Connection, project: str, model: str, version: int) -> int:
    return ModelRepository(c).version_id(project, model, version)


class MetricService:
    """Metric values of every project in one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def log_metric(
        self,
        project: str,
        name: str,
        value: float,
        *,
        step: int | None = None,
        time: datetime | None = None,
        tags: Mapping[str, str] | None = None,
        job_execution_id: int | None = None,
        model: str | None = None,
        version: int | None = None,
        dataset: str | None = None,
    ) -> Metric:
        """Store one metric value, attached to a job execution, model version and/or dataset.

        Raises:
            InvalidArgumentError: Bad name, value, step or time; ``model`` without ``version``.
            NotFoundError: The job execution, model version or dataset does not exist.
        """
        check_text(name, "metric name", MAX_TYPE_LENGTH, empty=False)
        number = check_number(value, "metric value")
        _optional_int(step, "step")
        if time is not None and (not isinstance(time, datetime) or time.tzinfo is None):
            raise InvalidArgumentError("time must be a timezone-aware datetime", field="time")
        if (model is None) != (version is None):
            raise InvalidArgumentError("give model= and version= together", field="model")
        tags_json = dump_json(tags, "tags")

        def work(c: Connection) -> Metric:
            values: dict[str, Any] = {
                "project_id": project_id(c, project),
                "name": name,
                "value": number,
                "step": step,
                "time": time or utcnow(),
                "tags": tags_json,
                "job_execution_id": None,
                "model_version_id": None,
                "dataset_id": None,
            }
            if job_execution_id is not None:
                values["job_execution_id"] = (
                    WorkflowRepository(c).get_job(project, job_execution_id).job_execution_id
                )
            if model is not None and version is not None:
                values["model_version_id"] = _model_version_id(c, project, model, version)
            if dataset is not None:
                values["dataset_id"] = DatasetRepository(c).id_of(project, dataset)
            metric_id = MetricRepository(c).insert(values)
            return MetricRepository(c).list(project, {"metric_id": metric_id}, 1)[0]

        return self._store.run(work)

    def list_metrics(
        self,
        project: str,
        *,
        name: str | None = None,
        job_execution_id: int | None = None,
        model: str | None = None,
        version: int | None = None,
        dataset: str | None = None,
        limit: int = MAX_PAGE_SIZE,
    ) -> list[Metric]:
        """Metrics matching every filter given, in the order they were logged."""
        check_limit(limit)
        given = {
            "name": name,
            "job_execution_id": job_execution_id,
            "model": model,
            "version": version,
            "dataset": dataset,
        }
        filters = {key: value for key, value in given.items() if value is not None}
        return self._store.run(
            lambda c: MetricRepository(c).list(project, filters, limit), write=False
        )


class LineageService:
    """Lineage of job executions in every project of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def record_lineage(
        self,
        project: str,
        job_execution_id: int,
        *,
        inputs: Sequence[LineageRef | str] = (),
        outputs: Sequence[LineageRef | str] = (),
    ) -> LineageRecord:
        """Record what a job execution read and wrote, in one transaction.

        A plain string stands for a dataset; a dataset reference without a version is stored
        with the dataset's current version.

        Returns:
            The job execution's whole lineage, including earlier records.

        Raises:
            NotFoundError: The job execution or a referenced entity does not exist; nothing is
                recorded.
            InvalidArgumentError: A malformed reference; nothing is recorded.
        """
        check_positive_int(job_execution_id, "job_execution_id")
        for what, given in (("inputs", inputs), ("outputs", outputs)):
            if isinstance(given, str | LineageRef):  # one entry, not a list of them
                raise InvalidArgumentError(
                    f"{what} must be a list of LineageRef or dataset names, got {given!r}",
                    field=what,
                )
        refs = [(INPUT, _as_ref(r)) for r in inputs] + [(OUTPUT, _as_ref(r)) for r in outputs]

        def work(c: Connection) -> LineageRecord:
            WorkflowRepository(c).get_job(project, job_execution_id)
            now = utcnow()
            pid = project_id(c, project)
            entries = [
                {
                    "project_id": pid,
                    "job_execution_id": job_execution_id,
                    "direction": direction,
                    "kind": ref.kind.value,
                    "name": ref.name,
                    "version": _resolve_version(c, project, ref),
                    "start_offset": ref.start_offset,
                    "end_offset": ref.end_offset,
                    "time": now,
                }
                for direction, ref in refs
            ]
            repo = LineageRepository(c)
            if entries:
                record = {"project_id": pid, "job_execution_id": job_execution_id, "time": now}
                repo.insert(record, entries)
            records = repo.records([job_execution_id])
            return records[0] if records else _empty_record(c, project, job_execution_id)

        return self._store.run(work)

    def upstream(self, project: str, *, model: str, version: int) -> list[LineageRecord]:
        """What produced model version ``version``, from which data -- that version alone.

        One record per job execution that wrote it (normally one): its inputs are those
        recorded with the version (see the module docstring), its outputs what was recorded
        in the same call.

        Raises:
            NotFoundError: No such model or version.
        """
        check_positive_int(version, "version")

        def work(c: Connection) -> list[LineageRecord]:
            _model_version_id(c, project, model, version)
            return LineageRepository(c).version_records(project, model, version)

        return self._store.run(work, write=False)

    def downstream(
        self, project: str, *, dataset: str, version: int | None = None
    ) -> list[LineageRecord]:
        """The job executions that read ``dataset`` (one version, or any when ``None``).

        Raises:
            NotFoundError: No such dataset and no lineage mentions it.
        """
        _optional_int(version, "version", minimum=1)

        def work(c: Connection) -> list[LineageRecord]:
            repo = LineageRepository(c)
            ids = repo.job_executions_with(
                project, INPUT, LineageKind.DATASET.value, dataset, version
            )
            if not ids:
                DatasetRepository(c).get(project, dataset)  # unknown dataset: NotFoundError
            return repo.records(ids)

        return self._store.run(work, write=False)

    def readers(self, project: str, ref: LineageRef) -> list[LineageRecord]:
        """The job executions that read ``ref`` (any version when its version is ``None``).

        Unlike :meth:`downstream`, an unknown entity is no error: nothing read it.
        """
        return self._touching(project, INPUT, ref)

    def writers(self, project: str, ref: LineageRef) -> list[LineageRecord]:
        """The job executions that wrote ``ref`` (any version when its version is ``None``).

        For one model version, only what was recorded with it, as :meth:`upstream` gives it
        (an unknown version is no error here: nothing wrote it).
        """
        if isinstance(ref, LineageRef) and ref.kind is LineageKind.MODEL_VERSION:
            version = _optional_int(ref.version, "version", minimum=1)
            if version is not None:
                return self._store.run(
                    lambda c: LineageRepository(c).version_records(project, ref.name, version),
                    write=False,
                )
        return self._touching(project, OUTPUT, ref)

    def _touching(self, project: str, direction: str, ref: LineageRef) -> list[LineageRecord]:
        if not isinstance(ref, LineageRef):
            raise InvalidArgumentError(f"expected a LineageRef, got {ref!r}", field="ref")
        _optional_int(ref.version, "version", minimum=1)

        def work(c: Connection) -> list[LineageRecord]:
            repo = LineageRepository(c)
            ids = repo.job_executions_with(
                project, direction, ref.kind.value, ref.name, ref.version
            )
            return repo.records(ids)

        return self._store.run(work, write=False)


def _as_ref(ref: LineageRef | str) -> LineageRef:
    if isinstance(ref, str):
        ref = LineageRef.dataset(ref)
    if not isinstance(ref, LineageRef):
        raise InvalidArgumentError(
            f"lineage entries are LineageRef or dataset names, got {ref!r}", field="lineage"
        )
    LineageKind(ref.kind)
    _optional_int(ref.version, "version", minimum=1)
    start = _optional_int(ref.start_offset, "start_offset")
    end = _optional_int(ref.end_offset, "end_offset")
    if start is not None and end is not None and start > end:
        raise InvalidArgumentError(
            f"start_offset {start} is after end_offset {end}", field="start_offset"
        )
    if ref.kind is LineageKind.MODEL_VERSION and ref.version is None:
        raise InvalidArgumentError(
            f"model {ref.name!r}: a model version reference needs a version", field="version"
        )
    return ref


def _resolve_version(c: Connection, project: str, ref: LineageRef) -> int | None:
    """Check that ``ref`` exists and return the version to store."""
    if ref.kind is LineageKind.DATASET:
        current = DatasetRepository(c).get(project, ref.name).version
        if ref.version is not None and ref.version > current:
            raise NotFoundError(
                "dataset version",
                f"{ref.name}/{ref.version}",
                message=f"dataset {ref.name!r} has no version {ref.version} (latest {current})",
            )
        return ref.version or current
    if ref.kind is LineageKind.MODEL_VERSION:
        assert ref.version is not None  # checked by _as_ref
        _model_version_id(c, project, ref.name, ref.version)
        return ref.version
    ArtifactRepository(c).get(project, ref.name)
    return None


def _empty_record(c: Connection, project: str, job_execution_id: int) -> LineageRecord:
    job = WorkflowRepository(c).get_job(project, job_execution_id)
    return LineageRecord(job_execution_id, job.execution_id, job.workflow, job.job)
