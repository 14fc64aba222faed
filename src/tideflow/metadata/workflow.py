"""Workflows, their snapshots and executions, job executions and the actions behind them.

A job execution only moves along :data:`~tideflow.domain.status.JOB_TRANSITIONS`; every move
appends ``JOB_STATUS_CHANGED`` (key ``<workflow>.<job>``, value the new status, context
``{execution_id, attempt, previous}``) in the same transaction, which is what the scheduler's
``after`` / ``with_start`` rules wait on.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from tideflow.domain.events import JOB_STATUS_CHANGED, Event, job_event_key
from tideflow.domain.limits import (
    MAX_KEY_LENGTH,
    MAX_PACKAGE_BYTES,
    MAX_PLAN_LENGTH,
    MAX_TEXT_LENGTH,
    MAX_URI_LENGTH,
    check_name,
    check_optional_text,
    check_positive_int,
    check_text,
    dump_json,
)
from tideflow.domain.metadata import (
    ExecutionAction,
    JobExecution,
    Snapshot,
    Submission,
    Workflow,
    WorkflowExecution,
)
from tideflow.domain.scheduling import AttemptOwner, OwnedAttempt
from tideflow.domain.status import JOB_TRANSITIONS, ExecutionStatus, JobAction, JobStatus
from tideflow.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    IllegalTransitionError,
    InvalidArgumentError,
    NotFoundError,
)
from tideflow.metadata.package import PackageLimits, check_package
from tideflow.store import Store, append_events
from tideflow.store.blob import BlobStore, check_sha256
from tideflow.store.cursor import check_limit
from tideflow.store.event import events_at
from tideflow.store.repositories.access import TokenRepository
from tideflow.store.repositories.ownership import OwnershipRepository
from tideflow.store.repositories.workflow import WorkflowRepository
from tideflow.store.types import utcnow

log = logging.getLogger(__name__)

SENDER = "metadata"
PACKAGES = "packages"
"""The blob-store kind (directory) of code packages."""
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _enum(kind: type[Any], value: object, what: str) -> Any:
    try:
        return kind(value.upper() if isinstance(value, str) else value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidArgumentError(
            f"unknown {what} {value!r}; use one of {allowed}", field=what
        ) from None


def _check_int32(value: object, what: str, minimum: int) -> None:
    """Refuse what a 32-bit ``INTEGER`` column cannot hold (``None`` passes)."""
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value < 2**31:
        raise InvalidArgumentError(
            f"{what} must be a whole number from {minimum} to {2**31 - 1}, got {value!r}",
            field=what,
        )


class WorkflowService:
    """Submitted workflows, their snapshots and their code packages (in the blob store).

    Args:
        store: The SQL store.
        blobs: Where code packages are kept; without one, packages cannot be uploaded or read.
        package_limits: What a code package may unpack to (the server's options); the
            defaults of :mod:`tideflow.domain.limits` when not given.
    """

    package_limits: PackageLimits = PackageLimits()
    """What a code package may unpack to: checked at upload and at every extraction."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore | None = None,
        *,
        package_limits: PackageLimits | None = None,
    ) -> None:
        self._store = store
        self._blobs = blobs
        if package_limits is not None:
            self.package_limits = package_limits

    @property
    def blobs(self) -> BlobStore:
        """The blob store of code packages.

        Raises:
            FailedPreconditionError: This service was built without one.
        """
        if self._blobs is None:
            raise FailedPreconditionError("no blob store is configured for code packages")
        return self._blobs

    def upload_package(self, project: str, data: bytes, *, sha256: str | None = None) -> str:
        """Store a code package (zip bytes) under its SHA-256; return its URI. Idempotent.

        Raises:
            InvalidArgumentError: Larger than ``MAX_PACKAGE_BYTES``, not a zip, over one of
                :attr:`package_limits` (naming it), or ``sha256`` is given and does not match.
            ResourceExhaustedError: The blob store's disk is full.
        """
        return self.upload_package_stream(project, (data,), sha256=sha256)

    def upload_package_stream(
        self, project: str, chunks: Iterable[bytes], *, sha256: str | None = None
    ) -> str:
        """:meth:`upload_package` of a package arriving in pieces, never held whole in memory.

        The pieces go to a temporary file of the blob store; the package's member list is
        checked against :attr:`package_limits` (:func:`~tideflow.metadata.package.check_package`)
        before it is moved into place, and the temporary file is removed on every failure.
        """

        def bounded() -> Iterator[bytes]:
            size = 0
            for chunk in chunks:
                size += len(chunk)
                if size > MAX_PACKAGE_BYTES:  # refuse before writing more of it
                    raise InvalidArgumentError(
                        f"code package exceeds the limit of {MAX_PACKAGE_BYTES} bytes",
                        field="package",
                    )
                yield chunk

        limits = self.package_limits
        stored = self.blobs.put_stream(
            PACKAGES, bounded(), sha256=sha256, check=lambda f: check_package(f, limits)
        )
        return stored.uri

    def submit(
        self, project: str, workflow: str, *, plan: str, code_sha256: str, identity: str
    ) -> Submission:
        """Register a snapshot of ``workflow``, or reuse the one with the same ``identity``.

        The code package must have been uploaded first (:meth:`upload_package`). Reusing makes
        the existing snapshot the workflow's latest again (a return to earlier content).

        The plan is input, never trusted: it is read with bounded depth and size, then checked
        as ``tide.compile`` checks a workflow and more (:func:`~tideflow.compiler.check.check_plan`:
        every name, engines and platforms known, rules well-formed, cron expressions that can
        fire, time zones, intervals), all before anything is written.

        Raises:
            InvalidArgumentError: Bad name or hashes, or a plan that is not a readable plan of
                this workflow.
            GraphError: The plan reads but fails the checks (every problem listed).
            NotFoundError: The code package is not in the blob store.
        """
        from tideflow.compiler import WorkflowPlan
        from tideflow.compiler.check import check_plan

        check_name(workflow, "workflow name")
        check_sha256(identity, "identity")
        check_sha256(code_sha256, "code_sha256")
        check_text(plan, "plan", MAX_PLAN_LENGTH, empty=False)
        compiled = WorkflowPlan.from_json(plan)
        if compiled.workflow != workflow:
            raise InvalidArgumentError(
                f"the plan is of workflow {compiled.workflow!r}, not {workflow!r}", field="plan"
            )
        check_plan(compiled)
        if not self.blobs.exists(PACKAGES, code_sha256):
            raise NotFoundError(
                "code package",
                code_sha256,
                message=f"code package {code_sha256} of workflow {workflow!r} was not uploaded",
            )
        values = {
            "plan": plan,
            "code_uri": self.blobs.uri(PACKAGES, code_sha256),
            "code_sha256": code_sha256,
            "identity": identity,
        }

        def work(c: Connection) -> Submission:
            repo = WorkflowRepository(c)
            found = repo.find_snapshot(project, workflow, identity)
            if found is None:
                return Submission(repo.add_snapshot(project, workflow, values, utcnow()))
            if repo.get_workflow(project, workflow).latest_snapshot_id != found.snapshot_id:
                repo.make_latest(project, workflow, found.snapshot_id, utcnow())
            return Submission(found, reused=True)

        try:
            return self._store.run(work)
        except AlreadyExistsError:  # lost a race to create the workflow: it exists now
            return self._store.run(work)

    def list_snapshots(self, project: str, workflow: str) -> list[Snapshot]:
        """The snapshots of ``workflow``, newest first."""
        return self._store.run(
            lambda c: WorkflowRepository(c).list_snapshots(project, workflow), write=False
        )

    def get_package(self, project: str, snapshot_id: int) -> bytes:
        """The code package (zip bytes) of snapshot ``snapshot_id``, verified against its hash.

        Raises:
            NotFoundError: No such snapshot, or its package is missing.
            FailedPreconditionError: The stored package does not match its SHA-256 (it was
                changed after upload): it is refused.
        """
        snapshot = self.get_snapshot(project, snapshot_id)
        if not snapshot.code_sha256:
            raise NotFoundError(
                "code package",
                snapshot_id,
                message=f"snapshot {snapshot_id} of workflow {snapshot.workflow!r} has no code package",
            )
        return self.blobs.get(
            PACKAGES,
            snapshot.code_sha256,
            name=f"code package {snapshot.code_sha256} of workflow {snapshot.workflow!r} "
            f"(snapshot {snapshot_id})",
        )

    def stream_package(self, project: str, snapshot_id: int) -> tuple[str, Iterator[bytes]]:
        """:meth:`get_package` in pieces: its SHA-256 and its bytes, verified before the first.

        Raises:
            NotFoundError: No such snapshot, or its package is missing.
            FailedPreconditionError: The stored package does not match its SHA-256.
        """
        snapshot = self.get_snapshot(project, snapshot_id)
        if not snapshot.code_sha256:
            raise NotFoundError(
                "code package",
                snapshot_id,
                message=f"snapshot {snapshot_id} of workflow {snapshot.workflow!r} has no code package",
            )
        _, pieces = self.blobs.stream(
            PACKAGES,
            snapshot.code_sha256,
            name=f"code package {snapshot.code_sha256} of workflow {snapshot.workflow!r} "
            f"(snapshot {snapshot_id})",
        )
        return snapshot.code_sha256, pieces

    def create_snapshot(
        self,
        project: str,
        workflow: str,
        *,
        plan: str,
        code_uri: str = "",
        code_sha256: str = "",
        identity: str = "",
    ) -> Snapshot:
        """Store a submitted plan (JSON text) and code package; creates the workflow if new.

        This records what it is given; :meth:`submit` is the checked, deduplicating path.

        Raises:
            InvalidArgumentError: Bad name, plan that is not JSON, or a malformed SHA-256.
        """
        check_name(workflow, "workflow name")
        check_text(plan, "plan", MAX_PLAN_LENGTH, empty=False)
        try:
            json.loads(plan)
        except ValueError as e:
            raise InvalidArgumentError(f"plan is not JSON: {e}", field="plan") from e
        check_text(code_uri, "code_uri", MAX_URI_LENGTH)
        if code_sha256 and not _SHA256.fullmatch(code_sha256):
            raise InvalidArgumentError(
                "code_sha256 must be 64 lowercase hex digits", field="code_sha256"
            )
        if identity:
            check_sha256(identity, "identity")
        values = {
            "plan": plan,
            "code_uri": code_uri,
            "code_sha256": code_sha256,
            "identity": identity,
        }

        def work(c: Connection) -> Snapshot:
            return WorkflowRepository(c).add_snapshot(project, workflow, values, utcnow())

        try:
            return self._store.run(work)
        except AlreadyExistsError:  # lost a race to create the workflow: it exists now
            return self._store.run(work)

    def get_workflow(self, project: str, name: str) -> Workflow:
        """Workflow ``name``; raises :class:`~tideflow.errors.NotFoundError` naming it."""
        return self._store.run(
            lambda c: WorkflowRepository(c).get_workflow(project, name), write=False
        )

    def list_workflows(self, project: str) -> list[Workflow]:
        """Every workflow of the project, by name."""
        return self._store.run(lambda c: WorkflowRepository(c).list_workflows(project), write=False)

    def delete_workflow(self, project: str, name: str) -> None:
        """Delete a workflow with its snapshots, executions and their job executions."""
        self._store.run(lambda c: WorkflowRepository(c).delete_workflow(project, name))

    def get_snapshot(self, project: str, snapshot_id: int) -> Snapshot:
        """Snapshot ``snapshot_id``."""
        return self._store.run(
            lambda c: WorkflowRepository(c).get_snapshot(project, snapshot_id), write=False
        )


