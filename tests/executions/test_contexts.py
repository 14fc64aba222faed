"""per_context workflows through a real server and real jobs: contexts from a field of the
event, one event naming two contexts, ``ctx.context`` in a Python job and ``{context}`` in a
command job, and ``once_per_context`` refusing an hour that already ran -- explained by
``tideflow execution show``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.executions.conftest import WAIT
from tideflow.cli.loader import load_workflows
from tideflow.client import Client
from tideflow.domain.status import ExecutionStatus
from tideflow.testing import TideflowTestServer, run_cli, wait_until

FLOW = """
    import tideflow as tide


    def report(ctx, inputs):
        ctx.send_event("context_seen", ctx.context, event_type="SEEN")


    with tide.workflow(
        "hourly", per_context=tide.context_from(field="hour"), once_per_context=True
    ) as wf:
        with tide.job("report"):
            tide.user_node(processor=report, name="report")
        with tide.job("archive"):
            tide.command(["bash", "-c", "echo archived {context}"])
        wf.start_on(tide.EventMatch(key="hour_closed", event_type="HOUR"))
"""


def test_each_hour_gets_one_execution_that_knows_its_context_and_runs_once(
    server: TideflowTestServer, project: str, client: Client, tmp_path: Path
) -> None:
    (tmp_path / "flow.py").write_text(textwrap.dedent(FLOW))
    (wf,) = load_workflows(tmp_path / "flow.py")
    client.workflows.submit(wf, source=tmp_path / "flow.py")

    client.events.send("hour_closed", "", event_type="HOUR", context={"hour": ["h1", "h2"]})
    runs = wait_until(
        lambda: (found := client.executions.list(workflow="hourly")) and len(found) == 2 and found,
        timeout=WAIT,
        what="one execution per hour the event names",
    )
    by_context = {run.context: run.execution_id for run in runs}
    assert sorted(by_context) == ["h1", "h2"]
    for context, execution_id in by_context.items():
        ended = client.executions.wait(execution_id, timeout=WAIT)
        assert ended.status is ExecutionStatus.FINISHED, client.jobs.logs(execution_id, "report")
        assert f"archived {context}" in client.jobs.logs(execution_id, "archive")
    seen = {
        event.context["execution_id"]: event.value
        for event in client.events.list(key="context_seen", limit=100).items
    }
    assert seen == {execution_id: context for context, execution_id in by_context.items()}

    # h1 already ran: once_per_context starts nothing and says so on h1's execution.
    again = client.events.send("hour_closed", "", event_type="HOUR", context={"hour": "h1"})
    h1 = by_context["h1"]
    skipped = wait_until(
        lambda: [a for a in client.executions.actions(h1) if a.event_offset == again.offset],
        timeout=WAIT,
        what="the refused firing recorded on h1's execution",
    )
    assert [a.rule for a in skipped] == [
        "start_on: event(key=hour_closed, type=HOUR) (skipped: context 'h1' already ran in "
        f"execution {h1}; once_per_context)"
    ]
    assert len(client.executions.list(workflow="hourly")) == 2

    shown = run_cli(
        "execution",
        "show",
        str(h1),
        "--json",
        "--server",
        server.url,
        "--project",
        project,
        timeout=WAIT,
    )
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["execution"]["context"] == "h1"
    assert any("once_per_context" in action["rule"] for action in data["actions"])
