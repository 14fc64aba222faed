"""The cluster page: the servers sharing this server's database, and which one leads.

It shows what ``GET /api/v1/cluster`` returns (the same function builds both), as of the
moment the page was rendered: heartbeats are not events, so nothing on the event stream would
update it, and the page does not poll -- reload it to look again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from tideflow.web.api.cluster import cluster_json
from tideflow.web.auth import Access, current_access
from tideflow.web.deps import WebServices, web_services
from tideflow.web.pages.render import render

router = APIRouter()
Services = Annotated[WebServices, Depends(web_services)]
Allowed = Annotated[Access, Depends(current_access)]


@router.get("/ui/{project}/cluster")
def cluster_page(project: str, request: Request, _: Allowed, services: Services) -> HTMLResponse:
    """The members (id, host, pid, address, heartbeat age) and the leader with its epoch."""
    return render(
        request,
        "cluster.html",
        "_cluster.html",
        project=project,
        title="Cluster",
        section="cluster",
        cluster=cluster_json(services.leadership),
        shown_at=datetime.now(UTC),
    )
