"""Events: the project's event log, newest first, filtered by key / type / sender, live."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from tideflow.domain.events import Event
from tideflow.notification.filters import make_filter
from tideflow.web.auth import Access, current_access
from tideflow.web.deps import WebServices, web_services
from tideflow.web.pages.render import render

router = APIRouter()
Services = Annotated[WebServices, Depends(web_services)]
Allowed = Annotated[Access, Depends(current_access)]
SHOWN = 100
WINDOWS = (200, 2_000, 10_000)
"""How far back (in offsets) the first render looks for the newest matching events, widening
until it has :data:`SHOWN` of them: the log is read oldest first, so the newest are found by
reading a window that ends now. The live stream then adds every new one."""

Text = Annotated[str | None, Query(max_length=256)]


@router.get("/ui/{project}/events")
def event_page(
    project: str,
    request: Request,
    _: Allowed,
    services: Services,
    key: Text = None,
    event_type: Text = None,
    sender: Text = None,
) -> HTMLResponse:
    """The newest matching events; the page's script appends new ones as they are committed."""
    latest = services.events.latest_offset()
    event_filter = make_filter(
        key=key or None, event_type=event_type or None, sender=sender or None
    )
    found: tuple[Event, ...] = ()
    for window in WINDOWS:
        start = max(latest - window, 0)
        found = services.events.list(project, event_filter, after_offset=start, limit=window).items
        if len(found) >= SHOWN or start == 0:
            break
    events = list(reversed(found[-SHOWN:]))
    return render(
        request,
        "events.html",
        "_events.html",
        project=project,
        title="Events",
        section="events",
        live={"after": latest, "stream": True},
        events=events,
        key=key or "",
        event_type=event_type or "",
        sender=sender or "",
    )
