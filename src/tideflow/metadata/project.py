"""Projects: the scope of every other entity and the namespace of their events."""

from __future__ import annotations

from sqlalchemy import Connection

from tideflow.domain.limits import MAX_TEXT_LENGTH, check_name, check_text
from tideflow.domain.metadata import Project
from tideflow.errors import AlreadyExistsError, NotFoundError
from tideflow.store import Store
from tideflow.store.repositories.project import ProjectRepository
from tideflow.store.types import utcnow


class ProjectService:
    """Create, read, list and delete projects."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create_project(self, name: str, *, description: str = "") -> Project:
        """Create a project.

        Raises:
            InvalidArgumentError: Invalid name or description.
            AlreadyExistsError: A project of that name exists.
        """
        check_name(name, "project name")
        check_text(description, "description", MAX_TEXT_LENGTH)
        return self._store.run(lambda c: ProjectRepository(c).create(name, description, utcnow()))

    def ensure_project(self, name: str) -> Project:
        """The project ``name``, created first if it does not exist yet (safe under races)."""
        check_name(name, "project name")

        def work(c: Connection) -> Project:
            repo = ProjectRepository(c)
            try:
                return repo.get(name)
            except NotFoundError:
                return repo.create(name, "", utcnow())

        try:
            return self._store.run(work)
        except AlreadyExistsError:  # another process created it between our read and insert
            return self.get_project(name)

    def get_project(self, name: str) -> Project:
        """The project ``name``; raises :class:`~tideflow.errors.NotFoundError` if unknown."""
        return self._store.run(lambda c: ProjectRepository(c).get(name), write=False)

    def list_projects(self) -> list[Project]:
        """Every project, by name."""
        return self._store.run(lambda c: ProjectRepository(c).list(), write=False)

    def delete_project(self, name: str) -> None:
        """Delete a project and everything in it (its events stay in the log)."""
        self._store.run(lambda c: ProjectRepository(c).delete(name))
