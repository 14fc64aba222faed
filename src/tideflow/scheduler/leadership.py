"""Membership and leadership of a cluster of servers on one PostgreSQL or MariaDB database.

Every server registers itself as a member and renews its heartbeat every ``heartbeat``
seconds; in the same transaction it takes or renews the leader's lease
(:mod:`tideflow.store.repositories.cluster`). The one that holds the lease runs the work that
must run once -- the dispatcher, timers and schedules, the re-offering of commands -- and every
transaction of that work starts with :meth:`Leadership.fence`, which commits it only while the
lease still carries this member's epoch.

A leader steps down (``on_deposed``) when a renewal finds the lease taken, and also when it
could not renew for a whole lease (the database unreachable): from then on another member may
lead, and the fence would refuse its writes anyway. A follower takes over at its first
heartbeat after the lease expired, so a failover takes at most ``lease + heartbeat`` seconds
after the leader's last renewal.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from tideflow.errors import InvalidArgumentError, NotLeaderError
from tideflow.store import Store
from tideflow.store.repositories.cluster import ClusterRepository, Lease, Member

log = logging.getLogger(__name__)

FORGET_AFTER_LEASES = 10
"""A member silent for this many leases is removed from the list (it died uncleanly)."""
MEMBER_HOST_VARIABLE = "TIDEFLOW_MEMBER_HOST"
"""Overrides the host a member reports (tests play members on several hosts with it)."""


def member_host() -> str:
    """The host this server reports as a member: ``$TIDEFLOW_MEMBER_HOST``, else its name.

    Members on one host re-attach each other's local processes when one dies; the variable
    lets members that share a machine act as if they did not (tests of a lost host), or
    members in containers of one machine say that they share it.
    """
    return os.environ.get(MEMBER_HOST_VARIABLE) or socket.gethostname()


@dataclass(frozen=True)
class LeaseSettings:
    """How long a lease lasts and how often members renew it.

    Attributes:
        lease: Seconds a leader's lease lasts after its last renewal.
        heartbeat: Seconds between renewals (and heartbeats); below ``lease``.
    """

    lease: float
    heartbeat: float

    def __post_init__(self) -> None:
        if not self.lease > 0:
            raise InvalidArgumentError(
                f"lease_seconds must be positive, got {self.lease}", field="lease_seconds"
            )
        if not 0 < self.heartbeat < self.lease:
            raise InvalidArgumentError(
                f"heartbeat_seconds must be positive and below lease_seconds ({self.lease}), "
                f"got {self.heartbeat}",
                field="heartbeat_seconds",
            )


class Leadership:
    """This server as a member of the cluster, and the leader's lease when it holds it.

    Args:
        store: The shared store (PostgreSQL or MariaDB).
        settings: Lease and heartbeat intervals.
        addresses: Where this member answers, shown to others (``{"grpc": ..., "http": ...}``).
        on_elected: Called (on the heartbeat thread) with the epoch when this member leads.
        on_deposed: Called (on the heartbeat thread) when it stops leading.
        on_beat: Called (on the heartbeat thread) after each renewal, with whether this
            member leads: the leader hands dead members' work over, every member picks up
            the attempts handed to it.
        home: This server's ``$TIDEFLOW_HOME``: registering replaces an earlier member on
            the same host and home (this server's previous process, dead).
        executors: The executors this server runs (a dead member's attempts are handed only
            to members that run theirs).
    """

    def __init__(
        self,
        store: Store,
        settings: LeaseSettings,
        *,
        addresses: dict[str, str],
        on_elected: Callable[[int], None],
        on_deposed: Callable[[], None],
        on_beat: Callable[[bool], None] | None = None,
        home: str | None = None,
        executors: Sequence[str] | None = None,
    ) -> None:
        self.member_id = uuid.uuid4().hex[:16]
        self.executors = None if executors is None else tuple(executors)
        self.host = member_host()
        self.home = home
        self._on_beat = on_beat
        self.settings = settings
        self._store = store
        self._addresses = dict(addresses)
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._epoch: int | None = None
        self._renewed = 0.0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.changes = 0
        """How often this member became leader or stopped being one."""

    @property
    def epoch(self) -> int | None:
        """The fencing token this member leads with, or ``None`` when it follows."""
        return self._epoch

    @property
    def leading(self) -> bool:
        """Whether this member holds the lease (as of its last renewal)."""
        return self._epoch is not None

    def fence(self, c: Connection) -> None:
        """Let the transaction of ``c`` commit only while this member leads (first statement).

        Raises:
            NotLeaderError: This member does not lead, or no longer does.
        """
        epoch = self._epoch
        if epoch is None:
            raise NotLeaderError(f"server {self.member_id} does not lead the cluster")
        ClusterRepository(c).check_fence(self.member_id, epoch, lease_seconds=self.settings.lease)

    def beat(self) -> bool:
        """Renew the heartbeat and take or renew the lease once; whether this member leads."""
        try:
            epoch = self._store.run(self._beat)
        except Exception:  # the heartbeat thread's edge: a database outage is logged, retried
            log.exception("cluster heartbeat of member %s failed", self.member_id)
            if self._epoch is not None and time.monotonic() - self._renewed > self.settings.lease:
                log.warning(
                    "member %s could not renew its lease in time: stepping down", self.member_id
                )
                self._set(None)
            return self._epoch is not None
        self._renewed = time.monotonic()
        self._set(epoch)
        leading = self._epoch is not None  # not if its leader's work failed to start
        if self._on_beat is not None:
            try:
                self._on_beat(leading)
            except Exception:  # the heartbeat thread's edge: the next beat tries again
                log.exception(
                    "cluster work after the heartbeat of member %s failed", self.member_id
                )
        return leading

    def _beat(self, c: Connection) -> int | None:
        # The lease row is locked first in every heartbeat, so members' heartbeats queue on it
        # and never deadlock on each other's member rows; only the leader forgets the silent.
        repo = ClusterRepository(c)
        epoch = repo.acquire(self.member_id, self.settings.lease)
        repo.heartbeat(
            self.member_id,
            host=self.host,
            pid=os.getpid(),
            addresses=self._addresses,
            home=self.home,
            executors=self.executors,
        )
        if epoch is not None:
            repo.forget_silent(self.settings.lease * FORGET_AFTER_LEASES)
        return epoch

    def _set(self, epoch: int | None) -> None:
        with self._lock:
            before = self._epoch
            if epoch == before:
                return
            if before is not None:
                self._epoch = None
                self.changes += 1
                log.warning("member %s stopped leading (epoch %s)", self.member_id, before)
                self._on_deposed()
            if epoch is not None:
                self._epoch = epoch
                self.changes += 1
                log.warning("member %s leads the cluster (epoch %s)", self.member_id, epoch)
                try:
                    self._on_elected(epoch)
                except Exception:
                    # Typically the lease moved on between this beat and the leader's first
                    # fenced transaction (a loaded machine): step down; the next beat that
                    # finds the lease ours again tries again. Raising would end the heartbeat
                    # thread, leaving a member that serves but never beats or leads again.
                    log.exception(
                        "member %s could not start leading (epoch %s): stepping down",
                        self.member_id,
                        epoch,
                    )
                    self._epoch = None
                    self.changes += 1
                    self._on_deposed()

    def start(self) -> None:
        """Beat once now (a lone server leads before it serves), then every ``heartbeat``."""
        self.beat()
        self._thread = threading.Thread(target=self._loop, name="cluster-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.wait(self.settings.heartbeat):
            try:
                self.beat()
            except Exception:  # the thread's edge: a member whose heartbeat dies is a zombie
                log.exception("cluster heartbeat of member %s failed", self.member_id)

    def stop(self) -> None:
        """Stop beating; step down and give the lease up, so a follower takes over at once."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(self.settings.lease + 5)
            self._thread = None
        epoch = self._epoch
        self._set(None)
        try:
            self._store.run(lambda c: self._leave(c, epoch))
        except Exception:  # stopping anyway: the lease expires and the member is forgotten
            log.exception("member %s could not leave the cluster cleanly", self.member_id)

    def _leave(self, c: Connection, epoch: int | None) -> None:
        repo = ClusterRepository(c)
        if epoch is not None:
            repo.release(self.member_id, epoch)
        repo.remove_member(self.member_id)

    def members(self) -> tuple[list[Member], Lease | None]:
        """The members the database knows and the leader's lease."""
        return cluster_view(self._store)


def cluster_view(store: Store) -> tuple[list[Member], Lease | None]:
    """The members and the lease of the cluster on ``store`` (for status commands)."""

    def read(c: Connection) -> tuple[list[Member], Lease | None]:
        repo = ClusterRepository(c)
        return repo.list_members(), repo.lease()

    return store.run(read, write=False)
