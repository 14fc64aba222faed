"""Executions: the list, one execution's timeline, and one attempt's log (followed live)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.events import Event
from tideflow.domain.metadata import JobExecution
from tideflow.domain.status import ExecutionStatus
from tideflow.errors import FailedPreconditionError, NotFoundError
from tideflow.web.api.triggers import attempt_triggers
from tideflow.web.auth import Access, current_access
from tideflow.web.deps import WebServices, web_services
from tideflow.web.pages.graph import build_graph
from tideflow.web.pages.render import render
from tideflow.web.pages.timeline import build_timeline

router = APIRouter()
Services = Annotated[WebServices, Depends(web_services)]
Allowed = Annotated[Access, Depends(current_access)]
JOB_EVENTS = "JOB_STATUS_CHANGED"
LOG_TAIL = 500
SHOWN = 200
"""Attempts and actions a timeline draws (the newest); the JSON API pages through all."""
EVENT_BATCH = 1000


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
    """The (still stored) events of ``project`` at ``offsets``, one read per 1,000."""
    wanted = sorted(set(offsets))
    found: dict[int, Event] = {}
    for i in range(0, len(wanted), EVENT_BATCH):
        found.update(services.events.get_many(project, wanted[i : i + EVENT_BATCH]))
    return found


def newest_attempts(
    services: WebServices, project: str, execution_id: int, count: int
) -> tuple[list[JobExecution], int]:
    """The newest ``count`` attempts of an execution (creation order) and how many it has.

    Job execution ids grow with creation, but other executions' attempts interleave, so the
    newest are read forward from a window below the newest id, widened until it holds enough.
    """
    executions = services.scheduler.executions
    latest = executions.latest_job_executions(project, execution_id)
    total = sum(n for _, n in latest)
    if total <= count:
        return executions.list_job_executions(project, execution_id), total
    newest = max(a.job_execution_id for a, _ in latest)
    window = count
    while True:
        after = max(newest - window, 0)
        found = executions.list_job_executions(project, execution_id, after=after)
        if len(found) >= count or after == 0:
            return found[-count:], total
        window *= 4


@router.get("/ui/{project}/executions/{execution_id}")
def execution_timeline(
    project: str, execution_id: int, request: Request, _: Allowed, services: Services
) -> HTMLResponse:
    """The execution's newest attempts and actions on a time axis, and the events behind them.

    Which action started or ended each attempt is the API's answer (``attempt_actions`` +
    ``attempt_triggers``). A short execution lists every action; a long one (more attempts
    than it shows) lists the actions behind the attempts shown, which is what the drawing
    explains, without reading its whole history.
    """
    after = services.events.latest_offset()
    execution = services.scheduler.get_execution(project, execution_id)
    executions = services.scheduler.executions
    attempts, total = newest_attempts(services, project, execution_id, SHOWN)
    starts, stops = executions.attempt_actions(project, execution_id, attempts)
    triggers = attempt_triggers(attempts, starts, stops)
    if total <= SHOWN:
        actions = executions.list_actions(project, execution_id)
    else:
        behind = {
            a.action_id: a
            for t in triggers.values()
            for a in (t.started_by, t.stopped_by)
            if a is not None
        }
        actions = [behind[i] for i in sorted(behind)]
    events = events_at(
        services, project, [a.event_offset for a in actions if a.event_offset is not None]
    )
    snapshot = services.workflows.get_snapshot(project, execution.snapshot_id)
    plan = WorkflowPlan.from_json(snapshot.plan)
    waiting = (
        services.scheduler.waiting_on(project, execution_id)
        if execution.status == ExecutionStatus.RUNNING
        else {}
    )
    timeline = build_timeline(
        execution,
        attempts,
        actions,
        events,
        triggers,
        jobs=[job.name for job in plan.jobs],
        limit=SHOWN,
        total_attempts=total,
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
        latest={a.job: a for a, _ in executions.latest_job_executions(project, execution_id)},
        graph=build_graph(plan),
        states=True,
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
        execution_running=(
            services.scheduler.get_execution(project, attempt.execution_id).status
            is ExecutionStatus.RUNNING
        ),
        tail=LOG_TAIL,
        text=text,
        offset=offset,
        complete=complete,
        note=note,
    )
