"""Apply scheduler actions to executions, inside the caller's transaction.

Both the API (:class:`~tideflow.scheduler.service.SchedulerService`) and the dispatcher act
through :class:`Actor`, so a job started by a user and one started by a rule go through the same
steps: a new attempt row (INIT), a START command with a deterministic id, and an action record
naming the rule and the event offset.

Choices (documented in docs/scheduler.md):

* **START of a job that has a live attempt** (INIT / STARTING / RUNNING) never starts a second
  one beside it. What a rule's firing does then is the rule's ``on_busy`` (:meth:`Actor.fire`):
  ``skip`` records ``(skipped: attempt N is RUNNING)`` after the rule; ``queue`` writes a
  ``queued_firing`` row (at most ``max_queued`` per rule, more are recorded as skipped) and
  ``latest`` keeps one per rule, the newest; ``restart`` restarts the job. A user's start and
  the jobs of a new execution skip.
* **Queued firings start** when the job's attempt ends: the dispatcher, handling the attempt's
  terminal ``JOB_STATUS_CHANGED`` event, starts the first waiting firing (after a retry, if the
  attempt gets one) with its own triggers, in the transaction that consumes the event -- so a
  queue is durable and each firing starts exactly once, like any other decision. (Not in the
  transaction that records the end: that is the executor's, which knows no plans or rules.)
  A STOP of the job drops its queue.
* **STOP** of a live attempt whose START command no executor has taken yet withdraws the START
  and moves the attempt to STOPPED at once; otherwise it issues a STOP command.
* **RESTART** stops the live attempts as above and issues the START of attempt n+1 in the same
  transaction; the outbox does not hand that START out while an earlier attempt of the job is
  still live, so the new attempt never runs beside the old one.
* **Retries**: a FAILED attempt whose job has retries left (consecutive failures <= retries)
  gets attempt n+1 whose START is not due before ``backoff x 2**(failures-1)`` seconds
  (capped) on the scheduler's clock. It keeps the failed attempt's triggers: a validate job
  retried still judges the version it was started for.
* **Triggers**: the events a rule fired on (``Decision.trigger_offsets``) are written to the
  attempt row it creates (``job_execution.trigger_offsets``) and to the action record, in the
  transaction that decides -- so they are exactly-once like the decision itself. Jobs that
  start with an execution a ``start_on`` rule launched get that rule's events; a user's start,
  stop or restart has none.
* Events the actor causes (JOB_STATUS_CHANGED of a withdrawn attempt) are appended by the
  caller at the end of its transaction (:attr:`Effects.events`), after every row lock.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.events import (
    EXECUTION_STATUS_CHANGED,
    JOB_STATUS_CHANGED,
    Event,
    job_event_key,
)
from tideflow.domain.limits import dump_json
from tideflow.domain.metadata import JobExecution, WorkflowExecution
from tideflow.domain.rules import OnBusy, Periodic, Rule, RuleKind, event_matches
from tideflow.domain.scheduling import CommandAction, JobCommand, QueuedFiring, command_id
from tideflow.domain.status import ExecutionStatus, JobAction, JobStatus
from tideflow.errors import FailedPreconditionError, IllegalTransitionError, NotFoundError
from tideflow.scheduler import crash
from tideflow.scheduler.clock import Clock
from tideflow.scheduler.execution import (
    ExecutionView,
    consecutive_failures,
    initial_jobs,
    outcome,
)
from tideflow.scheduler.periodic import next_fire_after
from tideflow.store import ALL_NAMESPACES, committed_offset
from tideflow.store.repositories.outbox import OutboxRepository
from tideflow.store.repositories.scheduler import SchedulerRepository, WorkflowRef
from tideflow.store.repositories.workflow import SNAPSHOT, WorkflowRepository
from tideflow.store.types import utcnow

log = logging.getLogger(__name__)

SENDER = "scheduler"
CONSUMER = "scheduler"
"""The dispatcher's consumer name (namespace ``*``)."""
START_OF_EXECUTION = "start of execution"
USER_REQUEST = "user request"
Fence = Callable[[Connection], None]
"""Called first in a leader-only transaction; raises to keep it from committing."""


@dataclass(frozen=True)
class SchedulerConfig:
    """Tunables of the scheduler.

    Attributes:
        retry_backoff_seconds: The wait before the first retry; doubled for each further one.
        max_retry_backoff_seconds: The longest wait before a retry.
        batch_size: How many events the dispatcher handles in one transaction.
        timer_batch_size: How many due timers fire in one transaction.
    """

    retry_backoff_seconds: float = 1.0
    max_retry_backoff_seconds: float = 300.0
    batch_size: int = 100
    timer_batch_size: int = 100


