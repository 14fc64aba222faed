"""Events of the notification log and the built-in event types.

An event is a fact that already happened (a job changed status, a model version was validated);
rules react to events, never to wall-clock polling. Offsets are assigned by the server in
commit order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JOB_STATUS_CHANGED = "JOB_STATUS_CHANGED"
EXECUTION_STATUS_CHANGED = "EXECUTION_STATUS_CHANGED"
"""A workflow execution ended: key the workflow, value the new ``ExecutionStatus``."""
DATASET_UPDATED = "DATASET_UPDATED"
PERIODIC = "PERIODIC"
DRIFT_DETECTED = "DRIFT_DETECTED"
MODEL_DEGRADED = "MODEL_DEGRADED"

WILDCARD = "*"


def job_event_key(workflow: str, job: str) -> str:
    """The key of a job's ``JOB_STATUS_CHANGED`` events: ``<workflow>.<job>``."""
    return f"{workflow}.{job}"


def model_version_of(event: Event | None, model: str) -> int | None:
    """The version of ``model`` that a model-version event names, else ``None``.

    A model-version event (``MODEL_GENERATED`` ...) has the model as its key and JSON
    ``{model, version, status, previous}`` as its value; a validator reads the version it was
    started for from ``ctx.trigger`` with this. ``None`` for no event or any other event.
    """
    if event is None or event.key != model:
        return None
    try:
        value = json.loads(event.value)
        return int(value["version"]) if value.get("model") == model else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass(frozen=True)
class Event:
    """One entry of the event log.

    Attributes:
        key: What the event is about (a model name, ``<workflow>.<job>``, ...).
        value: The payload, a string (JSON for built-in events that carry structure).
        event_type: The kind of event (``MODEL_DEPLOYED``, ``JOB_STATUS_CHANGED``, user types).
        sender: Who sent it.
        namespace: The project; no rule or listener sees another project's events.
        context: JSON-serialisable extras; ``execution_id`` routes it to one execution.
        offset: Server-assigned, strictly increasing in commit order (0 before storing).
        create_time: When it was stored (timezone-aware UTC), ``None`` before storing.
        idempotency_key: A sender-chosen key; the same key stores one event.
    """

    key: str
    value: str
    event_type: str = "UNDEFINED"
    sender: str = ""
    namespace: str = "default"
    context: Mapping[str, Any] = field(default_factory=dict)
    offset: int = 0
    create_time: datetime | None = None
    idempotency_key: str | None = None

    @property
    def execution_id(self) -> str | None:
        """The execution this event belongs to, if its context names one."""
        value = self.context.get("execution_id")
        return None if value is None else str(value)
