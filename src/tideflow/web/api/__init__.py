"""The JSON API under ``/api/v1``: one module per area to read, ``actions`` to write; all project-scoped.

Lists are pages ``{"items": [...], "next_cursor": ...}`` taking ``limit`` (1..1000, default
100) and ``cursor``; errors are ``{"error": {"code", "message", "field"}}`` (see
``tideflow.web.errors``). Every route under ``/api/v1/projects/{project}`` depends on
:func:`tideflow.web.auth.current_access`.
"""

from __future__ import annotations

from fastapi import APIRouter

from tideflow.web.api import (
    actions,
    cluster,
    datasets,
    events,
    executions,
    logs,
    models,
    workflows,
)

router = APIRouter(prefix="/api/v1")
"""Every API route; ``create_app`` includes it."""
for _module in (workflows, executions, logs, models, datasets, events, actions, cluster):
    router.include_router(_module.router)

__all__ = ["router"]
