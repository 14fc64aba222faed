"""The Model Center service: model-version lifecycle over the store, with its events.

Every status change runs in one transaction that (1) locks the model's row, (2) checks the
move against :data:`~tideflow.domain.status.MODEL_TRANSITIONS`, (3) writes the version's status
and its history entry, and (4) appends the ``MODEL_*`` event last. So a reader never sees a
status without its event or history, and two writers of one model take turns: that is what
makes "at most one DEPLOYED version" hold under concurrent deploys on every backend.

Deploying is the only way into DEPLOYED (``set_status(..., DEPLOYED)`` deploys), so the
previously deployed version is always deprecated in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from tideflow.domain.limits import (
    MAX_TEXT_LENGTH,
    MAX_TYPE_LENGTH,
    MAX_URI_LENGTH,
    check_name,
    check_number,
    check_positive_int,
    check_text,
    dump_json,
)
from tideflow.domain.model import ModelVersion, RegisteredModel, StatusChange
from tideflow.domain.page import Page
from tideflow.domain.status import ModelStatus
from tideflow.errors import InvalidArgumentError
from tideflow.modelcenter import lifecycle
from tideflow.modelcenter.lifecycle import find_or_raise, model_event, parse_status
from tideflow.store import Store, append_events
from tideflow.store.cursor import check_limit, decode_cursor, encode_cursor
from tideflow.store.repositories.model import ModelRepository
from tideflow.store.repositories.workflow import WorkflowRepository
from tideflow.store.rows.model import ModelVersionRow
from tideflow.store.types import utcnow


def _tags(tags: Mapping[str, str] | None) -> str:
    for key, value in (tags or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgumentError(
                f"tags must map strings to strings, got {key!r}: {value!r}", field="tags"
            )
    return dump_json(tags, "tags")


def _metrics(metrics: Mapping[str, float] | None) -> str:
    for key, value in (metrics or {}).items():
        check_text(key, "metric name", MAX_TYPE_LENGTH, empty=False)
        check_number(value, f"metric {key!r}")
    return dump_json(metrics, "metrics")


class ModelCenter:
    """Registered models and versions of every project in one store.

    Methods take the project first; a :class:`~tideflow.client.Client` binds it. Every change
    appends its event (key = model name, namespace = project, value JSON
    ``{model, version, status, previous}``) in the same transaction.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- registered models -------------------------------------------------------------------

    def create_model(
        self,
        project: str,
        name: str,
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel:
        """Register a model.

        Raises:
            InvalidArgumentError: Invalid name, description or tags.
            AlreadyExistsError: The project already has a model of that name.
            NotFoundError: No such project.
        """
        check_name(name, "model name")
        check_text(description, "description", MAX_TEXT_LENGTH)
        tags_json = _tags(tags)
        return self._store.run(
            lambda c: ModelRepository(c).create_model(
                project, name, description, tags_json, utcnow()
            )
        )

    def get_model(self, project: str, name: str) -> RegisteredModel:
        """The model ``name``; raises :class:`~tideflow.errors.NotFoundError` if unknown."""
        return self._store.run(lambda c: ModelRepository(c).get_model(project, name), write=False)

    def list_models(
        self, project: str, *, limit: int = 100, cursor: str | None = None
    ) -> Page[RegisteredModel]:
        """The project's models in registration order, one page at a time."""
        check_limit(limit)
        after = decode_cursor("model", cursor)
        rows = self._store.run(
            lambda c: ModelRepository(c).list_models(project, after, limit + 1), write=False
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(
            tuple(m for _, m in rows), encode_cursor("model", rows[-1][0]) if more else None
        )

    def update_model(
        self,
        project: str,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel:
        """Change a model's description and/or tags (``None`` leaves a field as it is)."""
        values: dict[str, Any] = {"update_time": utcnow()}
        if description is not None:
            values["description"] = check_text(description, "description", MAX_TEXT_LENGTH)
        if tags is not None:
            values["tags"] = _tags(tags)
        return self._store.run(lambda c: ModelRepository(c).update_model(project, name, values))

    # -- versions ----------------------------------------------------------------------------

    def create_version(
        self,
        project: str,
        model: str,
        *,
        uri: str = "",
        flavour: str = "",
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        description: str = "",
        job_execution_id: int | None = None,
    ) -> ModelVersion:
        """Register the next version of ``model`` in status GENERATED (event MODEL_GENERATED).

        Raises:
            NotFoundError: No such model (or job execution).
            InvalidArgumentError: A field is invalid or too long.
        """
        check_text(uri, "uri", MAX_URI_LENGTH)
        check_text(flavour, "flavour", MAX_TYPE_LENGTH)
        check_text(description, "description", MAX_TEXT_LENGTH)
        if job_execution_id is not None:
            check_positive_int(job_execution_id, "job_execution_id")
        values: dict[str, Any] = {
            "status": ModelStatus.GENERATED.value,
            "uri": uri,
            "flavor": flavour,  # the column keeps its first spelling
            "metrics": _metrics(metrics),
            "params": dump_json(params, "params"),
            "tags": _tags(tags),
            "description": description,
            "job_execution_id": job_execution_id,
        }

        def work(c: Connection) -> ModelVersion:
            now = utcnow()
            repo = ModelRepository(c)
            if job_execution_id is not None:
                # The foreign key alone would accept another project's job execution.
                WorkflowRepository(c).get_job(project, job_execution_id)
            model_id, number = repo.next_version(project, model, now)
            row = {
                **values,
                "model_id": model_id,
                "version": number,
                "create_time": now,
                "update_time": now,
            }
            version_id = repo.insert_version(row)
            repo.insert_change(version_id, None, ModelStatus.GENERATED, now)
            append_events(c, [model_event(project, model, number, ModelStatus.GENERATED, None)])
            # Parse the stored JSON back rather than reuse the arguments, so the caller sees
            # exactly what a later read returns.
            stored = {key: json.loads(values[key]) for key in ("metrics", "params", "tags")}
            return ModelVersionRow.to_domain({**row, **stored}, model)

        return self._store.run(work)

    def get_version(
        self,
        project: str,
        model: str,
        *,
        version: int | None = None,
        status: ModelStatus | str | None = None,
        alias: str | None = None,
    ) -> ModelVersion:
        """One version, by exactly one of ``version``, ``status`` or ``alias``.

        By status, the highest numbered version in that status is returned.

        Raises:
            InvalidArgumentError: Not exactly one of the three was given.
            NotFoundError: No such model, or no version matches (the message names both).
        """
        given = [
            f"{name}={value!r}"
            for name, value in (("version", version), ("status", status), ("alias", alias))
            if value is not None
        ]
        if len(given) != 1:
            got = ", ".join(given) if given else "none"
            raise InvalidArgumentError(
                f"which version of model {model!r}? give exactly one of version=, status= or "
                f"alias= (got {got})",
                field="version",
            )
        wanted = None if status is None else parse_status(status)
        if version is not None:
            check_positive_int(version, "version")
        return self._store.run(
            lambda c: find_or_raise(ModelRepository(c), project, model, version, wanted, alias),
            write=False,
        )

    def list_versions(
        self,
        project: str,
        model: str,
        *,
        status: ModelStatus | str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[ModelVersion]:
        """Versions of ``model`` by number, optionally in one status, one page at a time.

        Raises:
            NotFoundError: No such model.
        """
        check_limit(limit)
        wanted = None if status is None else parse_status(status)
        after = decode_cursor("model_version", cursor)

        def work(c: Connection) -> list[ModelVersion]:
            repo = ModelRepository(c)
            rows = repo.list_versions(project, model, wanted, after, limit + 1)
            if not rows and after is None:
                repo.get_model(project, model)  # raise NotFoundError for an unknown model
            return rows

        rows = self._store.run(work, write=False)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(tuple(rows), encode_cursor("model_version", rows[-1].version) if more else None)

    def history(self, project: str, model: str, version: int) -> list[StatusChange]:
        """Every status change of one version, oldest first.

        Raises:
            NotFoundError: No such model or version.
        """
        check_positive_int(version, "version")

        def work(c: Connection) -> list[StatusChange]:
            repo = ModelRepository(c)
            changes = repo.history(project, model, version)
            if not changes:
                find_or_raise(repo, project, model, version, None, None)
            return changes

        return self._store.run(work, write=False)

    # -- status changes (the rules are in lifecycle.py) ---------------------------------------

    def set_status(
        self, project: str, model: str, version: int, status: ModelStatus | str
    ) -> ModelVersion:
        """Move a version to ``status``; DEPLOYED deploys (deprecating the deployed version).

        Raises:
            NotFoundError: No such model or version.
            IllegalTransitionError: The state machine forbids the move (the message names both
                statuses and what is allowed).
        """
        wanted = parse_status(status)
        check_positive_int(version, "version")
        return self._store.run(
            lambda c: lifecycle.set_status(ModelRepository(c), project, model, version, wanted)
        )

    def deploy(self, project: str, model: str, version: int) -> ModelVersion:
        """Deploy a version; the previously deployed one becomes DEPRECATED atomically.

        Deploying the deployed version again changes nothing.

        Raises:
            NotFoundError: No such model or version.
            IllegalTransitionError: The version is not VALIDATED or DEPRECATED.
        """
        return self.set_status(project, model, version, ModelStatus.DEPLOYED)

    def rollback(self, project: str, model: str) -> ModelVersion:
        """Redeploy the most recently deprecated version (deprecating the deployed one).

        Raises:
            NotFoundError: No such model.
            FailedPreconditionError: No version is DEPRECATED.
        """
        return self._store.run(lambda c: lifecycle.rollback(ModelRepository(c), project, model))

    def delete_version(self, project: str, model: str, version: int) -> ModelVersion:
        """Mark a version DELETED (terminal; its number is never reused, its aliases go)."""
        return self.set_status(project, model, version, ModelStatus.DELETED)

    def set_alias(self, project: str, model: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` (e.g. ``champion``) at a version; aliases change no status.

        Raises:
            NotFoundError: No such model or version.
            FailedPreconditionError: The version is DELETED.
        """
        check_name(alias, "alias")
        check_positive_int(version, "version")
        return self._store.run(
            lambda c: lifecycle.set_alias(ModelRepository(c), project, model, alias, version)
        )

    def delete_alias(self, project: str, model: str, alias: str) -> None:
        """Remove ``alias``; raises :class:`~tideflow.errors.NotFoundError` if it is unknown."""
        self._store.run(lambda c: lifecycle.delete_alias(ModelRepository(c), project, model, alias))

    def list_aliases(self, project: str, model: str) -> dict[str, int]:
        """Every alias of ``model`` and the version number it points at."""

        def work(c: Connection) -> dict[str, int]:
            repo = ModelRepository(c)
            aliases = repo.aliases(project, model)
            if not aliases:
                repo.get_model(project, model)  # raise NotFoundError for an unknown model
            return aliases

        return self._store.run(work, write=False)
