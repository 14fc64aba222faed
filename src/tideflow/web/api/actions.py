"""The write actions of the HTTP API: what an operator does from a browser or a script.

Each route calls the same service the matching RPC calls (the scheduler, the Model Center, the
notification service), with the RPC's role rule (``writer``; see
:func:`~tideflow.web.auth.writer_access`), and answers with the entity as the read API shows
it. Errors are the read API's: 400 for bad input (naming the field), 404, 409 for an illegal
transition (``error.allowed`` lists the statuses allowed from the current one), 412 when there
is nothing to roll back to.

Every action that passed the access check is recorded in the audit list with the caller's
token name and how it ended (``ok`` or the error code), so refused attempts are visible too;
``GET /audit`` reads the list, and the server log says each at INFO. An ``Idempotency-Key``
header makes a retried action answer with its first answer instead of acting twice
(``tideflow.web.api.idempotency``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, cast

from fastapi import APIRouter, Depends, Path, Request

from tideflow.domain.audit import NO_TOKEN_ACTOR, OK
from tideflow.domain.limits import check_name
from tideflow.errors import TideflowError
from tideflow.store.request_log import current_claim
from tideflow.web.api import encode
from tideflow.web.api.idempotency import IdempotencyKey, once
from tideflow.web.api.params import (
    Cursor,
    Limit,
    ProjectAccess,
    ProjectName,
    Services,
    errors,
)
from tideflow.web.api.schemas import (
    AuditPage,
    Event,
    Execution,
    JobExecution,
    ModelVersion,
    SendEventRequest,
    SetModelStatusRequest,
    StartExecutionRequest,
    StopJobResult,
    WorkflowState,
)
from tideflow.web.auth import Access, writer_access
from tideflow.web.errors import http_status

log = logging.getLogger(__name__)
router = APIRouter(tags=["actions"])
T = TypeVar("T")

WriterAccess = Annotated[Access, Depends(writer_access)]
"""The caller may change the route's ``{project}`` (else 401/403 before the route runs)."""
WorkflowName = Annotated[str, Path(description="The workflow.")]
ExecutionId = Annotated[int, Path(ge=1, lt=2**31, description="The workflow execution.")]
JobName = Annotated[str, Path(description="The job of the execution's plan.")]
ModelName = Annotated[str, Path(description="The registered model.")]
Version = Annotated[int, Path(ge=1, lt=2**31, description="The version number.")]

WRITE_ERRORS = {
    **errors(404, 409),
    403: {
        "description": "Another project's token, a role below writer, or a cross-site request "
        "(no CSRF token).",
        "content": errors()[403]["content"],
    },
    409: {
        "description": "An illegal transition; `error.allowed` lists what is allowed.",
        "content": errors()[403]["content"],
    },
}


def _actor(access: Access) -> str:
    """Who acts, for people: the token's name (its id if it has none)."""
    if access.token_id is None:
        return NO_TOKEN_ACTOR
    return access.token_name or f"token {access.token_id}"


def _write(
    request: Request,
    services: Services,
    access: Access,
    project: str,
    idempotency_key: str | None,
    status: int,
    *,
    action: str,
    target: str,
    detail: dict[str, Any],
    do: Callable[[], T],
    answer: Callable[[T], dict[str, Any]] | None = None,
) -> Any:
    """Run ``do`` as an audited write action, once per ``Idempotency-Key``.

    What every POST route does around its one call; the answer is ``answer(result)``, or the
    result itself when it already is the JSON body.
    """

    def work() -> dict[str, Any]:
        done = _audited(services, access, project, action, target, detail, do)
        return answer(done) if answer is not None else cast(dict[str, Any], done)

    return once(request, services, access, project, idempotency_key, status, work)


def _audited(
    services: Services,
    access: Access,
    project: str,
    action: str,
    target: str,
    detail: dict[str, Any],
    work: Callable[[], T],
) -> T:
    """Run ``work`` and record it in the audit list, whether it succeeds or fails."""
    outcome, text = OK, json.dumps(detail, sort_keys=True, default=str)
    try:
        return work()
    except TideflowError as e:
        outcome, text = http_status(e)[1], str(e)
        raise
    finally:
        # The entry is no part of the action: it must not claim the action's Idempotency-Key
        # (a refused action would otherwise look applied to its retry).
        outside = current_claim.set(None)
        try:
            _record(services, access, project, action, target, outcome, text)
        finally:
            current_claim.reset(outside)


