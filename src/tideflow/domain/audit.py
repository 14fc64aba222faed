"""The audit list: who changed what through the HTTP API, and how it ended.

Every write action of the web API (start or stop an execution, pause a workflow, stop or
restart a job, move a model version, send an event) is kept as one :class:`AuditEntry`, so an
operator can answer "who stopped this run?" after the fact. The actor is the token's *name*
(what people recognise), with its id for certainty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

NO_TOKEN_ACTOR = "(no token)"
"""The actor of a request without a token (admitted because the server requires none)."""

OK = "ok"
"""The outcome of an action that succeeded (otherwise the error code, e.g. ``not_found``)."""


@dataclass(frozen=True)
class AuditEntry:
    """One write action, as recorded.

    Attributes:
        audit_id: Server-assigned, increasing in recording order.
        project: The project acted on.
        action: What was asked (``start_execution``, ``stop_job``, ``set_model_status`` ...).
        target: What it was asked of (``workflow ctr_online``, ``execution 3 job train``).
        actor: The token's name, or :data:`NO_TOKEN_ACTOR`.
        token_id: The token's id (``None`` without one).
        outcome: :data:`OK`, or the error code the request was answered with.
        detail: The request's arguments or the error message, for people.
        create_time: When it was recorded (UTC).
    """

    audit_id: int
    project: str
    action: str
    target: str
    actor: str
    token_id: int | None
    outcome: str
    detail: str
    create_time: datetime
