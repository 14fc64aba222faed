"""Metadata Service contract: datasets, artifacts, workflows, executions, jobs, metrics, lineage."""

from __future__ import annotations

import json

import pytest

from tideflow.client import Client
from tideflow.domain import (
    DATASET_UPDATED,
    JOB_STATUS_CHANGED,
    ExecutionStatus,
    JobAction,
    JobStatus,
    LineageKind,
    LineageRef,
)
from tideflow.errors import (
    AlreadyExistsError,
    IllegalTransitionError,
    InvalidArgumentError,
    NotFoundError,
)
from tideflow.metadata import ExecutionService, WorkflowService

PLAN = json.dumps({"workflow": "ctr_online", "jobs": []})


@pytest.fixture
def workflows(client: Client) -> WorkflowService:
    return WorkflowService(client.store)


@pytest.fixture
def executions(client: Client) -> ExecutionService:
    return ExecutionService(client.store)


@pytest.fixture
def job_id(client: Client, workflows: WorkflowService, executions: ExecutionService) -> int:
    workflows.create_snapshot(client.project, "ctr_online", plan=PLAN)
    run = executions.create_execution(client.project, "ctr_online")
    return executions.create_job_execution(
        client.project, run.execution_id, "train"
    ).job_execution_id


def test_dataset_register_and_update_bump_version_with_events(client: Client) -> None:
    d = client.datasets.register(
        "clicks", uri="kafka://clicks", format="jsonl", stream=True, schema={"user": "str"}
    )
    assert (d.version, d.stream, dict(d.schema)) == (1, True, {"user": "str"})
    updated = client.datasets.update("clicks", uri="kafka://clicks-v2")
    assert (updated.version, updated.uri, updated.format) == (2, "kafka://clicks-v2", "jsonl")
    events = client.events.list(key="clicks", event_type=DATASET_UPDATED)
    assert [e.value for e in events] == ["1", "2"]
    assert client.datasets.get("clicks") == updated
    assert [x.name for x in client.datasets.list()] == ["clicks"]


def test_dataset_errors_name_the_dataset_and_write_nothing(client: Client) -> None:
    with pytest.raises(NotFoundError, match="dataset 'nope' not found in project"):
        client.datasets.update("nope", uri="x")
    with pytest.raises(NotFoundError, match="dataset 'nope' not found"):
        client.datasets.get("nope")
    client.datasets.register("clicks")
    with pytest.raises(AlreadyExistsError, match="dataset 'clicks' already exists"):
        client.datasets.register("clicks")
    with pytest.raises(InvalidArgumentError, match="uri is 2049 characters long"):
        client.datasets.update("clicks", uri="u" * 2049)
    with pytest.raises(InvalidArgumentError, match="dataset name 'a b' is not valid"):
        client.datasets.register("a b")
    with pytest.raises(InvalidArgumentError, match="stream must be True or False"):
        client.datasets.register("other", stream="yes")  # type: ignore[arg-type]
    assert client.datasets.get("clicks").version == 1
    assert len(client.events.list(event_type=DATASET_UPDATED)) == 1
    client.datasets.delete("clicks")
    with pytest.raises(NotFoundError, match="dataset 'clicks' not found"):
        client.datasets.delete("clicks")


def test_artifacts(client: Client) -> None:
    a = client.artifacts.register(
        "report", uri="file:///r.html", kind="report", properties={"n": 1}
    )
    assert client.artifacts.get("report") == a
    assert client.artifacts.update("report", uri="file:///r2.html").uri == "file:///r2.html"
    assert [x.name for x in client.artifacts.list()] == ["report"]
    client.artifacts.delete("report")
    with pytest.raises(NotFoundError, match="artifact 'report' not found"):
        client.artifacts.get("report")


def test_snapshots_and_executions_are_pinned(
    client: Client, workflows: WorkflowService, executions: ExecutionService
) -> None:
    p = client.project
    first = workflows.create_snapshot(
        p, "wf", plan=PLAN, code_uri="file:///a.zip", code_sha256="a" * 64
    )
    run = executions.create_execution(p, "wf", params={"lr": 0.05})
    second = workflows.create_snapshot(p, "wf", plan=PLAN)
    assert workflows.get_workflow(p, "wf").latest_snapshot_id == second.snapshot_id
    assert executions.get_execution(p, run.execution_id).snapshot_id == first.snapshot_id
    assert dict(run.params) == {"lr": 0.05}
    assert run.status is ExecutionStatus.RUNNING
    action = executions.record_action(
        p, run.execution_id, job="train", action="start", rule='{"kind": "after"}', event_offset=3
    )
    assert action.action is JobAction.START
    assert executions.list_actions(p, run.execution_id) == [action]
    ended = executions.set_execution_status(p, run.execution_id, "FINISHED")
    assert ended.end_time is not None
    with pytest.raises(IllegalTransitionError, match="FINISHED -> STOPPED"):
        executions.set_execution_status(p, run.execution_id, "STOPPED")
    assert [e.execution_id for e in executions.list_executions(p, workflow="wf")] == [
        run.execution_id
    ]
    with pytest.raises(InvalidArgumentError, match="plan is not JSON"):
        workflows.create_snapshot(p, "wf", plan="{not json")
    with pytest.raises(InvalidArgumentError, match="code_sha256 must be 64"):
        workflows.create_snapshot(p, "wf", plan=PLAN, code_sha256="xyz")
    with pytest.raises(NotFoundError, match="workflow 'nope' not found"):
        executions.create_execution(p, "nope")
    workflows.delete_workflow(p, "wf")
    with pytest.raises(NotFoundError, match="workflow execution"):
        executions.get_execution(p, run.execution_id)


