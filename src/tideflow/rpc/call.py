"""What travels beside every call: project, credentials and the request id (gRPC metadata).

Kept out of the messages so every RPC shares one mechanism: the client sets them on each call;
the server's interceptor reads, checks and exposes them to servicers as a :class:`Call`.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from tideflow.errors import PermissionDeniedError

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
        role: The caller's role once authenticated (``admin`` when auth is off).
        execution_id: For a job's token, the one execution it may read; else ``None``.
    """

    method: str
    project: str
    request_id: str | None = None
    attempt: int = 1
    token: str | None = None
    role: str = "admin"
    execution_id: int | None = None


current_call: ContextVar[Call] = ContextVar("tideflow_current_call")


def parse_metadata(method: str, metadata: object) -> Call:
    """A :class:`Call` from the invocation metadata of ``method``."""
    pairs = dict(metadata or ())  # type: ignore[call-overload]
    authorization = pairs.get(AUTHORIZATION_KEY, "")
    token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else None
    return Call(
        method=method,
        project=pairs.get(PROJECT_KEY) or DEFAULT_PROJECT,
        request_id=pairs.get(REQUEST_ID_KEY) or None,
        attempt=_attempt(pairs.get(ATTEMPT_KEY)),
        token=token or None,
    )


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
