"""Executions, jobs, job logs and workflow settings over gRPC (the Scheduler Service).

:class:`RemoteSchedulerService` has the user-facing interface of the in-process
:class:`~tideflow.scheduler.service.SchedulerService`. The outbox calls (``take_commands``,
``complete_command`` ...) are for executors, which run inside the server: remotely they raise
:class:`~tideflow.errors.FailedPreconditionError` instead of pretending.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NoReturn

from tideflow.client.remote.channel import RpcChannel
from tideflow.client.remote.request import build, json_text
from tideflow.domain.joblog import JobLog
from tideflow.domain.metadata import ExecutionAction, JobExecution, WorkflowExecution
from tideflow.domain.scheduling import AttemptOwner, JobCommand
from tideflow.domain.status import ExecutionStatus
from tideflow.errors import FailedPreconditionError, InvalidArgumentError
from tideflow.rpc import convert
from tideflow.rpc.v1 import scheduler_pb2 as s
from tideflow.rpc.v1 import scheduler_pb2_grpc as g
from tideflow.scheduler.actions import Effects
from tideflow.scheduler.joblog import MAX_LOG_READ, check_read_arguments
from tideflow.scheduler.schedule import TickResult
from tideflow.scheduler.service import SchedulerService
from tideflow.store.cursor import check_limit
from tideflow.store.repositories.scheduler import WorkflowSettings


def _server_only(what: str) -> NoReturn:
    raise FailedPreconditionError(
        f"{what} is for executors, which run inside the Tideflow server: a remote client "
        "cannot call it"
    )


def _status(status: ExecutionStatus | str | None) -> ExecutionStatus | None:
    if status is None or isinstance(status, ExecutionStatus):
        return status
    try:
        return ExecutionStatus(str(status).upper())
    except ValueError:
        allowed = ", ".join(member.value for member in ExecutionStatus)
        raise InvalidArgumentError(
            f"unknown execution status {status!r}; use one of {allowed}",
            field="execution status",
        ) from None


class RemoteSchedulerService(SchedulerService):
    """:class:`SchedulerService`'s interface; the project comes from the channel's metadata."""

    def __init__(self, channel: RpcChannel) -> None:  # no store, clock or outbox: all remote
        self._rpc = channel
        self._stub = g.SchedulerServiceStub(channel.channel)

    def close(self) -> None:
        """Nothing to release: the bundle owns the channel."""

    # -- executions and jobs -------------------------------------------------------------------

    def start_execution(
        self,
        project: str,
        workflow: str,
        *,
        params: Mapping[str, Any] | None = None,
        context: str | None = None,
    ) -> WorkflowExecution:
        if params is not None and not isinstance(params, Mapping):
            raise InvalidArgumentError(
                f"params must be a mapping, got {type(params).__name__}", field="params"
            )
        request = build(
            lambda: s.StartWorkflowExecutionRequest(
                workflow=workflow,
                params_json=json_text(dict(params or {}), "params"),
                context=context,
            )
        )
        response = self._rpc.unary(self._stub.StartWorkflowExecution, request, mutating=True)
        return convert.execution_from_pb(response.execution)

    def stop_execution(self, project: str, execution_id: int) -> WorkflowExecution:
        request = build(lambda: s.StopWorkflowExecutionRequest(execution_id=execution_id))
        response = self._rpc.unary(self._stub.StopWorkflowExecution, request, mutating=True)
        return convert.execution_from_pb(response.execution)

    def stop_job(self, project: str, execution_id: int, job: str) -> JobExecution | None:
        request = build(lambda: s.StopJobRequest(execution_id=execution_id, job=job))
        response = self._rpc.unary(self._stub.StopJob, request, mutating=True)
        if not response.HasField("job"):
            return None
        return convert.job_execution_from_pb(response.job)

    def restart_job(self, project: str, execution_id: int, job: str) -> JobExecution:
        request = build(lambda: s.RestartJobRequest(execution_id=execution_id, job=job))
        response = self._rpc.unary(self._stub.RestartJob, request, mutating=True)
        return convert.job_execution_from_pb(response.job)

    def get_execution(self, project: str, execution_id: int) -> WorkflowExecution:
        request = build(lambda: s.GetWorkflowExecutionRequest(execution_id=execution_id))
        response = self._rpc.unary(self._stub.GetWorkflowExecution, request, mutating=False)
        return convert.execution_from_pb(response.execution)

    def list_executions(
        self,
        project: str,
        *,
        workflow: str | None = None,
        status: ExecutionStatus | str | None = None,
        limit: int = 100,
    ) -> list[WorkflowExecution]:
        check_limit(limit)
        wanted = _status(status)
        request = build(
            lambda: s.ListWorkflowExecutionsRequest(
                workflow=workflow,
                status=convert.enum_to_pb(wanted, "EXECUTION_STATUS"),
                limit=limit,
            )
        )
        response = self._rpc.unary(self._stub.ListWorkflowExecutions, request, mutating=False)
        return [convert.execution_from_pb(x) for x in response.executions]

    def list_job_executions(self, project: str, execution_id: int) -> list[JobExecution]:
        request = build(lambda: s.ListJobExecutionsRequest(execution_id=execution_id))
        response = self._rpc.unary(self._stub.ListJobExecutions, request, mutating=False)
        return [convert.job_execution_from_pb(j) for j in response.jobs]

    def list_actions(self, project: str, execution_id: int) -> list[ExecutionAction]:
        request = build(lambda: s.ListExecutionActionsRequest(execution_id=execution_id))
        response = self._rpc.unary(self._stub.ListExecutionActions, request, mutating=False)
        return [convert.action_from_pb(a) for a in response.actions]

    def waiting_on(self, project: str, execution_id: int) -> dict[str, list[str]]:
        request = build(lambda: s.GetWaitingOnRequest(execution_id=execution_id))
        response = self._rpc.unary(self._stub.GetWaitingOn, request, mutating=False)
        return {job: list(rules.rules) for job, rules in response.jobs.items()}

    def read_job_log(
        self,
        project: str,
        execution_id: int,
        job: str,
        *,
        attempt: int | None = None,
        after: int = 0,
        tail: int | None = None,
        limit: int = MAX_LOG_READ,
    ) -> JobLog:
        check_read_arguments(after, tail, limit)
        request = build(
            lambda: s.GetJobLogsRequest(
                execution_id=execution_id,
                job=job,
                attempt=attempt,
                after=after,
                tail=tail,
                limit=limit,
            )
        )
        response = self._rpc.unary(self._stub.GetJobLogs, request, mutating=False)
        return convert.job_log_from_pb(response, execution_id, job)

    # -- workflow settings ---------------------------------------------------------------------

    def pause_workflow(self, project: str, workflow: str) -> WorkflowSettings:
        request = build(lambda: s.PauseWorkflowRequest(workflow=workflow))
        response = self._rpc.unary(self._stub.PauseWorkflow, request, mutating=True)
        return convert.settings_from_pb(response.settings)

    def resume_workflow(self, project: str, workflow: str) -> WorkflowSettings:
        request = build(lambda: s.ResumeWorkflowRequest(workflow=workflow))
        response = self._rpc.unary(self._stub.ResumeWorkflow, request, mutating=True)
        return convert.settings_from_pb(response.settings)

    def set_max_active_executions(
        self, project: str, workflow: str, limit: int | None
    ) -> WorkflowSettings:
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit < 2**31
        ):
            raise InvalidArgumentError(
                f"max_active_executions must be a whole number >= 1 or None, got {limit!r}",
                field="max_active_executions",
            )
        request = build(
            lambda: s.SetMaxActiveExecutionsRequest(workflow=workflow, max_active_executions=limit)
        )
        response = self._rpc.unary(self._stub.SetMaxActiveExecutions, request, mutating=True)
        return convert.settings_from_pb(response.settings)

    def get_workflow_settings(self, project: str, workflow: str) -> WorkflowSettings:
        request = build(lambda: s.GetWorkflowSettingsRequest(workflow=workflow))
        response = self._rpc.unary(self._stub.GetWorkflowSettings, request, mutating=False)
        return convert.settings_from_pb(response.settings)

    def backfill_workflow(
        self, project: str, workflow: str, start: datetime, end: datetime
    ) -> list[TickResult]:
        request = build(
            lambda: s.BackfillWorkflowRequest(
                workflow=workflow, start=convert.to_timestamp(start), end=convert.to_timestamp(end)
            )
        )
        response = self._rpc.unary(self._stub.BackfillWorkflow, request, mutating=True)
        return [convert.tick_from_pb(tick) for tick in response.ticks]

    # -- the executors' calls: server-side only ------------------------------------------------

    def add_effects_listener(self, listener: Callable[[Effects], None]) -> None:
        _server_only("add_effects_listener")

    def notify(self, effects: Effects) -> None:
        _server_only("notify")

    def take_commands(
        self,
        executor: str,
        *,
        limit: int = 100,
        taker: str | None = None,
        owner: AttemptOwner | None = None,
    ) -> list[JobCommand]:
        _server_only("take_commands")

    def complete_command(self, command_id: str) -> None:
        _server_only("complete_command")

    def get_command(self, command_id: str) -> JobCommand:
        _server_only("get_command")

    def list_commands(self, *, execution_id: int | None = None) -> list[JobCommand]:
        _server_only("list_commands")

    def wait_for_commands(
        self, timeout: float | None = None, *, executor: str = "local", member: str | None = None
    ) -> bool:
        _server_only("wait_for_commands")

    def wake(self, executor: str) -> None:
        _server_only("wake")

    def running_attempts(
        self, executor: str, *, owner: AttemptOwner | None = None
    ) -> list[JobCommand]:
        _server_only("running_attempts")