def _record(
    services: Services,
    access: Access,
    project: str,
    action: str,
    target: str,
    outcome: str,
    text: str,
) -> None:
    """Append the audit entry and say it in the server log (INFO)."""
    actor = _actor(access)
    services.audit.record(
        project,
        action=action,
        target=target,
        actor=actor,
        token_id=access.token_id,
        outcome=outcome,
        detail=text,
    )
    log.info("web action %s of %s in project %s by %s: %s", action, target, project, actor, outcome)


# -- workflows and executions --------------------------------------------------------------


@router.post(
    "/projects/{project}/workflows/{name}/executions",
    summary="Start an execution of the workflow (with params)",
    status_code=201,
    response_model=Execution,
    responses={**WRITE_ERRORS, 412: {"description": "The workflow is paused or at its limit."}},
)
def start_execution(
    project: ProjectName,
    name: WorkflowName,
    body: StartExecutionRequest,
    access: WriterAccess,
    services: Services,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """A new execution on the workflow's latest snapshot; ``params`` reach ``ctx.params``."""
    check_name(name, "name")
    return _write(
        request,
        services,
        access,
        project,
        idempotency_key,
        201,
        action="start_execution",
        target=f"workflow {name}",
        detail=body.model_dump(exclude_none=True),
        do=lambda: services.scheduler.start_execution(
            project, name, params=body.params, context=body.context
        ),
        answer=encode.execution,
    )


def _settings(services: Services, project: str, name: str, *, paused: bool) -> dict[str, Any]:
    scheduler = services.scheduler
    change = scheduler.pause_workflow if paused else scheduler.resume_workflow
    settings = change(project, name)
    return {
        "workflow": name,
        "paused": settings.paused,
        "max_active_executions": settings.max_active_executions,
    }


@router.post(
    "/projects/{project}/workflows/{name}/pause",
    summary="Pause the workflow: no new executions (running ones go on)",
    response_model=WorkflowState,
    responses=WRITE_ERRORS,
)
def pause_workflow(
    project: ProjectName,
    name: WorkflowName,
    access: WriterAccess,
    services: Services,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Pause the workflow (pausing a paused workflow changes nothing)."""
    check_name(name, "name")
    return _write(
        request,
        services,
        access,
        project,
        idempotency_key,
        200,
        action="pause_workflow",
        target=f"workflow {name}",
        detail={},
        do=lambda: _settings(services, project, name, paused=True),
    )


@router.post(
    "/projects/{project}/workflows/{name}/resume",
    summary="Resume the workflow: it starts executions again",
    response_model=WorkflowState,
    responses=WRITE_ERRORS,
)
def resume_workflow(
    project: ProjectName,
    name: WorkflowName,
    access: WriterAccess,
    services: Services,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Resume the workflow (resuming a running workflow changes nothing)."""
    check_name(name, "name")
    return _write(
        request,
        services,
        access,
        project,
        idempotency_key,
        200,
        action="resume_workflow",
        target=f"workflow {name}",
        detail={},
        do=lambda: _settings(services, project, name, paused=False),
    )


@router.post(
    "/projects/{project}/executions/{execution_id}/stop",
    summary="Stop the execution: every live job attempt, then the execution as STOPPED",
    response_model=Execution,
    responses=WRITE_ERRORS,
)
def stop_execution(
    project: ProjectName,
    execution_id: ExecutionId,
    access: WriterAccess,
    services: Services,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Stop a running execution; one that has ended is a 409."""
    return _write(
        request,
        services,
        access,
        project,
        idempotency_key,
        200,
        action="stop_execution",
        target=f"execution {execution_id}",
        detail={},
        do=lambda: services.scheduler.stop_execution(project, execution_id),
        answer=encode.execution,
    )


@router.post(
    "/projects/{project}/executions/{execution_id}/jobs/{job}/stop",
    summary="Stop the job's live attempts",
    response_model=StopJobResult,
    responses=WRITE_ERRORS,
)
def stop_job(
    project: ProjectName,
    execution_id: ExecutionId,
    job: JobName,
    access: WriterAccess,
    services: Services,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Stop the job; ``attempt`` is its latest attempt (``null`` if it never ran)."""
    check_name(job, "job")
    return _write(
        request,
        services,
        access,
        project,
        idempotency_key,
        200,
        action="stop_job",
        target=f"execution {execution_id} job {job}",
        detail={},
        do=lambda: services.scheduler.stop_job(project, execution_id, job),
        answer=lambda attempt: {
            "job": job,
            "attempt": None if attempt is None else encode.job_execution(attempt),
        },
    )


@router.post(
    "/projects/{project}/executions/{execution_id}/jobs/{job}/restart",
    summary="Restart the job: stop its live attempts and start the next one",
    response_model=JobExecution,
    responses=WRITE_ERRORS,
)
def restart_job(
    project: ProjectName,
    execution_id: ExecutionId,
    job: JobName,
    access: WriterAccess,
    services: Services,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """The new attempt (it starts once the stopped ones have ended)."""
    check_name(job, "job")
    return _write(
        request,
        services,
        access,
        project,
        idempotency_key,
        200,
        action="restart_job",
        target=f"execution {execution_id} job {job}",
        detail={},
        do=lambda: services.scheduler.restart_job(project, execution_id, job),
        answer=encode.job_execution,
    )


# -- models --------------------------------------------------------------------------------


def _version_json(services: Services, project: str, model: str, version: Any) -> dict[str, Any]:
    return encode.model_version(version, services.models.list_aliases(project, model))


@router.post(
    "/projects/{project}/models/{name}/versions/{version}/status",
    summary="Move a model version: VALIDATED, REJECTED, DEPLOYED (deprecates the deployed one) "
    "or DEPRECATED",
    response_model=ModelVersion,
    responses=WRITE_ERRORS,
)
def set_model_status(
    project: ProjectName,
    name: ModelName,
    version: Version,
    body: SetModelStatusRequest,
    access: WriterAccess,
    services: Services,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """The version after the move; a move the lifecycle forbids is a 409 listing the allowed."""
    check_name(name, "name")
    return _write(
        request,
        services,
        access,
        project,
        idempotency_key,
        200,
        action="set_model_status",
        target=f"model {name} version {version}",
        detail={"status": body.status.value},
        do=lambda: services.models.set_status(project, name, version, body.status.value),
        answer=lambda moved: _version_json(services, project, name, moved),
    )


@router.post(
    "/projects/{project}/models/{name}/rollback",
    summary="Roll back: redeploy the most recently deprecated version",
    response_model=ModelVersion,
    responses={**WRITE_ERRORS, 412: {"description": "No version is DEPRECATED."}},
)
def rollback_model(
    project: ProjectName,
    name: ModelName,
    access: WriterAccess,
    services: Services,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """The redeployed version (the deployed one becomes DEPRECATED in the same step)."""
    check_name(name, "name")
    return _write(
        request,
        services,
        access,
        project,
        idempotency_key,
        200,
        action="rollback_model",
        target=f"model {name}",
        detail={},
        do=lambda: services.models.rollback(project, name),
        answer=lambda moved: _version_json(services, project, name, moved),
    )


# -- events and the audit list -------------------------------------------------------------


@router.post(
    "/projects/{project}/events",
    summary="Send an event to the project's log",
    status_code=201,
    response_model=Event,
    responses=WRITE_ERRORS,
)
def send_event(
    project: ProjectName,
    body: SendEventRequest,
    access: WriterAccess,
    services: Services,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """The stored event with its offset (a repeated ``idempotency_key`` returns the first)."""
    return _write(
        request,
        services,
        access,
        project,
        idempotency_key,
        201,
        action="send_event",
        target=f"event {body.event_type} key {body.key}",
        detail=body.model_dump(exclude_none=True),
        do=lambda: services.events.send(
            project,
            body.key,
            body.value,
            event_type=body.event_type,
            sender=body.sender,
            context=body.context,
            idempotency_key=body.idempotency_key,
        ),
        answer=encode.event_json,
    )


@router.get(
    "/projects/{project}/audit",
    summary="The audit list: write actions, who did them and how they ended, newest first",
    response_model=AuditPage,
    responses=errors(),
)
def list_audit(
    project: ProjectName,
    access: ProjectAccess,
    services: Services,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """A page of the project's audit list (every reader may read it)."""
    found, next_cursor = services.audit.list_entries(project, limit=limit, cursor=cursor)
    items = [
        {
            "audit_id": a.audit_id,
            "action": a.action,
            "target": a.target,
            "actor": a.actor,
            "token_id": a.token_id,
            "outcome": a.outcome,
            "detail": a.detail,
            "create_time": encode.time(a.create_time),
        }
        for a in found
    ]
    return {"items": items, "next_cursor": next_cursor}
