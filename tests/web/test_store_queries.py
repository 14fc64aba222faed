"""The store queries the web API added, on every backend (SQLite, PostgreSQL, MariaDB).

Attempts paged and filtered, the latest attempt per job, the n-th START/RESTART of a job (a
window function), STOP actions, events at given offsets.
"""

from __future__ import annotations

from typing import Any

import tideflow as tide
from tideflow.metadata import ProjectService, WorkflowService
from tideflow.metadata.workflow import ExecutionService
from tideflow.notification.service import NotificationService
from tideflow.store import Store
from tideflow.store.repositories.workflow import WorkflowRepository
from tideflow.store.types import utcnow
from tideflow.web.api.triggers import attempt_triggers


def noop(ctx: Any, inputs: Any) -> None:
    return None


def test_attempt_queries(store: Store, project: str) -> None:
    ProjectService(store).create_project(project)
    with tide.workflow("w") as wf:
        for job in ("a", "b"):
            with tide.job(job):
                tide.user_node(processor=noop, name=f"{job}_node")
    WorkflowService(store).create_snapshot(project, "w", plan=tide.compile(wf).to_json())
    executions = ExecutionService(store)
    execution = executions.create_execution(project, "w")
    eid = execution.execution_id
    events = NotificationService(store)
    offsets = [events.send(project, "k", str(i)).offset for i in range(3)]
    # a: attempt 1 (START), a skipped START, attempt 2 (RESTART), a STOP; b: attempt 1 only
    script = [
        ("a", 1, "START", "first", offsets[0], "STOPPED"),
        ("a", None, "START", "again (skipped: attempt 1 is RUNNING)", None, None),
        ("a", 2, "RESTART", "on drift", offsets[1], "STOPPED"),
        ("b", 1, "START", "first", None, "FINISHED"),
        ("a", None, "STOP", "by hand", offsets[2], None),
    ]

    def insert(c: Any) -> None:
        repo = WorkflowRepository(c)
        now = utcnow()
        for job, attempt, action, rule, offset, status in script:
            if attempt is not None:
                repo.create_job(
                    execution,
                    {"job": job, "attempt": attempt, "status": status, "create_time": now},
                )
            repo.insert_action(
                {
                    "execution_id": eid,
                    "job": job,
                    "action": action,
                    "rule": rule,
                    "event_offset": offset,
                    "time": now,
                }
            )

    store.run(insert)
    every = executions.list_job_executions(project, eid)
    assert [(j.job, j.attempt) for j in every] == [("a", 1), ("a", 2), ("b", 1)]
    first = executions.list_job_executions(project, eid, limit=1)
    rest = executions.list_job_executions(project, eid, after=first[0].job_execution_id)
    assert [j.job_execution_id for j in first + rest] == [j.job_execution_id for j in every]
    assert [j.attempt for j in executions.list_job_executions(project, eid, job="a")] == [1, 2]
    latest = executions.latest_job_executions(project, eid)
    assert [(j.job, j.attempt, n) for j, n in latest] == [("a", 2, 2), ("b", 1, 1)]
    assert {a.job for a in executions.list_actions(project, eid, jobs=["b"])} == {"b"}

    starts, stops = executions.attempt_actions(project, eid, every)
    assert {key: a.rule for key, a in starts.items()} == {
        ("a", 1): "first",
        ("a", 2): "on drift",
        ("b", 1): "first",
    }
    assert [s.rule for s in stops] == ["by hand"]
    triggers = attempt_triggers(every, starts, stops)
    a1, a2, b1 = (triggers[j.job_execution_id] for j in every)
    rules = [
        (
            None if t.started_by is None else t.started_by.rule,
            None if t.stopped_by is None else t.stopped_by.rule,
        )
        for t in (a1, a2, b1)
    ]
    assert rules == [("first", "on drift"), ("on drift", "by hand"), ("first", None)]

    found = events.get_many(project, [offsets[0], offsets[2], 10**9])
    assert sorted(found) == [offsets[0], offsets[2]]
    assert events.get_many("someone_else", offsets) == {}
    events.close()
