"""Workflows: the list with each one's last execution, and one workflow's AI Graph."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.rules import describe_rule
from tideflow.web.auth import Access, current_access
from tideflow.web.deps import WebServices, web_services
from tideflow.web.pages.graph import build_graph, rule_label
from tideflow.web.pages.render import render

router = APIRouter()
Services = Annotated[WebServices, Depends(web_services)]
Allowed = Annotated[Access, Depends(current_access)]
JOB_EVENTS = "JOB_STATUS_CHANGED"


@router.get("/ui/{project}/workflows")
def workflow_list(project: str, request: Request, _: Allowed, services: Services) -> HTMLResponse:
    """Every workflow of the project with the state of its newest execution."""
    after = services.events.latest_offset()
    rows = []
    for workflow in services.workflows.list_workflows(project):
        last = services.scheduler.list_executions(project, workflow=workflow.name, limit=1)
        rows.append({"workflow": workflow, "last": last[0] if last else None})
    return render(
        request,
        "workflows.html",
        "_workflows.html",
        project=project,
        title="Workflows",
        section="workflows",
        live={"types": JOB_EVENTS, "after": after},
        rows=rows,
    )


@router.get("/ui/{project}/workflows/{name}")
def workflow_graph(
    project: str, name: str, request: Request, _: Allowed, services: Services
) -> HTMLResponse:
    """The workflow's graph (its latest snapshot), its rules and its recent executions."""
    after = services.events.latest_offset()
    workflow = services.workflows.get_workflow(project, name)
    plan = None
    if workflow.latest_snapshot_id is not None:
        snapshot = services.workflows.get_snapshot(project, workflow.latest_snapshot_id)
        plan = WorkflowPlan.from_json(snapshot.plan)
    executions = services.scheduler.list_executions(project, workflow=name, limit=20)
    rules = (
        [
            {
                "job": rule.job or "(workflow)",
                "kind": str(rule.kind),
                "label": describe_rule(rule) if rule.upstreams else rule_label(rule),
                "action": str(rule.action),
            }
            for rule in plan.rules
        ]
        if plan is not None
        else []
    )
    return render(
        request,
        "workflow.html",
        "_workflow.html",
        project=project,
        title=f"Workflow {name}",
        section="workflows",
        live={"types": JOB_EVENTS, "key": f"{name}.*", "after": after},
        workflow=workflow,
        plan=plan,
        graph=build_graph(plan) if plan is not None else None,
        rules=rules,
        executions=executions,
        schedule=plan.schedule if plan is not None else None,
        next_run=services.scheduler.get_next_tick(project, name),
        paused=services.scheduler.get_workflow_settings(project, name).paused,
    )
