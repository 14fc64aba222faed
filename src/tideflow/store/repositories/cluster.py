"""Members of a cluster and the leader's lease (see :mod:`tideflow.store.rows.cluster`).

The lease is one row (``cluster_lease``, name ``leader``) rather than PostgreSQL advisory locks
or MariaDB's ``GET_LOCK``: a lock belongs to a *connection*, so a server paused with its
connection open keeps it for ever, and nothing a write does can prove that the lock it relies
on is still held at commit. A row carries an expiry on the database's clock and a fencing
token (``epoch``) that grows at every change of holder; a leader-only write reads the row with
a shared lock in its own transaction (:meth:`ClusterRepository.check_fence`), so it commits
only if its epoch is still the lease's, and a takeover (an exclusive lock on the row) waits
for such a write to end. The same code runs on both databases.

A write that holds the shared lock and then stalls (its process paused) would hold up the
takeover, and a heartbeat paused between its exclusive lock on the row and its commit would
hold up every member's heartbeat; both therefore limit how long their transaction may sit
idle (``idle_in_transaction_session_timeout`` on PostgreSQL, ``idle_transaction_timeout`` on
MariaDB) to the lease (:meth:`ClusterRepository.bound_idle`): the database ends such a
transaction, and the others proceed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, text, update

from tideflow.errors import NotLeaderError
from tideflow.store.rows.base import table_of
from tideflow.store.rows.cluster import ClusterLeaseRow, ClusterMemberRow
from tideflow.store.types import utcnow

MEMBER = table_of(ClusterMemberRow)
LEASE = table_of(ClusterLeaseRow)
LEADER = "leader"
"""The name of the leader's lease row."""


@dataclass(frozen=True)
class Member:
    """A server of the cluster as the database last heard of it.

    Attributes:
        member_id: Its id (random per process start).
        host: The machine it runs on.
        pid: Its process id there.
        addresses: Where it answers (``{"grpc": url, "http": url}``).
        start_time: When it registered.
        heartbeat_age: Seconds since its last heartbeat, on the database's clock.
        home: Its ``$TIDEFLOW_HOME`` (``None``: registered before members recorded it).
        executors: The executors it runs (``None``: not recorded).
    """

    member_id: str
    host: str
    pid: int
    addresses: dict[str, str]
    start_time: datetime
    heartbeat_age: float
    home: str | None = None
    executors: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Lease:
    """The leader's lease: its holder, fencing token and seconds until it expires."""

    holder: str | None
    epoch: int
    expires_in: float


