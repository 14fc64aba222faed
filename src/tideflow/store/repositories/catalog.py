"""SQL of the catalog aggregates: datasets and artifacts (named entries of a project).

Both are keyed by ``(project, name)``; an update of a dataset bumps its ``version`` in the same
statement, so concurrent updates get distinct versions.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Select, Table, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from tideflow.domain.metadata import Artifact, Dataset
from tideflow.errors import AlreadyExistsError, NotFoundError
from tideflow.store.errors import is_unique_violation
from tideflow.store.repositories.project import project_id, project_id_query
from tideflow.store.rows.base import table_of
from tideflow.store.rows.metadata import ArtifactRow, DatasetRow

DATASET = table_of(DatasetRow)
ARTIFACT = table_of(ArtifactRow)


def entry_not_found(entity: str, project: str, name: str) -> NotFoundError:
    """The error for an unknown dataset or artifact."""
    return NotFoundError(
        entity, name, message=f"{entity} {name!r} not found in project {project!r}"
    )


@functools.cache
def _entry_query(table: Table, lock: bool) -> Select[Any]:
    """One named entry of a project (``entry_project``, ``entry_name``), built once per table.

    Jobs read their datasets and artifacts by name in every lineage record and update;
    building the statement anew cost several times running it.
    """
    query = select(table).where(
        table.c.project_id == project_id_query(bindparam("entry_project")),
        table.c.name == bindparam("entry_name"),
    )
    return query.with_for_update() if lock else query


class _NamedEntries:
    """Create, get, list, update and delete rows keyed by ``(project_id, name)``."""

    entity: str
    table: Table

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def _this(self, project: str, name: str) -> Any:
        return (self.table.c.project_id == project_id_query(project)) & (self.table.c.name == name)

    def _insert(self, project: str, values: Mapping[str, Any]) -> None:
        try:
            self._c.execute(
                self.table.insert(), {**values, "project_id": project_id(self._c, project)}
            )
        except IntegrityError as e:
            if is_unique_violation(e):
                name = values["name"]
                raise AlreadyExistsError(
                    self.entity,
                    name,
                    message=f"{self.entity} {name!r} already exists in project {project!r}",
                ) from e
            raise

    def _row(self, project: str, name: str, *, lock: bool = False) -> Any:
        query = _entry_query(self.table, lock)
        row = self._c.execute(query, {"entry_project": project, "entry_name": name}).first()
        if row is None:
            raise entry_not_found(self.entity, project, name)
        return row

    def _rows(self, project: str, after: int | None, limit: int) -> list[Any]:
        query = select(self.table).where(self.table.c.project_id == project_id_query(project))
        if after is not None:
            query = query.where(self.table.c.id > after)
        return list(self._c.execute(query.order_by(self.table.c.id).limit(limit)))

    def _update(self, project: str, name: str, values: Mapping[str, Any]) -> None:
        result = self._c.execute(
            update(self.table).where(self._this(project, name)).values(**values)
        )
        if result.rowcount == 0:
            raise entry_not_found(self.entity, project, name)

    def delete(self, project: str, name: str) -> None:
        """Delete the entry; raises :class:`NotFoundError` if there is none."""
        result = self._c.execute(self.table.delete().where(self._this(project, name)))
        if result.rowcount == 0:
            raise entry_not_found(self.entity, project, name)

    def id_of(self, project: str, name: str) -> int:
        """The row id of the entry; raises :class:`NotFoundError` if there is none."""
        return int(self._row(project, name).id)


class DatasetRepository(_NamedEntries):
    """Datasets of a project."""

    entity = "dataset"
    table = DATASET

    def create(self, project: str, values: Mapping[str, Any]) -> Dataset:
        """Insert a dataset at version 1."""
        self._insert(project, {**values, "version": 1})
        return self.get(project, values["name"])

    def get(self, project: str, name: str, *, lock: bool = False) -> Dataset:
        """The dataset ``name``, optionally locking its row until the transaction ends."""
        return DatasetRow.to_domain(self._row(project, name, lock=lock)._mapping)

    def list(self, project: str, after: int | None, limit: int) -> list[tuple[int, Dataset]]:
        """Up to ``limit`` datasets with row id above ``after``, with their ids."""
        return [(r.id, DatasetRow.to_domain(r._mapping)) for r in self._rows(project, after, limit)]

    def update(self, project: str, name: str, values: Mapping[str, Any]) -> Dataset:
        """Change the given columns and bump the version; returns the dataset as updated."""
        self._update(project, name, {**values, "version": DATASET.c.version + 1})
        return self.get(project, name)


class ArtifactRepository(_NamedEntries):
    """Artifacts of a project."""

    entity = "artifact"
    table = ARTIFACT

    def create(self, project: str, values: Mapping[str, Any]) -> Artifact:
        """Insert an artifact."""
        self._insert(project, values)
        return self.get(project, values["name"])

    def get(self, project: str, name: str) -> Artifact:
        """The artifact ``name``."""
        return ArtifactRow.to_domain(self._row(project, name)._mapping)

    def list(self, project: str, after: int | None, limit: int) -> list[tuple[int, Artifact]]:
        """Up to ``limit`` artifacts with row id above ``after``, with their ids."""
        return [
            (r.id, ArtifactRow.to_domain(r._mapping)) for r in self._rows(project, after, limit)
        ]

    def update(self, project: str, name: str, values: Mapping[str, Any]) -> Artifact:
        """Change the given columns; returns the artifact as updated."""
        self._update(project, name, values)
        return self.get(project, name)