@dataclass
class Effects:
    """What a transaction did that someone must hear about once it commits."""

    events: list[Event] = field(default_factory=list)
    commands: set[str] = field(default_factory=set)
    """The executors that were issued commands (only they are woken)."""
    timers: int = 0
    actions: list[dict[str, Any]] = field(default_factory=list)
    """The actions recorded (project, workflow, execution_id, job, action, rule, event_offset),
    logged once the transaction commits (:meth:`SchedulerService.notify`)."""


class PlanCache:
    """Parsed plans by snapshot id (snapshots never change, so entries never go stale)."""

    def __init__(self, size: int = 256) -> None:
        self._plans: OrderedDict[int, WorkflowPlan] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, connection: Connection, snapshot_id: int) -> WorkflowPlan:
        """The plan of snapshot ``snapshot_id``."""
        with self._lock:
            plan = self._plans.get(snapshot_id)
            if plan is not None:
                self._plans.move_to_end(snapshot_id)
                return plan
        text = connection.execute(
            select(SNAPSHOT.c.plan).where(SNAPSHOT.c.id == snapshot_id)
        ).scalar()
        if text is None:
            raise NotFoundError("snapshot", snapshot_id)
        plan = WorkflowPlan.from_json(text)
        with self._lock:
            self._plans[snapshot_id] = plan
            while len(self._plans) > self._size:
                self._plans.popitem(last=False)
        return plan