class ExecutionService:
    """Workflow executions, job executions and execution actions."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._end_listeners: list[Callable[[JobExecution], None]] = []

    def add_job_end_listener(self, listener: Callable[[JobExecution], None]) -> None:
        """Call ``listener(job)`` after a :meth:`set_job_status` to an end status commits.

        The scheduler wakes executors with it: an attempt's end can make the START of the next
        attempt of its job due.
        """
        self._end_listeners.append(listener)

    def create_execution(
        self,
        project: str,
        workflow: str,
        *,
        snapshot_id: int | None = None,
        params: Mapping[str, Any] | None = None,
        context: str | None = None,
    ) -> WorkflowExecution:
        """Start recording a RUNNING execution on ``snapshot_id`` (default: the latest)."""
        check_optional_text(context, "context", MAX_KEY_LENGTH)
        values = {
            "status": ExecutionStatus.RUNNING.value,
            "params": dump_json(params, "params"),
            "context": context,
            "start_time": utcnow(),
            "end_time": None,
        }
        return self._store.run(
            lambda c: WorkflowRepository(c).create_execution(project, workflow, snapshot_id, values)
        )

    def get_execution(self, project: str, execution_id: int) -> WorkflowExecution:
        """Execution ``execution_id``."""
        return self._store.run(
            lambda c: WorkflowRepository(c).get_execution(project, execution_id), write=False
        )

    def list_executions(
        self,
        project: str,
        *,
        workflow: str | None = None,
        status: ExecutionStatus | str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[WorkflowExecution]:
        """The newest executions, optionally of one workflow and/or in one status.

        ``before`` (an execution id) pages backwards: only executions older than it.
        """
        check_limit(limit)
        _check_int32(before, "before", 1)
        wanted = (
            None if status is None else _enum(ExecutionStatus, status, "execution status").value
        )
        return self._store.run(
            lambda c: WorkflowRepository(c).list_executions(
                project, workflow, wanted, limit, before
            ),
            write=False,
        )

    def set_execution_status(
        self, project: str, execution_id: int, status: ExecutionStatus | str
    ) -> WorkflowExecution:
        """End a RUNNING execution as FINISHED, FAILED or STOPPED.

        Raises:
            IllegalTransitionError: The execution has already ended.
        """
        wanted: ExecutionStatus = _enum(ExecutionStatus, status, "execution status")

        def work(c: Connection) -> WorkflowExecution:
            repo = WorkflowRepository(c)
            current = repo.get_execution(project, execution_id, lock=True)
            if current.status is not ExecutionStatus.RUNNING or wanted is ExecutionStatus.RUNNING:
                raise IllegalTransitionError(
                    f"workflow execution {execution_id}", current.status.value, wanted.value
                )
            repo.update_execution(execution_id, {"status": wanted.value, "end_time": utcnow()})
            return repo.get_execution(project, execution_id)

        return self._store.run(work)

    def record_action(
        self,
        project: str,
        execution_id: int,
        *,
        job: str | None,
        action: JobAction | str,
        rule: str = "",
        event_offset: int | None = None,
    ) -> ExecutionAction:
        """Record an action taken in an execution, with the rule and event offset behind it."""
        if job is not None:
            check_name(job, "job name")
        check_text(rule, "rule", MAX_TEXT_LENGTH)
        values = {
            "execution_id": execution_id,
            "job": job,
            "action": _enum(JobAction, action, "action").value,
            "rule": rule,
            "event_offset": event_offset,
            "time": utcnow(),
        }

        def work(c: Connection) -> ExecutionAction:
            repo = WorkflowRepository(c)
            repo.get_execution(project, execution_id)
            return repo.insert_action(values)

        return self._store.run(work)

    def list_actions(
        self, project: str, execution_id: int, *, jobs: Sequence[str] | None = None
    ) -> list[ExecutionAction]:
        """The actions recorded in an execution, oldest first.

        With ``jobs``, only those on these jobs and on the execution itself.
        """

        def work(c: Connection) -> list[ExecutionAction]:
            repo = WorkflowRepository(c)
            repo.get_execution(project, execution_id)
            return repo.list_actions(execution_id, jobs)

        return self._store.run(work, write=False)

    def attempt_actions(
        self, project: str, execution_id: int, attempts: Sequence[JobExecution]
    ) -> tuple[dict[tuple[str, int], ExecutionAction], list[ExecutionAction]]:
        """What started and what may have stopped ``attempts`` (of one execution).

        Returns:
            The START / RESTART actions that created attempt n and n + 1 of each job, by
            ``(job, n)``; and the STOP actions on these jobs or on the execution.
        """

        def work(c: Connection) -> tuple[dict[tuple[str, int], ExecutionAction], list[Any]]:
            repo = WorkflowRepository(c)
            repo.get_execution(project, execution_id)
            jobs = {a.job for a in attempts}
            ordinals = {n for a in attempts for n in (a.attempt, a.attempt + 1)}
            return (
                repo.start_actions(execution_id, jobs, ordinals),
                repo.stop_actions(execution_id, jobs),
            )

        return self._store.run(work, write=False)

    # -- job executions ----------------------------------------------------------------------

    def create_job_execution(
        self, project: str, execution_id: int, job: str, *, attempt: int | None = None
    ) -> JobExecution:
        """Create a job execution in INIT; ``attempt`` defaults to one more than the last.

        Raises:
            NotFoundError: No such execution.
            AlreadyExistsError: That attempt of the job exists.
        """
        check_name(job, "job name")
        if attempt is not None:
            check_positive_int(attempt, "attempt")

        def work(c: Connection) -> JobExecution:
            repo = WorkflowRepository(c)
            execution = repo.get_execution(project, execution_id, lock=True)
            key = job_event_key(execution.workflow, job)
            if len(key) > MAX_KEY_LENGTH:
                # Refused now: later, its JOB_STATUS_CHANGED events could not be stored.
                raise InvalidArgumentError(
                    f"job {job[:20]!r}... of workflow {execution.workflow[:20]!r}...: the event "
                    f"key <workflow>.<job> would be {len(key)} characters long; the limit is "
                    f"{MAX_KEY_LENGTH} (shorten the workflow or job name)",
                    field="job",
                )
            number = attempt if attempt is not None else repo.last_attempt(execution_id, job) + 1
            values = {
                "job": job,
                "attempt": number,
                "status": JobStatus.INIT.value,
                "create_time": utcnow(),
            }
            return repo.create_job(execution, values)

        return self._store.run(work)

    def get_job_execution(self, project: str, job_execution_id: int) -> JobExecution:
        """Job execution ``job_execution_id``."""
        return self._store.run(
            lambda c: WorkflowRepository(c).get_job(project, job_execution_id), write=False
        )

    def attempt_triggers(self, project: str, job_execution_id: int) -> tuple[Event, ...]:
        """The events job execution ``job_execution_id`` was started for, oldest first.

        What its executor hands the job (``ctx.triggers``). Events compacted away since are
        left out (an attempt launched long after its trigger, with compaction that eager).

        Raises:
            NotFoundError: No such job execution.
        """

        def read(c: Connection) -> tuple[Event, ...]:
            job = WorkflowRepository(c).get_job(project, job_execution_id)
            return tuple(events_at(c, project, job.trigger_offsets))

        return self._store.run(read, write=False)

    def list_job_executions(
        self,
        project: str,
        execution_id: int,
        *,
        after: int = 0,
        limit: int | None = None,
        job: str | None = None,
    ) -> list[JobExecution]:
        """The job executions of an execution, in creation order.

        ``after`` (a job execution id), ``limit`` and ``job`` page and filter them.
        """
        if limit is not None:
            check_limit(limit)
        _check_int32(after, "after", 0)
        return self._store.run(
            lambda c: WorkflowRepository(c).list_jobs(
                project, execution_id, after=after, limit=limit, job=job
            ),
            write=False,
        )

    def latest_job_executions(
        self, project: str, execution_id: int
    ) -> list[tuple[JobExecution, int]]:
        """The latest attempt of each job of an execution and how many it had, by job start."""
        return self._store.run(
            lambda c: WorkflowRepository(c).latest_jobs(project, execution_id), write=False
        )

    def set_job_status(
        self,
        project: str,
        job_execution_id: int,
        status: JobStatus | str,
        *,
        exit_code: int | None = None,
        error: str | None = None,
        log_uri: str | None = None,
        host: str | None = None,
        pid: int | None = None,
        external_id: str | None = None,
        sender: str = SENDER,
        at: datetime | None = None,
        owner: str | None = None,
        owner_lease: float | None = None,
        fence: Callable[[Connection], None] | None = None,
    ) -> JobExecution:
        """Move a job execution to ``status`` and append its JOB_STATUS_CHANGED event.

        The other arguments, when given, are stored with the change (exit information, where
        the job runs and logs). ``at`` is when the change happened, if it was earlier than now
        (an attempt that ended while the server was down): stored as the start or end time,
        never later than now.

        In a cluster, ``owner`` is the member reporting: the change commits only while it
        owns the attempt (or nobody does), checked in the change's own transaction (which
        may then sit idle no longer than ``owner_lease``, the member's lease); ``fence``
        runs first in that transaction (a leader's fencing check, when the leader declares a
        dead member's attempt lost).

        Raises:
            NotFoundError: No such job execution.
            IllegalTransitionError: The move is not in JOB_TRANSITIONS (also when a concurrent
                writer moved the job first).
            NotOwnerError: Another member owns the attempt now.
            NotLeaderError: ``fence`` refused (this server no longer leads).
        """
        wanted: JobStatus = _enum(JobStatus, status, "job status")
        _check_int32(exit_code, "exit_code", -(2**31))
        _check_int32(pid, "pid", 1)
        extra: dict[str, Any] = {
            "exit_code": exit_code,
            "error": check_optional_text(error, "error", MAX_TEXT_LENGTH),
            "log_uri": check_optional_text(log_uri, "log_uri", MAX_URI_LENGTH),
            "host": check_optional_text(host, "host", MAX_KEY_LENGTH),
            "pid": pid,
            "external_id": check_optional_text(external_id, "external_id", MAX_KEY_LENGTH),
        }
        extra = {key: value for key, value in extra.items() if value is not None}
        previous: list[str] = []

        def work(c: Connection) -> JobExecution:
            if fence is not None:
                fence(c)
            if owner is not None:
                OwnershipRepository(c).check_owner(
                    job_execution_id, owner, lease_seconds=owner_lease
                )
            repo = WorkflowRepository(c)
            job = repo.get_job(project, job_execution_id)
            previous[:] = [job.status.value]
            allowed = JOB_TRANSITIONS[job.status]
            now = utcnow()
            if at is not None:
                now = min(now, at if at.tzinfo is not None else at.replace(tzinfo=UTC))
            values = {**extra, "status": wanted.value}
            if wanted is JobStatus.RUNNING:
                values["start_time"] = now
            if wanted.is_terminal:
                values["end_time"] = now
            if wanted not in allowed or not repo.swap_job_status(
                job_execution_id, job.status.value, values
            ):
                latest = repo.get_job(project, job_execution_id).status
                raise IllegalTransitionError(
                    f"job {job.workflow}.{job.job} (execution {job.execution_id}, attempt {job.attempt})",
                    latest.value,
                    wanted.value,
                    allowed=sorted(s.value for s in JOB_TRANSITIONS[latest]),
                )
            event = Event(
                key=job_event_key(job.workflow, job.job),
                value=wanted.value,
                event_type=JOB_STATUS_CHANGED,
                sender=sender,
                namespace=project,
                context={
                    "execution_id": job.execution_id,
                    "attempt": job.attempt,
                    "previous": job.status.value,
                },
            )
            append_events(c, [event])
            if wanted.is_terminal:  # the attempt's own API token dies with it
                TokenRepository(c).revoke_for_attempt(job_execution_id, now)
            return repo.get_job(project, job_execution_id)

        changed = self._store.run(work)
        log.info(
            "job %s.%s attempt %s of execution %s: %s -> %s",
            changed.workflow,
            changed.job,
            changed.attempt,
            changed.execution_id,
            previous[0] if previous else "?",
            changed.status.value,
            extra={
                "project": project,
                "workflow": changed.workflow,
                "execution_id": changed.execution_id,
                "job": changed.job,
                "attempt": changed.attempt,
                "job_execution_id": job_execution_id,
            },
        )
        if wanted.is_terminal:
            for listener in self._end_listeners:
                listener(changed)
        return changed

    # -- ownership in a cluster (docs/ha.md) ---------------------------------------------------

    def claim_attempt(self, job_execution_id: int, owner: AttemptOwner) -> bool:
        """Make ``owner`` the owner of an attempt that nobody, it, or a dead member owns.

        Returns:
            Whether ``owner`` owns it now (``False``: a live member does).
        """
        return self._store.run(lambda c: OwnershipRepository(c).claim(job_execution_id, owner))

    def attempt_home(self, job_execution_id: int) -> tuple[str | None, str | None]:
        """The ``$TIDEFLOW_HOME`` holding an attempt's files, and its host (``None``: none)."""
        _, home, host = self._store.run(
            lambda c: OwnershipRepository(c).owner(job_execution_id), write=False
        )
        return home, host

    def attempt_owner(self, job_execution_id: int) -> str | None:
        """The cluster member that owns an attempt (``None``: nobody)."""
        owner, _, _ = self._store.run(
            lambda c: OwnershipRepository(c).owner(job_execution_id), write=False
        )
        return owner

    def owned_attempts(self, member: str) -> list[OwnedAttempt]:
        """The launched attempts cluster member ``member`` owns (one indexed read)."""
        return self._store.run(lambda c: OwnershipRepository(c).owned(member), write=False)
