"""Executions and job attempts: ``/executions``, ``/executions/{id}``, ``/executions/{id}/jobs``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from tideflow.domain.events import Event
from tideflow.domain.limits import check_name
from tideflow.domain.metadata import ExecutionAction
from tideflow.domain.status import ExecutionStatus
from tideflow.store.cursor import decode_cursor, encode_cursor
from tideflow.web.api import encode
from tideflow.web.api.params import (
    Cursor,
    Limit,
    ProjectAccess,
    ProjectName,
    Services,
    errors,
    page,
    paged,
)
from tideflow.web.api.triggers import attempt_triggers

router = APIRouter(tags=["executions"])
ExecutionId = Annotated[int, Path(ge=1, lt=2**31, description="The workflow execution.")]


def _action(a: ExecutionAction | None, events: dict[int, Event]) -> dict[str, Any] | None:
    if a is None:
        return None
    return encode.action(a, None if a.event_offset is None else events.get(a.event_offset))


@router.get(
    "/projects/{project}/executions",
    summary="Workflow executions, newest first",
    responses=paged(),
)
def list_executions(
    project: ProjectName,
    access: ProjectAccess,
    services: Services,
    workflow: Annotated[str | None, Query(description="Only this workflow's.")] = None,
    status: Annotated[ExecutionStatus | None, Query(description="Only in this status.")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The project's executions, newest first, optionally of one workflow and in one status."""
    if workflow is not None:
        check_name(workflow, "workflow")
    before = decode_cursor("execution", cursor)
    found = services.scheduler.executions.list_executions(
        project, workflow=workflow, status=status, limit=limit + 1, before=before
    )
    more = len(found) > limit
    found = found[:limit]
    next_cursor = encode_cursor("execution", found[-1].execution_id) if more else None
    return page((encode.execution(e) for e in found), next_cursor)


@router.get(
    "/projects/{project}/executions/{execution_id}",
    summary="One execution: its jobs' latest attempts and what idle jobs wait on",
    responses=errors(404),
)
def get_execution(
    project: ProjectName, execution_id: ExecutionId, access: ProjectAccess, services: Services
) -> dict[str, Any]:
    """An execution, the latest attempt of each job, and the rules idle jobs wait on."""
    scheduler = services.scheduler
    execution = scheduler.get_execution(project, execution_id)
    latest = scheduler.executions.latest_job_executions(project, execution_id)
    return {
        **encode.execution(execution),
        "jobs": [{**encode.job_execution(a), "attempts": count} for a, count in latest],
        "waiting_on": scheduler.waiting_on(project, execution_id),
    }


@router.get(
    "/projects/{project}/executions/{execution_id}/jobs",
    summary="Every job attempt of an execution, with what started and stopped it",
    responses=paged(404),
)
def list_job_executions(
    project: ProjectName,
    execution_id: ExecutionId,
    access: ProjectAccess,
    services: Services,
    job: Annotated[str | None, Query(description="Only this job's attempts.")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Attempts in creation order, with the actions that started and stopped them.

    ``started_by`` / ``stopped_by`` name the scheduler action,
    its rule and the event that made it fire (``null`` where none was recorded, e.g. for an
    attempt still running, or the event was compacted away).
    """
    if job is not None:
        check_name(job, "job")
    after = decode_cursor("job_execution", cursor) or 0
    executions = services.scheduler.executions
    executions.get_execution(project, execution_id)  # 404 for another project's execution
    chosen = executions.list_job_executions(
        project, execution_id, after=after, limit=limit + 1, job=job
    )
    more = len(chosen) > limit
    chosen = chosen[:limit]
    starts, stops = executions.attempt_actions(project, execution_id, chosen)
    triggers = attempt_triggers(chosen, starts, stops)
    offsets = {
        action.event_offset
        for t in triggers.values()
        for action in (t.started_by, t.stopped_by)
        if action is not None and action.event_offset is not None
    }
    events = services.events.get_many(project, sorted(offsets))
    items = [
        {
            **encode.job_execution(a),
            "started_by": _action(triggers[a.job_execution_id].started_by, events),
            "stopped_by": _action(triggers[a.job_execution_id].stopped_by, events),
        }
        for a in chosen
    ]
    next_cursor = encode_cursor("job_execution", chosen[-1].job_execution_id) if more else None
    return page(items, next_cursor)
