"""The rules of a model version's life, applied inside one transaction of the caller.

Each function takes a :class:`ModelRepository` on the caller's connection, locks the model's
row first, applies the state machine and appends the events last (see the service module).
"""

from __future__ import annotations

import json

from tideflow.domain.events import Event
from tideflow.domain.model import ModelVersion
from tideflow.domain.status import MODEL_TRANSITIONS, ModelStatus, ModelVersionEvent
from tideflow.errors import (
    FailedPreconditionError,
    IllegalTransitionError,
    InvalidArgumentError,
    NotFoundError,
)
from tideflow.store import append_events
from tideflow.store.repositories.model import ModelRepository, version_not_found
from tideflow.store.rows.model import ModelVersionRow
from tideflow.store.types import utcnow

SENDER = "model_center"
"""The ``sender`` of every event the Model Center appends."""


def parse_status(status: ModelStatus | str) -> ModelStatus:
    """``status`` as a :class:`ModelStatus`, accepting its string value in any case.

    Raises:
        InvalidArgumentError: Not a model status.
    """
    try:
        return ModelStatus(status.upper() if isinstance(status, str) else status)
    except ValueError:
        allowed = ", ".join(s.value for s in ModelStatus)
        raise InvalidArgumentError(
            f"unknown model status {status!r}; use one of {allowed}", field="status"
        ) from None


def model_event(
    project: str, model: str, version: int, status: ModelStatus, previous: ModelStatus | None
) -> Event:
    """The event announcing that ``model`` version ``version`` entered ``status``."""
    value = {
        "model": model,
        "version": version,
        "status": status.value,
        "previous": None if previous is None else previous.value,
    }
    return Event(
        key=model,
        value=json.dumps(value, sort_keys=True),
        event_type=ModelVersionEvent.for_status(status).value,
        sender=SENDER,
        namespace=project,
    )


def find_or_raise(
    repo: ModelRepository,
    project: str,
    model: str,
    version: int | None,
    status: ModelStatus | None,
    alias: str | None,
) -> ModelVersion:
    """The version found by number, status or alias, or the :class:`NotFoundError` naming it."""
    found = repo.find_version(project, model, version=version, status=status, alias=alias)
    if found is not None:
        return found
    repo.get_model(project, model)  # an unknown model is named as such
    if version is not None:
        raise version_not_found(project, model, str(version))
    if status is not None:
        raise version_not_found(project, model, f"in status {status.value}")
    raise alias_not_found(model, alias)


def alias_not_found(model: str, alias: str | None) -> NotFoundError:
    """The error for an unknown alias."""
    return NotFoundError(
        "model alias", f"{model}@{alias}", message=f"model {model!r} has no alias {alias!r}"
    )


def set_status(
    repo: ModelRepository, project: str, model: str, version: int, status: ModelStatus
) -> ModelVersion:
    """Move one version to ``status`` (deploying when it is DEPLOYED)."""
    now = utcnow()
    model_id = repo.lock_model(project, model, now)
    row = repo.version_row(model_id, version)
    if row is None:
        raise version_not_found(project, model, str(version))
    current = ModelStatus(row.status)
    if status is ModelStatus.DEPLOYED and current is ModelStatus.DEPLOYED:
        return ModelVersionRow.to_domain(row._mapping, model)  # deploying again: nothing to do
    allowed = MODEL_TRANSITIONS[current]
    if status not in allowed:
        raise IllegalTransitionError(
            f"model version {model}/{version}",
            current.value,
            status.value,
            allowed=sorted(s.value for s in allowed),
        )
    events: list[Event] = []
    if status is ModelStatus.DEPLOYED:
        deployed = repo.deployed_row(model_id)
        if deployed is not None:
            repo.set_status(deployed.id, ModelStatus.DEPLOYED, ModelStatus.DEPRECATED, now)
            events.append(
                model_event(
                    project, model, deployed.version, ModelStatus.DEPRECATED, ModelStatus.DEPLOYED
                )
            )
    if status is ModelStatus.DELETED:
        repo.delete_aliases_of(row.id)
    repo.set_status(row.id, current, status, now)
    events.append(model_event(project, model, version, status, current))
    append_events(repo.connection, events)
    updated = {**row._mapping, "status": status.value, "update_time": now}
    return ModelVersionRow.to_domain(updated, model)


def rollback(repo: ModelRepository, project: str, model: str) -> ModelVersion:
    """Redeploy the most recently deprecated version of ``model``."""
    model_id = repo.lock_model(project, model, utcnow())
    target = repo.last_deprecated_row(model_id)
    if target is None:
        raise FailedPreconditionError(
            f"model {model!r} has no DEPRECATED version to roll back to in project {project!r}"
        )
    return set_status(repo, project, model, target.version, ModelStatus.DEPLOYED)


def set_alias(
    repo: ModelRepository, project: str, model: str, alias: str, version: int
) -> ModelVersion:
    """Point ``alias`` at one version of ``model``."""
    model_id = repo.lock_model(project, model, utcnow())
    row = repo.version_row(model_id, version)
    if row is None:
        raise version_not_found(project, model, str(version))
    if row.status == ModelStatus.DELETED.value:
        raise FailedPreconditionError(
            f"model version {model}/{version} is DELETED; an alias cannot point at it"
        )
    repo.set_alias(model_id, alias, row.id)
    return ModelVersionRow.to_domain(row._mapping, model)


def delete_alias(repo: ModelRepository, project: str, model: str, alias: str) -> None:
    """Remove ``alias`` of ``model``."""
    model_id = repo.lock_model(project, model, utcnow())
    if not repo.delete_alias(model_id, alias):
        raise alias_not_found(model, alias)
