"""``/api/v1/docs``: the interactive API page (Swagger UI over the OpenAPI document).

Swagger UI comes from npm (``swagger-ui-dist``, Apache-2.0) as built files in
``static/vendor/swagger-ui`` with its licence: nothing is fetched from another host (the
online spec validator is turned off). The page is a shell; what it may call is what the
caller's token allows, like any other request. "Try it out" on a write action from a
browser logged in with the cookie sends the page's CSRF token (``static/api-page.js``).
"""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tideflow.web.auth import csrf_token, set_csrf_cookie

router = APIRouter(include_in_schema=False)
DOCS_URL = "/api/v1/docs"


@router.get(DOCS_URL)
def api_page(request: Request) -> HTMLResponse:
    """The Swagger UI page of ``/api/v1/openapi.json``."""
    csrf, new = csrf_token(request)
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{html.escape(csrf)}">
<title>Tideflow API</title>
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
<link rel="stylesheet" href="/static/tideflow.css">
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js" defer></script>
<script src="/static/api-page.js" defer></script>
</head><body class="api-page">
<header class="top"><a class="brand" href="/ui">Tideflow</a><nav><a href="/ui">UI</a>
<a href="/api/v1/openapi.json">openapi.json</a></nav></header>
<div id="swagger-ui" data-spec="/api/v1/openapi.json"></div>
</body></html>"""
    response = HTMLResponse(body, headers={"Cache-Control": "no-store"})
    if new:
        set_csrf_cookie(response, request, csrf)
    return response
