"""The leader's hand-over of a dead member's commands and attempts (docs/ha.md).

At every heartbeat the leader runs one round, in a transaction fenced by its lease:

1. the commands a dead member (no heartbeat for a lease, or no member row any more) took but
   did not act on are offered again -- never those of a live member, which may be launching
   one right now;
2. each attempt a dead member launched goes to a live member, which re-attaches it at its
   next heartbeat (:meth:`tideflow.executors.supervisor.AttemptSupervisor.adopt`):

   - an attempt bound to its host (a local process, a ``spark-submit`` driver, files in the
     dead member's home) goes to a member on the same host -- preferably one on the same
     home (the dead member restarted);
   - any other (a Ray job on a cluster) to a member on the same host if there is one, else to
     any live member;
   - only members that run the attempt's executor qualify (``$TIDEFLOW_EXECUTORS``);
   - a host-bound attempt with no live member on its host is **lost**: it ends FAILED ("member
     <id> on host <h> died; its local attempt was lost"), so the job's retry policy applies.

Giving an attempt away is a compare-and-set on its owner, so it never races a member that
re-attaches the attempt itself after a restart: exactly one of them gets it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection

from tideflow.domain.scheduling import OwnedAttempt
from tideflow.domain.status import JobStatus
from tideflow.errors import IllegalTransitionError, NotLeaderError, NotOwnerError
from tideflow.metadata import ExecutionService
from tideflow.scheduler.actions import Fence
from tideflow.store import Store
from tideflow.store.repositories.cluster import ClusterRepository, Member
from tideflow.store.repositories.outbox import OutboxRepository
from tideflow.store.repositories.ownership import OwnershipRepository

log = logging.getLogger(__name__)


@dataclass
class Handover:
    """What one round did.

    Attributes:
        reoffered: Ids of the commands put back to PENDING.
        moved: ``(job execution id, new owner)`` of the attempts handed over.
        lost: Job execution ids of the attempts declared lost (FAILED).
    """

    reoffered: list[str] = field(default_factory=list)
    moved: list[tuple[int, str]] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)


def lost_error(member: str, host: str | None) -> str:
    """The error a lost attempt ends with."""
    return (
        f"member {member} on host {host or 'unknown'} died; its local attempt was lost "
        f"(no live member on that host to re-attach it): the job's retry policy applies"
    )


class AttemptHandover:
    """The leader's round of re-offering and handing over (see the module docstring).

    Args:
        store: The shared store.
        executions: Where a lost attempt's end is reported (an event, the retry policy).
        fence: The leader's fencing check.
        lease: Seconds without a heartbeat after which a member is dead.
        host_bound: Whether attempts of an executor (by name) can only be re-attached on the
            host that launched them.
    """

    def __init__(
        self,
        store: Store,
        executions: ExecutionService,
        *,
        fence: Fence,
        lease: float,
        host_bound: Callable[[str], bool],
    ) -> None:
        self._store = store
        self._executions = executions
        self._fence = fence
        self._lease = lease
        self._host_bound = host_bound
        self._calm: frozenset[str] | None = None

    def run_once(self) -> Handover:
        """One round: re-offer, hand over, declare lost.

        A round reads the member list; it looks further (the outbox, the attempts) only when
        there is something to find: the first round, a member row without a heartbeat for a
        lease, or live members other than at the last calm round (a member that left cleanly
        removed its row; a restarted one removed its predecessor's).
        """
        done = Handover()
        lost: list[OwnedAttempt] = []
        calm: list[frozenset[str] | None] = [None]
        previous, self._calm = self._calm, None  # calm again once this round is through

        def decide(c: Connection) -> None:
            self._fence(c)
            members = ClusterRepository(c).list_members()
            live = [m for m in members if m.heartbeat_age < self._lease]
            ids = [m.member_id for m in live]
            if len(live) == len(members):
                calm[0] = frozenset(ids)
                if calm[0] == previous:
                    return  # nobody died or left since the last look
            done.reoffered = OutboxRepository(c).reoffer_taken(live=ids)
            owners = OwnershipRepository(c)
            for orphan in owners.orphans(ids):
                member = self._heir(orphan, live)
                if member is None:
                    lost.append(orphan)
                elif owners.assign(orphan.start.job_execution_id, orphan.owner, member):
                    done.moved.append((orphan.start.job_execution_id, member))

        try:
            self._store.run(decide)
        except NotLeaderError as exc:  # deposed meanwhile: the heartbeat thread notices next
            log.warning("hand-over round not committed: %s", exc)
            return Handover()
        if done.reoffered:
            log.warning(
                "re-offering %d job command(s) taken by dead members: %s",
                len(done.reoffered),
                ", ".join(done.reoffered[:20]),
            )
        for key, member in done.moved:
            log.warning("job execution %s handed over to member %s", key, member)
        for orphan in lost:
            host = orphan.owner_host or orphan.home_host
            start = orphan.start
            try:
                self._executions.set_job_status(
                    start.project,
                    start.job_execution_id,
                    JobStatus.FAILED,
                    error=lost_error(orphan.owner, host),
                    owner=orphan.owner,
                    fence=self._fence,
                )
            except (IllegalTransitionError, NotOwnerError):
                continue  # it ended, or was re-attached, meanwhile
            except NotLeaderError as exc:
                log.warning(
                    "declaring job execution %s lost not committed: %s", start.job_execution_id, exc
                )
                calm[0] = None
                continue
            except Exception:  # the heartbeat's work: look again next round, go on with others
                log.exception("declaring job execution %s lost failed", start.job_execution_id)
                calm[0] = None
                continue
            done.lost.append(start.job_execution_id)
            log.warning(
                "job execution %s declared lost: %s",
                start.job_execution_id,
                lost_error(orphan.owner, host),
            )
        self._calm = calm[0]
        return done

    def _heir(self, orphan: OwnedAttempt, live: list[Member]) -> str | None:
        """The live member to take ``orphan`` over, or ``None``: it is lost."""
        host = orphan.owner_host or orphan.home_host
        executor = orphan.start.executor
        live = [m for m in live if m.executors is None or executor in m.executors]
        same_host = [m for m in live if m.host == host]
        same_home = [m for m in same_host if orphan.home is not None and m.home == orphan.home]
        for group in (same_home, same_host):
            if group:
                return group[orphan.start.job_execution_id % len(group)].member_id
        if self._host_bound(executor) or not live:
            return None
        return live[orphan.start.job_execution_id % len(live)].member_id
