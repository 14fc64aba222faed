"""The web UI's pages: server-rendered HTML under ``/ui/{project}/...``, live over SSE.

Each page renders on the server from the same services the JSON API reads
(:class:`~tideflow.web.deps.WebServices`), through the same access check
(:func:`~tideflow.web.auth.current_access`). Its live part then follows the project's event
stream (``/api/v1/projects/{project}/events/stream``, pushed by the notification service): when
an event the page cares about arrives, the page fetches its own live fragment again and swaps
it in. No timer polls; no JavaScript renders data (see ``static/tideflow.js``).
"""

from __future__ import annotations

from fastapi import APIRouter

from tideflow.web.pages import (
    audit,
    cluster,
    events,
    executions,
    lineage,
    models,
    navigation,
    workflows,
)

router = APIRouter(include_in_schema=False)
for _module in (navigation, workflows, executions, models, lineage, events, audit, cluster):
    router.include_router(_module.router)

__all__ = ["router"]
