"""Errors over HTTP: one status per error class, one JSON shape, never a 500 for bad input.

Every error a route raises on purpose is a :class:`~tideflow.errors.TideflowError`; the table
below gives its HTTP status (as ``rpc/status.py`` gives gRPC codes). API responses carry
``{"error": {"code", "message", "field"}}``; FastAPI's own request validation (a query
parameter of the wrong type or out of range) is reshaped into the same body with status 400,
naming the parameter. Pages (anything outside ``/api/``) get a small HTML page instead, and a
missing token there redirects to the login form.
"""

from __future__ import annotations

import html
import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tideflow.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    IllegalTransitionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    TideflowError,
    UnauthenticatedError,
    UnavailableError,
)

log = logging.getLogger(__name__)

# Most specific first: the first class an error is an instance of gives its status.
_STATUS: tuple[tuple[type[TideflowError], int, str], ...] = (
    (InvalidArgumentError, 400, "invalid_argument"),
    (NotFoundError, 404, "not_found"),
    (AlreadyExistsError, 409, "already_exists"),
    (IllegalTransitionError, 409, "illegal_transition"),
    (FailedPreconditionError, 412, "failed_precondition"),
    (UnauthenticatedError, 401, "unauthenticated"),
    (PermissionDeniedError, 403, "permission_denied"),
    (ResourceExhaustedError, 429, "resource_exhausted"),
    (UnavailableError, 503, "unavailable"),
)


def http_status(error: TideflowError) -> tuple[int, str]:
    """The HTTP status and the error code (a stable lower-case word) of ``error``."""
    for kind, status, code in _STATUS:
        if isinstance(error, kind):
            return status, code
    return 500, "internal"


def error_body(
    code: str, message: str, field: str | None = None, *, allowed: list[str] | None = None
) -> dict[str, Any]:
    """The JSON body of every API error; an illegal transition adds the ``allowed`` statuses."""
    body: dict[str, Any] = {"code": code, "message": message, "field": field}
    if allowed is not None:
        body["allowed"] = allowed
    return {"error": body}


def is_api(request: Request) -> bool:
    """Whether ``request`` is for the JSON API (else a page)."""
    return request.url.path.startswith("/api/")


def _page_project(request: Request) -> str:
    """The project a page's path names (``/ui/{project}/...``), for the error page's links."""
    from tideflow.domain.limits import check_name
    from tideflow.web.auth import DEFAULT_PROJECT

    parts = request.url.path.split("/")
    if len(parts) > 2 and parts[1] == "ui" and parts[2] not in ("", "login", "logout"):
        try:
            return check_name(parts[2], "project")
        except TideflowError:
            pass
    return DEFAULT_PROJECT


def _page(request: Request, status: int, title: str, message: str) -> Response:
    """An error page in the site's frame (header, navigation, project switcher)."""
    try:
        from tideflow.web.pages.render import render

        return render(
            request,
            "error.html",
            "_error.html",
            project=_page_project(request),
            title=f"{status} {title}",
            section="",
            status_code=status,
            message=message,
            status=status,
        )
    except Exception:  # an error page must never fail: fall back to plain HTML
        log.exception("the error page for %s failed to render", request.url.path)
        text = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Tideflow: "
            f"{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
            f"<p class='error'>{html.escape(message)}</p><p><a href='/ui'>Tideflow</a></p>"
            "</body></html>"
        )
        return HTMLResponse(text, status_code=status)


def error_response(request: Request, error: TideflowError) -> Response:
    """The response for ``error``: JSON for the API, HTML (or a login redirect) for pages."""
    status, code = http_status(error)
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, error)
    field = getattr(error, "field", None)
    if is_api(request):
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        allowed = list(error.allowed) if isinstance(error, IllegalTransitionError) else None
        body = error_body(code, str(error), field, allowed=allowed)
        return JSONResponse(body, status, headers=headers)
    if status == 401 and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", status_code=303)
    return _page(request, status, code.replace("_", " "), str(error))


def _validation_message(error: dict[str, Any]) -> tuple[str, str | None]:
    where = [
        str(part)
        for part in error.get("loc", ())
        if part not in ("query", "path", "body", "header", "cookie")
    ]
    name = ".".join(where) or None
    given = error.get("input")
    text = str(error.get("msg", "invalid value"))
    if name is None:
        return text, None
    shown = "" if given is None or isinstance(given, dict) else f" (got {given!r})"
    return f"parameter {name!r}: {text}{shown}", name


def install_error_handlers(app: FastAPI) -> None:
    """Map Tideflow errors, request validation and HTTP errors to the shapes above."""

    @app.exception_handler(TideflowError)
    async def tideflow_error(request: Request, error: TideflowError) -> Response:
        return error_response(request, error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        problems = [_validation_message(e) for e in error.errors()]
        message = "; ".join(text for text, _ in problems) or "invalid request"
        field = next((name for _, name in problems if name), None)
        return error_response(request, InvalidArgumentError(message, field=field))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        message = str(error.detail)
        if error.status_code == 404:
            message = f"no such page: {request.url.path}"
        elif error.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        if is_api(request):
            return JSONResponse(error_body(code, message), error.status_code, headers=error.headers)
        return _page(request, error.status_code, code.replace("_", " "), message)
