"""SQL of projects, and the lookups other repositories use to scope by project."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BindParameter, Connection, ScalarSelect, bindparam, select
from sqlalchemy.exc import IntegrityError

from tideflow.domain.metadata import Project
from tideflow.errors import AlreadyExistsError, NotFoundError
from tideflow.store.errors import is_unique_violation
from tideflow.store.rows.base import table_of
from tideflow.store.rows.metadata import ProjectRow

PROJECT = table_of(ProjectRow)


def project_id_query(project: str | BindParameter[str]) -> ScalarSelect[int]:
    """A scalar subquery of the id of ``project``, to scope statements without a round trip."""
    return select(PROJECT.c.id).where(PROJECT.c.name == project).scalar_subquery()


# Built once with a bound parameter: most writes look their project up.
_PROJECT_ID = select(PROJECT.c.id).where(PROJECT.c.name == bindparam("project_name"))


def project_id(connection: Connection, project: str) -> int:
    """The id of ``project``.

    Raises:
        NotFoundError: No such project.
    """
    found = connection.execute(_PROJECT_ID, {"project_name": project}).scalar()
    if found is None:
        raise NotFoundError("project", project)
    return int(found)


class ProjectRepository:
    """Projects: create, get, list, delete."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def create(self, name: str, description: str, now: datetime) -> Project:
        """Insert a project.

        Raises:
            AlreadyExistsError: A project of that name exists.
        """
        try:
            self._connection.execute(
                PROJECT.insert().values(name=name, description=description, create_time=now)
            )
        except IntegrityError as e:
            if is_unique_violation(e):
                raise AlreadyExistsError("project", name) from e
            raise
        return Project(name=name, description=description, create_time=now)

    def get(self, name: str) -> Project:
        """The project called ``name``.

        Raises:
            NotFoundError: No such project.
        """
        row = self._connection.execute(select(PROJECT).where(PROJECT.c.name == name)).first()
        if row is None:
            raise NotFoundError("project", name)
        return ProjectRow.to_domain(row._mapping)

    def list(self) -> list[Project]:
        """Every project, by name."""
        rows = self._connection.execute(select(PROJECT).order_by(PROJECT.c.name))
        return [ProjectRow.to_domain(row._mapping) for row in rows]

    def delete(self, name: str) -> None:
        """Delete a project and, by cascade, everything in it (its events stay in the log).

        Raises:
            NotFoundError: No such project.
        """
        result = self._connection.execute(PROJECT.delete().where(PROJECT.c.name == name))
        if result.rowcount == 0:
            raise NotFoundError("project", name)
