"""Events: ``/events`` (filtered, paged) and ``/events/stream`` (live, Server-Sent Events).

The stream is the notification service's listener: matching events after ``after_offset``
(default: none of the past, only what commits from now on) are pushed the moment they commit.
Each message's ``id`` is the event's offset, so a browser's ``EventSource`` resumes after the
last event it received (it sends ``Last-Event-ID`` when it reconnects), nothing lost or twice.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from tideflow.errors import InvalidArgumentError
from tideflow.notification.filters import EventFilter, make_filter
from tideflow.web.api import encode
from tideflow.web.api.params import (
    Cursor,
    Limit,
    ProjectAccess,
    ProjectName,
    Services,
    errors,
    page,
    paged,
)
from tideflow.web.api.stream import last_event_id, message, sse_response

router = APIRouter(tags=["events"])

Key = Annotated[str | None, Query(max_length=1024, description="Only events with this key.")]
EventType = Annotated[str | None, Query(max_length=1024, description="Only events of this type.")]
Sender = Annotated[str | None, Query(max_length=1024, description="Only events of this sender.")]
AfterOffset = Annotated[
    int | None,
    Query(ge=0, lt=2**63, description="Only events with a larger offset."),
]


def _filter(key: str | None, event_type: str | None, sender: str | None) -> EventFilter:
    try:
        return make_filter(key=key or None, event_type=event_type or None, sender=sender or None)
    except InvalidArgumentError as e:  # name the query parameter, not the service's argument
        raise InvalidArgumentError(str(e), field=(e.field or "").replace(" ", "_")) from None


@router.get(
    "/projects/{project}/events",
    summary="Events of the project, oldest first",
    responses=paged(),
)
def list_events(
    project: ProjectName,
    access: ProjectAccess,
    services: Services,
    key: Key = None,
    event_type: EventType = None,
    sender: Sender = None,
    after_offset: AfterOffset = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Stored events with offset > ``after_offset`` (0 by default) matching every filter."""
    found = services.events.list(
        project,
        _filter(key, event_type, sender),
        after_offset=after_offset or 0,
        limit=limit,
        cursor=cursor,
    )
    return page((encode.event_json(e) for e in found.items), found.next_cursor)


@router.get(
    "/projects/{project}/events/stream",
    summary="Live events (Server-Sent Events; id = offset; resumes from Last-Event-ID)",
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        **errors(),
    },
    response_class=StreamingResponse,
)
def stream_events(
    request: Request,
    project: ProjectName,
    access: ProjectAccess,
    services: Services,
    key: Key = None,
    event_type: EventType = None,
    sender: Sender = None,
    after_offset: AfterOffset = None,
) -> StreamingResponse:
    """Matching events as they commit; each ``data`` is the event as in ``/events``.

    Starts after ``Last-Event-ID`` when the client sends it (a reconnect), else after
    ``after_offset``, else with the next event committed.
    """
    resume = last_event_id(request)
    if resume is None:
        resume = after_offset if after_offset is not None else services.events.latest_offset()
    listener = services.events.listen(
        project, _filter(key, event_type, sender), after_offset=resume
    )

    def wait(timeout: float) -> list[str] | None:
        if listener.closed:
            return None
        events = listener.poll(timeout)
        return [message(encode.event_json(e), event_id=e.offset) for e in events]

    return sse_response(request, wait, close=listener.close)
