"""SchedulerService: the API of executions, jobs and the outbox (for RPCs and executors).

User-facing calls are project-scoped; each is one transaction that locks what it changes (the
workflow to start an execution -- so ``max_active_executions`` holds under concurrency -- or
the execution to act on its jobs, as the dispatcher does), so a user's action and a rule's
action on one execution are serialised. The outbox calls (``take_commands`` ...) are for
executors, which serve every project.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection

from tideflow.domain.events import JOB_STATUS_CHANGED, Event
from tideflow.domain.joblog import JobLog
from tideflow.domain.limits import MAX_KEY_LENGTH, check_name, check_optional_text
from tideflow.domain.metadata import ExecutionAction, JobExecution, WorkflowExecution
from tideflow.domain.rules import describe_rule
from tideflow.domain.scheduling import AttemptOwner, JobCommand
from tideflow.domain.status import ExecutionStatus, JobStatus
from tideflow.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from tideflow.metadata.workflow import ExecutionService
from tideflow.notification.watchers import sqlite_probe
from tideflow.scheduler import crash
from tideflow.scheduler.actions import (
    START_OF_EXECUTION,
    USER_REQUEST,
    Actor,
    Effects,
    PlanCache,
    SchedulerConfig,
)
from tideflow.scheduler.clock import Clock, SystemClock
from tideflow.scheduler.execution import ExecutionView
from tideflow.scheduler.joblog import MAX_LOG_READ, check_read_arguments, log_path, read_log
from tideflow.scheduler.outbox import CommandSignal
from tideflow.scheduler.periodic import next_fire_after
from tideflow.scheduler.rules import RuleState, waiting_on
from tideflow.scheduler.schedule import ScheduleService, TickResult
from tideflow.store import Store, append_events
from tideflow.store.repositories.outbox import OutboxRepository
from tideflow.store.repositories.schedule import ScheduleRepository
from tideflow.store.repositories.scheduler import SchedulerRepository, WorkflowSettings
from tideflow.store.repositories.workflow import WorkflowRepository

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_TAKE = 1000


class SchedulerService:
    """Start and stop executions and jobs; hand job commands to executors.

    Args:
        store: The store.
        clock: The scheduler's clock (default: the system clock).
        config: Tunables.
        plans: A plan cache to share with the dispatcher.
        log_root: ``$TIDEFLOW_HOME`` of the executors: job logs are served from under it only
            (default: the environment's).
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        config: SchedulerConfig | None = None,
        plans: PlanCache | None = None,
        log_root: Path | None = None,
    ) -> None:
        self._store = store
        if log_root is None:
            from tideflow.settings import Settings

            log_root = Settings.from_env().home
        self.log_root = log_root
        self.clock = clock or SystemClock()
        self.config = config or SchedulerConfig()
        self.plans = plans or PlanCache()
        self.executions = ExecutionService(store)
        self.commands = CommandSignal()
        self._files = sqlite_probe(store)
        self._looked: dict[str, tuple[object, int, Any]] = {}
        self._effect_listeners: list[Callable[[Effects], None]] = []
        # An attempt's end may release the next attempt's START; a clock jump, a backoff.
        self.executions.add_job_end_listener(self.commands.notify_all)
        self.clock.add_listener(self.commands.notify_all)

    def close(self) -> None:
        """Release the waiters."""
        self.commands.close()

    def add_effects_listener(self, listener: Callable[[Effects], None]) -> None:
        """Call ``listener(effects)`` after each commit of this service (the timer wakes).

        The list is replaced, not changed in place, so that :meth:`notify` on another thread
        iterates a list no one mutates under it.
        """
        self._effect_listeners = [*self._effect_listeners, listener]

    def remove_effects_listener(self, listener: Callable[[Effects], None]) -> None:
        """Stop calling ``listener`` (a cluster member's scheduler stopping when it is deposed)."""
        self._effect_listeners = [x for x in self._effect_listeners if x != listener]

    def notify(self, effects: Effects) -> None:
        """Announce what a committed transaction did (commands for executors, new timers)."""
        for action in effects.actions:  # each with the rule and event behind it, at INFO
            offset = action["event_offset"]
            log.info(
                "action %s%s in execution %s: rule %s (%s)",
                action["action"],
                f" job {action['job']}" if action.get("job") else "",
                action["execution_id"],
                action["rule"],
                "no event" if offset is None else f"event offset {offset}",
                extra={k: v for k, v in action.items() if k != "action" and v is not None},
            )
        if effects.commands:
            self.commands.notify(effects.commands)
        if any(_ends_attempt(event) for event in effects.events):
            self.commands.notify_all()
        for listener in self._effect_listeners:
            listener(effects)

    def _act(self, work: Callable[[Actor], T], point: str) -> T:
        actor_of_last_try: list[Actor] = []

        def run(c: Connection) -> T:
            actor = Actor(c, self.clock, self.plans, self.config, stage=point)
            actor_of_last_try[:] = [actor]
            result = work(actor)
            if actor.effects.events:
                append_events(c, actor.effects.events)
            crash.reach(f"{point}.before_commit")
            return result

        result = self._store.run(run)
        crash.reach(f"{point}.after_commit")
        self.notify(actor_of_last_try[0].effects)
        return result

    # -- executions ----------------------------------------------------------------------------

    def start_execution(
        self,
        project: str,
        workflow: str,
        *,
        params: Mapping[str, Any] | None = None,
        context: str | None = None,
    ) -> WorkflowExecution:
        """Start an execution of ``workflow`` on its latest snapshot.

        In one transaction: the execution (RUNNING), its routes and timers, and for every job
        no START / RESTART rule targets, attempt 1 with its START command.

        Raises:
            NotFoundError: No such workflow, or it has no snapshot.
            FailedPreconditionError: The workflow is paused or at ``max_active_executions``.
        """
        check_optional_text(context, "context", MAX_KEY_LENGTH)

        def work(actor: Actor) -> WorkflowExecution:
            ref = actor.scheduling.workflow(project, workflow, lock=True)
            if ref.latest_snapshot_id is None:
                raise NotFoundError(
                    "snapshot", workflow, message=f"workflow {workflow!r} has no snapshot"
                )
            view = actor.launch(
                ref, params=params, context=context, rule=START_OF_EXECUTION, event_offset=None
            )
            return view.execution

        return self._act(work, "start")

    def stop_execution(self, project: str, execution_id: int) -> WorkflowExecution:
        """Stop every live job attempt and end the execution as STOPPED.

        Raises:
            NotFoundError: No such execution in the project.
            IllegalTransitionError: It has already ended.
        """

        def work(actor: Actor) -> WorkflowExecution:
            view = actor.view(project, execution_id)
            actor.stop_execution(view, rule=USER_REQUEST, event_offset=None)
            return view.execution

        return self._act(work, "stop")

    def stop_job(self, project: str, execution_id: int, job: str) -> JobExecution | None:
        """Stop the live attempts of ``job``; return its latest attempt (``None``: never ran).

        Raises:
            NotFoundError: No such execution, or its plan has no such job.
            IllegalTransitionError: The execution has ended.
        """

        def work(actor: Actor) -> JobExecution | None:
            view = self._running_view(actor, project, execution_id, job)
            actor.stop_job(view, job, rule=USER_REQUEST, event_offset=None)
            actor.settle(view)
            return view.latest(job)

        return self._act(work, "stop")

    def restart_job(self, project: str, execution_id: int, job: str) -> JobExecution:
        """Stop the live attempts of ``job`` and start its next attempt after them.

        Raises:
            NotFoundError: No such execution, or its plan has no such job.
            IllegalTransitionError: The execution has ended.
        """

        def work(actor: Actor) -> JobExecution:
            view = self._running_view(actor, project, execution_id, job)
            return actor.restart_job(view, job, rule=USER_REQUEST, event_offset=None)

        return self._act(work, "start")

    @staticmethod
    def _running_view(actor: Actor, project: str, execution_id: int, job: str) -> ExecutionView:
        check_name(job, "job name")
        view = actor.view(project, execution_id)
        if job not in {j.name for j in view.plan.jobs}:
            raise NotFoundError(
                "job",
                job,
                message=f"workflow {view.execution.workflow!r} (execution {execution_id}) has "
                f"no job {job!r}",
            )
        actor._require_running(view, ExecutionStatus.RUNNING)
        return view

    def get_execution(self, project: str, execution_id: int) -> WorkflowExecution:
        """Execution ``execution_id`` of the project."""
        return self.executions.get_execution(project, execution_id)

    def list_executions(
        self,
        project: str,
        *,
        workflow: str | None = None,
        status: ExecutionStatus | str | None = None,
        limit: int = 100,
    ) -> list[WorkflowExecution]:
        """The newest executions, optionally of one workflow and/or in one status."""
        return self.executions.list_executions(
            project, workflow=workflow, status=status, limit=limit
        )

    def list_job_executions(self, project: str, execution_id: int) -> list[JobExecution]:
        """Every attempt of every job of an execution, in creation order."""
        return self.executions.list_job_executions(project, execution_id)

    def list_actions(self, project: str, execution_id: int) -> list[ExecutionAction]:
        """The actions taken in an execution (with rule and event offset), oldest first."""
        return self.executions.list_actions(project, execution_id)

    def waiting_on(self, project: str, execution_id: int) -> dict[str, list[str]]:
        """For each idle job of a running execution, the rules it waits on (for ``show``).

        A rule is described by :func:`~tideflow.domain.rules.describe_rule`, followed by the
        event conditions that do not hold yet.
        """

        def work(c: Connection) -> dict[str, list[str]]:
            actor = Actor(c, self.clock, self.plans, self.config)
            execution = actor.workflows.get_execution(project, execution_id)
            if execution.status is not ExecutionStatus.RUNNING:
                return {}
            plan = self.plans.get(c, execution.snapshot_id)
            view = ExecutionView(project, execution, plan)
            # Only whether a job is live matters here: reading ended attempts (10,000s in a
            # long execution) would only cost time.
            for attempt in actor.workflows.list_jobs(project, execution_id, live=True):
                view.record(attempt)
            stored = actor.scheduling.rule_states(execution_id)
            result: dict[str, list[str]] = {}
            for index, rule in enumerate(plan.rules):
                if rule.job is None or view.live(rule.job):
                    continue
                state = RuleState.from_dict(stored.get(index, {}))
                missing = ", ".join(
                    f"{leaf.event_type} {leaf.key}={leaf.value or '*'}"
                    for leaf in waiting_on(rule, state)
                )
                text = describe_rule(rule) + (f" (waiting for {missing})" if missing else "")
                result.setdefault(rule.job, []).append(text)
            return result

        return self._store.run(work, write=False)

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
        """Read the log of one attempt of ``job`` (default: its latest).

        The attempt's status is read before the file, so ``complete`` is only set when the
        attempt had ended -- and so had written everything -- before the read began.

        Args:
            project: The project.
            execution_id: The execution.
            job: The job.
            attempt: Which attempt (1, 2 ...); the latest by default.
            after: Read from this byte offset (a follower passes the last ``after``).
            tail: Only the last ``tail`` lines (of what lies after ``after``).
            limit: At most this many bytes (up to 1 MiB).

        Raises:
            NotFoundError: No such execution, job or attempt, or the job has not run yet.
            FailedPreconditionError: The log lies outside the Tideflow home: not served.
            InvalidArgumentError: A negative offset, or a tail or limit out of range.
        """
        check_name(job, "job name")
        check_read_arguments(after, tail, limit)
        if attempt is not None and (
            not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1
        ):
            raise InvalidArgumentError(
                f"attempt must be a whole number >= 1, got {attempt!r}", field="attempt"
            )

        def work(c: Connection) -> JobExecution:
            workflows = WorkflowRepository(c)
            execution = workflows.get_execution(project, execution_id)
            attempts = [a for a in workflows.list_jobs(project, execution_id) if a.job == job]
            chosen = [a for a in attempts if attempt is None or a.attempt == attempt]
            if chosen:
                return max(chosen, key=lambda a: a.attempt)
            plan = self.plans.get(c, execution.snapshot_id)
            where = f"workflow {execution.workflow!r} (execution {execution_id})"
            if job not in {j.name for j in plan.jobs}:
                raise NotFoundError("job", job, message=f"{where} has no job {job!r}")
            if attempts:
                raise NotFoundError(
                    "job execution",
                    f"{job}#{attempt}",
                    message=f"job {job!r} of {where} has no attempt {attempt} "
                    f"(attempts: {', '.join(str(a.attempt) for a in attempts)})",
                )
            raise NotFoundError(
                "job execution", job, message=f"job {job!r} of {where} has not run yet"
            )

        found = self._store.run(work, write=False)
        if found.log_uri is None:
            text, start, end, size = "", 0, 0, 0
        else:
            text, start, end, size = read_log(
                log_path(self.log_root, found.log_uri), after=after, tail=tail, limit=limit
            )
        return JobLog(
            execution_id=execution_id,
            job=job,
            attempt=found.attempt,
            status=found.status,
            text=text,
            start=start,
            after=end,
            size=size,
            complete=found.status.is_terminal and end >= size,
        )

    # -- workflows -----------------------------------------------------------------------------

    def pause_workflow(self, project: str, workflow: str) -> WorkflowSettings:
        """Start no new executions of ``workflow`` (running ones go on)."""
        return self._update_settings(project, workflow, paused=True)

    def resume_workflow(self, project: str, workflow: str) -> WorkflowSettings:
        """Let ``workflow`` start executions again."""
        return self._update_settings(project, workflow, paused=False)

    def set_max_active_executions(
        self, project: str, workflow: str, limit: int | None
    ) -> WorkflowSettings:
        """Cap how many executions of ``workflow`` run at once (``None``: no cap).

        Raises:
            InvalidArgumentError: ``limit`` is not a whole number >= 1.
        """
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit < 2**31
        ):
            raise InvalidArgumentError(
                f"max_active_executions must be a whole number >= 1 or None, got {limit!r}",
                field="max_active_executions",
            )
        return self._update_settings(project, workflow, max_active_executions=limit)

    def get_workflow_settings(self, project: str, workflow: str) -> WorkflowSettings:
        """Whether ``workflow`` is paused and its cap of running executions."""

        def work(c: Connection) -> WorkflowSettings:
            repo = SchedulerRepository(c)
            return repo.settings(repo.workflow(project, workflow).workflow_id)

        return self._store.run(work, write=False)

    def backfill_workflow(
        self, project: str, workflow: str, start: datetime, end: datetime
    ) -> list[TickResult]:
        """Start one execution per tick of ``workflow``'s schedule in ``[start, end]``.

        Ticks already handled (scheduled or backfilled) are left alone and not returned; see
        :meth:`~tideflow.scheduler.schedule.ScheduleService.backfill`.

        Raises:
            NotFoundError: No such workflow.
            FailedPreconditionError: Its latest snapshot has no schedule.
            InvalidArgumentError: The range is reversed, naive, or holds too many ticks.
        """
        schedules = ScheduleService(
            self._store, self.clock, self.plans, self.config, on_effects=self.notify
        )
        return schedules.backfill(project, workflow, start, end)

    def get_next_tick(self, project: str, workflow: str) -> datetime | None:
        """When the schedule of ``workflow`` starts its next execution (``None``: no schedule).

        The stored next tick once the timer thread follows the latest snapshot; before that,
        the first tick after now.

        Raises:
            NotFoundError: No such workflow.
        """

        def work(c: Connection) -> datetime | None:
            ref = SchedulerRepository(c).workflow(project, workflow)
            if ref.latest_snapshot_id is None:
                return None
            schedule = self.plans.get(c, ref.latest_snapshot_id).schedule
            if schedule is None:
                return None
            timer = ScheduleRepository(c).timer(ref.workflow_id)
            if timer is not None and timer.snapshot_id == ref.latest_snapshot_id:
                return timer.next_tick_time
            try:
                return next_fire_after(schedule.timer, self.clock.now())
            except FailedPreconditionError:  # a plan stored unchecked: it never ticks
                return None

        return self._store.run(work, write=False)

    def _update_settings(self, project: str, workflow: str, **values: Any) -> WorkflowSettings:
        def work(c: Connection) -> WorkflowSettings:
            repo = SchedulerRepository(c)
            ref = repo.workflow(project, workflow, lock=True)
            return repo.update_settings(ref.workflow_id, **values)

        return self._store.run(work)

    # -- the outbox ----------------------------------------------------------------------------

    def take_commands(
        self,
        executor: str,
        *,
        limit: int = 100,
        taker: str | None = None,
        owner: AttemptOwner | None = None,
    ) -> list[JobCommand]:
        """Claim up to ``limit`` due commands of ``executor`` (PENDING -> TAKEN), oldest first.

        A command is handed to one taker only. A START is due when its ``not_before`` has
        passed on the scheduler's clock and no earlier attempt of its job is still live.

        Args:
            executor: The executor plugin name (``local``, ``ray`` ...).
            limit: At most this many (1 to 1000).
            taker: Who takes them, for the record (default ``<executor>@<host>:<pid>``).
            owner: The cluster member taking them (its server's executors): the commands
                record it, the attempts of its STARTs become its own, and it takes only the
                STOPs of attempts it owns (or nobody does yet).
        """
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_TAKE:
            raise InvalidArgumentError(
                f"limit must be between 1 and {MAX_TAKE}, got {limit!r}", field="limit"
            )
        who = taker or f"{executor}@{socket.gethostname()}:{os.getpid()}"
        token = f"{who[: MAX_KEY_LENGTH - 13]}#{uuid.uuid4().hex[:12]}"

        def work(c: Connection) -> list[JobCommand]:
            taken = OutboxRepository(c).take(executor, self.clock.now(), limit, token, owner)
            if taken:
                crash.reach("take.before_commit")
            return taken

        taken = self._store.run(work)
        if taken:
            crash.reach("take.after_commit")
        return taken

    def complete_command(self, command_id: str) -> None:
        """Mark a command DONE (the executor acted on it). Idempotent.

        Raises:
            NotFoundError: No such command.
        """
        self._store.run(lambda c: OutboxRepository(c).complete(command_id))
        crash.reach("complete.after_commit")

    def get_command(self, command_id: str) -> JobCommand:
        """Command ``command_id``."""
        return self._store.run(lambda c: OutboxRepository(c).get(command_id), write=False)

    def list_commands(self, *, execution_id: int | None = None) -> list[JobCommand]:
        """Every command (of one execution), oldest first -- for tests and diagnostics."""
        return self._store.run(
            lambda c: OutboxRepository(c).list_commands(execution_id=execution_id), write=False
        )

    def wait_for_commands(
        self, timeout: float | None = None, *, executor: str = "local", member: str | None = None
    ) -> bool:
        """Block until ``executor`` may have a due command, or ``timeout`` seconds pass.

        Returns at once when one is due now. Otherwise it is woken (no polling) by a commit
        that issues commands for ``executor``, an attempt's end, a clock jump or
        :meth:`wake`, and returns early for the next ``not_before`` to come.

        ``member`` is the cluster member whose executor waits (STOPs of attempts other
        members own are not its to take).

        Returns:
            Whether it was woken (``False``: the timeout passed).
        """
        seen = self.commands.generation(executor)
        files = self._files() if self._files is not None else None
        known = self._looked.get(executor)
        if (
            files is not None
            and known is not None
            and known[:2] == (files, seen)
            and (known[2] is None or known[2] > self.clock.now())  # no backoff ran out
        ):
            # Nothing committed by any process since the last look, and no wake-up: an idle
            # loop's periodic look costs a stat, not a transaction.
            due, next_due = False, known[2]
        else:

            def look(c: Connection) -> tuple[bool, Any]:
                repo = OutboxRepository(c)
                return repo.has_due(executor, self.clock.now(), member), repo.next_due(executor)

            due, next_due = self._store.run(look, write=False)
            self._looked[executor] = (files, seen, next_due)
        if due:
            return True
        limits = [t for t in (timeout, self.clock.seconds_until(next_due)) if t is not None]
        if next_due is None and self.clock.seconds_until(None) is not None:
            # A polled clock (the test file clock) may have moved past a backoff.
            limits.append(self.clock.seconds_until(None) or 0.0)
        return self.commands.wait(executor, seen, min(limits) if limits else None)

    def wake(self, executor: str) -> None:
        """Wake ``executor``'s :meth:`wait_for_commands` (its loop is stopping)."""
        self.commands.notify([executor])

    def running_attempts(
        self, executor: str, *, owner: AttemptOwner | None = None
    ) -> list[JobCommand]:
        """The START commands ``executor`` took whose attempts are still live.

        After a server restart the executor re-attaches to these (by pid / heartbeat) instead
        of starting them again. A cluster member (``owner``) gets those with files in its home.
        """
        return self._store.run(
            lambda c: OutboxRepository(c).live_starts(executor, owner=owner), write=False
        )


def _ends_attempt(event: Event) -> bool:
    """Whether ``event`` records an attempt's end (the scheduler stops attempts not yet live)."""
    return event.event_type == JOB_STATUS_CHANGED and JobStatus(event.value).is_terminal
