"""Rendering pages: one Jinja2 environment over ``web/templates``, filters, and fragments.

Every page template extends ``base.html`` and includes its live part from a ``_*.html``
fragment. A page asked for with ``?fragment=1`` renders that fragment alone: the page's script
fetches it when a relevant event arrives on the event stream and swaps it in, so a live update
is exactly what a reload would show, rendered by the same code, with no second renderer in
JavaScript.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from tideflow._version import __version__
from tideflow.web.auth import csrf_token, may_write, set_csrf_cookie

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def format_time(value: datetime | None) -> str:
    """A UTC time as ``YYYY-MM-DD HH:MM:SS`` (empty for ``None``)."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: float | None) -> str:
    """``1h 02m``, ``3m 04s``, ``5.2s`` (empty for ``None``)."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def to_json(value: Any) -> Markup:
    """``value`` as JSON safe inside a ``<script type="application/json">`` element."""
    text = json.dumps(value, default=str, sort_keys=True)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _structured(value: Any) -> Any:
    """``value`` as a dict or list if it is one, or a string holding JSON of one; else None."""
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith(("{", "[")):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
    return value if isinstance(value, dict | list) and value else None


def is_structured(value: Any) -> bool:
    """Whether ``value`` is (or holds) a JSON object or array worth showing indented."""
    return _structured(value) is not None


def pretty_json(value: Any) -> str:
    """A JSON object or array (or a string holding one) indented, keys sorted; else as is."""
    found = _structured(value)
    if found is None:
        return "" if value is None else str(value)
    return json.dumps(found, indent=2, sort_keys=True, default=str, ensure_ascii=False)


@cache
def environment() -> jinja2.Environment:
    """The (one) template environment; autoescaping on, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["time"] = format_time
    env.filters["duration"] = format_duration
    env.filters["tojson_safe"] = to_json
    env.filters["pretty"] = pretty_json
    env.tests["structured"] = is_structured
    env.globals["version"] = __version__
    return env


MAX_SWITCHER = 200
"""Projects the header's switcher lists at most."""


def visible_projects(request: Request, project: str) -> list[str]:
    """The projects the caller may switch to: its token's one, or every one (auth off)."""
    services: Any = getattr(request.app.state, "services", None)
    access = getattr(request.state, "access", None)
    if access is not None and access.project is not None:
        return [access.project]
    if services is None or (access is None and services.auth_required):
        return [project]
    names = [p.name for p in services.projects.list_projects()][:MAX_SWITCHER]
    return names if project in names else [project, *names]


def render(
    request: Request,
    template: str,
    fragment: str,
    *,
    project: str,
    title: str,
    section: str,
    live: dict[str, Any] | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page ``template``, or only its live ``fragment`` when ``?fragment=1`` is asked.

    Args:
        request: The request (its query decides page or fragment).
        template: The full page's template.
        fragment: The template of its live part.
        project: The project shown (for links and the event stream).
        title: The page title.
        section: Which navigation tab is current.
        live: What the page's script listens for: ``types`` (event types, ``*`` suffix allowed),
            ``key``, ``execution`` (only events of this execution), ``after`` (the event offset
            the page was rendered at, so the stream starts exactly there).
        status_code: The HTTP status.
        context: The template's variables.
    """
    env = environment()
    csrf, new_csrf = csrf_token(request)
    values = {
        "project": project,
        "title": title,
        "section": section,
        "csrf_token": csrf,
        "can_write": may_write(getattr(request.state, "access", None)),
        "projects": visible_projects(request, project),
        **context,
    }
    if request.query_params.get("fragment") == "1":
        html = env.get_template(fragment).render(values)
    else:
        html = env.get_template(template).render(
            fragment=fragment, live=live or {}, request_path=request.url.path, **values
        )
    response = HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
    if new_csrf:
        set_csrf_cookie(response, request, csrf)
    return response
