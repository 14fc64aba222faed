"""Datasets and artifacts: the named data a project's jobs read and write.

Registering or updating a dataset appends ``DATASET_UPDATED`` (key = dataset name, value = its
new version) in the same transaction, so rules waiting on fresh data see every version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from tideflow.domain.events import DATASET_UPDATED, Event
from tideflow.domain.limits import (
    MAX_TEXT_LENGTH,
    MAX_TYPE_LENGTH,
    MAX_URI_LENGTH,
    check_name,
    check_text,
    dump_json,
)
from tideflow.domain.metadata import Artifact, Dataset
from tideflow.domain.page import Page
from tideflow.errors import InvalidArgumentError
from tideflow.store import Store, append_events
from tideflow.store.cursor import check_limit, decode_cursor, encode_cursor
from tideflow.store.repositories.catalog import ArtifactRepository, DatasetRepository
from tideflow.store.types import utcnow

SENDER = "metadata"
"""The ``sender`` of events the Metadata Service appends."""


def _fields(
    uri: str | None,
    kind_label: str,
    kind: str | None,
    properties: Mapping[str, Any] | None,
    description: str | None,
) -> dict[str, Any]:
    """Validated column values of the fields that are not ``None``."""
    values: dict[str, Any] = {}
    if uri is not None:
        values["uri"] = check_text(uri, "uri", MAX_URI_LENGTH)
    if kind is not None:
        values[kind_label] = check_text(kind, kind_label, MAX_TYPE_LENGTH)
    if properties is not None:
        values["properties"] = dump_json(properties, "properties")
    if description is not None:
        values["description"] = check_text(description, "description", MAX_TEXT_LENGTH)
    return values


def _dataset_event(project: str, dataset: Dataset) -> Event:
    return Event(
        key=dataset.name,
        value=str(dataset.version),
        event_type=DATASET_UPDATED,
        sender=SENDER,
        namespace=project,
    )


def _page(rows: list[tuple[int, Any]], limit: int, listing: str) -> Page[Any]:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        tuple(item for _, item in rows), encode_cursor(listing, rows[-1][0]) if more else None
    )


class DatasetService:
    """Datasets of every project in one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create_dataset(
        self,
        project: str,
        name: str,
        *,
        uri: str = "",
        format: str = "",
        stream: bool = False,
        schema: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> Dataset:
        """Register a dataset at version 1 (event DATASET_UPDATED, value ``"1"``).

        Raises:
            InvalidArgumentError: A field is invalid or too long.
            AlreadyExistsError: The project has a dataset of that name.
        """
        check_name(name, "dataset name")
        if not isinstance(stream, bool):
            raise InvalidArgumentError(
                f"stream must be True or False, got {stream!r}", field="stream"
            )
        values = _fields(uri, "format", format, properties or {}, description)
        values.update(name=name, stream=stream, schema=dump_json(schema, "schema"))

        def work(c: Connection) -> Dataset:
            now = utcnow()
            dataset = DatasetRepository(c).create(
                project, {**values, "create_time": now, "update_time": now}
            )
            append_events(c, [_dataset_event(project, dataset)])
            return dataset

        return self._store.run(work)

    def get_dataset(self, project: str, name: str) -> Dataset:
        """Dataset ``name``; raises :class:`~tideflow.errors.NotFoundError` naming it."""
        return self._store.run(lambda c: DatasetRepository(c).get(project, name), write=False)

    def list_datasets(
        self, project: str, *, limit: int = 100, cursor: str | None = None
    ) -> Page[Dataset]:
        """The project's datasets in registration order, one page at a time."""
        check_limit(limit)
        after = decode_cursor("dataset", cursor)
        rows = self._store.run(
            lambda c: DatasetRepository(c).list(project, after, limit + 1), write=False
        )
        return _page(rows, limit, "dataset")

    def update_dataset(
        self,
        project: str,
        name: str,
        *,
        uri: str | None = None,
        format: str | None = None,
        stream: bool | None = None,
        schema: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> Dataset:
        """Change the given fields, bump the version and append DATASET_UPDATED.

        An update with no fields still bumps the version: it says "new data at the same place".
        """
        values = _fields(uri, "format", format, properties, description)
        if stream is not None:
            if not isinstance(stream, bool):
                raise InvalidArgumentError(
                    f"stream must be True or False, got {stream!r}", field="stream"
                )
            values["stream"] = stream
        if schema is not None:
            values["schema"] = dump_json(schema, "schema")

        def work(c: Connection) -> Dataset:
            dataset = DatasetRepository(c).update(
                project, name, {**values, "update_time": utcnow()}
            )
            append_events(c, [_dataset_event(project, dataset)])
            return dataset

        return self._store.run(work)

    def delete_dataset(self, project: str, name: str) -> None:
        """Delete a dataset (its lineage entries stay, naming it)."""
        self._store.run(lambda c: DatasetRepository(c).delete(project, name))


class ArtifactService:
    """Artifacts of every project in one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create_artifact(
        self,
        project: str,
        name: str,
        *,
        uri: str = "",
        kind: str = "",
        properties: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> Artifact:
        """Register an artifact.

        Raises:
            InvalidArgumentError: A field is invalid or too long.
            AlreadyExistsError: The project has an artifact of that name.
        """
        check_name(name, "artifact name")
        values = {**_fields(uri, "kind", kind, properties or {}, description), "name": name}

        def work(c: Connection) -> Artifact:
            now = utcnow()
            return ArtifactRepository(c).create(
                project, {**values, "create_time": now, "update_time": now}
            )

        return self._store.run(work)

    def get_artifact(self, project: str, name: str) -> Artifact:
        """Artifact ``name``; raises :class:`~tideflow.errors.NotFoundError` naming it."""
        return self._store.run(lambda c: ArtifactRepository(c).get(project, name), write=False)

    def list_artifacts(
        self, project: str, *, limit: int = 100, cursor: str | None = None
    ) -> Page[Artifact]:
        """The project's artifacts in registration order, one page at a time."""
        check_limit(limit)
        after = decode_cursor("artifact", cursor)
        rows = self._store.run(
            lambda c: ArtifactRepository(c).list(project, after, limit + 1), write=False
        )
        return _page(rows, limit, "artifact")

    def update_artifact(
        self,
        project: str,
        name: str,
        *,
        uri: str | None = None,
        kind: str | None = None,
        properties: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> Artifact:
        """Change the given fields of an artifact."""
        values = {**_fields(uri, "kind", kind, properties, description), "update_time": utcnow()}
        return self._store.run(lambda c: ArtifactRepository(c).update(project, name, values))

    def delete_artifact(self, project: str, name: str) -> None:
        """Delete an artifact."""
        self._store.run(lambda c: ArtifactRepository(c).delete(project, name))
