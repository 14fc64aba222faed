"""What every API route shares: its dependencies, the paging parameters and the page shape."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Depends, Path, Query

from tideflow.web.auth import Access, current_access
from tideflow.web.deps import WebServices, web_services

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

ProjectAccess = Annotated[Access, Depends(current_access)]
"""The caller may read the route's ``{project}`` (else 401/403 before the route runs)."""
Services = Annotated[WebServices, Depends(web_services)]
ProjectName = Annotated[str, Path(description="The project (namespace of its events).")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (1..1000).")]
Cursor = Annotated[
    str | None,
    Query(max_length=512, description="The `next_cursor` of the previous page."),
]


def page(items: Iterable[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    """The body of every list: ``{"items": [...], "next_cursor": ...}``."""
    return {"items": list(items), "next_cursor": next_cursor}


PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["items", "next_cursor"],
    "properties": {
        "items": {"type": "array", "items": {"type": "object"}},
        "next_cursor": {"type": ["string", "null"]},
    },
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
        }
    },
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route may answer."""
    described = {
        400: "A parameter is invalid (the error names it).",
        401: "No token while the server requires one, or an unknown or revoked token.",
        403: "The token is for another project.",
        404: "No such entity.",
    }
    return {
        status: {
            "description": described.get(status, "Error."),
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        for status in (400, 401, 403, *statuses)
    }


def paged(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a list route: the page shape and the error statuses."""
    ok: dict[int | str, dict[str, Any]] = {
        200: {
            "description": "One page.",
            "content": {"application/json": {"schema": PAGE_SCHEMA}},
        }
    }
    return {**ok, **errors(*statuses)}
