"""The dispatcher: the event log in, job actions out, exactly once.

It reads every project's events after its committed offset (consumer ``scheduler`` of namespace
``*``) and handles a batch of them in ONE transaction: route each event, evaluate the rules it
reaches, apply the decisions (attempt rows, outbox commands, action records, execution end
states, new executions from ``start_on`` rules), save the rule states and commit the offset of
the batch's last event. A crash before the commit loses nothing (the batch is read again and
handled identically: command ids are deterministic, rule states and rows were rolled back); a
crash after it repeats nothing.

Routing (DESIGN.md "Which execution an event reaches"):

* an event whose ``context`` has ``execution_id`` reaches that execution only (if it is a
  RUNNING execution of the event's project);
* any other event reaches every RUNNING execution whose ``execution_route`` index has the
  event's ``(namespace, key)`` or ``(namespace, '*')`` -- except that an execution of a
  ``per_context`` workflow is reached only by events naming the context it serves (or ``*``,
  all of them; where an event names its contexts is the plan's, :mod:`tideflow.domain.contexts`)
  -- and the ``start_on`` rules of the workflows whose ``workflow_trigger`` index has the key.
  For a ``per_context`` workflow these run per context the event names, and only for a
  context no execution serves yet (it is then started on demand); with ``once_per_context``
  a context whose execution ended gets none, and the refused firing is recorded on that
  execution. The event that starts an execution is not delivered to it as well (the jobs that
  start with it get that rule's events as their triggers instead).

After the rules, a ``JOB_STATUS_CHANGED`` FAILED event may cause a retry; a terminal one whose
job is then idle starts the first firing queued for it (``on_busy``), and every execution an
event reached is checked for its end state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection

from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.contexts import ALL_CONTEXTS, serves
from tideflow.domain.events import JOB_STATUS_CHANGED, Event
from tideflow.domain.rules import describe_rule
from tideflow.domain.status import ExecutionStatus, JobAction, JobStatus
from tideflow.errors import FailedPreconditionError, NotFoundError, NotLeaderError
from tideflow.notification.signal import OffsetSignal
from tideflow.notification.watchers import CommitWatcher, start_watcher
from tideflow.scheduler import crash
from tideflow.scheduler.actions import CONSUMER, Actor, Effects, Fence, PlanCache, SchedulerConfig
from tideflow.scheduler.clock import Clock
from tideflow.scheduler.execution import ExecutionView, execution_rules, trigger_rules
from tideflow.scheduler.rules import RuleState, evaluate
from tideflow.store import ALL_NAMESPACES, Store, commit_offset, committed_offset, list_events
from tideflow.store.event import append_events, last_offset
from tideflow.store.probe import BatchProbe
from tideflow.store.types import utcnow

log = logging.getLogger(__name__)

SKIP_AFTER_FAILURES = 5
"""A single event whose handling fails this many times in a row is logged and skipped."""
PASSED_COMMIT_INTERVAL = 1.0
"""Seconds the offset of events that reached nothing may stay uncommitted (see run_once)."""


class Dispatcher:
    """Consumes the event log and applies the rules (see the module docstring).

    Args:
        store: The store.
        clock: The scheduler's clock.
        plans: Parsed plans (shared with the API).
        config: Tunables.
        on_effects: Called after each commit with what it did (wakes executors and timers).
        fence: Called first in every transaction that writes (a cluster's leader passes its
            fencing check, :meth:`Leadership.fence`); it raises to refuse the write.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        plans: PlanCache,
        config: SchedulerConfig,
        on_effects: Callable[[Effects], None] = lambda effects: None,
        *,
        fence: Fence | None = None,
    ) -> None:
        self._store = store
        self._fence = fence
        self._clock = clock
        self._plans = plans
        self._config = config
        self._on_effects = on_effects
        self._signal = OffsetSignal(store.run(last_offset, write=False))
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._watcher: CommitWatcher | None = None
        self._failures = 0
        self._probe = BatchProbe(store)
        self._position: int | None = None
        """The offset of the last event handled or passed over by this dispatcher."""
        self._passed = 0
        """The offset of the last event passed over whose offset is not committed (0: none)."""
        self._passed_since = 0.0
        self._direct = False
        """Skip the look: the last batch handled reached something."""
        self._reached = False
        self.on_decided: Callable[[float], None] | None = None
        """Called after each committed batch that reached something, with the seconds from
        the commit of its first event to now: the server's decision-latency histogram."""

    # -- one batch -----------------------------------------------------------------------------

    def run_once(self, limit: int | None = None) -> int:
        """Handle the next batch of events in one transaction; return how many it handled.

        The batch is first looked at in a read transaction. A batch that reaches no execution
        and no ``start_on`` rule is passed over there, with no write: its offset is kept in
        memory and committed with the next batch that does reach something, or by
        :meth:`commit_passed` (after at most :data:`PASSED_COMMIT_INTERVAL`, and at stop).
        Most events of a busy server reach nothing, and a write transaction per event queued
        every sender behind the dispatcher for SQLite's one write lock. Passing over is safe:
        handling such a batch changes nothing, so after a crash it is read again and passed
        over again -- as if the dispatcher had been slower. While batches do reach something
        (a scheduler under load), the look is skipped.
        """
        size = limit or self._config.batch_size
        if self._position is None:
            self._position = self._store.run(
                lambda c: committed_offset(c, ALL_NAMESPACES, CONSUMER), write=False
            )
        if not self._direct:
            count, last_offset, reach = self._probe(self._position, size)
            if not count:
                return 0
            if not reach:
                self._passed = self._position = last_offset
                if not self._passed_since:
                    self._passed_since = time.monotonic()
                return count
        effects = Effects()
        last = [0]
        first: list[datetime | None] = [None]
        self._reached = False

        def work(c: Connection) -> int:
            nonlocal effects
            if self._fence is not None:
                self._fence(c)
            offset = max(committed_offset(c, ALL_NAMESPACES, CONSUMER), self._passed)
            events = list_events(c, None, after_offset=offset, limit=size)
            last[0] = offset
            if not events:
                return 0  # another dispatcher (a test's, a restarted one's) handled them
            first[0] = events[0].create_time
            crash.reach("dispatch.batch_read")
            actor = Actor(c, self._clock, self._plans, self._config)
            for event in events:
                self._handle(actor, event)
            crash.reach("dispatch.before_offset_commit")
            if actor.effects.events:
                append_events(c, actor.effects.events)
            commit_offset(c, ALL_NAMESPACES, CONSUMER, events[-1].offset)
            crash.reach("dispatch.before_commit")
            effects = actor.effects
            last[0] = events[-1].offset
            return len(events)

        handled = self._store.run(work)
        self._position = last[0]
        # While batches reach something, go straight to the transaction (the look would only
        # add a read); after one that reached nothing, look first again.
        self._direct = self._reached
        if handled:
            self._passed, self._passed_since = 0, 0.0
            crash.reach("dispatch.after_commit")
            self._on_effects(effects)
            created = first[0]
            if self.on_decided is not None and self._reached and created is not None:
                self.on_decided(max((utcnow() - created).total_seconds(), 0.0))
        return handled

    def commit_passed(self, *, older_than: float = 0.0) -> None:
        """Commit the offset of events passed over, if it was held over ``older_than`` s."""
        passed = self._passed
        if not passed or time.monotonic() - self._passed_since < older_than:
            return

        def work(c: Connection) -> None:
            if self._fence is not None:
                self._fence(c)
            if committed_offset(c, ALL_NAMESPACES, CONSUMER) < passed:
                commit_offset(c, ALL_NAMESPACES, CONSUMER, passed)

        self._store.run(work)
        if self._passed == passed:
            self._passed, self._passed_since = 0, 0.0

    def drain(self) -> int:
        """Handle every event committed so far (tests and benchmarks); return how many."""
        total = 0
        while handled := self.run_once():
            total += handled
        self.commit_passed()
        return total

    def _handle(self, actor: Actor, event: Event) -> None:
        raw = event.context.get("execution_id")
        if raw is not None:
            self._reached = True
            try:
                execution_id = int(raw)
            except (TypeError, ValueError):
                return  # names no execution this store could have
            self._deliver(actor, event, execution_id)
            return
        for execution_id in actor.scheduling.routed(event.namespace, event.key):
            self._reached = True
            self._deliver(actor, event, execution_id)
        for workflow_id, snapshot_id in actor.scheduling.triggered(event.namespace, event.key):
            self._reached = True
            self._trigger(actor, event, workflow_id, snapshot_id)

    def _deliver(self, actor: Actor, event: Event, execution_id: int) -> None:
        try:
            view = actor.view(event.namespace, execution_id)
        except NotFoundError:
            return  # deleted, or of another project: it never reaches another project
        if view.execution.status is not ExecutionStatus.RUNNING:
            return
        source = view.plan.per_context
        if (
            source is not None
            and event.execution_id is None
            and not serves(view.execution.context, source.contexts(event))
        ):
            return
        crash.reach("dispatch.before_evaluate")
        rules = execution_rules(view.plan)
        stored = actor.scheduling.rule_states(execution_id)
        states = {index: RuleState.from_dict(data) for index, data in stored.items()}
        changed, decisions = evaluate(view.execution.workflow, rules, states, event)
        crash.reach("dispatch.after_evaluate")
        actor.scheduling.save_rule_states(
            execution_id, {i: s.to_dict() for i, s in changed.items()}, stored
        )
        for decision in decisions:
            rule = describe_rule(view.plan.rules[decision.rule_index])
            held = decision.trigger_offsets
            if decision.job is not None:
                actor.fire(
                    view,
                    view.plan.rules[decision.rule_index],
                    decision.rule_index,
                    described=rule,
                    event_offset=event.offset,
                    triggers=held,
                )
            elif decision.action is JobAction.STOP:
                actor.stop_execution(view, rule=rule, event_offset=event.offset, triggers=held)
                return
            # A workflow-level START inside a running execution is the start_on trigger's job.
        self._maybe_retry(actor, view, event)
        self._maybe_start_queued(actor, view, event)
        actor.settle(view, event.offset)

    @staticmethod
    def _maybe_retry(actor: Actor, view: ExecutionView, event: Event) -> None:
        if event.event_type != JOB_STATUS_CHANGED or event.value != JobStatus.FAILED.value:
            return
        prefix = f"{view.execution.workflow}."
        job = event.key[len(prefix) :] if event.key.startswith(prefix) else None
        attempt = event.context.get("attempt")
        if job is None or not isinstance(attempt, int) or job not in view.attempts:
            return
        actor.retry(view, job, attempt, event.offset)

    @staticmethod
    def _maybe_start_queued(actor: Actor, view: ExecutionView, event: Event) -> None:
        """An attempt ended (and got no retry): start the first firing queued for its job."""
        if event.event_type != JOB_STATUS_CHANGED or not view.queued:
            return
        try:
            status = JobStatus(event.value)
        except ValueError:
            return
        prefix = f"{view.execution.workflow}."
        if not status.is_terminal or not event.key.startswith(prefix):
            return
        job = event.key[len(prefix) :]
        reason = f"attempt {event.context.get('attempt')} {status.value}"
        actor.start_queued(view, job, reason=reason)

    def _trigger(self, actor: Actor, event: Event, workflow_id: int, snapshot_id: int) -> None:
        plan = actor.plans.get(actor.c, snapshot_id)
        source = plan.per_context
        if source is None:
            self._trigger_for(actor, event, workflow_id, plan, None)
            return
        contexts = source.contexts(event)
        if contexts == (ALL_CONTEXTS,):
            return  # reaches every running execution; starts none
        for context in contexts:
            if actor.scheduling.running_in_context(workflow_id, context):
                continue  # the execution serving this context got the event
            self._trigger_for(actor, event, workflow_id, plan, context)

    @staticmethod
    def _trigger_for(
        actor: Actor,
        event: Event,
        workflow_id: int,
        plan: WorkflowPlan,
        context: str | None,
    ) -> None:
        """Evaluate the ``start_on`` rules for one context (``None``: not per_context)."""
        workflow = actor.scheduling.workflow_by_id(workflow_id, lock=True)
        key = context or ""
        stored = actor.scheduling.trigger_states(workflow_id, key)
        states = {index: RuleState.from_dict(data) for index, data in stored.items()}
        changed, decisions = evaluate(plan.workflow, trigger_rules(plan), states, event)
        actor.scheduling.save_trigger_states(
            workflow_id, key, {i: s.to_dict() for i, s in changed.items()}, stored
        )
        for decision in decisions:
            rule = describe_rule(plan.rules[decision.rule_index])
            if context is not None and plan.per_context is not None and plan.per_context.once:
                ended = actor.scheduling.ended_in_context(workflow_id, context)
                if ended is not None:
                    actor.refuse_start(
                        ended,
                        rule=f"{rule} (skipped: context {context!r} already ran in execution "
                        f"{ended}; once_per_context)",
                        event_offset=event.offset,
                        triggers=decision.trigger_offsets,
                    )
                    continue
            try:
                actor.launch(
                    workflow,
                    params=None,
                    context=context,
                    rule=rule,
                    event_offset=event.offset,
                    triggers=decision.trigger_offsets,
                )
            except FailedPreconditionError as e:
                log.warning("start_on rule %r of event %s did not start: %s", rule, event.offset, e)
                continue
            crash.reach("dispatch.after_trigger")

    # -- the thread ----------------------------------------------------------------------------

    def publish(self, offset: int) -> None:
        """Wake the dispatcher: events up to ``offset`` are committed (a store commit hook)."""
        self._signal.publish(offset)

    def start(self) -> None:
        """Run the dispatcher in a daemon thread until :meth:`stop`."""
        self._store.add_commit_listener(self.publish)
        self._store.add_offset_flusher(self.commit_passed)
        # Commits of other processes (a script beside the server, another server) too.
        self._watcher = start_watcher(self._store, self._signal)
        self._thread = threading.Thread(target=self._loop, name="scheduler-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (the batch in progress commits or rolls back first)."""
        self._stopping.set()
        self._signal.close()
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._store.remove_commit_listener(self.publish)
        self._store.remove_offset_flusher(self.commit_passed)
        self._commit_passed_safely(0.0)

    def _loop(self) -> None:
        idle_since = time.monotonic()
        while not self._stopping.is_set():
            seen = self._signal.latest  # before reading: a commit after this wakes the wait
            if (
                self._position is not None
                and seen <= self._position
                and time.monotonic() - idle_since < PASSED_COMMIT_INTERVAL
            ):
                # Nothing was committed past what this dispatcher handled: no need to look.
                self._signal.wait_beyond(seen, timeout=PASSED_COMMIT_INTERVAL)
                self._commit_passed_safely(PASSED_COMMIT_INTERVAL)
                continue
            idle_since = time.monotonic()
            try:
                handled = self.run_once()
                self._failures = 0
            except NotLeaderError as e:  # deposed: the heartbeat thread stops this dispatcher
                log.warning("scheduler dispatcher: %s", e)
                self._stopping.wait(1.0)
                continue
            except Exception:  # the scheduler loop is a process edge: log, back off, go on
                self._failures += 1
                log.exception("scheduler dispatcher failed (%s in a row)", self._failures)
                if self._failures >= SKIP_AFTER_FAILURES:
                    self._isolate()
                else:
                    self._stopping.wait(min(0.1 * 2**self._failures, 5.0))
                continue
            if not handled:
                self._signal.wait_beyond(seen, timeout=PASSED_COMMIT_INTERVAL)
                self._commit_passed_safely(PASSED_COMMIT_INTERVAL)

    def _commit_passed_safely(self, older_than: float) -> None:
        try:
            self.commit_passed(older_than=older_than)
        except NotLeaderError as e:  # deposed: the new leader reads those events again
            log.warning("scheduler dispatcher: offset not committed: %s", e)
        except Exception:  # the loop's edge: the next commit carries the offset anyway
            log.exception("scheduler dispatcher: could not commit its offset")

    def _isolate(self) -> None:
        """After repeated failures: handle the next event alone, and skip it if it fails too.

        A poison event must not stop scheduling for every project; it is logged with its offset.
        """
        try:
            self.run_once(limit=1)
        except Exception:
            log.exception("scheduler dispatcher: skipping the next event, it fails every time")

            def skip(c: Connection) -> int | None:
                if self._fence is not None:
                    self._fence(c)
                offset = committed_offset(c, ALL_NAMESPACES, CONSUMER)
                events = list_events(c, None, after_offset=offset, limit=1)
                if events:
                    commit_offset(c, ALL_NAMESPACES, CONSUMER, events[0].offset)
                    return events[0].offset
                return None

            log.error("scheduler skipped event %s", self._store.run(skip))
        self._failures = 0