class Actor:
    """Scheduler actions on one connection (one transaction).

    Args:
        connection: The transaction's connection.
        clock: The scheduler's clock (timers, backoff, due commands).
        plans: The plan cache.
        config: Tunables.
        stage: The crash-point prefix of the caller (``dispatch``, ``start``, ``stop``).
    """

    def __init__(
        self,
        connection: Connection,
        clock: Clock,
        plans: PlanCache,
        config: SchedulerConfig,
        *,
        stage: str = "dispatch",
    ) -> None:
        self.c = connection
        self.stage = stage
        self.clock = clock
        self.plans = plans
        self.config = config
        self.effects = Effects()
        self.workflows = WorkflowRepository(connection)
        self.scheduling = SchedulerRepository(connection)
        self.outbox = OutboxRepository(connection)

    # -- executions ----------------------------------------------------------------------------

    def view(self, project: str, execution_id: int) -> ExecutionView:
        """Lock execution ``execution_id`` of ``project`` and load its plan and recent attempts.

        Raises:
            NotFoundError: No such execution in the project.
        """
        execution = self.workflows.get_execution(project, execution_id, lock=True)
        plan = self.plans.get(self.c, execution.snapshot_id)
        attempts: dict[str, list[JobExecution]] = {}
        # Not every attempt: the live ones and, per job, as many of the newest as its retries
        # can count (see ExecutionView.attempts).
        newest = {job.name: job.retries + 1 for job in plan.jobs}
        for attempt in self.workflows.recent_jobs(execution, newest):
            attempts.setdefault(attempt.job, []).append(attempt)
        for runs in attempts.values():
            runs.sort(key=lambda a: a.attempt)
        queued = self.scheduling.queued(execution_id)
        return ExecutionView(project, execution, plan, attempts, queued)

    def launch(
        self,
        workflow: WorkflowRef,
        *,
        params: Mapping[str, Any] | None,
        context: str | None,
        rule: str,
        event_offset: int | None,
        triggers: Sequence[int] = (),
    ) -> ExecutionView:
        """Start an execution of ``workflow`` (locked by the caller) on its latest snapshot.

        Its initial jobs are started for ``triggers`` (the events of the ``start_on`` rule).

        Raises:
            FailedPreconditionError: The workflow is paused, at its cap of running executions,
                or has no snapshot.
        """
        if workflow.latest_snapshot_id is None:
            raise FailedPreconditionError(f"workflow {workflow.name!r} has no submitted snapshot")
        settings = self.scheduling.settings(workflow.workflow_id)
        if settings.paused:
            raise FailedPreconditionError(
                f"workflow {workflow.name!r} is paused: it starts no new executions "
                f"(resume it with `tideflow workflow resume {workflow.name}`)"
            )
        if context is not None:
            source = self.plans.get(self.c, workflow.latest_snapshot_id).per_context
            ended = (
                self.scheduling.ended_in_context(workflow.workflow_id, context)
                if source is not None and source.once
                else None
            )
            if ended is not None:
                raise FailedPreconditionError(
                    f"workflow {workflow.name!r} runs once per context, and context "
                    f"{context!r} already ran in execution {ended}"
                )
        cap = settings.max_active_executions
        if cap is not None and self.scheduling.running_count(workflow.workflow_id) >= cap:
            raise FailedPreconditionError(
                f"workflow {workflow.name!r} already has {cap} running execution(s), its "
                "max_active_executions; stop one or raise the limit"
            )
        values = {
            "status": ExecutionStatus.RUNNING.value,
            "params": dump_json(params, "params"),
            "context": context,
            "start_time": utcnow(),
            "end_time": None,
        }
        created = self.workflows.create_execution(
            workflow.project, workflow.name, workflow.latest_snapshot_id, values
        )
        view = self.view(workflow.project, created.execution_id)
        plan = view.plan
        keys = {
            leaf.key
            for r in plan.rules
            if r.kind != RuleKind.START_ON and not isinstance(r.condition, Periodic)
            for leaf in event_matches(r.condition)
        }
        self.scheduling.add_routes(view.execution_id, workflow.project, keys)
        now = self.clock.now()
        for index, r in enumerate(plan.rules):
            if isinstance(r.condition, Periodic):
                self.scheduling.add_timer(
                    view.execution_id, index, next_fire_after(r.condition, now)
                )
                self.effects.timers += 1
        for job in initial_jobs(plan):
            self.start_job(view, job.name, rule=rule, event_offset=event_offset, triggers=triggers)
        self.settle(view)
        return view

    def refuse_start(
        self,
        execution_id: int,
        *,
        rule: str,
        event_offset: int,
        triggers: Sequence[int] = (),
    ) -> None:
        """Record a ``start_on`` firing that starts nothing on ``execution_id`` (ended).

        ``once_per_context``: the context already ran there, so that is where ``tideflow
        execution show`` explains the refusal.
        """
        self.workflows.insert_action(
            {
                "execution_id": execution_id,
                "job": None,
                "action": JobAction.START.value,
                "rule": rule,
                "event_offset": event_offset,
                "time": utcnow(),
                "trigger_offsets": _offsets(triggers),
            }
        )
        self.effects.actions.append(
            {
                "execution_id": execution_id,
                "action": JobAction.START.value,
                "rule": rule,
                "event_offset": event_offset,
            }
        )

    def stop_execution(
        self,
        view: ExecutionView,
        *,
        rule: str,
        event_offset: int | None,
        triggers: Sequence[int] = (),
    ) -> None:
        """Stop every live attempt and end the execution as STOPPED.

        Raises:
            IllegalTransitionError: The execution has already ended.
        """
        self._require_running(view, ExecutionStatus.STOPPED)
        for job in view.plan.jobs:
            for attempt in view.live(job.name):
                self._stop_attempt(view, attempt)
        self._record(view, None, JobAction.STOP, rule, event_offset, triggers)
        self._end(view, ExecutionStatus.STOPPED)

    def settle(self, view: ExecutionView, seen_offset: int | None = None) -> ExecutionStatus:
        """End the execution if :func:`~tideflow.scheduler.execution.outcome` says it ended.

        The attempts are read as they are now, which may be ahead of the event being handled
        (a job already FAILED whose event -- and so its retry -- is still to come). So the
        execution only ends when no job-status event of it lies beyond ``seen_offset`` (the
        event being handled; default: the dispatcher's committed offset); that later event
        settles it instead.
        """
        if view.execution.status is not ExecutionStatus.RUNNING:
            return view.execution.status
        status = outcome(view)
        if status is ExecutionStatus.RUNNING:
            return status
        if seen_offset is None:
            seen_offset = committed_offset(self.c, ALL_NAMESPACES, CONSUMER)
        keys = [job_event_key(view.execution.workflow, job.name) for job in view.plan.jobs]
        if self.scheduling.has_unseen_job_events(
            view.project, keys, view.execution_id, seen_offset
        ):
            return ExecutionStatus.RUNNING
        self._end(view, status)
        return status

    def _end(self, view: ExecutionView, status: ExecutionStatus) -> None:
        end = utcnow()
        self.workflows.update_execution(
            view.execution_id, {"status": status.value, "end_time": end}
        )
        self.scheduling.end_execution(view.execution_id)
        # Announced like a job's status change, so a watcher (`tideflow run`, a listener)
        # learns of the end without polling. It names the execution, so it reaches no rule.
        self.effects.events.append(
            Event(
                key=view.execution.workflow,
                value=status.value,
                event_type=EXECUTION_STATUS_CHANGED,
                sender=SENDER,
                namespace=view.project,
                context={
                    "execution_id": view.execution_id,
                    "previous": view.execution.status.value,
                },
            )
        )
        view.execution = _replace_execution(view.execution, status, end)
        crash.reach(f"{self.stage}.after_execution_end")

    @staticmethod
    def _require_running(view: ExecutionView, wanted: ExecutionStatus) -> None:
        if view.execution.status is not ExecutionStatus.RUNNING:
            raise IllegalTransitionError(
                f"workflow execution {view.execution_id}",
                view.execution.status.value,
                wanted.value,
            )

    # -- jobs ----------------------------------------------------------------------------------

    def act(
        self,
        view: ExecutionView,
        job: str,
        action: JobAction,
        *,
        rule: str,
        event_offset: int | None,
        triggers: Sequence[int] = (),
    ) -> JobExecution | None:
        """Apply ``action`` to ``job``; return the attempt it started, if it started one.

        ``triggers``: the offsets of the events the rule fired on (the new attempt's).
        """
        if action is JobAction.START:
            return self.start_job(
                view, job, rule=rule, event_offset=event_offset, triggers=triggers
            )
        if action is JobAction.STOP:
            self.stop_job(view, job, rule=rule, event_offset=event_offset, triggers=triggers)
            return None
        if action is JobAction.RESTART:
            return self.restart_job(
                view, job, rule=rule, event_offset=event_offset, triggers=triggers
            )
        self._record(view, job, JobAction.NONE, rule, event_offset, triggers)
        return None

    def fire(
        self,
        view: ExecutionView,
        rule: Rule,
        rule_index: int,
        *,
        described: str,
        event_offset: int,
        triggers: Sequence[int] = (),
    ) -> None:
        """A job rule fired on event ``event_offset``: act, as its ``on_busy`` says if busy.

        ``described``: the rule as the action records name it.
        """
        job = rule.job
        assert job is not None  # only job rules reach here
        busy = rule.busy
        live = view.live(job)
        waiting = view.queue(job)
        if busy is None or busy is OnBusy.SKIP or (not live and not waiting):
            self.act(
                view, job, rule.action, rule=described, event_offset=event_offset, triggers=triggers
            )
            return
        if busy is OnBusy.RESTART:
            if live:
                note = f"{described} (on_busy restart: attempt {live[-1].attempt} was {live[-1].status.value})"
                self.restart_job(view, job, rule=note, event_offset=event_offset, triggers=triggers)
            else:
                self.start_job(
                    view, job, rule=described, event_offset=event_offset, triggers=triggers
                )
            return
        self._queue(view, job, rule, rule_index, described, event_offset, triggers)
        if not live:
            # The attempt has ended but its status event is still to come (it starts the
            # queue then) -- unless it was handled already: start the first firing now.
            self.start_queued(view, job, reason="the job is idle", seen_offset=event_offset)

    def _queue(
        self,
        view: ExecutionView,
        job: str,
        rule: Rule,
        rule_index: int,
        described: str,
        event_offset: int,
        triggers: Sequence[int],
    ) -> None:
        live = view.live(job)
        waiting = view.queue(job)
        why = (
            f"attempt {live[-1].attempt} is {live[-1].status.value}"
            if live
            else f"{len(waiting)} firing(s) queued before it"
        )
        mine = [firing for firing in waiting if firing.rule_index == rule_index]
        offsets = _offsets(triggers)
        if rule.busy is OnBusy.LATEST and mine:
            old = mine[-1]
            self.scheduling.replace_queued(old.queue_id, described, event_offset, offsets)
            view.queued[view.queued.index(old)] = replace(
                old, rule=described, event_offset=event_offset, trigger_offsets=tuple(offsets or ())
            )
            note = f"{described} (queued, replacing the firing of event {old.event_offset}: {why})"
        elif len(mine) >= rule.queue_limit:
            note = f"{described} (skipped: {len(mine)} firings already queued, its max_queued)"
        else:
            view.queued.append(
                self.scheduling.enqueue(
                    view.execution_id, job, rule_index, described, event_offset, offsets
                )
            )
            note = f"{described} (queued: {why})"
        self._record(view, job, JobAction.START, note, event_offset, triggers)

    def start_queued(
        self,
        view: ExecutionView,
        job: str,
        *,
        reason: str,
        seen_offset: int | None = None,
    ) -> JobExecution | None:
        """Start the first firing queued for ``job`` if the job is idle; the attempt, if any.

        With ``seen_offset``, not while a status event of the job lies beyond it: that event
        (the end of its last attempt, perhaps with a retry) starts the queue when handled.
        """
        waiting = view.queue(job)
        if not waiting or view.live(job):
            return None
        if seen_offset is not None and self.scheduling.has_unseen_job_events(
            view.project,
            [job_event_key(view.execution.workflow, job)],
            view.execution_id,
            seen_offset,
        ):
            return None
        head = waiting[0]
        self.scheduling.dequeue([head.queue_id])
        view.queued.remove(head)
        attempt = self._new_attempt(view, job, None, head.trigger_offsets)
        note = f"{head.rule} (from the queue: {reason})"
        self._record(view, job, JobAction.START, note, head.event_offset, head.trigger_offsets)
        return attempt

    def _drop_queue(self, view: ExecutionView, job: str, why: str) -> None:
        dropped: list[QueuedFiring] = view.queue(job)
        self.scheduling.dequeue(firing.queue_id for firing in dropped)
        for firing in dropped:
            view.queued.remove(firing)
            note = f"{firing.rule} (dropped from the queue: {why})"
            self._record(
                view, job, JobAction.START, note, firing.event_offset, firing.trigger_offsets
            )

    def start_job(
        self,
        view: ExecutionView,
        job: str,
        *,
        rule: str,
        event_offset: int | None,
        not_before: datetime | None = None,
        triggers: Sequence[int] = (),
    ) -> JobExecution | None:
        """Start a new attempt of ``job`` unless one is live (then record it as skipped)."""
        live = view.live(job)
        if live:
            note = f"{rule} (skipped: attempt {live[-1].attempt} is {live[-1].status.value})"
            self._record(view, job, JobAction.START, note, event_offset, triggers)
            return None
        attempt = self._new_attempt(view, job, not_before, triggers)
        self._record(view, job, JobAction.START, rule, event_offset, triggers)
        return attempt

    def stop_job(
        self,
        view: ExecutionView,
        job: str,
        *,
        rule: str,
        event_offset: int | None,
        triggers: Sequence[int] = (),
    ) -> None:
        """Stop every live attempt of ``job`` (recorded as skipped when none is live).

        The firings queued for it are dropped (each recorded): a stopped job stays stopped.
        """
        self._drop_queue(view, job, "the job was stopped")
        live = view.live(job)
        if not live:
            note = f"{rule} (skipped: not running)"
            self._record(view, job, JobAction.STOP, note, event_offset, triggers)
            return
        for attempt in live:
            self._stop_attempt(view, attempt)
        self._record(view, job, JobAction.STOP, rule, event_offset, triggers)

    def restart_job(
        self,
        view: ExecutionView,
        job: str,
        *,
        rule: str,
        event_offset: int | None,
        triggers: Sequence[int] = (),
    ) -> JobExecution:
        """Stop the live attempts of ``job`` and start the next one after them."""
        for attempt in view.live(job):
            self._stop_attempt(view, attempt)
        started = self._new_attempt(view, job, None, triggers)
        self._record(view, job, JobAction.RESTART, rule, event_offset, triggers)
        return started

    def retry(self, view: ExecutionView, job: str, failed: int, event_offset: int) -> bool:
        """Retry ``job`` after attempt ``failed`` FAILED; whether it did.

        Only when that attempt is still the job's latest and its retries are not used up.
        """
        plan_job = view.plan.job(job)
        latest = view.latest(job)
        if latest is None or latest.attempt != failed or latest.status is not JobStatus.FAILED:
            return False
        failures = consecutive_failures(view.attempts[job])
        if failures > plan_job.retries:
            return False
        delay = min(
            self.config.retry_backoff_seconds * 2 ** (failures - 1),
            self.config.max_retry_backoff_seconds,
        )
        not_before = self.clock.now() + timedelta(seconds=delay)
        self._new_attempt(view, job, not_before, latest.trigger_offsets)
        rule = (
            f"retry {failures} of {plan_job.retries}: attempt {failed} FAILED (backoff {delay:g}s)"
        )
        self._record(view, job, JobAction.START, rule, event_offset, latest.trigger_offsets)
        return True

    def _new_attempt(
        self,
        view: ExecutionView,
        job: str,
        not_before: datetime | None,
        triggers: Sequence[int] = (),
    ) -> JobExecution:
        plan_job = view.plan.job(job)
        latest = view.latest(job)
        number = 1 if latest is None else latest.attempt + 1
        attempt = self.workflows.create_job(
            view.execution,
            {
                "job": job,
                "attempt": number,
                "status": JobStatus.INIT.value,
                "create_time": utcnow(),
                "trigger_offsets": _offsets(triggers),
            },
        )
        view.record(attempt)
        crash.reach(f"{self.stage}.after_job_execution")
        self._issue(view, attempt, CommandAction.START, plan_job.platform, not_before)
        return attempt

    def _stop_attempt(self, view: ExecutionView, attempt: JobExecution) -> None:
        start_id = command_id(view.execution_id, attempt.job, attempt.attempt, CommandAction.START)
        if attempt.status is JobStatus.INIT and self.outbox.cancel_pending(start_id):
            # No executor has seen it: withdraw it, and the attempt ends here.
            self._move(view, attempt, JobStatus.STOPPED)
            return
        self._issue(view, attempt, CommandAction.STOP, view.plan.job(attempt.job).platform, None)

    def _move(self, view: ExecutionView, attempt: JobExecution, status: JobStatus) -> None:
        now = utcnow()
        values: dict[str, Any] = {"status": status.value}
        if status.is_terminal:
            values["end_time"] = now
        if not self.workflows.swap_job_status(
            attempt.job_execution_id, attempt.status.value, values
        ):
            raise IllegalTransitionError(
                f"job {attempt.workflow}.{attempt.job} (execution {attempt.execution_id}, "
                f"attempt {attempt.attempt})",
                attempt.status.value,
                status.value,
            )
        self.effects.events.append(
            Event(
                key=job_event_key(attempt.workflow, attempt.job),
                value=status.value,
                event_type=JOB_STATUS_CHANGED,
                sender=SENDER,
                namespace=view.project,
                context={
                    "execution_id": attempt.execution_id,
                    "attempt": attempt.attempt,
                    "previous": attempt.status.value,
                },
            )
        )
        view.record(_replace_status(attempt, status, now))

    def _issue(
        self,
        view: ExecutionView,
        attempt: JobExecution,
        action: CommandAction,
        executor: str,
        not_before: datetime | None,
    ) -> None:
        command = JobCommand(
            command_id=command_id(view.execution_id, attempt.job, attempt.attempt, action),
            project=view.project,
            workflow=view.execution.workflow,
            execution_id=view.execution_id,
            snapshot_id=view.execution.snapshot_id,
            job=attempt.job,
            attempt=attempt.attempt,
            job_execution_id=attempt.job_execution_id,
            action=action,
            executor=executor,
            not_before=not_before,
            create_time=utcnow(),
        )
        if self.outbox.issue(command):
            self.effects.commands.add(executor)
            crash.reach(f"{self.stage}.after_command")

    def _record(
        self,
        view: ExecutionView,
        job: str | None,
        action: JobAction,
        rule: str,
        event_offset: int | None,
        triggers: Sequence[int] = (),
    ) -> None:
        self.workflows.insert_action(
            {
                "execution_id": view.execution_id,
                "job": job,
                "action": action.value,
                "rule": rule,
                "event_offset": event_offset,
                "time": utcnow(),
                "trigger_offsets": _offsets(triggers),
            }
        )
        self.effects.actions.append(
            {
                "project": view.project,
                "workflow": view.execution.workflow,
                "execution_id": view.execution_id,
                "job": job,
                "action": action.value,
                "rule": rule,
                "event_offset": event_offset,
            }
        )


def _offsets(triggers: Sequence[int]) -> list[int] | None:
    """Trigger offsets as stored: a sorted JSON list, or NULL for none."""
    return sorted(set(triggers)) or None


def _replace_status(attempt: JobExecution, status: JobStatus, when: datetime) -> JobExecution:
    return replace(attempt, status=status, end_time=when if status.is_terminal else None)


def _replace_execution(
    execution: WorkflowExecution, status: ExecutionStatus, end: datetime
) -> WorkflowExecution:
    return replace(execution, status=status, end_time=end)
