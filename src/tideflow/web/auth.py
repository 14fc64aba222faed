"""Who is asking: the API tokens of the gRPC side, over HTTP, with project isolation.

A request presents a token as ``Authorization: Bearer <token>`` (scripts, the API) or in the
``tideflow_token`` cookie that ``POST /ui/login`` sets (browsers). The rules are the RPC
edge's (``tideflow.rpc.auth``):

- no token: 401 when the server requires tokens (pages redirect to ``/ui/login``); otherwise
  (auth optional, a loopback server by default) the request is admitted as ``admin`` of every
  project, and nobody has to log in;
- an unknown or revoked token: always 401, so a mistyped token never works as "no token";
- a token of project B asking about project A: 403 naming both. Every route under
  ``/api/v1/projects/{project}`` and ``/ui/{project}`` takes :func:`current_access`, which
  makes this check before the route reads anything;
- reading needs ``reader`` (every role); the write actions (``POST``, see
  ``tideflow.web.api.actions``) need ``writer``, as their RPCs do: a ``reader`` or a job's
  token is refused with 403 (:func:`writer_access`).

The token is looked up on every request (one indexed read), so a revoked token stops working
on its next request, as over gRPC. The cookie is ``HttpOnly`` and ``SameSite=Lax``, so other
sites' forms never carry it; on top of that, a write that does not present its token in the
``Authorization`` header (a browser: the cookie, or nothing when auth is off, where a bare
cross-site form would otherwise act as ``admin``) must carry the CSRF token: the
``X-CSRF-Token`` header equal to the ``tideflow_csrf`` cookie (double submit). Every page sets
that cookie and repeats it in ``<meta name="csrf-token">`` for its script; another site can
neither read it nor send a custom header without a CORS preflight, which this server never
grants. An ``Origin`` header naming another host is refused as well.
"""

from __future__ import annotations

import hmac
import html
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tideflow.domain.access import Role
from tideflow.domain.limits import check_name
from tideflow.errors import PermissionDeniedError, TideflowError, UnauthenticatedError
from tideflow.web.deps import WebServices, web_services

TOKEN_COOKIE = "tideflow_token"
"""The cookie ``POST /ui/login`` sets to the token."""
CSRF_COOKIE = "tideflow_csrf"
"""The cookie pages set to a random CSRF token (readable by the page, sent back as a header)."""
CSRF_HEADER = "X-CSRF-Token"
"""The header a browser's write request repeats the CSRF cookie in."""
DEFAULT_PROJECT = "default"
"""Where ``/ui`` leads when auth is off (a token leads to its own project)."""
MAX_FORM_BYTES = 16 * 1024


@dataclass(frozen=True)
class Access:
    """What the caller may see.

    Attributes:
        project: The one project its token grants, or ``None`` for every project (auth off and
            no token).
        role: Its role there.
        token_id: The token's id, ``None`` without a token.
        token_name: The token's name (who acts, in the audit list), ``""`` without a token.
    """

    project: str | None
    role: Role
    token_id: int | None = None
    token_name: str = ""

    def sees(self, project: str) -> bool:
        """Whether the caller may read ``project``."""
        return self.project is None or self.project == project


def request_token(request: Request) -> str | None:
    """The token the request presents: the ``Authorization: Bearer`` header, else the cookie."""
    header = request.headers.get("authorization")
    if header is not None:  # an empty or malformed header is a mistake, never "no token"
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise UnauthenticatedError(
                "the Authorization header must be 'Bearer <token>' (a token from "
                "`tideflow token create`)"
            )
        return value.strip()
    return request.cookies.get(TOKEN_COOKIE) or None


def authenticate(request: Request, services: WebServices) -> Access:
    """The caller's :class:`Access`, from its token.

    Raises:
        UnauthenticatedError: No token while one is required; an unknown or revoked token.
    """
    token = request_token(request)
    if token is None:
        if services.auth_required:
            raise UnauthenticatedError(
                "this server requires an API token: send 'Authorization: Bearer <token>' or "
                "log in at /ui/login; an admin creates one with `tideflow token create`"
            )
        return Access(project=None, role=Role.ADMIN)
    principal = services.access.authenticate(token)
    return Access(
        project=principal.project,
        role=principal.role,
        token_id=principal.token_id,
        token_name=principal.name,
    )


def current_principal(
    request: Request, services: Annotated[WebServices, Depends(web_services)]
) -> Access:
    """FastAPI dependency: the caller's access, for routes outside any one project."""
    return authenticate(request, services)


