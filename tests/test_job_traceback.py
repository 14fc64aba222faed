"""A failing processor's traceback names the user's file and line (issue 18, item 5).

The payload is compiled from a workflow file, as ``tideflow workflow submit`` does, and run in
a separate interpreter, as a job is: the file name must survive pickling by value.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import tideflow as tide
from tideflow.cli.loader import load_workflows

FLOW = textwrap.dedent(
    """\
    import tideflow as tide


    def boom(ctx, inputs):
        raise ValueError("bad value")


    class Broken(tide.Processor):
        def process(self, ctx, inputs):
            return {}["missing"]


    with tide.workflow("failing") as wf:
        with tide.job("fn"):
            tide.user_node(processor=boom)
        with tide.job("cls"):
            tide.user_node(processor=Broken())
    """
)

RUN = textwrap.dedent(
    """\
    import sys, traceback, cloudpickle
    processor = cloudpickle.loads(open(sys.argv[1], "rb").read())
    try:
        getattr(processor, "process", processor)(None, [])
    except Exception:
        traceback.print_exc(file=sys.stdout)
    """
)


def test_tracebacks_of_processors_pickled_by_value_name_the_users_file(tmp_path: Path) -> None:
    flow = tmp_path / "project" / "flow.py"
    flow.parent.mkdir()
    flow.write_text(FLOW)
    (workflow,) = load_workflows(flow)
    plan = tide.compile(workflow)
    expected = {
        "fn": (5, "in boom", "ValueError: bad value"),
        "cls": (10, "in process", "KeyError"),
    }
    elsewhere = tmp_path / "job"  # not the file's directory: nothing imports it by name
    elsewhere.mkdir()
    for job in plan.jobs:
        (node,) = job.nodes
        payload = elsewhere / f"{job.name}.pkl"
        payload.write_bytes(plan.payloads[node.processor])
        done = subprocess.run(
            [sys.executable, "-c", RUN, str(payload)],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        line, function, error = expected[job.name]
        assert f'File "{flow}", line {line}, {function}' in done.stdout
        assert "<dynamic-code>" not in done.stdout
        assert error in done.stdout
