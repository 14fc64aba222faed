"""The audit list page: who did which write action through the web, and how it ended."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from tideflow.web.auth import Access, current_access
from tideflow.web.deps import WebServices, web_services
from tideflow.web.pages.render import render

router = APIRouter()
Services = Annotated[WebServices, Depends(web_services)]
Allowed = Annotated[Access, Depends(current_access)]
SHOWN = 200


@router.get("/ui/{project}/audit")
def audit_page(
    project: str,
    request: Request,
    _: Allowed,
    services: Services,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> HTMLResponse:
    """The newest entries of the project's audit list (older ones a page further)."""
    entries, next_cursor = services.audit.list_entries(project, limit=SHOWN, cursor=cursor)
    return render(
        request,
        "audit.html",
        "_audit.html",
        project=project,
        title="Audit",
        section="audit",
        entries=entries,
        next_cursor=next_cursor,
    )
