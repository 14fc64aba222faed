"""The executor contract: what every executor (local, ray, flink, spark) must do.

Each test runs against every harness (``conftest.py``). Few jobs per executor on purpose --
cluster jobs take seconds to tens of seconds each: a finishing job (status, logs, duplicate
STARTs), a failing job, and a streaming job that is re-attached by a new executor instance on
the same home (a server restart), stopped, and restarted as a second attempt.
"""

from __future__ import annotations

import pytest

from tests.executors.conftest import wait_until
from tests.executors.contract.harness import ContractRig
from tideflow.domain.status import JobStatus

# Cluster jobs on a busy machine: the first test of a session also starts the cluster.
pytestmark = pytest.mark.timeout(900)


def test_a_job_runs_to_finished_once_with_its_logs(contract_rig: ContractRig) -> None:
    rig = contract_rig
    start = rig.start_job("finish")
    rig.outbox.put(start)  # delivered twice: the command loop hands it over once

    rig.wait_status(start, JobStatus.RUNNING, JobStatus.FINISHED)
    assert rig.executor is not None
    rig.executor.launch(start, rig.plan(start))  # handed over twice: the executor runs it once
    job = rig.wait_status(start, JobStatus.FINISHED)
    rig.wait_done(start.command_id)

    # A new instance on the same home gets the START again (a crash lost its completion).
    rig.stop()
    rig.start().launch(start, rig.plan(start))
    wait_until(
        lambda: rig.outbox.done.count(start.command_id) >= 2,
        timeout=rig.harness.timeout,
        what="the re-delivered START to be completed",
    )

    assert rig.statuses(start) == ["STARTING", "RUNNING", "FINISHED"]
    again = rig.job(start)
    assert again.status is JobStatus.FINISHED
    assert again.external_id == job.external_id
    assert again.end_time == job.end_time
    if rig.harness.executor != "local":
        assert job.external_id, "the engine's own job id is recorded"
    assert job.log_uri
    assert rig.harness.log_text in rig.log(start)


def test_a_failure_is_reported_with_the_engines_error(contract_rig: ContractRig) -> None:
    rig = contract_rig
    start = rig.start_job("fail")

    job = rig.wait_status(start, JobStatus.FAILED)
    rig.wait_done(start.command_id)

    assert job.error is not None
    assert rig.harness.error_text in job.error
    statuses = rig.statuses(start)
    assert statuses[0] == "STARTING"
    assert statuses[-1] == "FAILED"
    assert rig.log(start), "a failed job's log is kept"


def test_a_streaming_job_is_reattached_stopped_and_restarted(contract_rig: ContractRig) -> None:
    rig = contract_rig
    wf, snapshot_id, execution_id = rig.new_execution("stream")
    first = rig.start_attempt(wf, snapshot_id, execution_id, attempt=1)
    running = rig.wait_status(first, JobStatus.RUNNING)
    rig.wait_done(first.command_id)

    # The server restarts: the job runs on, and the new executor instance re-attaches to it.
    rig.stop()
    assert rig.job(first).status is JobStatus.RUNNING
    rig.start()
    stop = rig.stop_job(first)
    stopped = rig.wait_status(first, JobStatus.STOPPED)
    rig.wait_done(stop.command_id)

    assert stopped.external_id == running.external_id
    assert rig.statuses(first) == ["STARTING", "RUNNING", "STOPPED"]

    # RESTART: a new attempt of the same job in the same execution runs anew.
    second = rig.start_attempt(wf, snapshot_id, execution_id, attempt=2)
    again = rig.wait_status(second, JobStatus.RUNNING)
    assert again.job_execution_id != running.job_execution_id
    if rig.harness.executor != "local":
        assert again.external_id
        assert again.external_id != running.external_id
    stop = rig.stop_job(second)
    assert rig.wait_status(second, JobStatus.STOPPED).status is JobStatus.STOPPED
    rig.wait_done(stop.command_id)
    assert rig.statuses(second) == ["STARTING", "RUNNING", "STOPPED"]
