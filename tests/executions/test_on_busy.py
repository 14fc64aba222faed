"""``on_busy`` through a real server and real jobs: every GENERATED version gets validated.

A validate job holds its first attempt until the test releases it, so the versions logged
meanwhile arrive while it is busy. Under the default ``queue`` it then runs once per version,
each attempt judging its own ``ctx.trigger``; under ``latest`` once more, for the newest. The
firings are explained by ``tideflow execution show`` and its ``--json``.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.executions.test_cli import as_json, tideflow
from tideflow.cli.loader import load_workflows
from tideflow.client import Client
from tideflow.testing import TideflowTestServer
from tideflow.testing.wait import wait_until

DEADLINE = 120.0

FLOW = """
    import json

    import tideflow as tide


    def judge(ctx, inputs):
        version = json.loads(ctx.trigger.value)["version"]
        if ctx.attempt == 1:
            # Busy until the test says so: the versions logged meanwhile find the job busy.
            with ctx.client.events.listen(keys=["release"]) as released:
                next(iter(released))
        seen = {"attempt": ctx.attempt, "version": version, "trigger": ctx.trigger.offset}
        ctx.send_event("judged", json.dumps(seen), event_type="JUDGED")


    with tide.workflow("busy") as wf:
        with tide.job("validate"):
            tide.user_node(processor=judge, name="judge")
        wf.on_model_version("validate", model="m", event=tide.ModelVersionEvent.GENERATED{busy})
"""


def judged(client: Client) -> list[dict[str, int]]:
    return [json.loads(e.value) for e in client.events.list(key="judged", limit=100).items]


@pytest.mark.parametrize("policy", ["queue", "latest"])
def test_versions_logged_while_validate_is_busy_are_all_judged(
    server: TideflowTestServer, project: str, client: Client, tmp_path: Path, policy: str
) -> None:
    file = tmp_path / "flow.py"
    busy = "" if policy == "queue" else f", on_busy={policy!r}"
    file.write_text(textwrap.dedent(FLOW).replace("{busy}", busy))
    (wf,) = load_workflows(file)
    client.workflows.submit(wf, source=file)
    client.models.create("m")
    run = client.workflows.start("busy").execution_id
    versions = [client.models.create_version("m", uri=f"mem://{i}") for i in range(4)]
    offsets = {
        json.loads(e.value)["version"]: e.offset
        for e in client.events.list(key="m", event_type="MODEL_GENERATED", limit=100).items
    }
    # Every firing is decided before the first attempt is let go.
    wait_until(
        lambda: len([a for a in client.executions.actions(run) if a.job == "validate"]) == 4,
        timeout=DEADLINE,
        what="four firings recorded",
    )
    client.events.send("release", "go")
    expected = [1, 2, 3, 4] if policy == "queue" else [1, 4]
    wait_until(lambda: len(judged(client)) == len(expected), timeout=DEADLINE, what="judgements")
    ended = client.executions.wait(run, timeout=DEADLINE)
    assert ended.status.value == "FINISHED"

    seen = sorted(judged(client), key=lambda s: s["attempt"])
    assert [s["version"] for s in seen] == [versions[i - 1].version for i in expected]
    assert [s["trigger"] for s in seen] == [offsets[s["version"]] for s in seen]
    assert [s["attempt"] for s in seen] == list(range(1, len(expected) + 1))

    shown = tideflow(server, project, "execution", "show", str(run))
    assert shown.returncode == 0, shown.stderr
    data = as_json(tideflow(server, project, "execution", "show", str(run), "--json"))
    rules = [a["rule"] for a in data["actions"] if a["job"] == "validate"]
    if policy == "queue":
        assert sum("(queued: attempt 1 is" in r for r in rules) == 3
        assert sum("(from the queue:" in r for r in rules) == 3
        assert "(queued: attempt 1 is" in " ".join(shown.stdout.split())
    else:
        assert sum("(queued, replacing the firing of event" in r for r in rules) == 2
        assert sum("(from the queue:" in r for r in rules) == 1
    assert "(from the queue: attempt 1 FINISHED)" in " ".join(shown.stdout.split())
