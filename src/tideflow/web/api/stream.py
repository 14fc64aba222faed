"""Server-Sent Events: turn a blocking "wait for the next items" into a live HTTP stream.

The waiting happens in a worker thread (the notification service's listeners block on its
commit signal, so an event is sent the moment it commits); the event loop only writes. The
thread waits at most :data:`POLL_SECONDS` at a time, so the stream notices within that time
that the client went away or the server is stopping (its listeners are closed first), and ends:
``tideflow server stop`` never waits on an open browser tab. After :data:`HEARTBEAT_SECONDS`
without data a comment line is sent, which keeps proxies from closing an idle stream.

Stream threads have their own limiter, so open streams never take the threads that the
ordinary (synchronous) routes run on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio
import anyio.to_thread
from fastapi import Request
from fastapi.responses import StreamingResponse

POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
MAX_STREAMS = 256
"""Threads for waiting streams; more open streams wait their turn (slower, never refused)."""
RETRY_MS = 2000
"""How soon a browser's EventSource reconnects (with ``Last-Event-ID``) after a drop."""

Wait = Callable[[float], Sequence[str] | None]
"""``wait(timeout)``: the next messages (maybe none) within ``timeout`` s; ``None`` at the end."""

_limiter: anyio.CapacityLimiter | None = None


def _stream_limiter() -> anyio.CapacityLimiter:
    global _limiter
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(MAX_STREAMS)
    return _limiter


def message(data: Any, *, event_id: int | str | None = None, event: str | None = None) -> str:
    """One SSE message: ``data`` as JSON (a ``str`` as it is), with optional id and type."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    lines = [] if event_id is None else [f"id: {event_id}"]
    if event is not None:
        lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in text.split("\n"))
    return "\n".join(lines) + "\n\n"


async def _follow(
    request: Request, wait: Wait, close: Callable[[], None], heartbeat: float
) -> AsyncIterator[str]:
    quiet = 0.0
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            messages = await anyio.to_thread.run_sync(
                wait, POLL_SECONDS, abandon_on_cancel=True, limiter=_stream_limiter()
            )
            if messages is None:
                return
            if messages:
                quiet = 0.0
                yield "".join(messages)
            else:
                quiet += POLL_SECONDS
                if quiet >= heartbeat:
                    quiet = 0.0
                    yield ": keepalive\n\n"
            if await request.is_disconnected():
                return
    finally:
        close()


def sse_response(
    request: Request,
    wait: Wait,
    *,
    close: Callable[[], None],
    heartbeat: float = HEARTBEAT_SECONDS,
) -> StreamingResponse:
    """A ``text/event-stream`` response fed by ``wait``; ``close`` runs when it ends."""
    return StreamingResponse(
        _follow(request, wait, close, heartbeat),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def last_event_id(request: Request) -> int | None:
    """The ``Last-Event-ID`` a reconnecting EventSource sends, as a whole number >= 0.

    Raises:
        InvalidArgumentError: It is not one.
    """
    from tideflow.errors import InvalidArgumentError

    raw = request.headers.get("last-event-id")
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        value = -1
    if value < 0:
        raise InvalidArgumentError(
            f"Last-Event-ID must be a whole number >= 0 (an event offset), got {raw!r}",
            field="Last-Event-ID",
        )
    return value
