"""What travels beside every call: project, credentials and the request id (gRPC metadata).

Kept out of the messages so every RPC shares one mechanism: the client sets them on each call;
the server's interceptor reads, checks and exposes them to servicers as a :class:`Call`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from tideflow.errors import PermissionDeniedError, UnauthenticatedError

PROJECT_KEY = "x-tideflow-project"
REQUEST_ID_KEY = "x-tideflow-request-id"
ATTEMPT_KEY = "x-tideflow-attempt"
AUTHORIZATION_KEY = "authorization"
DEFAULT_PROJECT = "default"

# Verbs that only read: every other RPC mutates and carries a request id.
READ_VERBS = ("Get", "List", "Listen", "Check")


def is_mutating(method: str) -> bool:
    """Whether the RPC ``/package.Service/Method`` changes state."""
    name = method.rsplit("/", 1)[-1]
    return not name.startswith(READ_VERBS)


@dataclass(frozen=True)
class Call:
    """One incoming call, as the interceptor understood it.

    Attributes:
        method: ``/tideflow.v1.Service/Method``.
        project: The project the call is scoped to.
        request_id: The client's id for a mutating call (``None`` for reads or old clients).
        attempt: 1 for a call's first try, more for the client's retries of it.
        token: The bearer token, if one was sent.
        token_id: The id of that token once authenticated; ``None`` without one.
        role: The caller's role once authenticated (``admin`` when auth is off).
        execution_id: For a job's token, the one execution it may read; else ``None``.
    """

    method: str
    project: str
    request_id: str | None = None
    attempt: int = 1
    token: str | None = None
    token_id: int | None = None
    role: str = "admin"
    execution_id: int | None = None


current_call: ContextVar[Call] = ContextVar("tideflow_current_call")


class StreamCheck:
    """What a long-lived stream checks again while it runs: that its caller's token still works.

    A call's token is checked once when the call starts; a stream can outlive that check by
    minutes. The stream's servicer calls this object between responses (and wakes at least
    every :attr:`interval` seconds to do so); it looks the token up again at most once per
    interval, so calling it often costs nothing.

    Args:
        recheck: Raises (``UnauthenticatedError``) once the token is revoked or gone; ``None``
            when there is nothing to re-check (no token).
        interval: Seconds between look-ups (``math.inf`` without ``recheck``).
    """

    def __init__(
        self, recheck: Callable[[], None] | None = None, *, interval: float = math.inf
    ) -> None:
        self._recheck = recheck
        self.interval = interval if recheck is not None else math.inf
        self._next = time.monotonic() + self.interval
        self._lock = threading.Lock()

    def __call__(self) -> None:
        """Look the token up again if :attr:`interval` has passed; raise if it no longer works.

        Raises:
            UnauthenticatedError: The caller's token was revoked (or deleted) meanwhile.
        """
        if self._recheck is None or time.monotonic() < self._next:
            return
        with self._lock:
            if time.monotonic() < self._next:
                return
            self._recheck()
            self._next = time.monotonic() + self.interval


current_stream_check: ContextVar[StreamCheck | None] = ContextVar(
    "tideflow_stream_check", default=None
)
"""Set by the interceptor for each streaming call."""

_NOTHING_TO_CHECK = StreamCheck()


def stream_check() -> StreamCheck:
    """The check of the stream being served (for streaming servicers, read at their start)."""
    return current_stream_check.get() or _NOTHING_TO_CHECK


def parse_metadata(method: str, metadata: object) -> Call:
    """A :class:`Call` from the invocation metadata of ``method``.

    Raises:
        UnauthenticatedError: The ``authorization`` metadata is there but is not one
            ``Bearer <token>`` (see :func:`bearer_token`).
    """
    entries = list(metadata or ())  # type: ignore[call-overload]
    pairs = dict(entries)
    authorizations = [value for key, value in entries if key == AUTHORIZATION_KEY]
    return Call(
        method=method,
        project=pairs.get(PROJECT_KEY) or DEFAULT_PROJECT,
        request_id=pairs.get(REQUEST_ID_KEY) or None,
        attempt=_attempt(pairs.get(ATTEMPT_KEY)),
        token=bearer_token(authorizations),
    )


def bearer_token(authorizations: list[object]) -> str | None:
    """The token of a call's ``authorization`` metadata values; ``None`` when there are none.

    Anything else that was sent is refused rather than taken for "no token" (which, with auth
    optional, would be full access): a value without the ``Bearer`` scheme (``tf_...`` alone,
    ``Token tf_...``), an empty one, ``Bearer`` with nothing after it, several values. The
    message never repeats what was sent: it may be a token.

    Raises:
        UnauthenticatedError: Malformed ``authorization`` metadata.
    """
    if not authorizations:
        return None
    if len(authorizations) > 1:
        raise UnauthenticatedError(
            f"the call carries {len(authorizations)} authorization metadata entries; send one, "
            "'Bearer <token>'"
        )
    (value,) = authorizations
    scheme, _, token = value.strip().partition(" ") if isinstance(value, str) else ("", "", "")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UnauthenticatedError(
            "malformed authorization metadata: it must be 'Bearer <token>' with a token from "
            "`tideflow token create` (or none at all, where the server's auth is optional)"
        )
    return token


def project() -> str:
    """The project of the call being served (for servicers)."""
    return current_call.get().project


def _attempt(text: str | None) -> int:
    try:
        return max(1, int(text)) if text else 1
    except ValueError:
        return 1


def check_execution(execution_id: int) -> None:
    """Refuse a job's token reading an execution other than its own.

    Raises:
        PermissionDeniedError: The caller is a job of another execution.
    """
    call = current_call.get(None)
    own = None if call is None else call.execution_id
    if own is not None and execution_id != own:
        raise PermissionDeniedError(
            f"a job's token may read only its own execution ({own}), not {execution_id}"
        )
