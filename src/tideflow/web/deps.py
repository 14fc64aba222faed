"""What the web app reads through: the server's services, bundled, and how routes get them.

The server already holds every service (it builds one :class:`~tideflow.client.services.Services`
bundle for its gRPC servicers); the web app gets the same objects, so a page or an API call
reads exactly what an RPC would, from the same store, with no second copy of any logic. The
bundle is kept on ``app.state`` and handed to routes by the :func:`web_services` dependency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from tideflow.client.services import Services
from tideflow.metadata import (
    DatasetService,
    LineageService,
    MetricService,
    ProjectService,
    WorkflowService,
)
from tideflow.metadata.access import AccessService
from tideflow.metadata.audit import AuditService
from tideflow.modelcenter import ModelCenter
from tideflow.notification.service import NotificationService
from tideflow.scheduler.leadership import Leadership
from tideflow.scheduler.service import SchedulerService


@dataclass(frozen=True)
class WebServices:
    """The services the web app reads and acts through, the token checker, the audit list.

    Attributes:
        projects: Projects.
        workflows: Workflows, their snapshots (plans).
        scheduler: Executions, job attempts, scheduler actions, job logs.
        models: The Model Center.
        datasets: Datasets.
        metrics: Metrics (model version metrics for charts).
        lineage: Lineage of job executions.
        events: The notification service (event lists and live streams).
        access: Looks up API tokens.
        audit: The audit list (who did which write action).
        auth_required: Whether a request without a token is refused (401); with ``False`` (a
            loopback server by default) it is admitted as ``admin`` of any project.
        leadership: This server as a member of a cluster (PostgreSQL / MariaDB), for the
            cluster page; ``None`` on a single server (SQLite).
    """

    projects: ProjectService
    workflows: WorkflowService
    scheduler: SchedulerService
    models: ModelCenter
    datasets: DatasetService
    metrics: MetricService
    lineage: LineageService
    events: NotificationService
    access: AccessService
    audit: AuditService
    auth_required: bool = False
    leadership: Leadership | None = None

    @classmethod
    def of(
        cls,
        services: Services,
        access: AccessService,
        *,
        auth_required: bool,
        audit: AuditService | None = None,
        leadership: Leadership | None = None,
    ) -> WebServices:
        """The web bundle of a server's (in-process) service bundle.

        The audit list is kept in the tokens' store unless ``audit`` says otherwise.

        Raises:
            ValueError: ``services`` has no scheduler (a remote bundle): the web app serves a
                server's own store only.
        """
        if services.scheduler is None:
            raise ValueError("the web app needs in-process services with a scheduler")
        return cls(
            projects=services.projects,
            workflows=services.workflows,
            scheduler=services.scheduler,
            models=services.model_center,
            datasets=services.datasets,
            metrics=services.metrics,
            lineage=services.lineage,
            events=services.notifications,
            access=access,
            audit=audit if audit is not None else AuditService(access.store),
            auth_required=auth_required,
            leadership=leadership,
        )


def web_services(request: Request) -> WebServices:
    """FastAPI dependency: the app's :class:`WebServices`."""
    found: Any = getattr(request.app.state, "services", None)
    if not isinstance(found, WebServices):
        raise RuntimeError("create_app(services=...) was not given the services")
    return found
