"""The in-process client: the services of this package over a store opened from a SQL URL."""

from __future__ import annotations

from tideflow.client.events import Events
from tideflow.client.metadata import Artifacts, Datasets, Lineage, Metrics
from tideflow.client.models import Models
from tideflow.errors import InvalidArgumentError
from tideflow.metadata import (
    ArtifactService,
    DatasetService,
    LineageService,
    MetricService,
    ProjectService,
)
from tideflow.modelcenter import ModelCenter
from tideflow.notification.service import NotificationService
from tideflow.store import Store

DEFAULT_PROJECT = "default"


class Client:
    """Tideflow's client API bound to one project.

    Attributes:
        project: The project every call is scoped to.
        models: Registered models and versions (:class:`~tideflow.client.models.Models`).
        datasets: Datasets.
        artifacts: Artifacts.
        metrics: Metrics.
        lineage: Lineage of job executions.
        events: The project's event log.
    """

    def __init__(self, store: Store, project: str, *, owns_store: bool = False) -> None:
        self._store = store
        self._owns_store = owns_store
        self.project = project
        self.models = Models(ModelCenter(store), project)
        self.datasets = Datasets(DatasetService(store), project)
        self.artifacts = Artifacts(ArtifactService(store), project)
        self.metrics = Metrics(MetricService(store), project)
        self.lineage = Lineage(LineageService(store), project)
        self._notifications = NotificationService(store)
        self.events = Events(self._notifications, project)

    @property
    def store(self) -> Store:
        """The store behind this client (in-process clients only)."""
        return self._store

    def close(self) -> None:
        """Close listeners, and release the store's connections if this client opened it."""
        self._notifications.close()
        if self._owns_store:
            self._store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self._store!r}, project={self.project!r})"


def connect(url: str, *, project: str = DEFAULT_PROJECT, token: str | None = None) -> Client:
    """Connect to Tideflow and return a :class:`Client` bound to ``project``.

    Args:
        url: A SQL URL (``sqlite:///PATH``, ``postgresql+psycopg://...``,
            ``mysql+pymysql://...``): the services run in this process on that store, which is
            migrated if empty; the project is created if it does not exist.
        project: The project to work in.
        token: For remote servers (not used in-process).

    Raises:
        InvalidArgumentError: Unsupported URL or invalid project name.
        UnavailableError: The database cannot be reached.
        FailedPreconditionError: The database schema needs ``tideflow db upgrade``.
    """
    if url.startswith("grpc://"):
        raise InvalidArgumentError(
            "remote servers (grpc://) are not supported by this version yet; connect to the "
            "database directly with a SQL URL, e.g. sqlite:////path/tideflow.db",
            field="url",
        )
    del token  # only remote servers check tokens
    store = Store.open(url)
    try:
        ProjectService(store).ensure_project(project)
    except BaseException:
        store.close()
        raise
    return Client(store, project, owns_store=True)
