"""The store's census behind the /metrics gauges, on a store with work waiting."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tideflow.cli.loader import load_workflows
from tideflow.client import connect
from tideflow.scheduler.actions import CONSUMER
from tideflow.server.metrics import engine_of
from tideflow.store.census import take_census

FLOW = textwrap.dedent(
    """\
    import tideflow as tide


    def step(ctx, inputs):
        return None


    with tide.workflow("waiting") as wf:
        with tide.job("a"):
            tide.user_node(processor=step)
        with tide.job("b", engine="python"):
            tide.user_node(processor=step)
    """
)


def test_commands_and_attempts_waiting_for_an_executor_are_counted(tmp_path: Path) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text(FLOW)
    # In-process: starting writes the attempts and their commands; no executor takes them.
    with connect(f"sqlite:///{tmp_path / 'store.db'}", project="census") as client:
        (workflow,) = load_workflows(flow)
        client.workflows.submit(workflow)
        client.workflows.start("waiting")
        client.models.create("m")
        for _ in range(3):
            client.models.create_version("m", uri="file:///m")
        client.models.set_status("m", 1, "VALIDATED")
        census = client.store.run(lambda c: take_census(c, consumer=CONSUMER), write=False)
    assert census.attempts == {("INIT", "local"): 2}
    assert census.commands == {("local", "PENDING"): 2}
    assert census.model_versions == {"GENERATED": 2, "VALIDATED": 1}
    # Nothing consumed the log here: every event is still ahead of the dispatcher.
    assert census.dispatcher_lag > 0


def test_engines_of_executors() -> None:
    assert [engine_of(e) for e in ("local", "ray", "flink", "spark")] == [
        "python",
        "python",
        "flink",
        "spark",
    ]
