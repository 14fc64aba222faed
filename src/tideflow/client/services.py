"""The services behind a client: in-process on a store, or remote proxies over gRPC.

The client facades (``c.models`` ...) take these service objects, so switching between
``tide.connect("sqlite:///...")`` and ``tide.connect("grpc://...")`` changes nothing else.
The server builds the same bundle for its servicers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tideflow.metadata import (
    ArtifactService,
    DatasetService,
    LineageService,
    MetricService,
    ProjectService,
    WorkflowService,
)
from tideflow.modelcenter import ModelCenter
from tideflow.notification.service import NotificationService
from tideflow.store import Store


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
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Release everything, last opened first."""
        for close in reversed(self.closers):
            close()
        self.closers.clear()


def local_services(store: Store, *, owns_store: bool = False) -> Services:
    """Services running in this process on ``store``."""
    notifications = NotificationService(store)
    services = Services(
        projects=ProjectService(store),
        model_center=ModelCenter(store),
        datasets=DatasetService(store),
        artifacts=ArtifactService(store),
        metrics=MetricService(store),
        lineage=LineageService(store),
        notifications=notifications,
        workflows=WorkflowService(store),
    )
    if owns_store:
        services.closers.append(store.close)
    services.closers.append(notifications.close)
    return services
