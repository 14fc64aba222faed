"""SQL of the job-command outbox: issue, take, complete, cancel.

Taking is claim-then-read: the candidate rows are locked (``FOR UPDATE``), then updated to TAKEN
only where still PENDING with a token unique to this call, and the commands returned are the
ones carrying that token. Two takers racing for one command can therefore never both get it,
whatever the backend's locking-read semantics.

A START of attempt *n* is not handed out while an earlier attempt of the same job is still
INIT, STARTING or RUNNING: that is how a RESTART (STOP of *n-1* and START of *n* issued in one
transaction) is ordered without the executor having to know about it.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, Select, and_, bindparam, func, not_, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from tideflow.domain.scheduling import AttemptOwner, CommandAction, CommandStatus, JobCommand
from tideflow.domain.status import JobStatus
from tideflow.errors import NotFoundError
from tideflow.store.rows.base import table_of
from tideflow.store.rows.execution import JobExecutionRow
from tideflow.store.rows.scheduler import JobCommandRow

COMMAND = table_of(JobCommandRow)
JOB = table_of(JobExecutionRow)
LIVE = (JobStatus.INIT.value, JobStatus.STARTING.value, JobStatus.RUNNING.value)


# Run by the scheduler for every command it issues or withdraws; built once with bound
# parameters (building a statement anew cost several times running it).
_COMMAND_EXISTS = select(COMMAND.c.command_id).where(
    COMMAND.c.command_id == bindparam("command_id")
)
_CANCEL_PENDING = (
    update(COMMAND)
    .where(
        COMMAND.c.command_id == bindparam("b_command_id"),
        COMMAND.c.status == CommandStatus.PENDING.value,
    )
    .values(status=CommandStatus.DONE.value)
)


@functools.cache
def _due(clustered: bool) -> ColumnElement[bool]:
    """Whether a command is due for an executor (``due_executor`` at ``due_now``).

    Built once (per whether the executor is a cluster member's, ``due_member``), with bound
    parameters: an executor looks for its commands at every wake-up, and building this
    clause anew (an alias, two subqueries) cost more than running it.
    """
    earlier = JOB.alias("earlier")
    earlier_live = (
        select(earlier.c.id)
        .where(
            earlier.c.execution_id == COMMAND.c.execution_id,
            earlier.c.job == COMMAND.c.job,
            earlier.c.attempt < COMMAND.c.attempt,
            earlier.c.status.in_(LIVE),
        )
        .exists()
    )
    due = and_(
        COMMAND.c.executor == bindparam("due_executor"),
        COMMAND.c.status == CommandStatus.PENDING.value,
        or_(COMMAND.c.not_before.is_(None), COMMAND.c.not_before <= bindparam("due_now")),
        or_(COMMAND.c.action != CommandAction.START.value, not_(earlier_live)),
    )
    if not clustered:
        return due
    # In a cluster a STOP goes to the member that owns its attempt (any member while the
    # attempt has no owner yet): only the owner holds the attempt to stop.
    owned_elsewhere = (
        select(JOB.c.id)
        .where(
            JOB.c.id == COMMAND.c.job_execution_id,
            JOB.c.owner.is_not(None),
            JOB.c.owner != bindparam("due_member"),
            JOB.c.status.in_(LIVE),  # a STOP of an ended attempt is anyone's to complete
        )
        .exists()
    )
    return and_(due, or_(COMMAND.c.action != CommandAction.STOP.value, not_(owned_elsewhere)))


@functools.cache
def _has_due_query(clustered: bool) -> Select[Any]:
    return select(COMMAND.c.command_id).where(_due(clustered)).limit(1)


@functools.cache
def _take_query(clustered: bool) -> Select[Any]:
    return (
        select(COMMAND.c.command_id)
        .where(_due(clustered))
        .order_by(COMMAND.c.create_time, COMMAND.c.command_id)
        .limit(bindparam("limit", type_=Integer))
        .with_for_update()
    )


_MARK_TAKEN = (
    update(COMMAND)
    .where(
        COMMAND.c.command_id.in_(bindparam("b_ids", expanding=True)),
        COMMAND.c.status == CommandStatus.PENDING.value,
    )
    .values(
        status=CommandStatus.TAKEN.value,
        taken_by=bindparam("b_token"),
        taken_time=bindparam("b_now"),
        member=bindparam("b_member"),
    )
)
_TAKEN = (
    select(COMMAND)
    .where(
        COMMAND.c.command_id.in_(bindparam("ids", expanding=True)),
        COMMAND.c.taken_by == bindparam("token"),
    )
    .order_by(COMMAND.c.create_time, COMMAND.c.command_id)
)


class OutboxRepository:
    """The job commands the scheduler issued and the executors take."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def issue(self, command: JobCommand) -> bool:
        """Store ``command`` unless a command with its id exists; whether it was stored.

        Callers hold the lock of the command's execution, so no concurrent issuer can slip in
        between the look and the insert (and if one did, the primary key refuses the twin).
        """
        exists = self._c.execute(_COMMAND_EXISTS, {"command_id": command.command_id}).first()
        if exists is not None:
            return False
        self._c.execute(COMMAND.insert(), JobCommandRow.values(command))
        return True

    def get(self, command_id: str) -> JobCommand:
        """Command ``command_id``.

        Raises:
            NotFoundError: No such command.
        """
        row = self._c.execute(select(COMMAND).where(COMMAND.c.command_id == command_id)).first()
        if row is None:
            raise NotFoundError("job command", command_id)
        return JobCommandRow.to_domain(row._mapping)

    def has_due(self, executor: str, now: datetime, member: str | None = None) -> bool:
        """Whether ``executor`` (of cluster member ``member``) has a command to take at ``now``."""
        values = {"due_executor": executor, "due_now": now, "due_member": member}
        return self._c.execute(_has_due_query(member is not None), values).first() is not None

    def take(
        self,
        executor: str,
        now: datetime,
        limit: int,
        token: str,
        owner: AttemptOwner | None = None,
    ) -> list[JobCommand]:
        """Claim up to ``limit`` due PENDING commands of ``executor`` for ``token``.

        With an ``owner`` (a cluster member's executor) the commands record its member id,
        and the attempts of the STARTs taken become its own (:meth:`own_started`).
        """
        member = None if owner is None else owner.member_id
        due = {"due_executor": executor, "due_now": now, "due_member": member, "limit": limit}
        ids = [row.command_id for row in self._c.execute(_take_query(member is not None), due)]
        if not ids:
            return []
        self._c.execute(
            _MARK_TAKEN, {"b_ids": ids, "b_token": token, "b_now": now, "b_member": member}
        )
        rows = self._c.execute(_TAKEN, {"ids": ids, "token": token})
        taken = [JobCommandRow.to_domain(row._mapping) for row in rows]
        if owner is not None:
            self.own_started(
                [c.job_execution_id for c in taken if c.action is CommandAction.START], owner
            )
        return taken

    def own_started(self, job_execution_ids: Sequence[int], owner: AttemptOwner) -> None:
        """Make ``owner`` the owner of the attempts (still INIT) whose STARTs it took.

        Their files go to its home -- unless a member on its host took the START before
        (and died): that member's home may hold the attempt half-launched (its launch record,
        its process's claim), and the new owner must look there, not launch it again.
        """
        if not job_execution_ids:
            return
        ids = list(job_execution_ids)
        init = JOB.c.status == JobStatus.INIT.value
        self._c.execute(update(JOB).where(JOB.c.id.in_(ids), init).values(owner=owner.member_id))
        self._c.execute(
            update(JOB)
            .where(
                JOB.c.id.in_(ids),
                init,
                or_(JOB.c.home.is_(None), JOB.c.home_host.is_(None), JOB.c.home_host != owner.host),
            )
            .values(home=owner.home, home_host=owner.host)
        )

    def complete(self, command_id: str) -> None:
        """Mark a command DONE (idempotent).

        Raises:
            NotFoundError: No such command.
        """
        result = self._c.execute(
            update(COMMAND)
            .where(COMMAND.c.command_id == command_id)
            .values(status=CommandStatus.DONE.value)
        )
        if result.rowcount == 0:
            raise NotFoundError("job command", command_id)

    def cancel_pending(self, command_id: str) -> bool:
        """Withdraw a command no executor has taken yet; whether it was still PENDING."""
        result = self._c.execute(_CANCEL_PENDING, {"b_command_id": command_id})
        return result.rowcount == 1

    def list_commands(
        self,
        *,
        execution_id: int | None = None,
        executor: str | None = None,
        statuses: Sequence[CommandStatus] | None = None,
    ) -> list[JobCommand]:
        """Commands, oldest first, optionally of one execution / executor / in some statuses."""
        query = select(COMMAND)
        if execution_id is not None:
            query = query.where(COMMAND.c.execution_id == execution_id)
        if executor is not None:
            query = query.where(COMMAND.c.executor == executor)
        if statuses is not None:
            query = query.where(COMMAND.c.status.in_([s.value for s in statuses]))
        rows = self._c.execute(query.order_by(COMMAND.c.create_time, COMMAND.c.command_id))
        return [JobCommandRow.to_domain(row._mapping) for row in rows]

    def next_due(self, executor: str | None) -> datetime | None:
        """The earliest ``not_before`` of a PENDING command (of ``executor``), if any."""
        query = select(func.min(COMMAND.c.not_before)).where(
            COMMAND.c.status == CommandStatus.PENDING.value,
            COMMAND.c.not_before.is_not(None),
        )
        if executor is not None:
            query = query.where(COMMAND.c.executor == executor)
        value: datetime | None = self._c.execute(query).scalar()
        return value

    def reoffer_taken(
        self, executor: str | None = None, *, live: Collection[str] | None = None
    ) -> list[str]:
        """Put back (TAKEN -> PENDING) the commands a crashed executor took but never acted on.

        A START whose attempt is still INIT (the executor took it and died before the job
        was spawned -- or before it said so), and every STOP not done yet. Deterministic ids
        and the executor's own checks (the attempt's status, its ``launch.json`` / ``pid``
        files) make handing them out again safe. STARTs of attempts that got further are
        re-attached instead (:meth:`live_starts`). Without ``live``, only for a single
        server's start-up: a live executor may be acting on a TAKEN command right now.

        Args:
            executor: Only this executor's commands.
            live: The ids of the cluster's live members: only commands taken by another
                member (a dead one), or by no member (an executor outside the servers), are
                put back -- never a command a live member took a moment ago.

        Returns:
            The ids of the commands put back, oldest first.
        """
        init_attempt = (
            select(JOB.c.id)
            .where(
                JOB.c.id == COMMAND.c.job_execution_id,
                JOB.c.status == JobStatus.INIT.value,
            )
            .exists()
        )
        where = [
            COMMAND.c.status == CommandStatus.TAKEN.value,
            or_(COMMAND.c.action == CommandAction.STOP.value, init_attempt),
        ]
        if executor is not None:
            where.append(COMMAND.c.executor == executor)
        if live is not None:
            where.append(or_(COMMAND.c.member.is_(None), COMMAND.c.member.not_in(list(live))))
        ids = [
            row.command_id
            for row in self._c.execute(
                select(COMMAND.c.command_id)
                .where(*where)
                .order_by(COMMAND.c.create_time, COMMAND.c.command_id)
                .with_for_update()
            )
        ]
        if ids:
            self._c.execute(
                update(COMMAND)
                .where(
                    COMMAND.c.command_id.in_(ids),
                    COMMAND.c.status == CommandStatus.TAKEN.value,
                )
                .values(
                    status=CommandStatus.PENDING.value, taken_by=None, taken_time=None, member=None
                )
            )
        return ids

    def live_starts(self, executor: str, *, owner: AttemptOwner | None = None) -> list[JobCommand]:
        """START commands taken (or done) by ``executor`` whose attempt is still live.

        With an ``owner`` (a cluster member), only those whose files are in its home or
        nowhere recorded: the attempts its previous process on that home launched.
        """
        query = (
            select(COMMAND)
            .join(JOB, JOB.c.id == COMMAND.c.job_execution_id)
            .where(
                COMMAND.c.executor == executor,
                COMMAND.c.action == CommandAction.START.value,
                COMMAND.c.status != CommandStatus.PENDING.value,
                JOB.c.status.in_(LIVE),
            )
            .order_by(COMMAND.c.create_time, COMMAND.c.command_id)
        )
        if owner is not None:
            query = query.where(
                or_(
                    JOB.c.home.is_(None),
                    and_(JOB.c.home == owner.home, JOB.c.home_host == owner.host),
                )
            )
        return [JobCommandRow.to_domain(row._mapping) for row in self._c.execute(query)]
