"""Command jobs (``tide.command``) on the local executor: real programs started by real jobs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tideflow as tide
from tests.executors.conftest import Rig, wait_until
from tideflow.domain.status import JobStatus

ENDED = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED)


def test_a_command_that_exits_0_finishes_with_its_output_in_the_log(rig: Rig) -> None:
    with tide.workflow("wf") as wf, tide.job("hello"):
        tide.command(["bash", "-c", "echo hello from stdout; echo hello from stderr >&2; pwd"])
    start = rig.start_job(wf, "hello")

    job = rig.wait_status(start, *ENDED)

    assert job.status is JobStatus.FINISHED, rig.log(start)
    assert (job.exit_code, job.error) == (0, None)
    log = rig.log(start)
    assert "hello from stdout" in log
    assert "hello from stderr" in log
    workdir = rig.home / "work" / str(start.execution_id) / "hello" / "1"
    assert str(workdir) in log.splitlines()  # pwd: the job's working directory
    statuses = [e.value for e in rig.client.events.list(key="wf.hello")]
    assert statuses == ["STARTING", "RUNNING", "FINISHED"]


def test_a_command_that_exits_3_fails_naming_the_code_and_its_last_output(rig: Rig) -> None:
    with tide.workflow("wf") as wf, tide.job("bad"):
        tide.command(["bash", "-c", "echo working; echo disk full >&2; exit 3"])
    start = rig.start_job(wf, "bad")

    job = rig.wait_status(start, *ENDED)

    assert job.status is JobStatus.FAILED
    assert job.exit_code == 3
    assert job.error == "command exited with code 3; last output: working | disk full"
    assert "command exited with code 3" in rig.log(start)


def test_params_fill_in_argv_and_env(rig: Rig, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with tide.workflow("wf") as wf, tide.job("prep"):
        tide.command(
            ["bash", "-c", 'echo "$GREETING on {date}, n={n}, {{literal}}" > "{out}"'],
            env={"GREETING": "hello {who}"},
        )
    params = {"date": "2024-05-01", "n": 3, "who": "tideflow", "out": str(out)}
    start = rig.start_job(wf, "prep", params=params)

    job = rig.wait_status(start, *ENDED)

    assert job.status is JobStatus.FINISHED, rig.log(start)
    assert out.read_text() == "hello tideflow on 2024-05-01, n=3, {literal}\n"


def test_a_missing_param_fails_the_attempt_naming_it_before_running_anything(
    rig: Rig, tmp_path: Path
) -> None:
    ran = tmp_path / "ran"
    with tide.workflow("wf") as wf, tide.job("prep"):
        tide.command(["touch", str(ran), "{date}"])
    start = rig.start_job(wf, "prep", params={"day": "monday"})

    job = rig.wait_status(start, *ENDED)

    assert job.status is JobStatus.FAILED
    assert job.exit_code == 1
    assert job.error is not None
    assert job.error.startswith("the command names {date}, which the execution does not have")
    assert "params and trigger fields: day" in job.error
    assert "the command names {date}" in rig.log(start)
    assert not ran.exists()


def test_a_program_that_does_not_exist_fails_the_attempt(rig: Rig) -> None:
    with tide.workflow("wf") as wf, tide.job("typo"):
        tide.command(["tideflow-no-such-program", "--help"])
    start = rig.start_job(wf, "typo")

    job = rig.wait_status(start, *ENDED)

    assert job.status is JobStatus.FAILED
    assert job.error == (
        "command 'tideflow-no-such-program' could not start: No such file or directory"
    )


def test_stop_terminates_the_program_and_ends_stopped(rig: Rig) -> None:
    with tide.workflow("wf") as wf, tide.job("sleeper", streaming=True):
        tide.command(["sleep", "60"])
    start = rig.start_job(wf, "sleeper")
    running = rig.wait_status(start, JobStatus.RUNNING)
    wait_until(lambda: "running sleep 60" in rig.log(start), what="the program to start")

    rig.stop_job(start)
    job = rig.wait_status(start, *ENDED, timeout=10.0)

    assert job.status is JobStatus.STOPPED, (job, rig.log(start))
    assert job.exit_code == 0
    assert "stop requested (SIGTERM): terminating the command" in rig.log(start)

    def group_gone() -> bool:
        try:
            os.killpg(running.pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_until(group_gone, what="the job's processes (sleep too) to be gone")


def test_a_command_over_its_timeout_is_terminated_and_failed(rig: Rig) -> None:
    with tide.workflow("wf") as wf, tide.job("slow", timeout=0.5):
        tide.command(["sleep", "60"])
    start = rig.start_job(wf, "slow")

    job = rig.wait_status(start, *ENDED, timeout=10.0)

    assert job.status is JobStatus.FAILED
    assert job.error == "timed out after 0.5 s"
    assert "stop requested (SIGTERM): terminating the command" in rig.log(start)


def test_a_script_from_the_code_package_runs_in_the_working_directory(rig: Rig) -> None:
    (rig.code / "prepare.sh").write_text(
        'echo "preparing $1 with $(cat settings.txt)"\nexit "${EXIT_CODE:-0}"\n'
    )
    (rig.code / "settings.txt").write_text("care\n")
    with tide.workflow("wf") as wf:
        with tide.job("prepare"):
            tide.command(["bash", "prepare.sh", "{date}"])
        with tide.job("prepare_badly"):
            tide.command(["bash", "prepare.sh", "{date}"], env={"EXIT_CODE": "{code}"})
    params: dict[str, Any] = {"date": "2024-05-01", "code": 7}
    good = rig.start_job(wf, "prepare", params=params)
    bad = rig.start_job(wf, "prepare_badly", params=params)

    assert rig.wait_status(good, *ENDED).status is JobStatus.FINISHED, rig.log(good)
    assert "preparing 2024-05-01 with care" in rig.log(good)
    job = rig.wait_status(bad, *ENDED)
    assert job.status is JobStatus.FAILED
    assert job.error == "command exited with code 7; last output: preparing 2024-05-01 with care"
