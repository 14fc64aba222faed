"""The Scheduler Service's RPCs: workflow submission, executions, jobs, logs and settings.

Workflow RPCs go to :class:`~tideflow.metadata.WorkflowService`; execution, job, log and
settings RPCs to :class:`~tideflow.scheduler.service.SchedulerService` (the executors' outbox
calls have no RPC: executors run inside the server).

Submission is two calls: ``UploadCodePackage`` streams the zip (chunks, the declared SHA-256
in the first message) into the blob store -- to a temporary file, its member list checked
against the server's package limits before it is kept --, then ``SubmitWorkflow`` registers the snapshot,
reusing one with the same identity. Both are safe to retry: the blob is content-addressed and
the snapshot is deduplicated by identity (and the interceptor by request id).
``GetCodePackage`` checks the stored package against its hash before sending a byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tideflow.domain.status import ExecutionStatus
from tideflow.errors import FailedPreconditionError, InvalidArgumentError
from tideflow.metadata import WorkflowService
from tideflow.rpc import convert
from tideflow.rpc.call import check_execution, project
from tideflow.rpc.v1 import scheduler_pb2 as s
from tideflow.rpc.v1 import scheduler_pb2_grpc as g
from tideflow.scheduler.joblog import MAX_LOG_READ
from tideflow.scheduler.service import SchedulerService

CHUNK_BYTES = 1024 * 1024


def chunks(data: bytes, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """``data`` in pieces of at most ``size`` bytes (one empty piece for empty data)."""
    yield data[:size]
    for start in range(size, len(data), size):
        yield data[start : start + size]


class SchedulerServicer(g.SchedulerServiceServicer):
    """The Scheduler Service's RPCs; errors are mapped by the interceptor."""

    def __init__(
        self, workflows: WorkflowService, scheduler: SchedulerService | None = None
    ) -> None:
        self._workflows = workflows
        self._scheduler_service = scheduler

    @property
    def _scheduler(self) -> SchedulerService:
        if self._scheduler_service is None:
            raise FailedPreconditionError("this server runs no scheduler")
        return self._scheduler_service

    def SubmitWorkflow(
        self, request: s.SubmitWorkflowRequest, context: Any
    ) -> s.SubmitWorkflowResponse:
        submission = self._workflows.submit(
            project(),
            request.workflow,
            plan=request.plan_json,
            code_sha256=request.code_sha256,
            identity=request.identity,
        )
        return s.SubmitWorkflowResponse(
            snapshot=convert.snapshot_to_pb(submission.snapshot), reused=submission.reused
        )

    def UploadCodePackage(
        self, request_iterator: Iterator[s.UploadCodePackageRequest], context: Any
    ) -> s.UploadCodePackageResponse:
        messages = iter(request_iterator)
        first = next(messages, None)
        if first is None or not first.sha256:
            raise InvalidArgumentError(
                "the first UploadCodePackage message must carry the package's sha256",
                field="sha256",
            )

        def pieces() -> Iterator[bytes]:  # streamed to the blob store, never joined
            yield first.chunk
            for message in messages:
                yield message.chunk

        uri = self._workflows.upload_package_stream(project(), pieces(), sha256=first.sha256)
        return s.UploadCodePackageResponse(uri=uri)

    def GetCodePackage(
        self, request: s.GetCodePackageRequest, context: Any
    ) -> Iterator[s.GetCodePackageResponse]:
        sha256, pieces = self._workflows.stream_package(project(), request.snapshot_id)
        for index, chunk in enumerate(pieces):
            yield s.GetCodePackageResponse(sha256=sha256 if index == 0 else "", chunk=chunk)

    def GetWorkflow(self, request: s.GetWorkflowRequest, context: Any) -> s.GetWorkflowResponse:
        workflow = self._workflows.get_workflow(project(), request.name)
        return s.GetWorkflowResponse(workflow=convert.workflow_to_pb(workflow))

    def ListWorkflows(
        self, request: s.ListWorkflowsRequest, context: Any
    ) -> s.ListWorkflowsResponse:
        workflows = self._workflows.list_workflows(project())
        return s.ListWorkflowsResponse(workflows=[convert.workflow_to_pb(w) for w in workflows])

    def DeleteWorkflow(
        self, request: s.DeleteWorkflowRequest, context: Any
    ) -> s.DeleteWorkflowResponse:
        self._workflows.delete_workflow(project(), request.name)
        return s.DeleteWorkflowResponse()

    def GetSnapshot(self, request: s.GetSnapshotRequest, context: Any) -> s.GetSnapshotResponse:
        snapshot = self._workflows.get_snapshot(project(), request.snapshot_id)
        return s.GetSnapshotResponse(snapshot=convert.snapshot_to_pb(snapshot))

    def ListSnapshots(
        self, request: s.ListSnapshotsRequest, context: Any
    ) -> s.ListSnapshotsResponse:
        snapshots = self._workflows.list_snapshots(project(), request.workflow)
        return s.ListSnapshotsResponse(snapshots=[convert.snapshot_to_pb(x) for x in snapshots])

    # -- executions and jobs -------------------------------------------------------------------

    def StartWorkflowExecution(
        self, request: s.StartWorkflowExecutionRequest, context: Any
    ) -> s.StartWorkflowExecutionResponse:
        params = convert.from_json(request.params_json or "{}", "params")
        if not isinstance(params, dict):
            raise InvalidArgumentError("params must be a JSON object", field="params")
        execution = self._scheduler.start_execution(
            project(),
            request.workflow,
            params=params,
            context=convert.optional(request, "context"),
        )
        return s.StartWorkflowExecutionResponse(execution=convert.execution_to_pb(execution))

    def StopWorkflowExecution(
        self, request: s.StopWorkflowExecutionRequest, context: Any
    ) -> s.StopWorkflowExecutionResponse:
        execution = self._scheduler.stop_execution(project(), request.execution_id)
        return s.StopWorkflowExecutionResponse(execution=convert.execution_to_pb(execution))

    def GetWorkflowExecution(
        self, request: s.GetWorkflowExecutionRequest, context: Any
    ) -> s.GetWorkflowExecutionResponse:
        check_execution(request.execution_id)
        execution = self._scheduler.get_execution(project(), request.execution_id)
        return s.GetWorkflowExecutionResponse(execution=convert.execution_to_pb(execution))

    def ListWorkflowExecutions(
        self, request: s.ListWorkflowExecutionsRequest, context: Any
    ) -> s.ListWorkflowExecutionsResponse:
        executions = self._scheduler.list_executions(
            project(),
            workflow=convert.optional(request, "workflow"),
            status=convert.enum_from_pb(request.status, ExecutionStatus, "EXECUTION_STATUS"),
            limit=request.limit or 100,
        )
        return s.ListWorkflowExecutionsResponse(
            executions=[convert.execution_to_pb(x) for x in executions]
        )

    def ListJobExecutions(
        self, request: s.ListJobExecutionsRequest, context: Any
    ) -> s.ListJobExecutionsResponse:
        check_execution(request.execution_id)
        jobs = self._scheduler.list_job_executions(project(), request.execution_id)
        return s.ListJobExecutionsResponse(jobs=[convert.job_execution_to_pb(j) for j in jobs])

    def StopJob(self, request: s.StopJobRequest, context: Any) -> s.StopJobResponse:
        job = self._scheduler.stop_job(project(), request.execution_id, request.job)
        return s.StopJobResponse(job=None if job is None else convert.job_execution_to_pb(job))

    def RestartJob(self, request: s.RestartJobRequest, context: Any) -> s.RestartJobResponse:
        job = self._scheduler.restart_job(project(), request.execution_id, request.job)
        return s.RestartJobResponse(job=convert.job_execution_to_pb(job))

    def ListExecutionActions(
        self, request: s.ListExecutionActionsRequest, context: Any
    ) -> s.ListExecutionActionsResponse:
        check_execution(request.execution_id)
        actions = self._scheduler.list_actions(project(), request.execution_id)
        return s.ListExecutionActionsResponse(actions=[convert.action_to_pb(a) for a in actions])

    def GetWaitingOn(self, request: s.GetWaitingOnRequest, context: Any) -> s.GetWaitingOnResponse:
        waiting = self._scheduler.waiting_on(project(), request.execution_id)
        return s.GetWaitingOnResponse(
            jobs={job: s.WaitingRules(rules=rules) for job, rules in waiting.items()}
        )

    def GetJobLogs(self, request: s.GetJobLogsRequest, context: Any) -> s.GetJobLogsResponse:
        log = self._scheduler.read_job_log(
            project(),
            request.execution_id,
            request.job,
            attempt=convert.optional(request, "attempt"),
            after=request.after,
            tail=convert.optional(request, "tail"),
            limit=request.limit or MAX_LOG_READ,
        )
        return convert.job_log_to_pb(log)

    # -- workflow settings ---------------------------------------------------------------------

    def PauseWorkflow(
        self, request: s.PauseWorkflowRequest, context: Any
    ) -> s.PauseWorkflowResponse:
        settings = self._scheduler.pause_workflow(project(), request.workflow)
        return s.PauseWorkflowResponse(settings=convert.settings_to_pb(settings))

    def ResumeWorkflow(
        self, request: s.ResumeWorkflowRequest, context: Any
    ) -> s.ResumeWorkflowResponse:
        settings = self._scheduler.resume_workflow(project(), request.workflow)
        return s.ResumeWorkflowResponse(settings=convert.settings_to_pb(settings))

    def SetMaxActiveExecutions(
        self, request: s.SetMaxActiveExecutionsRequest, context: Any
    ) -> s.SetMaxActiveExecutionsResponse:
        settings = self._scheduler.set_max_active_executions(
            project(), request.workflow, convert.optional(request, "max_active_executions")
        )
        return s.SetMaxActiveExecutionsResponse(settings=convert.settings_to_pb(settings))

    def GetWorkflowSettings(
        self, request: s.GetWorkflowSettingsRequest, context: Any
    ) -> s.GetWorkflowSettingsResponse:
        settings = self._scheduler.get_workflow_settings(project(), request.workflow)
        return s.GetWorkflowSettingsResponse(settings=convert.settings_to_pb(settings))

    def BackfillWorkflow(
        self, request: s.BackfillWorkflowRequest, context: Any
    ) -> s.BackfillWorkflowResponse:
        start = convert.from_timestamp(request, "start")
        end = convert.from_timestamp(request, "end")
        if start is None or end is None:
            raise InvalidArgumentError(
                "a backfill needs a start and an end", field="start" if start is None else "end"
            )
        ticks = self._scheduler.backfill_workflow(project(), request.workflow, start, end)
        return s.BackfillWorkflowResponse(ticks=[convert.tick_to_pb(tick) for tick in ticks])