def test_job_status_changes_follow_transitions_and_emit_events(
    client: Client, executions: ExecutionService, job_id: int
) -> None:
    p = client.project
    executions.set_job_status(p, job_id, "STARTING", host="h1", pid=42)
    running = executions.set_job_status(p, job_id, JobStatus.RUNNING, log_uri="file:///log")
    assert running.start_time is not None
    assert (running.host, running.pid, running.log_uri) == ("h1", 42, "file:///log")
    done = executions.set_job_status(p, job_id, "FINISHED", exit_code=0)
    assert (done.status, done.exit_code) == (JobStatus.FINISHED, 0)
    assert done.end_time is not None
    with pytest.raises(
        IllegalTransitionError, match=r"job ctr_online\.train .*FINISHED -> RUNNING"
    ):
        executions.set_job_status(p, job_id, "RUNNING")
    events = client.events.list(key="ctr_online.train", event_type=JOB_STATUS_CHANGED)
    assert [e.value for e in events] == ["STARTING", "RUNNING", "FINISHED"]
    assert dict(events[1].context) == {
        "execution_id": done.execution_id,
        "attempt": 1,
        "previous": "STARTING",
    }
    retry = executions.create_job_execution(p, done.execution_id, "train")
    assert retry.attempt == 2
    with pytest.raises(AlreadyExistsError, match="job execution"):
        executions.create_job_execution(p, done.execution_id, "train", attempt=2)
    with pytest.raises(IllegalTransitionError, match="INIT -> FINISHED"):
        executions.set_job_status(p, retry.job_execution_id, "FINISHED")
    with pytest.raises(NotFoundError, match="job execution"):
        executions.set_job_status(p, 10**9, "RUNNING")


def test_job_bad_input_writes_nothing(
    client: Client, workflows: WorkflowService, executions: ExecutionService, job_id: int
) -> None:
    p = client.project
    with pytest.raises(InvalidArgumentError, match="error is 20000 characters long"):
        executions.set_job_status(p, job_id, "FAILED", error="e" * 20_000)
    with pytest.raises(InvalidArgumentError, match="unknown job status 'DONE'"):
        executions.set_job_status(p, job_id, "DONE")
    with pytest.raises(InvalidArgumentError, match="host must not contain NUL"):
        executions.set_job_status(p, job_id, "STARTING", host="h\x00")
    with pytest.raises(InvalidArgumentError, match="pid must be a whole number from 1"):
        executions.set_job_status(p, job_id, "STARTING", pid="42")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="exit_code must be a whole number"):
        executions.set_job_status(p, job_id, "FAILED", exit_code=2**40)
    job = executions.get_job_execution(p, job_id)
    assert (job.status, job.error, job.host) == (JobStatus.INIT, None, None)
    assert list(client.events.list(event_type=JOB_STATUS_CHANGED)) == []
    # Legal names whose event key <workflow>.<job> would not fit are refused up front.
    long_workflow = "w" * 128
    workflows.create_snapshot(p, long_workflow, plan=PLAN)
    run = executions.create_execution(p, long_workflow)
    with pytest.raises(InvalidArgumentError, match="would be 257 characters long"):
        executions.create_job_execution(p, run.execution_id, "j" * 128)
    assert executions.list_job_executions(p, run.execution_id) == []
    fits = executions.create_job_execution(p, run.execution_id, "j" * 127)
    executions.set_job_status(p, fits.job_execution_id, "STARTING")
    assert len(client.events.list(event_type=JOB_STATUS_CHANGED)) == 1


def test_metrics_attach_to_job_model_and_dataset(client: Client, job_id: int) -> None:
    client.models.create("ctr")
    client.models.create_version("ctr")
    client.datasets.register("holdout")
    m = client.metrics.log(
        "auc",
        0.71,
        step=3,
        model="ctr",
        version=1,
        job_execution_id=job_id,
        dataset="holdout",
        tags={"split": "test"},
    )
    assert (m.model, m.version, m.dataset, m.job_execution_id, m.step) == (
        "ctr",
        1,
        "holdout",
        job_id,
        3,
    )
    client.metrics.log("loss", 0.4)
    assert [x.name for x in client.metrics.list(model="ctr", version=1)] == ["auc"]
    assert [x.name for x in client.metrics.list()] == ["auc", "loss"]
    with pytest.raises(NotFoundError, match="model version 2 of model 'ctr' not found"):
        client.metrics.log("auc", 0.5, model="ctr", version=2)
    with pytest.raises(NotFoundError, match="dataset 'nope' not found"):
        client.metrics.log("auc", 0.5, dataset="nope")
    with pytest.raises(InvalidArgumentError, match="metric value must be a finite number"):
        client.metrics.log("auc", float("inf"))
    assert len(client.metrics.list()) == 2


