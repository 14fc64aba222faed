"""The scheduler's threads in a server: the dispatcher and the timer service.

:class:`Scheduler` wires them to a :class:`~tideflow.scheduler.service.SchedulerService` so
that they share its clock, plan cache and configuration, and so that a commit that issued
commands wakes the executors and one that added timers wakes the timer thread.

Starting it first re-offers the outbox commands an executor of the previous server instance
took but never acted on (see :meth:`OutboxRepository.reoffer_taken`): it must run before this
server's executors take commands. In a cluster only the commands of dead members are
re-offered (a live member may be acting on one it took a moment ago); the leader goes on doing
that at every heartbeat, with the hand-over of their attempts (:mod:`tideflow.scheduler.handover`).

In a cluster (several servers on one database) only the leader runs a :class:`Scheduler`, and
gives it its ``fence`` (:meth:`tideflow.scheduler.leadership.Leadership.fence`): every
transaction of these threads then commits only while that server still holds the lease.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection

from tideflow.scheduler.actions import Effects, Fence
from tideflow.scheduler.dispatcher import Dispatcher
from tideflow.scheduler.schedule import ScheduleService
from tideflow.scheduler.service import SchedulerService
from tideflow.scheduler.timer import TimerService
from tideflow.store import Store
from tideflow.store.repositories.cluster import ClusterRepository
from tideflow.store.repositories.outbox import OutboxRepository

log = logging.getLogger(__name__)


class Scheduler:
    """The dispatcher and timer threads behind one :class:`SchedulerService`.

    Args:
        store: The store.
        service: The scheduler service (clock, plans, configuration, effects listeners).
        fence: A cluster leader's fencing check, run first in each of their transactions.
        max_timer_wait: Seconds the timer thread sleeps at most (a cluster leader is not woken
            by timers other members add).
        lease: A cluster's lease seconds: at start, only the commands of members without a
            heartbeat for that long (dead) are re-offered, never a live member's.
    """

    def __init__(
        self,
        store: Store,
        service: SchedulerService,
        *,
        fence: Fence | None = None,
        max_timer_wait: float | None = None,
        lease: float | None = None,
    ) -> None:
        self.service = service
        self._lease = lease
        self._store = store
        self._fence = fence
        self.dispatcher = Dispatcher(
            store,
            service.clock,
            service.plans,
            service.config,
            on_effects=service.notify,
            fence=fence,
        )
        self.schedules = ScheduleService(
            store,
            service.clock,
            service.plans,
            service.config,
            on_effects=service.notify,
            fence=fence,
        )
        self.timers = TimerService(
            store,
            service.clock,
            service.plans,
            service.config,
            schedules=self.schedules,
            fence=fence,
            max_wait=max_timer_wait,
        )

    def _wake_timers(self, effects: Effects) -> None:
        if effects.timers:
            self.timers.wake()

    def start(self) -> None:
        """Re-offer commands taken but never acted on, then start both threads."""

        def reoffer(c: Connection) -> list[str]:
            if self._fence is not None:
                self._fence(c)
            live = None
            if self._lease is not None:
                live = [m.member_id for m in ClusterRepository(c).live_members(self._lease)]
            return OutboxRepository(c).reoffer_taken(live=live)

        reoffered = self._store.run(reoffer)
        if reoffered:
            log.warning(
                "re-offering %d job command(s) taken before a restart but not carried out: %s",
                len(reoffered),
                ", ".join(reoffered[:20]),
            )
        # Only now, so that a start refused above (a deposed leader's fence) leaves nothing
        # registered: a member elected and deposed many times must not pile up listeners.
        self.service.add_effects_listener(self._wake_timers)
        self.dispatcher.start()
        self.timers.start()

    def stop(self) -> None:
        """Stop both threads (each finishes or rolls back the transaction it is in)."""
        self.service.remove_effects_listener(self._wake_timers)
        self.timers.stop()
        self.dispatcher.stop()
