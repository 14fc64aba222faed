"""Projects and workflows: ``/projects``, ``/workflows``, ``/workflows/{name}`` and its plan."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.limits import check_name
from tideflow.errors import NotFoundError
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
from tideflow.web.auth import Access, current_principal

router = APIRouter(tags=["workflows"])


def _slice(count: int, limit: int, cursor: str | None, listing: str) -> tuple[int, int, str | None]:
    """``(start, end, next_cursor)`` of one page of an in-memory listing."""
    start = decode_cursor(listing, cursor) or 0
    end = min(start + limit, count)
    return start, end, encode_cursor(listing, end) if end < count else None


@router.get(
    "/projects",
    summary="Projects the caller may read",
    responses=paged(),
)
def list_projects(
    access: Annotated[Access, Depends(current_principal)],
    services: Services,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Every project (a token sees its own project only), by name."""
    projects = sorted(
        (p for p in services.projects.list_projects() if access.sees(p.name)),
        key=lambda p: p.name,
    )
    start, end, next_cursor = _slice(len(projects), limit, cursor, "project")
    return page((encode.project(p) for p in projects[start:end]), next_cursor)


@router.get(
    "/projects/{project}/workflows",
    summary="Workflows, each with its last execution",
    responses=paged(),
)
def list_workflows(
    project: ProjectName,
    access: ProjectAccess,
    services: Services,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The project's workflows by name, with the id and status of each one's newest execution."""
    workflows = sorted(services.workflows.list_workflows(project), key=lambda w: w.name)
    start, end, next_cursor = _slice(len(workflows), limit, cursor, "workflow")
    executions = services.scheduler.executions
    items = []
    for w in workflows[start:end]:
        last = executions.list_executions(project, workflow=w.name, limit=1)
        items.append(encode.workflow(w, last[0] if last else None))
    return page(items, next_cursor)


@router.get(
    "/projects/{project}/workflows/{name}",
    summary="One workflow: its snapshots and scheduling settings",
    responses=errors(404),
)
def get_workflow(
    project: ProjectName, name: str, access: ProjectAccess, services: Services
) -> dict[str, Any]:
    """A workflow with its snapshots (newest first), whether it is paused, its execution cap."""
    check_name(name, "name")
    w = services.workflows.get_workflow(project, name)
    last = services.scheduler.executions.list_executions(project, workflow=name, limit=1)
    settings = services.scheduler.get_workflow_settings(project, name)
    snapshots = sorted(
        services.workflows.list_snapshots(project, name),
        key=lambda s: s.snapshot_id,
        reverse=True,
    )
    return {
        **encode.workflow(w, last[0] if last else None),
        "paused": settings.paused,
        "max_active_executions": settings.max_active_executions,
        "next_run_time": encode.time(services.scheduler.get_next_tick(project, name)),
        "snapshots": [
            {
                "snapshot_id": s.snapshot_id,
                "code_sha256": s.code_sha256,
                "create_time": encode.time(s.create_time),
            }
            for s in snapshots
        ],
    }


@router.get(
    "/projects/{project}/workflows/{name}/plan",
    summary="A workflow's compiled plan: jobs, nodes, data and control edges",
    responses=errors(404),
)
def get_plan(
    project: ProjectName,
    name: str,
    access: ProjectAccess,
    services: Services,
    snapshot_id: Annotated[
        int | None,
        Query(ge=1, lt=2**31, description="A snapshot of the workflow; its latest by default."),
    ] = None,
) -> dict[str, Any]:
    """The plan of the workflow's latest snapshot (or of ``snapshot_id``).

    ``jobs[].nodes[].inputs`` are the data edges (node outputs a node consumes); ``rules`` are
    the control edges, each with a ``label`` in words (``after a, b``, ``on model ctr
    MODEL_VALIDATED`` ...).
    """
    check_name(name, "name")
    w = services.workflows.get_workflow(project, name)
    wanted = snapshot_id if snapshot_id is not None else w.latest_snapshot_id
    if wanted is None:
        raise NotFoundError("snapshot", name, message=f"workflow {name!r} has no snapshot")
    snapshot = services.workflows.get_snapshot(project, wanted)
    if snapshot.workflow != name:
        raise NotFoundError(
            "snapshot", wanted, message=f"snapshot {wanted} is not of workflow {name!r}"
        )
    return encode.plan(WorkflowPlan.from_json(snapshot.plan), snapshot.snapshot_id)
