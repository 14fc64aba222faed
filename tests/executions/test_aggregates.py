"""An aggregate condition on a real server: a job starts when the sum of sent values reaches 100."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.executions.conftest import WAIT, submit
from tideflow.client import Client

SUMMING = """
    from datetime import timedelta

    import tideflow as tide


    def ok(ctx, inputs):
        print("ran", ctx.job, flush=True)


    with tide.workflow("summing") as wf:
        with tide.job("boot"):
            tide.user_node(processor=ok, name="boot_node")
        with tide.job("summed"):
            tide.user_node(processor=ok, name="summed_node")
        wf.on_events(
            "summed",
            tide.Aggregate(
                match=tide.EventMatch(key="samples", event_type="SAMPLE"),
                op="sum",
                over=tide.window(timedelta(hours=1)),
                threshold=100,
            ),
        )
"""


def test_a_job_starts_once_the_sum_of_sent_values_reaches_the_threshold(
    client: Client, tmp_path: Path
) -> None:
    folder = tmp_path / "flows" / "summing"
    folder.mkdir(parents=True)
    (folder / "flow.py").write_text(textwrap.dedent(SUMMING))
    submit(client, tmp_path / "flows", "summing")
    run = client.workflows.start("summing")

    sent = [
        client.events.send("samples", value, event_type="SAMPLE")
        for value in ("40", "not a number", "50", "10")
    ]

    done = client.executions.wait(run.execution_id, timeout=WAIT)
    assert done.status.value == "FINISHED"
    summed = [j for j in client.jobs.list(run.execution_id) if j.job == "summed"]
    assert [j.attempt for j in summed] == [1]
    # It fired on the event that brought the sum to 100 (40 + 50 + 10), not before.
    assert summed[0].trigger_offsets == (sent[-1].offset,)
