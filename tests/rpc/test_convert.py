"""The domain <-> protobuf converter keeps what the wire carries."""

from __future__ import annotations

from datetime import UTC, datetime

from tideflow.domain.metadata import ExecutionAction, JobExecution
from tideflow.domain.status import JobAction, JobStatus
from tideflow.rpc.convert import (
    action_from_pb,
    action_to_pb,
    job_execution_from_pb,
    job_execution_to_pb,
)

WHEN = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_an_attempt_keeps_its_trigger_offsets() -> None:
    job = JobExecution(
        job_execution_id=5,
        execution_id=2,
        workflow="wf",
        job="validate",
        attempt=3,
        status=JobStatus.RUNNING,
        create_time=WHEN,
        trigger_offsets=(11, 17),
    )
    assert job_execution_from_pb(job_execution_to_pb(job)) == job
    untriggered = JobExecution(job_execution_id=6, execution_id=2, workflow="wf", job="j")
    assert job_execution_from_pb(job_execution_to_pb(untriggered)).trigger_offsets == ()


def test_an_action_keeps_its_event_and_trigger_offsets() -> None:
    action = ExecutionAction(
        action_id=9,
        execution_id=2,
        job="report",
        action=JobAction.START,
        rule="after validate, push FINISHED",
        event_offset=17,
        time=WHEN,
        trigger_offsets=(11, 17),
    )
    assert action_from_pb(action_to_pb(action)) == action
