"""The services behind a client: in-process on a store, or remote proxies over gRPC.

The client facades (``c.models`` ...) take these service objects, so switching between
``tide.connect("sqlite:///...")`` and ``tide.connect("grpc://...")`` changes nothing else.
The server builds the same bundle for its servicers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tideflow.metadata import (
    ArtifactService,
    DatasetService,
    LineageService,
    MetricService,
    ProjectService,
    WorkflowService,
)
from tideflow.metadata.blob import BlobService
from tideflow.metadata.package import PackageLimits
from tideflow.modelcenter import ModelCenter
from tideflow.notification.service import NotificationService
from tideflow.scheduler.clock import Clock, clock_from_env
from tideflow.scheduler.service import SchedulerService
from tideflow.settings import Settings
from tideflow.store import Store
from tideflow.store.blob import BlobStore


@dataclass
class Services:
    """Every service a client or the server uses, and how to release them."""

    projects: ProjectService
    model_center: ModelCenter
    datasets: DatasetService
    artifacts: ArtifactService
    metrics: MetricService
    lineage: LineageService
    notifications: NotificationService
    workflows: WorkflowService
    scheduler: SchedulerService | None = None
    """Executions, jobs and the job-command outbox (``None`` until the remote bundle has it)."""
    blobs: BlobService | None = None
    """Content-addressed blobs (models, artifacts); ``None`` for a bundle built without them."""
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Release everything, last opened first."""
        for close in reversed(self.closers):
            close()
        self.closers.clear()


def default_blob_root(db_url: str) -> str:
    """Where an in-process client keeps code packages for the store at ``db_url``.

    Beside a SQLite file (``<its directory>/blobs``, as the server lays out ``$TIDEFLOW_HOME``,
    so both see the same packages), else ``$TIDEFLOW_HOME/blobs``.
    """
    prefix = "sqlite:///"
    if db_url.startswith(prefix) and db_url[len(prefix) :] not in ("", ":memory:"):
        from pathlib import Path

        return str(Path(db_url[len(prefix) :].split("?", 1)[0]).parent / "blobs")
    return str(Settings.from_env().blob_root)


def default_home(db_url: str) -> Path:
    """The Tideflow home of the store at ``db_url``.

    A SQLite file's directory (the server lays out ``$TIDEFLOW_HOME`` so), else
    ``$TIDEFLOW_HOME``.
    """
    prefix = "sqlite:///"
    if db_url.startswith(prefix) and db_url[len(prefix) :] not in ("", ":memory:"):
        return Path(db_url[len(prefix) :].split("?", 1)[0]).parent
    return Settings.from_env().home


def local_services(
    store: Store,
    *,
    owns_store: bool = False,
    blob_url: str | None = None,
    home: Path | None = None,
    package_limits: PackageLimits | None = None,
    clock: Clock | None = None,
) -> Services:
    """Services running in this process on ``store``.

    Args:
        store: The SQL store.
        owns_store: Close the store with the services.
        blob_url: The blob store (code packages, models); :func:`default_blob_root` by default.
        home: ``$TIDEFLOW_HOME`` of the executors, whose job logs may be read;
            :func:`default_home` by default.
        package_limits: What a code package may unpack to (the server's options); the
            defaults of :mod:`tideflow.domain.limits` by default.
        clock: The scheduler's clock; :func:`~tideflow.scheduler.clock.clock_from_env` (the
            system clock outside tests) by default.
    """
    notifications = NotificationService(store)
    scheduler = SchedulerService(
        store, clock=clock or clock_from_env(), log_root=home or default_home(store.url)
    )
    blobs = BlobStore(blob_url or default_blob_root(store.url))
    services = Services(
        projects=ProjectService(store),
        model_center=ModelCenter(store),
        datasets=DatasetService(store),
        artifacts=ArtifactService(store),
        metrics=MetricService(store),
        lineage=LineageService(store),
        notifications=notifications,
        workflows=WorkflowService(store, blobs, package_limits=package_limits),
        scheduler=scheduler,
        blobs=BlobService(blobs),
    )
    if owns_store:
        services.closers.append(store.close)
    services.closers.append(notifications.close)
    services.closers.append(scheduler.close)
    return services
