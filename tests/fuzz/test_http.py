"""Every HTTP route of the web app, fuzzed: a client's mistake is never a 5xx.

The routes come from the app object (:func:`http_routes`: the JSON API, the pages, login and
logout, health, metrics and the static mount), so a new route is fuzzed the day it lands. Each
example fills the route's path parameters, sends a query string of its own parameters and some
it does not know, a maybe-malformed token and ``Last-Event-ID``, and (for POST) a form body.
Live streams are opened, their status read, and closed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, urlencode

import httpx
import pytest
from fastapi.routing import APIRoute
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from starlette.routing import BaseRoute, Mount

from tests.fuzz.conftest import FuzzServer
from tests.fuzz.strategies import AUTHORIZATIONS, HOSTILE_INTS, HOSTILE_TEXT, fuzz_settings
from tideflow.web.app import create_app
from tideflow.web.deps import WebServices

PARAMETER = re.compile(r"{([^}:]+)(?::[^}]*)?}")


@dataclass(frozen=True)
class HttpRoute:
    """One method of one route, with the query parameters it declares."""

    method: str
    path: str
    query: tuple[str, ...]

    @property
    def name(self) -> str:
        """``GET /api/v1/...``."""
        return f"{self.method} {self.path}"


def _query_names(dependant: Any) -> list[str]:
    names = [param.name for param in dependant.query_params]
    for sub in dependant.dependencies:
        names.extend(_query_names(sub))
    return names


def _flatten(routes: list[BaseRoute]) -> Iterator[tuple[str, BaseRoute]]:
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # FastAPI >= 0.16x keeps included routers lazily
            for context in contexts():
                yield context.path, context.original_route
        else:
            yield getattr(route, "path", ""), route


def http_routes() -> list[HttpRoute]:
    """Every route of the app ``tideflow server`` serves, from the app object itself."""
    # The services are only looked up when a route runs: listing routes needs none.
    app = create_app(
        healthy=lambda: True,
        registry=CollectorRegistry(),
        services=cast(WebServices, object()),
    )
    found: set[HttpRoute] = set()
    for path, route in _flatten(list(app.routes)):
        if isinstance(route, Mount):
            found.add(HttpRoute("GET", f"{path}/{{file_path}}", ()))
            continue
        query = tuple(_query_names(route.dependant)) if isinstance(route, APIRoute) else ()
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                found.add(HttpRoute(method, path, query))
    return sorted(found, key=lambda r: (r.path, r.method))


ROUTES = http_routes()
PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
HEADER = PRINTABLE.map(str.strip)  # HTTP/1.1 forbids whitespace around a header's value
values = (
    st.sampled_from(HOSTILE_TEXT)
    | st.sampled_from([str(i) for i in HOSTILE_INTS] + ["1", "ctr", "clicks", "DEPLOYED"])
    | st.integers().map(str)
    | st.text(max_size=30)
)
"""Path and query values: names, paths, NUL, unicode, huge and negative numbers, anything."""


@st.composite
def requests(draw: st.DrawFn, route: HttpRoute) -> dict[str, Any]:
    filled = iter(
        quote(draw(st.sampled_from(["fuzz", "fuzz", "ctr"]) | values), safe="")
        for _ in PARAMETER.findall(route.path)
    )
    path = PARAMETER.sub(lambda _: next(filled), route.path)
    names = st.sampled_from(route.query) | PRINTABLE if route.query else PRINTABLE
    query = draw(st.lists(st.tuples(names, values), max_size=4))
    headers: dict[str, str] = {}
    authorization = draw(st.sampled_from(AUTHORIZATIONS))
    if authorization is not None:
        headers["authorization"] = authorization.strip()
    last_event_id = draw(st.none() | HEADER)
    if last_event_id is not None:
        headers["last-event-id"] = last_event_id
    cookie = draw(st.none() | HEADER)
    if cookie is not None:
        headers["cookie"] = f"tideflow_token={cookie}"
    body = None
    if route.method == "POST":
        form = draw(st.lists(st.tuples(st.sampled_from(["token", "next"]) | PRINTABLE, values)))
        body = urlencode(form).encode()
    url = f"{path}?{urlencode(query)}" if query else path
    return {"method": route.method, "url": url, "headers": headers, "content": body}


@pytest.fixture(scope="module")
def http(fuzz_server: FuzzServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzz_server.server.http_url, timeout=30) as client:
        yield client


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
def test_a_client_mistake_never_gets_a_5xx(
    fuzz_server: FuzzServer, http: httpx.Client, route: HttpRoute
) -> None:
    @fuzz_settings()
    @given(request=requests(route))
    def check(request: dict[str, Any]) -> None:
        # Streams are opened and dropped once their status is known: they never end by themselves.
        with http.stream(**request) as response:
            status = response.status_code
            body = "" if route.path.endswith("stream") else response.read()[:2000]
        assert status < 500, f"{route.name}: {request} answered {status}: {body!r}"

    check()


def test_every_area_of_the_app_is_fuzzed() -> None:
    paths = {route.path for route in ROUTES}
    assert {"/healthz", "/metrics", "/ui/login", "/static/{file_path}"} <= paths
    assert any(path.startswith("/api/v1/projects/{project}/") for path in paths)
    assert any(path.startswith("/ui/{project}/") for path in paths)
