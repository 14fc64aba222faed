"""``client.executions`` and ``client.jobs``: run workflows and act on their jobs.

Thin, project-scoped faces of :class:`~tideflow.scheduler.service.SchedulerService`, in-process
or remote alike (DESIGN.md "Client API"). Two calls are built here on top of the service:

- :meth:`Executions.wait` blocks until an execution ends. It listens for the execution's
  ``EXECUTION_STATUS_CHANGED`` event (committed with the end itself) after reading the log's
  head *before* looking at the execution, so an end between the look and the listen is never
  missed -- and nothing polls.
- :meth:`Jobs.follow_logs` yields an attempt's log as it grows, until the attempt has ended and
  its log is read to the end. A file growing has no event, so the log is read again every
  ``interval`` seconds; the job's ``JOB_STATUS_CHANGED`` events wake the follower at once, so
  the end is seen without waiting out the interval. Reads are by byte offset: nothing is
  yielded twice, and following survives a server restart (reads are retried).
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterator, Mapping
from typing import Any

from tideflow.domain.events import EXECUTION_STATUS_CHANGED, JOB_STATUS_CHANGED, job_event_key
from tideflow.domain.joblog import JobLog
from tideflow.domain.metadata import ExecutionAction, JobExecution, WorkflowExecution
from tideflow.domain.status import ExecutionStatus
from tideflow.errors import FailedPreconditionError, InvalidArgumentError
from tideflow.notification.filters import make_filter
from tideflow.notification.service import NotificationService
from tideflow.scheduler.service import SchedulerService

FOLLOW_INTERVAL = 0.25
"""Seconds between reads of a growing log while following it."""


def require_scheduler(service: SchedulerService | None) -> SchedulerService:
    """``service``, or an error saying this client has none."""
    if service is None:
        raise FailedPreconditionError("this client has no scheduler service")
    return service


class Executions:
    """Workflow executions of one project (see DESIGN.md "Client API")."""

    def __init__(
        self,
        service: SchedulerService | None,
        project: str,
        notifications: NotificationService,
    ) -> None:
        self._service = service
        self._project = project
        self._notifications = notifications

    @property
    def _scheduler(self) -> SchedulerService:
        return require_scheduler(self._service)

    def list(
        self,
        *,
        workflow: str | None = None,
        status: ExecutionStatus | str | None = None,
        limit: int = 100,
    ) -> builtins.list[WorkflowExecution]:
        """The newest executions first, optionally of one workflow and/or in one status."""
        return self._scheduler.list_executions(
            self._project, workflow=workflow, status=status, limit=limit
        )

    def get(self, execution_id: int) -> WorkflowExecution:
        """Execution ``execution_id``; raises :class:`~tideflow.errors.NotFoundError` naming it."""
        return self._scheduler.get_execution(self._project, execution_id)

    def stop(self, execution_id: int) -> WorkflowExecution:
        """Stop every live job and end the execution as STOPPED.

        Raises:
            NotFoundError: No such execution.
            IllegalTransitionError: It has already ended.
        """
        return self._scheduler.stop_execution(self._project, execution_id)

    def actions(self, execution_id: int) -> builtins.list[ExecutionAction]:
        """The actions taken in the execution, each with its rule and event offset, oldest first."""
        return self._scheduler.list_actions(self._project, execution_id)

    def waiting_on(self, execution_id: int) -> dict[str, builtins.list[str]]:
        """For each idle job of a running execution, the rules it waits on (empty once ended)."""
        return self._scheduler.waiting_on(self._project, execution_id)

    def wait(self, execution_id: int, *, timeout: float | None = None) -> WorkflowExecution:
        """Block until the execution ends or ``timeout`` seconds pass; return it as it is then.

        The returned execution is still RUNNING when the timeout passed.
        """
        head = self._notifications.latest_offset()
        execution = self.get(execution_id)
        if execution.status is not ExecutionStatus.RUNNING:
            return execution
        deadline = None if timeout is None else time.monotonic() + timeout
        listener = self._notifications.listen(
            self._project,
            make_filter(keys=[execution.workflow], event_types=[EXECUTION_STATUS_CHANGED]),
            after_offset=head,
        )
        with listener:
            while True:
                left = 3600.0 if deadline is None else deadline - time.monotonic()
                if left <= 0 or listener.closed:
                    return self.get(execution_id)
                for event in listener.poll(left):
                    if event.context.get("execution_id") == execution_id:
                        return self.get(execution_id)


class Jobs:
    """The jobs of workflow executions in one project."""

    def __init__(
        self,
        service: SchedulerService | None,
        project: str,
        notifications: NotificationService,
    ) -> None:
        self._service = service
        self._project = project
        self._notifications = notifications

    @property
    def _scheduler(self) -> SchedulerService:
        return require_scheduler(self._service)

    def list(self, execution_id: int) -> builtins.list[JobExecution]:
        """Every attempt of every job of the execution, in creation order."""
        return self._scheduler.list_job_executions(self._project, execution_id)

    def stop(self, execution_id: int, job: str) -> JobExecution | None:
        """Stop ``job``'s live attempts; return its latest attempt (``None``: it never ran).

        Raises:
            NotFoundError: No such execution or job.
            IllegalTransitionError: The execution has ended.
        """
        return self._scheduler.stop_job(self._project, execution_id, job)

    def restart(self, execution_id: int, job: str) -> JobExecution:
        """Stop ``job``'s live attempts and start its next attempt after them.

        Raises:
            NotFoundError: No such execution or job.
            IllegalTransitionError: The execution has ended.
        """
        return self._scheduler.restart_job(self._project, execution_id, job)

    def read_log(
        self,
        execution_id: int,
        job: str,
        *,
        attempt: int | None = None,
        after: int = 0,
        tail: int | None = None,
    ) -> JobLog:
        """One bounded read of an attempt's log (default: the latest attempt), with offsets."""
        return self._scheduler.read_job_log(
            self._project, execution_id, job, attempt=attempt, after=after, tail=tail
        )

    def logs(
        self,
        execution_id: int,
        job: str,
        *,
        attempt: int | None = None,
        tail: int | None = None,
    ) -> str:
        """The log of ``job`` (its latest attempt, or ``attempt``) as it is now.

        Args:
            execution_id: The execution.
            job: The job.
            attempt: Which attempt (1, 2 ...); the latest by default.
            tail: Only the last ``tail`` lines.

        Raises:
            NotFoundError: No such execution, job or attempt, or the job has not run yet.
            FailedPreconditionError: The log lies outside the server's Tideflow home.
        """
        log = self.read_log(execution_id, job, attempt=attempt, tail=tail)
        parts = [log.text]
        while log.after < log.size:  # longer than one read
            log = self.read_log(execution_id, job, attempt=log.attempt, after=log.after)
            if not log.text:
                break
            parts.append(log.text)
        return "".join(parts)

    def follow_logs(
        self,
        execution_id: int,
        job: str,
        *,
        attempt: int | None = None,
        tail: int | None = None,
        interval: float = FOLLOW_INTERVAL,
    ) -> Iterator[str]:
        """Yield the log of ``job`` as it is written, until its attempt ends (see the module).

        The attempt is fixed when following starts (the latest by default): a restart's new
        attempt has a log of its own.
        """
        if not isinstance(interval, int | float) or not interval > 0:
            raise InvalidArgumentError(f"interval must be > 0, got {interval!r}", field="interval")
        workflow = self._scheduler.get_execution(self._project, execution_id).workflow
        head = self._notifications.latest_offset()
        log = self.read_log(execution_id, job, attempt=attempt, tail=tail)
        listener = self._notifications.listen(
            self._project,
            make_filter(keys=[job_event_key(workflow, job)], event_types=[JOB_STATUS_CHANGED]),
            after_offset=head,
        )
        with listener:
            while True:
                if log.text:
                    yield log.text
                if log.complete:
                    return
                if log.after >= log.size:  # caught up: wait for more, or for the end
                    listener.poll(interval)
                log = self.read_log(execution_id, job, attempt=log.attempt, after=log.after)


def start(
    name: str, params: Mapping[str, Any] | None = None, *, context: str | None = None
) -> WorkflowExecution:
    """``tide.start(name, params=...)``: start an execution with the default client.

    Raises:
        FailedPreconditionError: No default client (call ``tide.init`` first), or the
            workflow is paused or at its ``max_active_executions``.
        NotFoundError: No such workflow, or it was never submitted.
    """
    from tideflow.client.default import get_default_client

    return get_default_client().workflows.start(name, params=params, context=context)


def stop(run: WorkflowExecution | int) -> WorkflowExecution:
    """``tide.stop(run)``: stop an execution (or execution id) with the default client.

    Raises:
        FailedPreconditionError: No default client: call ``tide.init`` first.
        IllegalTransitionError: The execution has already ended.
    """
    from tideflow.client.default import get_default_client

    execution_id = run.execution_id if isinstance(run, WorkflowExecution) else run
    return get_default_client().executions.stop(execution_id)
