"""Events a job sends to the whole project (``ctx.send_event(..., scope="project")``).

By default a job's event names its execution and reaches it alone; with ``scope="project"`` it
reaches the project's other workflows, so one workflow can start another.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.executions.conftest import WAIT, submit
from tideflow.client import Client
from tideflow.testing import wait_until

ANNOUNCER = """
    import tideflow as tide


    def announce(ctx, inputs):
        # First for its own execution only, then for the project: only the second is heard.
        ctx.send_event("launch", "private", event_type="LAUNCH")
        ctx.send_event("launch", "public", event_type="LAUNCH", scope="project")


    with tide.workflow("announcer") as wf:
        with tide.job("announce"):
            tide.user_node(processor=announce, name="announce")
"""

MISTAKEN = """
    import tideflow as tide


    def announce(ctx, inputs):
        ctx.send_event("launch", "x", event_type="LAUNCH", scope="everyone")


    with tide.workflow("mistaken") as wf:
        with tide.job("announce"):
            tide.user_node(processor=announce, name="announce")
"""


def write_flow(flows: Path, name: str, text: str) -> None:
    folder = flows / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "flow.py").write_text(textwrap.dedent(text))


def test_a_project_event_starts_another_workflow_and_an_execution_event_does_not(
    client: Client, flows: Path, tmp_path: Path
) -> None:
    submit(client, flows, "launched")  # start_on(EventMatch(key="launch", event_type="LAUNCH"))
    own = tmp_path / "flows"
    write_flow(own, "announcer", ANNOUNCER)
    submit(client, own, "announcer")

    run = client.workflows.start("announcer")

    started = wait_until(
        lambda: client.executions.list(workflow="launched"),
        timeout=WAIT,
        what="the launched workflow to be started",
    )
    assert client.executions.wait(run.execution_id, timeout=WAIT).status.value == "FINISHED"
    # Events are dispatched in offset order: the private one came first and started nothing.
    (launched,) = started
    assert launched.execution_id != run.execution_id
    client.executions.wait(launched.execution_id, timeout=WAIT)
    (boot,) = client.jobs.list(launched.execution_id)
    (trigger,) = client.events.list(after_offset=boot.trigger_offsets[0] - 1, limit=1).items
    assert trigger.value == "public"
    assert trigger.context["source_execution_id"] == run.execution_id
    assert "execution_id" not in trigger.context
    assert trigger.sender == "announcer.announce"
    private = [
        e for e in client.events.list(keys=["launch"], limit=10).items if e.value == "private"
    ]
    assert [e.context["execution_id"] for e in private] == [run.execution_id]
    assert len(client.executions.list(workflow="launched")) == 1


def test_an_unknown_scope_fails_the_job_naming_it(client: Client, tmp_path: Path) -> None:
    own = tmp_path / "flows"
    write_flow(own, "mistaken", MISTAKEN)
    submit(client, own, "mistaken")

    run = client.workflows.start("mistaken")

    assert client.executions.wait(run.execution_id, timeout=WAIT).status.value == "FAILED"
    (job,) = client.jobs.list(run.execution_id)
    assert job.error is not None
    assert "scope must be one of execution, project (got 'everyone')" in job.error
    assert not client.events.list(keys=["launch"]).items  # nothing was sent