def current_access(
    project: str,
    request: Request,
    services: Annotated[WebServices, Depends(web_services)],
) -> Access:
    """FastAPI dependency of every project route: the caller may read ``project``.

    ``project`` is the route's path parameter of that name.

    Raises:
        InvalidArgumentError: ``project`` is not a valid project name (400).
        UnauthenticatedError: See :func:`authenticate` (401).
        PermissionDeniedError: The token is of another project (403).
    """
    check_name(project, "project")
    access = authenticate(request, services)
    if not access.sees(project):
        raise PermissionDeniedError(
            f"API token {access.token_id} is for project {access.project!r}, not {project!r}"
        )
    request.state.access = access  # pages show write buttons to writers only
    return access


def may_write(access: Access | None) -> bool:
    """Whether ``access`` allows the write actions (``writer`` or ``admin``)."""
    return access is not None and access.role is not Role.JOB and access.role.allows(Role.WRITER)


def check_csrf(request: Request) -> None:
    """Refuse a browser's write that may come from another site (see the module docstring).

    A request with an ``Authorization`` header passes: browsers never add one across sites
    by themselves, so it comes from a script that holds the token.

    Raises:
        PermissionDeniedError: Another site's ``Origin``, or no CSRF token or a wrong one.
    """
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        host = origin.partition("://")[2]
        if host != request.headers.get("host"):
            raise PermissionDeniedError(
                f"cross-site request refused: Origin {origin!r} is not this server"
            )
    if request.headers.get("authorization") is not None:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    expected = request.cookies.get(CSRF_COOKIE, "")
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        raise PermissionDeniedError(
            f"a write from a browser needs the {CSRF_HEADER} header equal to the "
            f"{CSRF_COOKIE} cookie (reload the page), or an 'Authorization: Bearer' header"
        )


def writer_access(
    project: str,
    request: Request,
    services: Annotated[WebServices, Depends(web_services)],
) -> Access:
    """FastAPI dependency of every write route: the caller may change ``project``.

    The role rule is the RPC edge's: ``writer`` or ``admin``; a ``reader`` and a job's token
    (``job`` ranks as a reader) are refused.

    Raises:
        InvalidArgumentError: ``project`` is not a valid project name (400).
        UnauthenticatedError: See :func:`authenticate` (401).
        PermissionDeniedError: Another project's token, a role below ``writer``, or a
            cross-site request (403).
    """
    access = current_access(project, request, services)
    if not may_write(access):
        raise PermissionDeniedError(
            f"API token {access.token_id} has role {access.role.value!r}; this action needs "
            f"{Role.WRITER.value!r}"
        )
    check_csrf(request)
    return access


def csrf_token(request: Request) -> tuple[str, bool]:
    """The request's CSRF cookie value, or a new one; and whether it is new (to be set)."""
    found = request.cookies.get(CSRF_COOKIE)
    if found and len(found) <= 128:
        return found, False
    return secrets.token_urlsafe(32), True


def set_csrf_cookie(response: Response, request: Request, value: str) -> None:
    """Set the CSRF cookie: readable by scripts of the page, never sent by other sites."""
    response.set_cookie(
        CSRF_COOKIE,
        value,
        httponly=False,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


# -- login / logout (the form that sets the cookie) -----------------------------------------

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None, fallback: str) -> str:
    """Only a path on this server (``/...``, not ``//host``): no open redirect."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return fallback


def login_page(*, next_url: str = "", message: str = "", status_code: int = 200) -> HTMLResponse:
    """The login form (a token field); ``message`` says why the last attempt failed."""
    error = f"<p class='error' role='alert'>{html.escape(message)}</p>" if message else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tideflow: log in</title>
<link rel="stylesheet" href="/static/tideflow.css"></head>
<body class="login"><main>
<h1>Tideflow</h1>
{error}
<form method="post" action="/ui/login">
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="off" required
 placeholder="tf_..." size="50">
<input type="hidden" name="next" value="{html.escape(next_url)}">
<button type="submit">Log in</button>
</form>
<p>An admin creates a token with <code>tideflow token create --project NAME</code>.</p>
</main></body></html>"""
    return HTMLResponse(body, status_code=status_code)


@router.get("/ui/login")
def show_login(next: str = "") -> HTMLResponse:
    """The login form."""
    return login_page(next_url=next)


@router.post("/ui/login")
async def login(
    request: Request, services: Annotated[WebServices, Depends(web_services)]
) -> Response:
    """Check the token of the form; on success set the cookie and go where the user was going."""
    raw = await request.body()
    form = parse_qs(raw[:MAX_FORM_BYTES].decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    next_url = (form.get("next") or [""])[0]
    if not token:
        return login_page(next_url=next_url, message="enter an API token", status_code=400)
    try:
        principal = services.access.authenticate(token)
    except TideflowError as e:
        return login_page(next_url=next_url, message=str(e), status_code=401)
    target = _safe_next(next_url, f"/ui/{principal.project}/workflows")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.api_route("/ui/logout", methods=["GET", "POST"])
def logout() -> Response:
    """Forget the cookie and show the login form."""
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return response
