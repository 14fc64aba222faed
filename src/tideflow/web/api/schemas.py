"""Typed request and response bodies of the write actions, for validation and the OpenAPI document.

The read API's bodies are built by ``encode`` as dicts; the models below describe the same
shapes (the field names are ``encode``'s), so a write answers with exactly what the matching
read returns, and the OpenAPI document types it. Request models forbid unknown fields: a
misspelt ``parms`` is a 400 naming it, never silently ignored.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tideflow.domain.limits import MAX_KEY_LENGTH

MAX_EVENT_FIELD = 1024
"""A cheap bound on an event's key, type and sender here; the service checks the real limits."""


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartExecutionRequest(_Request):
    """Start an execution of the workflow on its latest snapshot."""

    params: dict[str, Any] = Field(
        default_factory=dict, description="Reach the jobs as `ctx.params`."
    )
    context: str | None = Field(
        default=None,
        max_length=MAX_KEY_LENGTH,
        description="The execution's context (per-context workflows).",
    )


class SettableStatus(StrEnum):
    """The statuses a person may move a model version to over HTTP."""

    VALIDATED = "VALIDATED"
    REJECTED = "REJECTED"
    DEPLOYED = "DEPLOYED"
    DEPRECATED = "DEPRECATED"


class SetModelStatusRequest(_Request):
    """Move a model version; DEPLOYED deprecates the deployed version in the same step."""

    status: SettableStatus


class SendEventRequest(_Request):
    """An event for the project's log (as `tideflow event send`)."""

    key: str = Field(min_length=1, max_length=MAX_EVENT_FIELD)
    value: str = Field(default="", description="The event's value.")
    event_type: str = Field(default="UNDEFINED", min_length=1, max_length=MAX_EVENT_FIELD)
    sender: str = Field(default="", max_length=MAX_EVENT_FIELD)
    context: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_EVENT_FIELD,
        description="The same key stores one event: a retried send gets the first.",
    )


class Execution(BaseModel):
    """A workflow execution."""

    execution_id: int
    workflow: str
    snapshot_id: int
    status: str
    params: dict[str, Any]
    context: str | None
    start_time: str | None
    end_time: str | None
    duration: float | None


class JobExecution(BaseModel):
    """A job attempt."""

    job_execution_id: int
    execution_id: int
    workflow: str
    job: str
    attempt: int
    status: str
    create_time: str | None
    start_time: str | None
    end_time: str | None
    duration: float | None
    exit_code: int | None
    error: str | None
    host: str | None
    pid: int | None
    external_id: str | None


class StopJobResult(BaseModel):
    """What stopping a job did: its latest attempt (``null`` if it never ran)."""

    job: str
    attempt: JobExecution | None


class WorkflowState(BaseModel):
    """A workflow's scheduling settings after a pause or resume."""

    workflow: str
    paused: bool
    max_active_executions: int | None


class ModelVersion(BaseModel):
    """A model version."""

    model: str
    version: int
    status: str
    uri: str
    flavour: str | None
    metrics: dict[str, Any]
    params: dict[str, Any]
    tags: dict[str, Any]
    description: str | None
    job_execution_id: int | None
    aliases: list[str]
    create_time: str | None
    update_time: str | None


class Event(BaseModel):
    """An event of the log, with its offset."""

    offset: int | None
    key: str
    value: str
    event_type: str
    sender: str
    namespace: str
    context: dict[str, Any]
    create_time: str | None


class AuditEntry(BaseModel):
    """One write action: who (the token's name), what, of what, and how it ended."""

    audit_id: int
    action: str
    target: str
    actor: str
    token_id: int | None
    outcome: str = Field(description="`ok`, or the error code the request was answered with.")
    detail: str
    create_time: str | None


class AuditPage(BaseModel):
    """A page of the audit list, newest first."""

    items: list[AuditEntry]
    next_cursor: str | None
