"""One running execution as the scheduler sees it, and its end state (pure).

:class:`ExecutionView` bundles a locked execution with its plan and its job attempts;
:func:`outcome` decides, from that alone, whether the execution has ended (DESIGN.md
"Executions"):

* **FAILED** when no attempt is live (INIT / STARTING / RUNNING), no firing is queued for a
  busy job, and some job failed for good:
  its latest attempt FAILED and its retries are used up;
* **FINISHED** when no attempt is live and no firing is queued, every job has run at least
  once and the plan has no periodic rule;
* otherwise still **RUNNING** (``execution show`` then names what idle jobs wait on).

Retries count *consecutive* failed attempts of a job, so a periodic job that failed once after
many good runs still gets its retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tideflow.compiler.plan import PlanJob, WorkflowPlan
from tideflow.domain.metadata import JobExecution, WorkflowExecution
from tideflow.domain.rules import AnyOf, Periodic, Rule, RuleKind
from tideflow.domain.scheduling import QueuedFiring
from tideflow.domain.status import ExecutionStatus, JobAction, JobStatus

PLACEHOLDER = Rule(job=None, condition=AnyOf(()), action=JobAction.NONE)
"""Stands in for a rule another evaluator owns: it has no leaves, so it never changes or fires."""


def execution_rules(plan: WorkflowPlan) -> list[Rule]:
    """The plan's rules as an execution evaluates them (``start_on`` rules masked out).

    Masking, not dropping, keeps every rule at its plan index (timer events name the index).
    """
    return [PLACEHOLDER if r.kind == RuleKind.START_ON else r for r in plan.rules]


def trigger_rules(plan: WorkflowPlan) -> list[Rule]:
    """The plan's rules as the workflow's ``start_on`` triggers evaluate them."""
    return [r if r.kind == RuleKind.START_ON and r.job is None else PLACEHOLDER for r in plan.rules]


def initial_jobs(plan: WorkflowPlan) -> list[PlanJob]:
    """The jobs that start with the execution: those no START / RESTART rule targets."""
    started = {
        rule.job
        for rule in plan.rules
        if rule.job is not None and rule.action in (JobAction.START, JobAction.RESTART)
    }
    return [job for job in plan.jobs if job.name not in started]


def has_periodic(plan: WorkflowPlan) -> bool:
    """Whether any rule of the plan is a timer."""
    return any(isinstance(rule.condition, Periodic) for rule in plan.rules)


@dataclass
class ExecutionView:
    """A running execution, locked for the current transaction.

    Attributes:
        project: Its project.
        execution: The execution row.
        plan: The plan of its snapshot.
        attempts: By job, oldest first: its live attempts and its newest ``retries + 1``
            (all it has when it has fewer), kept current as the scheduler creates and moves
            attempts within the transaction. That is all a decision reads -- what runs, the
            latest attempt, the run of failures a retry counts -- and it keeps an event's cost
            flat in a long execution, which may hold one ended attempt per event.
        queued: The firings waiting for busy jobs, in start order (kept current too).
    """

    project: str
    execution: WorkflowExecution
    plan: WorkflowPlan
    attempts: dict[str, list[JobExecution]] = field(default_factory=dict)
    queued: list[QueuedFiring] = field(default_factory=list)

    @property
    def execution_id(self) -> int:
        """The execution's id."""
        return self.execution.execution_id

    def live(self, job: str) -> list[JobExecution]:
        """The attempts of ``job`` that have not ended."""
        return [a for a in self.attempts.get(job, []) if not a.status.is_terminal]

    def latest(self, job: str) -> JobExecution | None:
        """The newest attempt of ``job``, if it ever had one."""
        runs = self.attempts.get(job)
        return runs[-1] if runs else None

    def queue(self, job: str) -> list[QueuedFiring]:
        """The firings waiting for ``job``, first to start first."""
        return [firing for firing in self.queued if firing.job == job]

    def record(self, attempt: JobExecution) -> None:
        """Remember a new or changed attempt."""
        runs = self.attempts.setdefault(attempt.job, [])
        for index, known in enumerate(runs):
            if known.job_execution_id == attempt.job_execution_id:
                runs[index] = attempt
                return
        runs.append(attempt)
        runs.sort(key=lambda a: a.attempt)


def consecutive_failures(attempts: Sequence[JobExecution]) -> int:
    """How many of the newest attempts FAILED in a row."""
    count = 0
    for attempt in reversed(attempts):
        if attempt.status is not JobStatus.FAILED:
            break
        count += 1
    return count


def failed_for_good(job: PlanJob, attempts: Sequence[JobExecution]) -> bool:
    """Whether ``job``'s latest attempt FAILED with no retry left."""
    return bool(attempts) and consecutive_failures(attempts) > job.retries


def outcome(view: ExecutionView) -> ExecutionStatus:
    """The status the execution should have now (see the module docstring)."""
    if view.queued or any(view.live(job.name) for job in view.plan.jobs):
        return ExecutionStatus.RUNNING
    if any(failed_for_good(job, view.attempts.get(job.name, [])) for job in view.plan.jobs):
        return ExecutionStatus.FAILED
    if all(view.attempts.get(job.name) for job in view.plan.jobs) and not has_periodic(view.plan):
        return ExecutionStatus.FINISHED
    return ExecutionStatus.RUNNING
