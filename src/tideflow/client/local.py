"""``tide.connect``: one :class:`Client`, whether the services run here or on a server."""

from __future__ import annotations

from pathlib import Path

from tideflow.client.blobs import Blobs
from tideflow.client.events import Events
from tideflow.client.executions import Executions, Jobs
from tideflow.client.metadata import Artifacts, Datasets, Lineage, Metrics
from tideflow.client.models import Models
from tideflow.client.services import Services, local_services
from tideflow.client.workflows import Workflows
from tideflow.errors import FailedPreconditionError
from tideflow.settings import Settings
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
        workflows: Submitted workflows and their snapshots; start executions, pause, resume.
        executions: Workflow executions: list, get, stop, actions, waiting_on, wait.
        jobs: Jobs of executions: list, stop, restart, logs, follow_logs.
        blobs: Content-addressed bytes in the blob store: put, get.
        url: What it was connected to (a SQL URL or ``grpc://host:port``).
    """

    def __init__(
        self, services: Services, project: str, *, url: str = "", store: Store | None = None
    ) -> None:
        self._services = services
        self._store = store
        self.url = url
        self.project = project
        self.models = Models(services.model_center, project, client=self)
        self.datasets = Datasets(services.datasets, project)
        self.artifacts = Artifacts(services.artifacts, project)
        self.metrics = Metrics(services.metrics, project)
        self.lineage = Lineage(services.lineage, project)
        self.events = Events(services.notifications, project)
        self.workflows = Workflows(services.workflows, project, scheduler=services.scheduler)
        self.executions = Executions(services.scheduler, project, services.notifications)
        self.jobs = Jobs(services.scheduler, project, services.notifications)
        self.blobs = Blobs(services.blobs, project)

    @property
    def services(self) -> Services:
        """The services behind this client (for the server and for tests)."""
        return self._services

    @property
    def store(self) -> Store:
        """The store behind an in-process client.

        Raises:
            FailedPreconditionError: This client talks to a remote server.
        """
        if self._store is None:
            raise FailedPreconditionError(f"{self!r} is remote: it has no store in this process")
        return self._store

    def close(self) -> None:
        """Close listeners and release connections this client opened."""
        self._services.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r}, project={self.project!r})"


def connect(
    url: str,
    *,
    project: str = DEFAULT_PROJECT,
    token: str | None = None,
    ca: str | Path | None = None,
    retry_for: float | None = None,
    connect_timeout: float | None = None,
) -> Client:
    """Connect to Tideflow and return a :class:`Client` bound to ``project``.

    Args:
        url: ``grpc://HOST:PORT`` for a Tideflow server; or a SQL URL (``sqlite:///PATH``,
            ``postgresql+psycopg://...``, ``mysql+pymysql://...``) to run the services in this
            process on that store (migrated if empty). In-process, starting or stopping
            executions writes their job commands; a server on the same store runs them.
        project: The project to work in (created if it does not exist).
        token: The API token, for servers that require one.
        ca: For ``grpcs://`` (TLS) servers: a PEM file of the CA that signed the server's
            certificate (default ``$TIDEFLOW_CA_FILE``, else the system's root certificates).
            Giving it makes the connection use TLS even with a ``grpc://`` URL.
        retry_for: For servers: keep retrying a call the server is unavailable for at least
            this many seconds (default: a few seconds, then :class:`UnavailableError`).
        connect_timeout: For servers: connect once, within this many seconds, before the
            first call, and raise :class:`UnavailableError` with a hint if no server answers
            (the CLI does, so a stopped server is reported at once, not after the retries).

    Raises:
        InvalidArgumentError: Unsupported URL or invalid project name.
        UnavailableError: The database or server cannot be reached.
        FailedPreconditionError: The database schema needs ``tideflow db upgrade``.
    """
    if url.startswith(("grpc://", "grpcs://")):
        from tideflow.client.remote.channel import RetryPolicy, TlsConfig
        from tideflow.client.remote.connection import remote_services

        tls = None
        if ca is not None or url.startswith("grpcs://"):
            tls = TlsConfig.from_ca_file(ca if ca is not None else Settings.from_env().ca_file)
        retry = RetryPolicy.lasting(retry_for) if retry_for is not None else None
        services = remote_services(
            url,
            project=project,
            token=token,
            tls=tls,
            retry=retry,
            connect_timeout=connect_timeout,
        )
        try:
            services.projects.ensure_project(project)
        except BaseException:
            services.close()
            raise
        return Client(services, project, url=url)
    store = Store.open(url)
    try:
        services = local_services(store, owns_store=True)
        services.projects.ensure_project(project)
    except BaseException:
        store.close()
        raise
    return Client(services, project, url=url, store=store)