def test_lineage_is_recorded_atomically_and_queried_both_ways(client: Client, job_id: int) -> None:
    client.datasets.register("clicks", stream=True)
    client.datasets.update("clicks")
    client.models.create("ctr")
    client.models.create_version("ctr", job_execution_id=job_id)
    client.artifacts.register("report")
    record = client.lineage.record(
        job_id,
        inputs=[LineageRef.dataset("clicks", start_offset=10, end_offset=99), "clicks"],
        outputs=[LineageRef.model_version("ctr", 1), LineageRef.artifact("report")],
    )
    assert record.job == "train"
    assert record.inputs[0] == LineageRef(LineageKind.DATASET, "clicks", 2, 10, 99)
    assert [r.kind for r in record.outputs] == [LineageKind.MODEL_VERSION, LineageKind.ARTIFACT]
    (up,) = client.lineage.upstream(model="ctr", version=1)
    assert up == record
    assert client.lineage.downstream(dataset="clicks") == [record]
    assert client.lineage.downstream(dataset="clicks", version=1) == []
    assert client.lineage.downstream(dataset="clicks", version=2) == [record]


def test_each_model_version_has_the_lineage_recorded_with_it(client: Client, job_id: int) -> None:
    # A streaming trainer: a job-level record (what the plan reads), then one record per
    # version, each naming the window it was trained on; the last names no input of its own.
    client.datasets.register("clicks", stream=True)
    client.datasets.register("holdout")
    client.models.create("ctr")
    for _ in range(3):
        client.models.create_version("ctr", job_execution_id=job_id)
    client.lineage.record(job_id, inputs=["holdout"])
    windows = {1: (0, 99), 2: (100, 249)}
    for version, (first, last) in windows.items():
        client.lineage.record(
            job_id,
            inputs=[LineageRef.dataset("clicks", start_offset=first, end_offset=last)],
            outputs=[LineageRef.model_version("ctr", version)],
        )
    client.lineage.record(job_id, outputs=[LineageRef.model_version("ctr", 3)])
    for version, (first, last) in windows.items():
        (up,) = client.lineage.upstream(model="ctr", version=version)
        assert up.job_execution_id == job_id
        assert up.inputs == (LineageRef(LineageKind.DATASET, "clicks", 1, first, last),)
        assert up.outputs == (LineageRef.model_version("ctr", version),)
    # No input recorded with it: the job's inputs recorded apart from any version stand in.
    (up,) = client.lineage.upstream(model="ctr", version=3)
    assert up.inputs == (LineageRef(LineageKind.DATASET, "holdout", 1),)
    assert up.outputs == (LineageRef.model_version("ctr", 3),)
    # The job execution's lineage is still all of it.
    (whole,) = client.lineage.downstream(dataset="clicks")
    assert len(whole.inputs) == 3
    assert len(whole.outputs) == 3


def test_lineage_with_a_bad_reference_records_nothing(client: Client, job_id: int) -> None:
    client.datasets.register("clicks")
    client.models.create("ctr")
    with pytest.raises(NotFoundError, match="model version 1 of model 'ctr' not found"):
        client.lineage.record(
            job_id, inputs=["clicks"], outputs=[LineageRef.model_version("ctr", 1)]
        )
    with pytest.raises(NotFoundError, match="dataset 'clicks' has no version 5"):
        client.lineage.record(job_id, inputs=[LineageRef.dataset("clicks", 5)])
    with pytest.raises(InvalidArgumentError, match="start_offset 9 is after end_offset 1"):
        client.lineage.record(
            job_id, inputs=[LineageRef.dataset("clicks", start_offset=9, end_offset=1)]
        )
    with pytest.raises(NotFoundError, match="job execution"):
        client.lineage.record(10**9, inputs=["clicks"])
    with pytest.raises(InvalidArgumentError, match="inputs must be a list"):
        client.lineage.record(job_id, inputs="clicks")
    with pytest.raises(InvalidArgumentError, match="outputs must be a list"):
        client.lineage.record(job_id, outputs=LineageRef.artifact("report"))  # type: ignore[arg-type]
    assert client.lineage.downstream(dataset="clicks") == []
    with pytest.raises(NotFoundError, match="dataset 'nope' not found"):
        client.lineage.downstream(dataset="nope")
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        client.lineage.upstream(model="nope", version=1)
