"""A scheduler on a store with a manual clock, and a fake executor driving job statuses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import tideflow as tide
from tideflow.domain.metadata import JobExecution, WorkflowExecution
from tideflow.domain.status import JobStatus
from tideflow.metadata import ProjectService, WorkflowService
from tideflow.metadata.workflow import ExecutionService
from tideflow.notification.service import NotificationService
from tideflow.scheduler import crash
from tideflow.scheduler.actions import CONSUMER
from tideflow.scheduler.clock import ManualClock
from tideflow.scheduler.dispatcher import Dispatcher
from tideflow.scheduler.service import SchedulerService
from tideflow.scheduler.timer import TimerService
from tideflow.store import ALL_NAMESPACES, Store, commit_offset, last_offset


def noop(ctx: Any, inputs: Any) -> Any:
    return None


def jobs_workflow(name: str, *jobs: str, per_context: bool = False, **job_options: Any) -> Any:
    """A workflow builder with one no-op job per name (``retries`` etc. apply to all)."""
    wf = tide.workflow(name, per_context=per_context)
    with wf:
        for job in jobs:
            with tide.job(job, **job_options):
                tide.user_node(processor=noop, name=f"{job}_node")
    return wf


@dataclass
class Env:
    """Everything a scheduler test needs, on one store and project."""

    store: Store
    project: str
    clock: ManualClock
    service: SchedulerService
    dispatcher: Dispatcher
    timers: TimerService
    workflows: WorkflowService
    executions: ExecutionService
    events: NotificationService
    submitted: dict[str, int] = field(default_factory=dict)

    def submit(self, wf: Any) -> int:
        plan = tide.compile(wf)
        snapshot = self.workflows.create_snapshot(self.project, plan.workflow, plan=plan.to_json())
        self.submitted[plan.workflow] = snapshot.snapshot_id
        return snapshot.snapshot_id

    def start(self, workflow: str, **kwargs: Any) -> WorkflowExecution:
        return self.service.start_execution(self.project, workflow, **kwargs)

    def send(self, key: str, value: str = "v", *, event_type: str = "T", **context: Any) -> int:
        event = self.events.send(
            self.project, key, value, event_type=event_type, context=context or None
        )
        return event.offset

    def run(self) -> int:
        """Let the dispatcher handle everything committed so far."""
        return self.dispatcher.drain()

    def jobs(self, execution_id: int) -> list[JobExecution]:
        return self.executions.list_job_executions(self.project, execution_id)

    def attempts(self, execution_id: int) -> list[tuple[str, int, str]]:
        return sorted((j.job, j.attempt, j.status.value) for j in self.jobs(execution_id))

    def latest(self, execution_id: int, job: str) -> JobExecution:
        return max((j for j in self.jobs(execution_id) if j.job == job), key=lambda j: j.attempt)

    def move(self, execution_id: int, job: str, *statuses: JobStatus | str) -> None:
        """Act as the executor: move the job's latest attempt through ``statuses``."""
        attempt = self.latest(execution_id, job)
        for status in statuses:
            self.executions.set_job_status(self.project, attempt.job_execution_id, status)

    def run_job(self, execution_id: int, job: str, end: str = "FINISHED") -> None:
        self.move(execution_id, job, "STARTING", "RUNNING", end)
        self.run()

    def status(self, execution_id: int) -> str:
        return self.service.get_execution(self.project, execution_id).status.value

    def actions(self, execution_id: int) -> list[tuple[str | None, str, str, int | None]]:
        return [
            (a.job, a.action.value, a.rule, a.event_offset)
            for a in self.service.list_actions(self.project, execution_id)
        ]

    def command_ids(self, execution_id: int) -> list[str]:
        return sorted(c.command_id for c in self.service.list_commands(execution_id=execution_id))


@pytest.fixture
def env(store: Store, project: str) -> Iterator[Env]:
    ProjectService(store).create_project(project)
    clock = ManualClock()
    service = SchedulerService(store, clock=clock)
    events = NotificationService(store)
    # The store is shared by the session: start this test's dispatcher after older events,
    # without handling them (other suites' workflows may hold plans no scheduler can run).
    store.run(lambda c: commit_offset(c, ALL_NAMESPACES, CONSUMER, last_offset(c)))
    dispatcher = Dispatcher(store, clock, service.plans, service.config, on_effects=service.notify)
    while service.take_commands("local", limit=1000):  # and before older commands
        pass
    timers = TimerService(store, clock, service.plans, service.config)
    yield Env(
        store,
        project,
        clock,
        service,
        dispatcher,
        timers,
        WorkflowService(store),
        ExecutionService(store),
        events,
    )
    crash.set_hook(None)
    # The store outlives the test: end its executions so their timers never fire in another.
    for execution in service.list_executions(project, status="RUNNING", limit=1000):
        service.stop_execution(project, execution.execution_id)
    events.close()
    service.close()