class ClusterRepository:
    """Reads and writes of ``cluster_member`` and ``cluster_lease`` on one connection."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def now(self) -> float:
        """Seconds since the epoch on the database's clock (this process's on SQLite)."""
        dialect = self._c.dialect.name
        if dialect == "postgresql":
            query = "SELECT EXTRACT(EPOCH FROM clock_timestamp())"
        elif dialect in ("mysql", "mariadb"):
            query = "SELECT UNIX_TIMESTAMP(NOW(6))"
        else:
            return time.time()
        return float(self._c.execute(text(query)).scalar_one())

    # -- members -------------------------------------------------------------------------------

    def heartbeat(
        self,
        member_id: str,
        *,
        host: str,
        pid: int,
        addresses: dict[str, str],
        home: str | None = None,
        executors: Sequence[str] | None = None,
    ) -> None:
        """Register ``member_id``, or renew its heartbeat.

        Registering with a ``home`` removes the members registered before with the same host
        and home: one server runs on a home at a time, so they are this server's earlier
        processes, dead however fresh their last heartbeat -- their commands and attempts are
        handed over at once rather than a lease later.
        """
        now = self.now()
        done = self._c.execute(
            update(MEMBER).where(MEMBER.c.member_id == member_id).values(heartbeat=now)
        )
        if done.rowcount == 0:
            if home is not None:
                self._c.execute(
                    delete(MEMBER).where(
                        MEMBER.c.host == host,
                        MEMBER.c.home == home,
                        MEMBER.c.member_id != member_id,
                    )
                )
            self._c.execute(
                insert(MEMBER).values(
                    member_id=member_id,
                    host=host,
                    pid=pid,
                    addresses=json.dumps(addresses, sort_keys=True),
                    start_time=utcnow(),
                    heartbeat=now,
                    home=home,
                    executors=None if executors is None else json.dumps(list(executors)),
                )
            )

    def live_members(self, lease_seconds: float) -> list[Member]:
        """The members whose last heartbeat is less than ``lease_seconds`` old, oldest first.

        The others count as dead: their taken commands are offered again and their attempts
        handed over (:mod:`tideflow.scheduler.handover`).
        """
        return [m for m in self.list_members() if m.heartbeat_age < lease_seconds]

    def remove_member(self, member_id: str) -> None:
        """Forget ``member_id`` (it stopped)."""
        self._c.execute(delete(MEMBER).where(MEMBER.c.member_id == member_id))

    def forget_silent(self, older_than: float) -> int:
        """Forget members whose last heartbeat is over ``older_than`` seconds old."""
        done = self._c.execute(delete(MEMBER).where(MEMBER.c.heartbeat < self.now() - older_than))
        return int(done.rowcount or 0)

    def list_members(self) -> list[Member]:
        """Every registered member, oldest first."""
        now = self.now()
        rows = self._c.execute(
            select(MEMBER).order_by(MEMBER.c.start_time, MEMBER.c.member_id)
        ).mappings()
        return [
            Member(
                member_id=row["member_id"],
                host=row["host"],
                pid=row["pid"],
                addresses=json.loads(row["addresses"]),
                start_time=row["start_time"],
                heartbeat_age=max(now - row["heartbeat"], 0.0),
                home=row["home"],
                executors=None if row["executors"] is None else tuple(json.loads(row["executors"])),
            )
            for row in rows
        ]

    # -- the lease -----------------------------------------------------------------------------

    def lease(self) -> Lease | None:
        """The leader's lease as it stands, or ``None`` if no server ever led."""
        row = self._c.execute(select(LEASE).where(LEASE.c.name == LEADER)).mappings().first()
        if row is None:
            return None
        return Lease(row["holder"], row["epoch"], row["expires"] - self.now())

    def acquire(self, member_id: str, lease_seconds: float) -> int | None:
        """Take or renew the lease for ``member_id``; its epoch if it holds it now, else None.

        Renewing keeps the epoch; taking over an expired (or released) lease adds one to it.
        Every member's heartbeat locks the row here, so one paused before its commit would
        hold up every other member's heartbeat and with them the election: the transaction's
        idle time is bounded by the lease (see the module docstring).
        """
        self.bound_idle(lease_seconds)
        row = (
            self._c.execute(select(LEASE).where(LEASE.c.name == LEADER).with_for_update())
            .mappings()
            .first()
        )
        now = self.now()
        if row is None:
            self._c.execute(
                insert(LEASE).values(
                    name=LEADER, holder=member_id, epoch=1, expires=now + lease_seconds
                )
            )
            return 1
        if row["holder"] == member_id and row["expires"] > now:
            epoch = int(row["epoch"])
        elif row["holder"] is None or row["expires"] <= now:
            epoch = int(row["epoch"]) + 1
        else:
            return None
        self._c.execute(
            update(LEASE)
            .where(LEASE.c.name == LEADER)
            .values(holder=member_id, epoch=epoch, expires=now + lease_seconds)
        )
        return epoch

    def release(self, member_id: str, epoch: int) -> None:
        """Give the lease up now (a clean stop), if ``member_id`` still holds ``epoch``."""
        self._c.execute(
            update(LEASE)
            .where(LEASE.c.name == LEADER, LEASE.c.holder == member_id, LEASE.c.epoch == epoch)
            .values(holder=None, expires=0.0)
        )

    def bound_idle(self, lease_seconds: float) -> None:
        """Have the database end this transaction if it sits idle longer than a lease.

        For a transaction that locks a row other members wait for: a process paused
        (``SIGSTOP``, a VM frozen) holding it would otherwise hold them up until it wakes.
        PostgreSQL's setting is for this transaction only; MariaDB has only a session
        setting, which stays on the pooled connection (the same bound for its later
        transactions). SQLite has no other members.
        """
        dialect = self._c.dialect.name
        if dialect == "postgresql":
            millis = max(int(lease_seconds * 1000), 1)
            self._c.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = {millis}"))
        elif dialect in ("mysql", "mariadb"):
            seconds = max(math.ceil(lease_seconds), 1)
            self._c.execute(text(f"SET SESSION idle_transaction_timeout = {seconds}"))

    def check_fence(self, member_id: str, epoch: int, *, lease_seconds: float) -> None:
        """Let this transaction commit only if ``member_id`` still leads with ``epoch``.

        Reads the lease row with a shared lock, which a takeover (an exclusive lock) waits
        for until this transaction ends; and bounds how long this transaction may then sit
        idle (see the module docstring).

        Raises:
            NotLeaderError: Another member took the lease (a newer epoch), or it was released.
        """
        self.bound_idle(lease_seconds)
        row = (
            self._c.execute(
                select(LEASE.c.holder, LEASE.c.epoch)
                .where(LEASE.c.name == LEADER)
                .with_for_update(read=True)
            )
            .mappings()
            .first()
        )
        if row is None or row["holder"] != member_id or row["epoch"] != epoch:
            held = "nobody" if row is None or row["holder"] is None else row["holder"]
            current = 0 if row is None else row["epoch"]
            raise NotLeaderError(
                f"server {member_id} no longer leads: its fencing token is epoch {epoch}, the "
                f"lease is epoch {current} held by {held}; this write was not committed"
            )
