"""Job attempt logs: ``/job-executions/{id}/logs`` (text) and ``.../logs/stream`` (follow).

A log is a file the executor appends to; no event marks each new line, so the follower reads
the file again whenever it wakes. It wakes at once when the attempt's status changes (its
``JOB_STATUS_CHANGED`` events are pushed by the notification service), else every
:data:`~tideflow.web.api.stream.POLL_SECONDS`, as ``tail -f`` does. The stream ends, after
the last bytes, with an ``end`` message once the attempt has ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

from tideflow.domain.events import JOB_STATUS_CHANGED, job_event_key
from tideflow.domain.joblog import JobLog
from tideflow.notification.filters import make_filter
from tideflow.scheduler.joblog import MAX_TAIL_LINES
from tideflow.web.api.params import ProjectAccess, ProjectName, Services, errors
from tideflow.web.api.stream import last_event_id, message, sse_response
from tideflow.web.deps import WebServices

router = APIRouter(tags=["logs"])
JobExecutionId = Annotated[int, Path(ge=1, lt=2**31, description="The job attempt.")]


@dataclass
class _Position:
    """Where a follower is in the log."""

    after: int
    tail: int | None
    done: bool = False


def _read(
    services: WebServices,
    project: str,
    job_execution_id: int,
    *,
    after: int = 0,
    tail: int | None = None,
) -> JobLog:
    attempt = services.scheduler.executions.get_job_execution(project, job_execution_id)
    return services.scheduler.read_job_log(
        project, attempt.execution_id, attempt.job, attempt=attempt.attempt, after=after, tail=tail
    )


@router.get(
    "/projects/{project}/job-executions/{job_execution_id}/logs",
    summary="The log of one job attempt (text)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **errors(404)},
)
def get_log(
    project: ProjectName,
    job_execution_id: JobExecutionId,
    access: ProjectAccess,
    services: Services,
    tail: Annotated[
        int | None, Query(ge=1, le=MAX_TAIL_LINES, description="Only the last N lines.")
    ] = None,
    after: Annotated[int, Query(ge=0, lt=2**63, description="Start at this byte offset.")] = 0,
) -> PlainTextResponse:
    """Up to 1 MiB of the log; the headers say where it ended and whether that is all.

    ``X-Tideflow-Log-After`` is the byte offset to pass as ``after`` for what follows;
    ``X-Tideflow-Log-Complete`` is ``true`` once the attempt has ended and all was read.
    """
    log = _read(services, project, job_execution_id, after=after, tail=tail)
    return PlainTextResponse(
        log.text,
        headers={
            "X-Tideflow-Log-After": str(log.after),
            "X-Tideflow-Log-Complete": "true" if log.complete else "false",
            "X-Tideflow-Job-Status": log.status.value,
        },
    )


@router.get(
    "/projects/{project}/job-executions/{job_execution_id}/logs/stream",
    summary="Follow the log of one job attempt (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        **errors(404),
    },
)
def stream_log(
    request: Request,
    project: ProjectName,
    job_execution_id: JobExecutionId,
    access: ProjectAccess,
    services: Services,
    tail: Annotated[
        int | None, Query(ge=1, le=MAX_TAIL_LINES, description="Start with the last N lines.")
    ] = None,
) -> StreamingResponse:
    """The log as it grows, until the attempt ends.

    Messages ``{"text", "after", "status"}`` as the log grows (``id`` = byte offset), then
    one ``end`` message once the attempt has ended; resumes from ``Last-Event-ID``.
    """
    attempt = services.scheduler.executions.get_job_execution(project, job_execution_id)
    resume = last_event_id(request)
    listener = services.events.listen(
        project,
        make_filter(
            key=job_event_key(attempt.workflow, attempt.job), event_type=JOB_STATUS_CHANGED
        ),
        after_offset=services.events.latest_offset(),
    )
    position = _Position(after=resume or 0, tail=None if resume is not None else tail)

    def wait(timeout: float) -> list[str] | None:
        if position.done or listener.closed:
            return None
        out: list[str] = []
        while True:  # everything there is now (1 MiB a read)
            log = _read(
                services,
                project,
                job_execution_id,
                after=position.after,
                tail=position.tail,
            )
            position.tail = None
            if log.text:
                out.append(
                    message(
                        {"text": log.text, "after": log.after, "status": log.status.value},
                        event_id=log.after,
                    )
                )
            moved = log.after != position.after
            position.after = log.after
            if log.complete:
                position.done = True
                out.append(message({"status": log.status.value, "after": log.after}, event="end"))
                return out
            if not moved or log.after >= log.size:
                break
        if not out:
            listener.poll(timeout)  # wakes at once when the attempt's status changes
        return out

    return sse_response(request, wait, close=listener.close)
