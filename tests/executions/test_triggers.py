"""``ctx.trigger`` / ``ctx.triggers`` for every rule kind, through a real server and real jobs.

One execution of the ``triggers`` workflow (conftest) serves the whole module: each job, one per
rule kind, sends a ``TRIGGER_SEEN`` event naming the offsets it received, whether they are
``tide.Event`` objects and whether they equal what the client lists at those offsets. Tests wait
for those reports (conditions with deadlines), never for time to pass.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.executions.conftest import submit
from tideflow.client import Client
from tideflow.domain.events import JOB_STATUS_CHANGED, Event
from tideflow.domain.status import JobAction
from tideflow.testing import TideflowTestServer

DEADLINE = 120.0


class Run:
    """The module's execution of ``triggers``, its client and the events the test sent."""

    def __init__(self, client: Client, execution_id: int, sent: dict[str, Event]) -> None:
        self.client = client
        self.execution_id = execution_id
        self.sent = sent

    def report(self, job: str, attempt: int = 1) -> dict[str, Any]:
        """The report of ``job``'s attempt, waiting for it."""
        deadline = time.monotonic() + DEADLINE
        while True:
            for event in self.client.events.list(key="trigger_seen", limit=1000).items:
                seen = json.loads(event.value)
                if (seen["job"], seen["attempt"]) == (job, attempt):
                    return seen
            if time.monotonic() > deadline:
                raise AssertionError(f"no report of {job} attempt {attempt} in {DEADLINE} s")
            time.sleep(0.05)

    def status_event(self, job: str, value: str) -> Event:
        """The stored JOB_STATUS_CHANGED event of ``job``'s attempt 1 reaching ``value``."""
        events = self.client.events.list(
            key=f"triggers.{job}", event_type=JOB_STATUS_CHANGED, limit=1000
        ).items
        return next(e for e in events if e.value == value and e.context.get("attempt") == 1)

    def event_at(self, offset: int) -> Event:
        (event,) = self.client.events.list(after_offset=offset - 1, limit=1).items
        assert event.offset == offset
        return event


@pytest.fixture(scope="module")
def run(server: TideflowTestServer, flows: Path) -> Iterator[Run]:
    with server.client(f"trig_{uuid.uuid4().hex[:8]}") as client:
        submit(client, flows, "triggers")
        submit(client, flows, "launched")
        execution = client.workflows.start("triggers")
        client.models.create("m")
        sent = {
            "go": client.events.send("go", "now", event_type="GO"),
            "x": client.events.send("x", "1"),
            "y": client.events.send("y", "2"),
            "flaky_go": client.events.send("flaky_go", "once"),
            "launch": client.events.send("launch", "please", event_type="LAUNCH"),
        }
        client.models.create_version("m", uri="memory://m/1")
        yield Run(client, execution.execution_id, sent)
        client.executions.stop(execution.execution_id)  # its periodic rule keeps it running
        for launched in client.executions.list(workflow="launched"):
            client.executions.wait(launched.execution_id, timeout=DEADLINE)


def assert_received(run: Run, seen: dict[str, Any], offsets: list[int]) -> None:
    assert seen["triggers"] == offsets
    assert seen["trigger"] == (offsets[-1] if offsets else None)
    assert seen["is_event"]
    assert seen["as_listed"]


def test_a_job_started_with_the_execution_has_no_trigger(run: Run) -> None:
    assert_received(run, run.report("first"), [])


def test_after_gets_the_upstream_finished_event(run: Run) -> None:
    seen = run.report("second")  # first has FINISHED by then
    finished = run.status_event("first", "FINISHED")
    assert_received(run, seen, [finished.offset])
    assert finished.context["execution_id"] == run.execution_id


def test_after_two_upstreams_gets_both_finished_events(run: Run) -> None:
    seen = run.report("both")
    first, second = run.status_event("first", "FINISHED"), run.status_event("second", "FINISHED")
    assert_received(run, seen, sorted([first.offset, second.offset]))


def test_with_start_gets_the_upstream_running_event(run: Run) -> None:
    seen = run.report("side")
    assert_received(run, seen, [run.status_event("first", "RUNNING").offset])


def test_on_event_gets_the_event_and_a_manual_restart_gets_none(run: Run) -> None:
    assert_received(run, run.report("on_evt"), [run.sent["go"].offset])
    run.client.jobs.restart(run.execution_id, "on_evt")
    assert_received(run, run.report("on_evt", attempt=2), [])


def test_on_model_version_gets_the_generated_event_naming_the_version(run: Run) -> None:
    seen = run.report("model")
    (offset,) = seen["triggers"]
    event = run.event_at(offset)
    assert (event.event_type, event.key) == ("MODEL_GENERATED", "m")
    assert json.loads(event.value) == {
        "model": "m",
        "version": 1,
        "status": "GENERATED",
        "previous": None,
    }
    assert_received(run, seen, [offset])


def test_all_of_gets_every_event(run: Run) -> None:
    assert_received(run, run.report("allof"), [run.sent["x"].offset, run.sent["y"].offset])


def test_a_periodic_rule_gets_its_timer_event(run: Run) -> None:
    seen = run.report("tick")
    (offset,) = seen["triggers"]
    event = run.event_at(offset)
    assert (event.event_type, event.key) == ("PERIODIC", "triggers.tick")
    assert event.context["execution_id"] == run.execution_id
    assert_received(run, seen, [offset])


def test_a_retry_gets_the_trigger_of_the_attempt_it_retries(run: Run) -> None:
    offset = run.sent["flaky_go"].offset
    assert_received(run, run.report("flaky", attempt=1), [offset])
    assert_received(run, run.report("flaky", attempt=2), [offset])


def test_jobs_of_an_execution_a_start_on_rule_started_get_its_event(run: Run) -> None:
    assert_received(run, run.report("boot"), [run.sent["launch"].offset])


def test_attempts_and_actions_carry_the_offsets_over_the_api(run: Run) -> None:
    seen = run.report("allof")
    (attempt,) = [j for j in run.client.jobs.list(run.execution_id) if j.job == "allof"]
    assert list(attempt.trigger_offsets) == seen["triggers"]
    (action,) = [a for a in run.client.executions.actions(run.execution_id) if a.job == "allof"]
    assert action.action is JobAction.START
    assert (action.event_offset, list(action.trigger_offsets)) == (
        run.sent["y"].offset,
        seen["triggers"],
    )
