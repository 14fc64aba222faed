"""A real server with the local executor, and workflow files that users could have written.

Workflows live in files (as ``tideflow run FILE`` sees them): loading a file registers its
processors for pickling by value, so job processes run them from the code package. Tests wait
for job and execution changes through the event log (:func:`wait_for_job`,
``c.executions.wait``), never by sleeping.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tideflow.cli.loader import load_workflows
from tideflow.client import Client
from tideflow.domain.events import JOB_STATUS_CHANGED, job_event_key
from tideflow.testing import TideflowTestServer

WAIT = 60.0

WORKFLOWS = {
    # Two jobs and an `after` edge: second starts when first FINISHED.
    "chain": """
        import tideflow as tide


        def first(ctx, inputs):
            print("first says", ctx.params.get("greeting", "hello"), flush=True)


        def second(ctx, inputs):
            print("second runs", flush=True)


        with tide.workflow("chain") as wf:
            with tide.job("first"):
                tide.user_node(processor=first, name="say")
            with tide.job("second"):
                tide.user_node(processor=second, name="run")
            wf.after("second", "first")
    """,
    # A job that fails for good: the execution FAILS.
    "fails": """
        import tideflow as tide


        def boom(ctx, inputs):
            raise ValueError("boom on purpose")


        with tide.workflow("fails") as wf:
            with tide.job("boom"):
                tide.user_node(processor=boom)
    """,
    # first finishes; idle waits for an event nobody sends: the execution stays RUNNING.
    "waits": """
        import tideflow as tide


        def ok(ctx, inputs):
            print("ok", ctx.job, flush=True)


        with tide.workflow("waits") as wf:
            with tide.job("first"):
                tide.user_node(processor=ok, name="first_node")
            with tide.job("idle"):
                tide.user_node(processor=ok, name="idle_node")
            wf.on_event("idle", event_type="NEVER_SENT", key="nothing")
    """,
    # A job that runs until it is stopped (SIGTERM).
    "holds": """
        import threading

        import tideflow as tide


        def hold(ctx, inputs):
            print("holding", flush=True)
            threading.Event().wait()


        with tide.workflow("holds") as wf:
            with tide.job("hold"):
                tide.user_node(processor=hold)
    """,
    # One job per rule kind; each reports what it received as its trigger (test_triggers.py).
    "triggers": """
        import json

        import tideflow as tide


        def report(ctx, inputs):
            # What the client lists at each trigger's offset: the very same Event dataclass.
            listed = [
                ctx.client.events.list(after_offset=e.offset - 1, limit=1).items[0]
                for e in ctx.triggers
            ]
            seen = {
                "job": ctx.job,
                "attempt": ctx.attempt,
                "trigger": None if ctx.trigger is None else ctx.trigger.offset,
                "triggers": [e.offset for e in ctx.triggers],
                "is_event": all(isinstance(e, tide.Event) for e in ctx.triggers),
                "as_listed": list(ctx.triggers) == listed,
            }
            ctx.send_event("trigger_seen", json.dumps(seen), event_type="TRIGGER_SEEN")
            if ctx.job == "flaky" and ctx.attempt == 1:
                raise ValueError("fails once on purpose")


        with tide.workflow("triggers") as wf:
            for name in (
                "first", "second", "side", "both", "on_evt", "model", "allof", "tick", "flaky"
            ):
                with tide.job(name, retries=1 if name == "flaky" else 0):
                    tide.user_node(processor=report, name=f"{name}_report")
            wf.after("second", "first")
            wf.with_start("side", "first")
            wf.after("both", "first", "second")
            wf.on_event("on_evt", key="go", event_type="GO")
            wf.on_model_version("model", model="m", event=tide.ModelVersionEvent.GENERATED)
            wf.on_events("allof", tide.all_of(tide.EventMatch(key="x"), tide.EventMatch(key="y")))
            wf.periodic("tick", interval=2)
            wf.on_event("flaky", key="flaky_go")
    """,
    # Started by a start_on rule: the job that starts with the execution gets its event.
    "launched": """
        import json

        import tideflow as tide


        def report(ctx, inputs):
            listed = [
                ctx.client.events.list(after_offset=e.offset - 1, limit=1).items[0]
                for e in ctx.triggers
            ]
            seen = {
                "job": ctx.job,
                "attempt": ctx.attempt,
                "trigger": None if ctx.trigger is None else ctx.trigger.offset,
                "triggers": [e.offset for e in ctx.triggers],
                "is_event": all(isinstance(e, tide.Event) for e in ctx.triggers),
                "as_listed": list(ctx.triggers) == listed,
            }
            ctx.send_event("trigger_seen", json.dumps(seen), event_type="TRIGGER_SEEN")


        with tide.workflow("launched") as wf:
            with tide.job("boot"):
                tide.user_node(processor=report, name="boot_report")
            wf.start_on(tide.EventMatch(key="launch", event_type="LAUNCH"))
    """,
}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TideflowTestServer]:
    home = tmp_path_factory.mktemp("home")
    with TideflowTestServer(home=home) as running:
        yield running


@pytest.fixture(scope="session")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with one workflow file per entry of :data:`WORKFLOWS`."""
    root = tmp_path_factory.mktemp("flows")
    for name, text in WORKFLOWS.items():
        folder = root / name
        folder.mkdir()
        (folder / "flow.py").write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def client(server: TideflowTestServer, project: str) -> Iterator[Client]:
    with server.client(project) as opened:
        yield opened


def submit(client: Client, flows: Path, name: str) -> None:
    """Submit the workflow of ``flows/<name>/flow.py``."""
    file = flows / name / "flow.py"
    (wf,) = load_workflows(file)
    client.workflows.submit(wf, source=file)


def wait_for_job(client: Client, execution_id: int, workflow: str, job: str, status: str) -> Any:
    """Block until ``job`` of the execution reports ``status`` (a JOB_STATUS_CHANGED event)."""
    deadline = time.monotonic() + WAIT
    with client.events.listen(
        keys=[job_event_key(workflow, job)], event_types=[JOB_STATUS_CHANGED]
    ) as listener:
        while time.monotonic() < deadline:
            for event in listener.poll(1.0):
                if event.context.get("execution_id") == execution_id and event.value == status:
                    return event
    raise AssertionError(f"{workflow}.{job} of execution {execution_id} never reached {status}")
