"""Which cluster member owns each attempt, and the hand-over of a dead member's attempts.

An attempt (a ``job_execution`` row) is owned by the member that took its START
(:meth:`~tideflow.store.repositories.outbox.OutboxRepository.own_started`); ``home`` and
``home_host`` say where its files are. Only the owner reports its status
(:meth:`OwnershipRepository.check_owner`, in the report's own transaction). When the owner
dies, the leader finds its attempts (:meth:`OwnershipRepository.orphans`) and gives each to a
live member (:meth:`OwnershipRepository.assign`), which re-attaches it; a member re-attaching
an attempt after its own restart takes it over with :meth:`OwnershipRepository.claim`. Both
are compare-and-set on ``owner``: of two members racing for one attempt exactly one gets it.
Rows of a single server carry no owner and none of this applies to them.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, Select, and_, or_, select, update

from tideflow.domain.scheduling import AttemptOwner, CommandAction, OwnedAttempt
from tideflow.domain.status import JobStatus
from tideflow.errors import NotFoundError, NotOwnerError
from tideflow.store.repositories.cluster import MEMBER, ClusterRepository
from tideflow.store.rows.base import table_of
from tideflow.store.rows.execution import JobExecutionRow
from tideflow.store.rows.scheduler import JobCommandRow

JOB = table_of(JobExecutionRow)
COMMAND = table_of(JobCommandRow)
LAUNCHED = (JobStatus.STARTING.value, JobStatus.RUNNING.value)
"""Attempts past their launch: a dead owner's are handed over (INIT ones are re-offered)."""


class OwnershipRepository:
    """Reads and compare-and-set writes of ``job_execution.owner`` on one connection."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def owner(self, job_execution_id: int) -> tuple[str | None, str | None, str | None]:
        """The owner, home and home host of an attempt.

        Raises:
            NotFoundError: No such job execution.
        """
        row = self._c.execute(
            select(JOB.c.owner, JOB.c.home, JOB.c.home_host).where(JOB.c.id == job_execution_id)
        ).first()
        if row is None:
            raise NotFoundError("job execution", str(job_execution_id))
        return row.owner, row.home, row.home_host

    def check_owner(
        self, job_execution_id: int, member: str, *, lease_seconds: float | None = None
    ) -> None:
        """Let this transaction commit only while ``member`` owns the attempt (or nobody does).

        The row is locked until the transaction ends, so a hand-over (an update of the same
        row) waits for it: a report either commits before the attempt changes hands, or not
        at all. With ``lease_seconds`` (the member's lease) the transaction may sit idle no
        longer than that, so a member paused in the middle of a report cannot hold the
        leader's hand-over round (and with it the leader's heartbeat) up until it wakes.

        Raises:
            NotOwnerError: Another member owns the attempt now.
        """
        if lease_seconds is not None:
            ClusterRepository(self._c).bound_idle(lease_seconds)
        row = self._c.execute(
            select(JOB.c.owner).where(JOB.c.id == job_execution_id).with_for_update()
        ).first()
        if row is not None and row.owner is not None and row.owner != member:
            raise NotOwnerError(
                f"member {member} no longer owns job execution {job_execution_id}: member "
                f"{row.owner} does (it was handed over while {member} seemed dead); this "
                f"report was not committed"
            )

    def claim(self, job_execution_id: int, owner: AttemptOwner) -> bool:
        """Take the attempt over for ``owner`` if nobody, it, or a dead member owns it.

        Dead is the leader's notion: no heartbeat for a lease, or no member row at all. A
        new owner on another host than the attempt's files moves its record to its own home.

        Returns:
            Whether ``owner`` owns the attempt now.
        """
        since = ClusterRepository(self._c).now() - owner.lease
        live_others = select(MEMBER.c.member_id).where(
            MEMBER.c.heartbeat >= since, MEMBER.c.member_id != owner.member_id
        )
        done = self._c.execute(
            update(JOB)
            .where(
                JOB.c.id == job_execution_id,
                or_(JOB.c.owner.is_(None), JOB.c.owner.not_in(live_others)),
            )
            .values(owner=owner.member_id)
        )
        if done.rowcount != 1:
            return False
        self._c.execute(
            update(JOB)
            .where(
                JOB.c.id == job_execution_id,
                or_(JOB.c.home.is_(None), JOB.c.home_host.is_(None), JOB.c.home_host != owner.host),
            )
            .values(home=owner.home, home_host=owner.host)
        )
        return True

    def assign(self, job_execution_id: int, dead: str, member: str) -> bool:
        """Hand an attempt of the dead member ``dead`` to ``member``; whether it still was dead's."""
        done = self._c.execute(
            update(JOB)
            .where(JOB.c.id == job_execution_id, JOB.c.owner == dead)
            .values(owner=member)
        )
        return done.rowcount == 1

    @staticmethod
    def _launched() -> Select[Any]:
        return (
            select(
                COMMAND,
                JOB.c.owner.label("attempt_owner"),
                JOB.c.home.label("attempt_home"),
                JOB.c.home_host.label("attempt_home_host"),
            )
            .join(
                JOB,
                and_(
                    JOB.c.id == COMMAND.c.job_execution_id,
                    COMMAND.c.action == CommandAction.START.value,
                ),
            )
            .where(JOB.c.status.in_(LAUNCHED))
        )

    def owned(self, member: str) -> list[OwnedAttempt]:
        """The launched attempts ``member`` owns, oldest first (one indexed read)."""
        rows = self._c.execute(
            self._launched()
            .where(JOB.c.owner == member)
            .order_by(COMMAND.c.create_time, COMMAND.c.command_id)
        ).mappings()
        return [self._owned(row) for row in rows]

    def orphans(self, live: Collection[str]) -> list[OwnedAttempt]:
        """The launched attempts owned by a member not in ``live``, oldest first."""
        query = (
            self._launched()
            .add_columns(MEMBER.c.host.label("member_host"))
            .outerjoin(MEMBER, MEMBER.c.member_id == JOB.c.owner)
            .where(JOB.c.owner.is_not(None), JOB.c.owner.not_in(list(live)))
            .order_by(COMMAND.c.create_time, COMMAND.c.command_id)
        )
        return [self._owned(row) for row in self._c.execute(query).mappings()]

    @staticmethod
    def _owned(row: object) -> OwnedAttempt:
        mapping = dict(row)  # type: ignore[call-overload]
        return OwnedAttempt(
            start=JobCommandRow.to_domain(mapping),
            owner=mapping["attempt_owner"],
            home=mapping["attempt_home"],
            home_host=mapping["attempt_home_host"],
            owner_host=mapping.get("member_host"),
        )
