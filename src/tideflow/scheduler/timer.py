"""The timer service: periodic rules fire as PERIODIC events, persisted, never doubled.

Each periodic rule of a running execution has a row with its next fire time. When it is due,
one transaction appends the rule's timer event (key ``<workflow>.<job>``, value the rule index,
sender ``scheduler``, context ``{execution_id, fire_time}``) and moves the next fire time past
*now* -- so a restart neither skips a firing (the row is still due) nor doubles one (the event
and the move commit together). A timer that missed several periods fires **once** for all of
them (see :mod:`tideflow.scheduler.periodic`). The dispatcher then handles the event like any
other: the event, not the timer, is what starts the job, exactly once.

The same thread ticks workflow schedules (:mod:`tideflow.scheduler.schedule`) when given them.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Connection

from tideflow.domain.events import PERIODIC, Event
from tideflow.domain.rules import Periodic
from tideflow.scheduler import crash
from tideflow.scheduler.actions import Fence, PlanCache, SchedulerConfig
from tideflow.scheduler.clock import Clock
from tideflow.scheduler.periodic import next_fire_after
from tideflow.scheduler.rules import TIMER_SENDER, timer_event_key
from tideflow.scheduler.schedule import ScheduleService
from tideflow.store import Store, append_events
from tideflow.store.repositories.scheduler import SchedulerRepository

log = logging.getLogger(__name__)


class TimerService:
    """Fires due timers (see the module docstring).

    Args:
        store: The store.
        clock: The scheduler's clock.
        plans: Parsed plans.
        config: Tunables.
        schedules: The workflow schedules to tick as well, if any.
        fence: Called first in every transaction that fires timers (a cluster leader's
            fencing check); it raises to refuse the write.
        max_wait: Seconds the thread sleeps at most between looks. A cluster's leader is not
            woken by timers that other members add, so it looks again at least this often.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        plans: PlanCache,
        config: SchedulerConfig,
        *,
        schedules: ScheduleService | None = None,
        fence: Fence | None = None,
        max_wait: float | None = None,
    ) -> None:
        self._store = store
        self._fence = fence
        self._max_wait = max_wait
        self._schedules = schedules
        self._clock = clock
        self._plans = plans
        self._config = config
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        clock.add_listener(self.wake)

    def wake(self) -> None:
        """Look at the timers again now (a timer was added, or the clock jumped)."""
        self._wake.set()

    def fire_due(self) -> int:
        """Fire every timer due now, in batches; return how many fired."""
        fired = 0
        while True:
            count = self._store.run(self._fire_batch)
            fired += count
            if count:
                crash.reach("timer.after_commit")
            if count < self._config.timer_batch_size:
                return fired

    def _fire_batch(self, c: Connection) -> int:
        if self._fence is not None:
            self._fence(c)
        repo = SchedulerRepository(c)
        now = self._clock.now()
        due = repo.due_timers(now, self._config.timer_batch_size)
        if not due:
            return 0
        crash.reach("timer.before_fire")
        events = []
        for timer in due:
            rule = self._plans.get(c, timer.snapshot_id).rules[timer.rule_index]
            if not isinstance(rule.condition, Periodic):  # pragma: no cover - plans are immutable
                continue
            events.append(
                Event(
                    key=timer_event_key(timer.workflow, rule.job),
                    value=str(timer.rule_index),
                    event_type=PERIODIC,
                    sender=TIMER_SENDER,
                    namespace=timer.project,
                    context={
                        "execution_id": timer.execution_id,
                        "fire_time": timer.fire_time.isoformat(),
                    },
                )
            )
            later = next_fire_after(rule.condition, now, previous=timer.fire_time)
            repo.move_timer(timer.execution_id, timer.rule_index, later)
        # The timer rows are locked first and the event sequence last (the store's lock order).
        append_events(c, events)
        crash.reach("timer.after_event")
        crash.reach("timer.before_commit")
        return len(due)

    # -- the thread ----------------------------------------------------------------------------

    def start(self) -> None:
        """Run in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="scheduler-timers", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self.fire_due()
                until = self._store.run(lambda c: SchedulerRepository(c).next_timer(), write=False)
                if self._schedules is not None:
                    self._schedules.fire_due()
                    tick = self._schedules.next_tick()
                    if tick is not None and (until is None or tick < until):
                        until = tick
                failures = 0
            except Exception:  # a process edge: log and try again shortly
                failures += 1
                log.exception("scheduler timers failed (%s in a row)", failures)
                self._stopping.wait(min(0.1 * 2**failures, 5.0))
                continue
            wait = self._clock.seconds_until(until)
            if self._max_wait is not None:
                wait = self._max_wait if wait is None else min(wait, self._max_wait)
            self._wake.wait(wait)
