"""Command jobs through a real server: a rule's trigger and the params fill in the program's argv."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tideflow.cli.loader import load_workflows
from tideflow.client import Client
from tideflow.domain.status import ExecutionStatus, JobStatus

FLOW = """
    import tideflow as tide

    with tide.workflow("commands") as wf:
        with tide.job("prepare"):
            tide.command(
                ["bash", "prepare.sh", "{date}", "{trigger.value}"], env={"OUT": "{out}"}
            )
        with tide.job("fail"):
            tide.command(["bash", "-c", "echo giving up; exit 4"])
        wf.on_event("prepare", "go", event_type="GO")
        wf.after("fail", "prepare")
"""


def test_a_triggered_command_job_runs_the_packages_script_with_params_and_trigger(
    client: Client, tmp_path: Path
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "flow.py").write_text(textwrap.dedent(FLOW))
    (code / "prepare.sh").write_text('echo "prepared $1 for $2"\necho "$1 $2" > "$OUT"\n')
    (wf,) = load_workflows(code / "flow.py")
    client.workflows.submit(wf, source=code / "flow.py")
    out = tmp_path / "out.txt"
    run = client.workflows.start("commands", params={"date": "2024-05-01", "out": str(out)})

    client.events.send("go", "v7", event_type="GO")
    ended = client.executions.wait(run.execution_id, timeout=120)

    jobs = {job.job: job for job in client.jobs.list(run.execution_id)}
    assert jobs["prepare"].status is JobStatus.FINISHED, client.jobs.logs(
        run.execution_id, "prepare"
    )
    assert out.read_text() == "2024-05-01 v7\n"
    assert "prepared 2024-05-01 for v7" in client.jobs.logs(run.execution_id, "prepare")
    assert jobs["fail"].status is JobStatus.FAILED
    assert (jobs["fail"].exit_code, jobs["fail"].error) == (
        4,
        "command exited with code 4; last output: giving up",
    )
    assert ended.status is ExecutionStatus.FAILED
