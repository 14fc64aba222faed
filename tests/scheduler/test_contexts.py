"""per_context workflows with contexts from any field, the key or the value; events naming
several contexts or all of them; once_per_context refusing a context that already ran."""

from __future__ import annotations

from typing import Any

import pytest

import tideflow as tide
from tests.scheduler.conftest import Env, jobs_workflow
from tideflow.errors import FailedPreconditionError


def contexts_flow(per_context: Any, *, once: bool = False) -> Any:
    """``main`` starts with each execution; ``j`` starts on "order" inside one."""
    wf = tide.workflow("flow", per_context=per_context, once_per_context=once)
    with wf:
        for job in ("main", "j"):
            with tide.job(job, streaming=True):
                tide.user_node(processor=print, name=f"{job}_node")
    wf.start_on(tide.EventMatch(key="order"))
    wf.on_event("j", "order")
    return wf


def by_context(env: Env) -> dict[str | None, list[tuple[int, str]]]:
    found: dict[str | None, list[tuple[int, str]]] = {}
    for e in env.service.list_executions(env.project, workflow="flow", limit=1000):
        found.setdefault(e.context, []).append((e.execution_id, e.status.value))
    return {context: sorted(runs) for context, runs in found.items()}


def running(env: Env, context: str) -> int:
    (found,) = [i for i, status in by_context(env)[context] if status == "RUNNING"]
    return found


def test_contexts_from_a_field_of_the_event_context(env: Env) -> None:
    env.submit(contexts_flow(tide.context_from(field="hour")))
    env.send("order", hour="h1")
    env.send("order", hour=13)  # an integer names a context too
    env.send("order", context="c1")  # the default field means nothing here
    env.run()
    assert sorted(by_context(env)) == ["13", "h1"]
    h1 = running(env, "h1")
    env.send("order", hour="h1")
    env.run()
    assert ("j", 1, "INIT") in env.attempts(h1)
    assert ("j", 1, "INIT") not in env.attempts(running(env, "13"))


@pytest.mark.parametrize(
    ("per_context", "send"),
    [
        (tide.context_from(key=True), {"key": "order", "value": "x"}),
        (tide.context_from(value=True), {"key": "order", "value": "customer-7"}),
    ],
    ids=["key", "value"],
)
def test_contexts_from_the_key_or_the_value(
    env: Env, per_context: Any, send: dict[str, str]
) -> None:
    env.submit(contexts_flow(per_context))
    env.send(send["key"], send["value"])
    env.send(send["key"], send["value"])  # the running execution gets it; no second one
    env.run()
    expected = "order" if send["value"] == "x" else "customer-7"
    [(execution_id, status)] = by_context(env)[expected]
    assert status == "RUNNING"
    assert ("j", 1, "INIT") in env.attempts(execution_id)
    assert len(by_context(env)) == 1


def test_one_event_names_several_contexts_or_all_running_ones(env: Env) -> None:
    env.submit(contexts_flow(tide.context_from(field="hour")))
    env.send("order", hour=["h1", "h2", "h1"])
    env.run()
    assert sorted(by_context(env)) == ["h1", "h2"]
    h1, h2 = running(env, "h1"), running(env, "h2")
    assert ("j", 1, "INIT") not in env.attempts(h1)  # the starting event is not delivered
    # "*" reaches every running execution of the workflow and starts none.
    offset = env.send("order", hour="*")
    env.run()
    for execution_id in (h1, h2):
        assert ("j", 1, "INIT") in env.attempts(execution_id)
        assert ("j", "START", "event: event(key=order)", offset) in env.actions(execution_id)
    assert sorted(by_context(env)) == ["h1", "h2"]
    # Several contexts reach exactly those executions.
    env.send("order", hour=["h2"])
    env.run()
    assert ("j", 2, "INIT") not in env.attempts(h1)


def test_once_per_context_refuses_a_context_that_ran_and_records_why(env: Env) -> None:
    env.submit(contexts_flow(tide.context_from(field="hour"), once=True))
    env.send("order", hour="h1")
    env.run()
    first = running(env, "h1")
    env.service.stop_execution(env.project, first)
    offset = env.send("order", hour=["h1", "h2"])
    env.run()
    # h2 is new and starts; h1 already ran: no execution, a skipped firing on the one it had.
    assert by_context(env) == {"h1": [(first, "STOPPED")], "h2": [(running(env, "h2"), "RUNNING")]}
    skipped = [a for a in env.actions(first) if "skipped" in a[2]]
    assert skipped == [
        (
            None,
            "START",
            f"start_on: event(key=order) (skipped: context 'h1' already ran in execution "
            f"{first}; once_per_context)",
            offset,
        )
    ]
    with pytest.raises(FailedPreconditionError, match="runs once per context, and context 'h1'"):
        env.start("flow", context="h1")
    assert env.start("flow", context="h3").context == "h3"  # a new context may be started


def test_without_once_an_ended_context_starts_again(env: Env) -> None:
    wf = jobs_workflow("flow", "main", per_context=True, streaming=True)
    wf.start_on(tide.EventMatch(key="order"))
    env.submit(wf)
    env.send("order", context="c1")
    env.run()
    env.service.stop_execution(env.project, running(env, "c1"))
    env.send("order", context="c1")
    env.run()
    assert [status for _, status in by_context(env)["c1"]] == ["STOPPED", "RUNNING"]
