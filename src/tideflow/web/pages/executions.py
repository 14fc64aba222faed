"""Executions: the list, one execution's timeline, and one attempt's log (followed live)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.events import Event
from tideflow.domain.status import ExecutionStatus
from tideflow.errors import FailedPreconditionError, NotFoundError
from tideflow.web.api.triggers import attempt_triggers
from tideflow.web.auth import Access, current_access
from tideflow.web.deps import WebServices, web_services
from tideflow.web.pages.render import render
from tideflow.web.pages.timeline import build_timeline

router = APIRouter()
Services = Annotated[WebServices, Depends(web_services)]
Allowed = Annotated[Access, Depends(current_access)]
JOB_EVENTS = "JOB_STATUS_CHANGED"
LOG_TAIL = 500
SHOWN = 200
"""Attempts and actions a timeline draws (the newest); the JSON API pages through all."""
EVENT_PAGE = 1000
EVENT_PAGES = 5


@router.get("/ui/{project}/executions")
def execution_list(
    project: str,
    request: Request,
    _: Allowed,
    services: Services,
    workflow: Annotated[str | None, Query(max_length=256)] = None,
    status: ExecutionStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> HTMLResponse:
    """The newest executions, optionally of one workflow and in one status."""
    after = services.events.latest_offset()
    executions = services.scheduler.list_executions(
        project, workflow=workflow or None, status=status, limit=limit
    )
    return render(
        request,
        "executions.html",
        "_executions.html",
        project=project,
        title="Executions",
        section="executions",
        live={"types": JOB_EVENTS, "after": after},
        executions=executions,
        workflow=workflow or "",
        status=str(status or ""),
        statuses=[str(s) for s in ExecutionStatus],
    )


def events_at(services: WebServices, project: str, offsets: Iterable[int]) -> dict[int, Event]:
    """The (still stored) events of ``project`` at ``offsets``, a page at a time from the lowest."""
    wanted = sorted(set(offsets))
    found: dict[int, Event] = {}
    if not wanted:
        return found
    after = wanted[0] - 1
    for _ in range(EVENT_PAGES):
        page = services.events.list(project, after_offset=after, limit=EVENT_PAGE)
        found.update((e.offset, e) for e in page if e.offset in wanted)
        if not page.items or page.items[-1].offset >= wanted[-1]:
            return found
        after = page.items[-1].offset
    # Far apart (a long-running execution): the rest one by one.
    for offset in wanted:
        if offset not in found:
            one = services.events.list(project, after_offset=offset - 1, limit=1)
            if one.items and one.items[0].offset == offset:
                found[offset] = one.items[0]
    return found


@router.get("/ui/{project}/executions/{execution_id}")
def execution_timeline(
    project: str, execution_id: int, request: Request, _: Allowed, services: Services
) -> HTMLResponse:
    """The execution's attempts and actions on a time axis, and the events behind them."""
    after = services.events.latest_offset()
    execution = services.scheduler.get_execution(project, execution_id)
    attempts = services.scheduler.list_job_executions(project, execution_id)
    actions = services.scheduler.list_actions(project, execution_id)
    shown = actions[-SHOWN:]
    events = events_at(
        services,
        project,
        [a.event_offset for a in shown if a.event_offset is not None]
        + [
            a.event_offset
            for t in attempt_triggers(attempts, actions).values()
            for a in (t.started_by, t.stopped_by)
            if a is not None and a.event_offset is not None
        ][-2 * SHOWN :],
    )
    snapshot = services.workflows.get_snapshot(project, execution.snapshot_id)
    plan = WorkflowPlan.from_json(snapshot.plan)
    waiting = (
        services.scheduler.waiting_on(project, execution_id)
        if execution.status == ExecutionStatus.RUNNING
        else {}
    )
    timeline = build_timeline(
        execution, attempts, actions, events, jobs=[job.name for job in plan.jobs], limit=SHOWN
    )
    return render(
        request,
        "execution.html",
        "_execution.html",
        project=project,
        title=f"Execution {execution_id}",
        section="executions",
        live={"types": JOB_EVENTS, "execution": execution_id, "after": after},
        execution=execution,
        timeline=timeline,
        streaming={job.name for job in plan.jobs if job.streaming},
        waiting=waiting,
    )


@router.get("/ui/{project}/job-executions/{job_execution_id}/log")
def job_log(
    project: str, job_execution_id: int, request: Request, _: Allowed, services: Services
) -> HTMLResponse:
    """The last lines of an attempt's log; the page then follows it live."""
    after = services.events.latest_offset()
    attempt = services.scheduler.executions.get_job_execution(project, job_execution_id)
    text, offset, complete, note = "", 0, False, ""
    try:
        log = services.scheduler.read_job_log(
            project, attempt.execution_id, attempt.job, attempt=attempt.attempt, tail=LOG_TAIL
        )
        text, offset, complete = log.text, log.after, log.complete
    except NotFoundError:
        note = "no log yet: the attempt has not started"
    except FailedPreconditionError as e:
        note = str(e)
    return render(
        request,
        "log.html",
        "_log_head.html",
        project=project,
        title=f"Log of {attempt.job} #{attempt.attempt}",
        section="executions",
        live={
            "types": JOB_EVENTS,
            "key": f"{attempt.workflow}.{attempt.job}",
            "execution": attempt.execution_id,
            "after": after,
        },
        attempt=attempt,
        tail=LOG_TAIL,
        text=text,
        offset=offset,
        complete=complete,
        note=note,
    )
