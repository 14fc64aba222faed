"""SQL of the Model Center aggregate: registered models, versions, status history and aliases.

Point reads and version creation are single Core statements joined through the project and
model names, so the hot paths cost one round trip each. Status changes first lock the model's
row (:meth:`ModelRepository.lock_model`), which serialises every writer of one model: that is
what keeps "at most one DEPLOYED version" true under concurrent deploys on every backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from tideflow.domain.model import ModelVersion, RegisteredModel, StatusChange
from tideflow.domain.status import ModelStatus
from tideflow.errors import AlreadyExistsError, NotFoundError
from tideflow.store.driver import DriverStatement
from tideflow.store.errors import is_unique_violation
from tideflow.store.repositories.project import PROJECT, project_id, project_id_query
from tideflow.store.rows.base import table_of
from tideflow.store.rows.model import (
    ModelAliasRow,
    ModelStatusChangeRow,
    ModelVersionRow,
    RegisteredModelRow,
)

MODEL = table_of(RegisteredModelRow)
VERSION = table_of(ModelVersionRow)
CHANGE = table_of(ModelStatusChangeRow)
ALIAS = table_of(ModelAliasRow)


def model_not_found(project: str, model: str) -> NotFoundError:
    """The error for an unknown model."""
    return NotFoundError(
        "model", model, message=f"model {model!r} not found in project {project!r}"
    )


def version_not_found(project: str, model: str, what: str) -> NotFoundError:
    """The error for an unknown version (``what`` says how it was looked up)."""
    return NotFoundError(
        "model version",
        f"{model}/{what}",
        message=f"model version {what} of model {model!r} not found in project {project!r}",
    )


def _of_model(project: str, model: str) -> Any:
    return (MODEL.c.project_id == project_id_query(project)) & (MODEL.c.name == model)


# Hot-path statements, built once with bind parameters ``project`` and ``model``: building a
# statement costs more than executing it on SQLite.
_THIS_MODEL = (
    MODEL.c.project_id == project_id_query(bindparam("project", type_=PROJECT.c.name.type))
) & (MODEL.c.name == bindparam("model", type_=MODEL.c.name.type))
_NEXT_VERSION = (
    update(MODEL)
    .where(_THIS_MODEL)
    .values(last_version=MODEL.c.last_version + 1, update_time=bindparam("now"))
)
_LOCK_MODEL = update(MODEL).where(_THIS_MODEL).values(update_time=bindparam("now"))
_MODEL_ID_AND_LAST = select(MODEL.c.id, MODEL.c.last_version).where(_THIS_MODEL)
# Where an UPDATE can return what it wrote (SQLite, PostgreSQL), the lock and the read are one
# statement: a statement fewer on every version created (a round trip on PostgreSQL).
_NEXT_VERSION_RETURNING = DriverStatement(_NEXT_VERSION.returning(MODEL.c.id, MODEL.c.last_version))
_LOCK_MODEL_RETURNING = _LOCK_MODEL.returning(MODEL.c.id)
_INSERT_VERSION = DriverStatement(VERSION.insert())
_INSERT_VERSION_RETURNING = DriverStatement(VERSION.insert().returning(VERSION.c.id))
_INSERT_CHANGE = DriverStatement(CHANGE.insert())
_VERSION_BY_NUMBER = (
    select(VERSION)
    .join(MODEL, MODEL.c.id == VERSION.c.model_id)
    .join(PROJECT, PROJECT.c.id == MODEL.c.project_id)
    .where(
        PROJECT.c.name == bindparam("project"),
        MODEL.c.name == bindparam("model"),
        VERSION.c.version == bindparam("version"),
    )
)
_VERSION_BY_STATUS = (
    select(VERSION)
    .join(MODEL, MODEL.c.id == VERSION.c.model_id)
    .join(PROJECT, PROJECT.c.id == MODEL.c.project_id)
    .where(
        PROJECT.c.name == bindparam("project"),
        MODEL.c.name == bindparam("model"),
        VERSION.c.status == bindparam("status"),
    )
    .order_by(VERSION.c.version.desc())
    .limit(1)
)
_VERSION_ROW = select(VERSION).where(
    VERSION.c.model_id == bindparam("model_id"), VERSION.c.version == bindparam("version")
)


def _versions_of(project: str, model: str) -> Select[Any]:
    return (
        select(VERSION)
        .join(MODEL, MODEL.c.id == VERSION.c.model_id)
        .join(PROJECT, PROJECT.c.id == MODEL.c.project_id)
        .where(PROJECT.c.name == project, MODEL.c.name == model)
    )


class ModelRepository:
    """Registered models, their versions, status history and aliases."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    @property
    def connection(self) -> Connection:
        """The connection (and so the transaction) this repository works in."""
        return self._c

    # -- registered models -------------------------------------------------------------------

    def create_model(
        self, project: str, name: str, description: str, tags: str, now: datetime
    ) -> RegisteredModel:
        """Insert a model (``tags`` is JSON text).

        Raises:
            NotFoundError: No such project.
            AlreadyExistsError: The project has a model of that name.
        """
        values = {
            "project_id": project_id(self._c, project),
            "name": name,
            "description": description,
            "tags": tags,
            "last_version": 0,
            "create_time": now,
            "update_time": now,
        }
        try:
            self._c.execute(MODEL.insert(), values)
        except IntegrityError as e:
            if is_unique_violation(e):
                raise AlreadyExistsError(
                    "model", name, message=f"model {name!r} already exists in project {project!r}"
                ) from e
            raise
        return self.get_model(project, name)

    def get_model(self, project: str, name: str) -> RegisteredModel:
        """The model ``name``; raises :class:`NotFoundError` if there is none."""
        row = self._c.execute(select(MODEL).where(_of_model(project, name))).first()
        if row is None:
            raise model_not_found(project, name)
        return RegisteredModelRow.to_domain(row._mapping)

    def list_models(
        self, project: str, after: int | None, limit: int
    ) -> list[tuple[int, RegisteredModel]]:
        """Up to ``limit`` models with id above ``after``, by id, each with its id."""
        query = select(MODEL).where(MODEL.c.project_id == project_id_query(project))
        if after is not None:
            query = query.where(MODEL.c.id > after)
        rows = self._c.execute(query.order_by(MODEL.c.id).limit(limit))
        return [(row.id, RegisteredModelRow.to_domain(row._mapping)) for row in rows]

    def update_model(self, project: str, name: str, values: Mapping[str, Any]) -> RegisteredModel:
        """Change the given columns of model ``name``; raises :class:`NotFoundError`."""
        result = self._c.execute(update(MODEL).where(_of_model(project, name)).values(**values))
        if result.rowcount == 0:
            raise model_not_found(project, name)
        return self.get_model(project, name)

    def lock_model(self, project: str, name: str, now: datetime) -> int:
        """Lock the model's row until the transaction ends (touching ``update_time``).

        Returns:
            The model's id.

        Raises:
            NotFoundError: No such model.
        """
        params = {"project": project, "model": name}
        if self._c.dialect.update_returning:
            locked = self._c.execute(_LOCK_MODEL_RETURNING, {**params, "now": now}).first()
            if locked is None:
                raise model_not_found(project, name)
            return int(locked.id)
        result = self._c.execute(_LOCK_MODEL, {**params, "now": now})
        if result.rowcount == 0:
            raise model_not_found(project, name)
        return int(self._c.execute(_MODEL_ID_AND_LAST, params).one().id)

    # -- versions ----------------------------------------------------------------------------

    def next_version(self, project: str, name: str, now: datetime) -> tuple[int, int]:
        """Allocate the model's next version number, locking its row.

        Returns:
            ``(model_id, version)``.

        Raises:
            NotFoundError: No such model.
        """
        params = {"project": project, "model": name}
        if self._c.dialect.update_returning:
            taken = _NEXT_VERSION_RETURNING.execute(self._c, {**params, "now": now}).first()
            if taken is None:
                raise model_not_found(project, name)
            return int(taken[0]), int(taken[1])
        result = self._c.execute(_NEXT_VERSION, {**params, "now": now})
        if result.rowcount == 0:
            raise model_not_found(project, name)
        row = self._c.execute(_MODEL_ID_AND_LAST, params).one()
        return int(row.id), int(row.last_version)

    def insert_version(self, values: Mapping[str, Any]) -> int:
        """Insert a version row; returns its id.

        Raises:
            NotFoundError: ``job_execution_id`` names no job execution.
        """
        try:
            if self._c.dialect.insert_returning:
                return int(_INSERT_VERSION_RETURNING.execute(self._c, values).scalar_one())
            result = _INSERT_VERSION.execute(self._c, values)
        except IntegrityError as e:
            if is_unique_violation(e):
                raise
            raise NotFoundError("job execution", values.get("job_execution_id")) from e
        assert result.lastrowid is not None  # an INSERT without RETURNING: the driver's row id
        return int(result.lastrowid)

    def version_id(self, project: str, model: str, version: int) -> int:
        """The row id of one version (for foreign keys from other aggregates).

        Raises:
            NotFoundError: No such model or version (the message says which).
        """
        params = {"project": project, "model": model, "version": version}
        row = self._c.execute(_VERSION_BY_NUMBER, params).first()
        if row is None:
            self.get_model(project, model)
            raise version_not_found(project, model, str(version))
        return int(row.id)

    def version_row(self, model_id: int, version: int) -> Row[Any] | None:
        """The row of one version of a locked model (by id, no joins)."""
        return self._c.execute(_VERSION_ROW, {"model_id": model_id, "version": version}).first()

    def deployed_row(self, model_id: int) -> Row[Any] | None:
        """The DEPLOYED version of a locked model, if any."""
        query = select(VERSION).where(
            VERSION.c.model_id == model_id, VERSION.c.status == ModelStatus.DEPLOYED.value
        )
        return self._c.execute(query).first()

    def last_deprecated_row(self, model_id: int) -> Row[Any] | None:
        """The DEPRECATED version of a locked model that was deprecated most recently."""
        query = (
            select(VERSION)
            .join(CHANGE, CHANGE.c.version_id == VERSION.c.id)
            .where(
                VERSION.c.model_id == model_id,
                VERSION.c.status == ModelStatus.DEPRECATED.value,
                CHANGE.c.status == ModelStatus.DEPRECATED.value,
            )
            .order_by(CHANGE.c.id.desc())
            .limit(1)
        )
        return self._c.execute(query).first()

    def set_status(
        self, version_id: int, previous: ModelStatus | None, status: ModelStatus, now: datetime
    ) -> None:
        """Change a version's status and record the change in its history."""
        self._c.execute(
            update(VERSION)
            .where(VERSION.c.id == version_id)
            .values(status=status.value, update_time=now)
        )
        self.insert_change(version_id, previous, status, now)

    def insert_change(
        self, version_id: int, previous: ModelStatus | None, status: ModelStatus, now: datetime
    ) -> None:
        """Append one entry to a version's status history."""
        _INSERT_CHANGE.execute(
            self._c,
            {
                "version_id": version_id,
                "previous": None if previous is None else previous.value,
                "status": status.value,
                "time": now,
            },
        )

    def find_version(
        self,
        project: str,
        model: str,
        *,
        version: int | None = None,
        status: ModelStatus | None = None,
        alias: str | None = None,
    ) -> ModelVersion | None:
        """One version by number, by status (the highest numbered) or by alias, in one query."""
        if version is not None and status is None and alias is None:
            params = {"project": project, "model": model, "version": version}
            found = self._c.execute(_VERSION_BY_NUMBER, params).first()
            return None if found is None else ModelVersionRow.to_domain(found._mapping, model)
        if status is not None and version is None and alias is None:
            params = {"project": project, "model": model, "status": status.value}
            found = self._c.execute(_VERSION_BY_STATUS, params).first()
            return None if found is None else ModelVersionRow.to_domain(found._mapping, model)
        query = _versions_of(project, model)
        if version is not None:
            query = query.where(VERSION.c.version == version)
        if status is not None:
            query = query.where(VERSION.c.status == status.value)
        if alias is not None:
            query = query.join(ALIAS, ALIAS.c.version_id == VERSION.c.id).where(
                ALIAS.c.alias == alias
            )
        row = self._c.execute(query.order_by(VERSION.c.version.desc()).limit(1)).first()
        return None if row is None else ModelVersionRow.to_domain(row._mapping, model)

    def list_versions(
        self, project: str, model: str, status: ModelStatus | None, after: int | None, limit: int
    ) -> list[ModelVersion]:
        """Up to ``limit`` versions numbered above ``after``, by number."""
        query = _versions_of(project, model)
        if status is not None:
            query = query.where(VERSION.c.status == status.value)
        if after is not None:
            query = query.where(VERSION.c.version > after)
        rows = self._c.execute(query.order_by(VERSION.c.version).limit(limit))
        return [ModelVersionRow.to_domain(row._mapping, model) for row in rows]

    def history(self, project: str, model: str, version: int) -> list[StatusChange]:
        """A version's status changes, oldest first (empty if the version does not exist)."""
        query = (
            select(CHANGE)
            .join(VERSION, VERSION.c.id == CHANGE.c.version_id)
            .join(MODEL, MODEL.c.id == VERSION.c.model_id)
            .where(_of_model(project, model), VERSION.c.version == version)
            .order_by(CHANGE.c.id)
        )
        rows = self._c.execute(query)
        return [ModelStatusChangeRow.to_domain(row._mapping, model, version) for row in rows]

    # -- aliases -----------------------------------------------------------------------------

    def set_alias(self, model_id: int, alias: str, version_id: int) -> None:
        """Point ``alias`` of a locked model at a version (creating or moving it)."""
        moved = self._c.execute(
            update(ALIAS)
            .where(ALIAS.c.model_id == model_id, ALIAS.c.alias == alias)
            .values(version_id=version_id)
        )
        if moved.rowcount == 0:
            self._c.execute(
                ALIAS.insert(), {"model_id": model_id, "alias": alias, "version_id": version_id}
            )

    def delete_alias(self, model_id: int, alias: str) -> bool:
        """Remove ``alias`` of a locked model; whether it existed."""
        result = self._c.execute(
            ALIAS.delete().where(ALIAS.c.model_id == model_id, ALIAS.c.alias == alias)
        )
        return result.rowcount > 0

    def delete_aliases_of(self, version_id: int) -> None:
        """Remove every alias pointing at a version (it is being deleted)."""
        self._c.execute(ALIAS.delete().where(ALIAS.c.version_id == version_id))

    def aliases(self, project: str, model: str) -> dict[str, int]:
        """Every alias of a model and the version number it points at."""
        query = (
            select(ALIAS.c.alias, VERSION.c.version)
            .join(VERSION, VERSION.c.id == ALIAS.c.version_id)
            .join(MODEL, MODEL.c.id == ALIAS.c.model_id)
            .where(_of_model(project, model))
            .order_by(ALIAS.c.alias)
        )
        return {row.alias: row.version for row in self._c.execute(query)}
