"""Transactional outbox: no change is committed without its event, and no event without its change.

Each case makes the transaction fail right after its events were appended (the last statement of
every mutating call) and checks that neither the change nor the events were committed; then the
same call succeeds and commits both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import Connection

from tideflow.client import Client
from tideflow.domain import Event, JobStatus, ModelStatus
from tideflow.metadata import ExecutionService, WorkflowService
from tideflow.store import append_events

# Every module that appends events on behalf of a Model Center or Metadata Service change.
APPENDERS = (
    "tideflow.modelcenter.service",
    "tideflow.modelcenter.lifecycle",
    "tideflow.metadata.catalog",
    "tideflow.metadata.workflow",
)


class Crash(Exception):
    """Stands for anything that aborts a transaction after its events were written."""


@pytest.fixture
def crash_after_append(monkeypatch: pytest.MonkeyPatch) -> Callable[[bool], None]:
    """``arm(True)`` makes the next appends write their events and then fail the transaction."""
    armed = [False]

    def failing(connection: Connection, events: Sequence[Event], **kwargs: Any) -> Any:
        result = append_events(connection, events, **kwargs)
        if armed[0]:
            raise Crash(f"after appending {[e.event_type for e in events]}")
        return result

    for module in APPENDERS:
        monkeypatch.setattr(f"{module}.append_events", failing)

    def arm(on: bool) -> None:
        armed[0] = on

    return arm


def snapshot(client: Client) -> tuple[Any, ...]:
    """Everything a failed call must leave unchanged: events, versions, history, datasets."""
    versions = tuple(client.models.list_versions("ctr", limit=1000))
    history = tuple(change for v in versions for change in client.models.history("ctr", v.version))
    return (
        tuple(client.events.list(limit=1000)),
        client.models.get("ctr").last_version,
        versions,
        history,
        tuple(client.datasets.list()),
    )


def test_model_changes_roll_back_with_their_events(
    client: Client, crash_after_append: Callable[[bool], None]
) -> None:
    client.models.create("ctr")
    v1 = client.models.create_version("ctr").version
    client.models.set_status("ctr", v1, ModelStatus.VALIDATED)
    client.models.deploy("ctr", v1)
    v2 = client.models.create_version("ctr").version
    client.models.set_status("ctr", v2, ModelStatus.VALIDATED)
    v3 = client.models.create_version("ctr").version
    client.datasets.register("clicks")
    calls: list[tuple[str, Callable[[], object]]] = [
        ("create_version", lambda: client.models.create_version("ctr")),
        ("set_status", lambda: client.models.set_status("ctr", v3, "REJECTED")),
        ("deploy", lambda: client.models.deploy("ctr", v2)),
        ("delete_version", lambda: client.models.delete_version("ctr", v1)),
        ("register dataset", lambda: client.datasets.register("holdout")),
        ("update dataset", lambda: client.datasets.update("clicks", uri="file:///c2")),
    ]
    for what, call in calls:
        before = snapshot(client)
        crash_after_append(True)
        with pytest.raises(Crash, match="after appending"):
            call()
        crash_after_append(False)
        assert snapshot(client) == before, what
    # The version number allocated by the rolled-back create was returned, not burnt.
    assert client.models.create_version("ctr").version == v3 + 1
    deployed = client.models.deploy("ctr", v2)
    assert deployed.status is ModelStatus.DEPLOYED
    assert client.models.get_version("ctr", version=v1).status is ModelStatus.DEPRECATED


def test_rollback_rolls_back_with_its_events(
    client: Client, crash_after_append: Callable[[bool], None]
) -> None:
    client.models.create("ctr")
    for _ in range(2):
        version = client.models.create_version("ctr").version
        client.models.set_status("ctr", version, "VALIDATED")
        client.models.deploy("ctr", version)
    before = snapshot(client)
    crash_after_append(True)
    with pytest.raises(Crash):
        client.models.rollback("ctr")
    crash_after_append(False)
    assert snapshot(client) == before
    assert client.models.rollback("ctr").version == 1
    last_two = client.events.list(key="ctr")[-2:]
    assert [json.loads(e.value)["status"] for e in last_two] == ["DEPRECATED", "DEPLOYED"]


def test_job_status_change_rolls_back_with_its_event(
    client: Client, crash_after_append: Callable[[bool], None]
) -> None:
    p = client.project
    WorkflowService(client.store).create_snapshot(p, "wf", plan="{}")
    executions = ExecutionService(client.store)
    run = executions.create_execution(p, "wf")
    job = executions.create_job_execution(p, run.execution_id, "train")
    crash_after_append(True)
    with pytest.raises(Crash):
        executions.set_job_status(p, job.job_execution_id, "STARTING", host="h1")
    crash_after_append(False)
    unchanged = executions.get_job_execution(p, job.job_execution_id)
    assert (unchanged.status, unchanged.host) == (JobStatus.INIT, None)
    assert list(client.events.list(key="wf.train")) == []
    executions.set_job_status(p, job.job_execution_id, "STARTING")
    assert [e.value for e in client.events.list(key="wf.train")] == ["STARTING"]
