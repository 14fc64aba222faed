"""``Idempotency-Key``: a retried write action over HTTP is applied once, as a retried RPC is.

A script that lost the answer to ``POST .../executions`` cannot tell whether the execution
started; sent again with the same ``Idempotency-Key`` header, the request is answered with
the first answer (status and body, header ``Idempotent-Replayed: true``) and nothing is done
twice. It uses the RPC edge's deduplication log (``tideflow.store.request_log``): the key is
claimed in the same transaction as the action's change, so "done" and "key known" are one
fact, and keys are kept per caller (project and token), for a day. A key reused for another
route is a 409; a key whose action was applied but whose answer was lost (a crash between
the two) is a 409 saying so. Without the header nothing changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import JSONResponse

from tideflow.errors import AlreadyExistsError
from tideflow.store.request_log import (
    NO_TOKEN,
    RequestClaim,
    RequestKey,
    current_claim,
    find_response,
    save_responses,
)
from tideflow.web.auth import Access
from tideflow.web.deps import WebServices

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY_LENGTH = 64

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        description="Send the same key again to get the first answer instead of acting twice "
        "(kept for a day, per token).",
    ),
]


def once(
    request: Request,
    services: WebServices,
    access: Access,
    project: str,
    key: str | None,
    status: int,
    work: Callable[[], dict[str, Any]],
) -> dict[str, Any] | JSONResponse:
    """``work()``, or -- for a key seen before -- the answer it gave then.

    Raises:
        AlreadyExistsError: The key was used for another route, or its action was applied but
            its answer lost (409).
    """
    if key is None:
        return work()
    store = services.access.store
    request_key = RequestKey(project, access.token_id or NO_TOKEN, key)
    method = f"HTTP {request.method} {request.url.path}"
    found = store.run(lambda c: find_response(c, request_key), write=False)
    if found is not None:
        recorded, data = found
        if recorded != method:
            raise AlreadyExistsError(
                "request",
                key,
                message=f"{HEADER} {key!r} was used for another request ({recorded}); "
                "use a new key for each action",
            )
        if data is None:
            raise AlreadyExistsError(
                "request",
                key,
                message=f"the request with {HEADER} {key!r} was applied but its answer was "
                "lost; read the result instead of sending it again",
            )
        saved = json.loads(data)
        return JSONResponse(saved["body"], status_code=saved["status"], headers={REPLAYED: "true"})
    token = current_claim.set(RequestClaim(request_key, method))
    try:
        body = work()
    finally:
        current_claim.reset(token)
    answer = json.dumps({"status": status, "body": body}, default=str).encode()
    store.run(lambda c: save_responses(c, [(request_key, method, answer)]))
    return body
