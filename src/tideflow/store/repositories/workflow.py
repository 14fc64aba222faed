"""SQL of workflows, snapshots, workflow executions, job executions and execution actions.

Job status changes are compare-and-set (``UPDATE ... WHERE status = <expected>``): two writers
racing to move one job execution cannot both succeed, on any backend, without a lock round trip.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Integer,
    Select,
    Update,
    bindparam,
    func,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import BindParameter

from tideflow.domain.metadata import (
    ExecutionAction,
    JobExecution,
    Snapshot,
    Workflow,
    WorkflowExecution,
)
from tideflow.domain.status import JobStatus
from tideflow.errors import AlreadyExistsError, NotFoundError
from tideflow.store.errors import is_unique_violation
from tideflow.store.repositories import inserted_id
from tideflow.store.repositories.project import project_id, project_id_query
from tideflow.store.repositories.scheduler import SchedulerRepository
from tideflow.store.rows.base import table_of
from tideflow.store.rows.execution import (
    ExecutionActionRow,
    JobExecutionRow,
    SnapshotRow,
    WorkflowExecutionRow,
    WorkflowRow,
)

WORKFLOW = table_of(WorkflowRow)
SNAPSHOT = table_of(SnapshotRow)
EXECUTION = table_of(WorkflowExecutionRow)
JOB = table_of(JobExecutionRow)
ACTION = table_of(ExecutionActionRow)


def _in_project(project: str | BindParameter[str]) -> Any:
    return WORKFLOW.c.project_id == project_id_query(project)


def _executions(project: str | BindParameter[str]) -> Select[Any]:
    return (
        select(EXECUTION, WORKFLOW.c.name.label("workflow"))
        .join(WORKFLOW, WORKFLOW.c.id == EXECUTION.c.workflow_id)
        .where(_in_project(project))
    )


def _jobs(project: str | BindParameter[str]) -> Select[Any]:
    return (
        select(JOB, WORKFLOW.c.name.label("workflow"))
        .join(EXECUTION, EXECUTION.c.id == JOB.c.execution_id)
        .join(WORKFLOW, WORKFLOW.c.id == EXECUTION.c.workflow_id)
        .where(_in_project(project))
    )


# Built once with bound parameters (the scheduler reads the execution for every event it
# delivers; building the statement anew cost several times running it).
_EXECUTION = _executions(bindparam("project")).where(EXECUTION.c.id == bindparam("execution_id"))
_EXECUTION_FOR_UPDATE = _EXECUTION.with_for_update(of=EXECUTION)
_JOB_BY_ID = select(JOB).where(JOB.c.id == bindparam("job_id"))
# Every attempt's launch reads its snapshot (the executor's preparation).
_SNAPSHOT_IN_PROJECT = (
    select(SNAPSHOT, WORKFLOW.c.name.label("workflow"))
    .join(WORKFLOW, WORKFLOW.c.id == SNAPSHOT.c.workflow_id)
    .where(_in_project(bindparam("project")), SNAPSHOT.c.id == bindparam("snapshot_id"))
)
# An attempt's status report reads it twice (before and after the change).
_JOB_IN_PROJECT = _jobs(bindparam("project")).where(JOB.c.id == bindparam("job_id"))


@functools.cache
def _swap_job_status(columns: tuple[str, ...]) -> Update:
    """The compare-and-set of :meth:`WorkflowRepository.swap_job_status` for ``columns``."""
    return (
        update(JOB)
        .where(JOB.c.id == bindparam("b_id"), JOB.c.status == bindparam("b_expected"))
        .values({name: bindparam(f"b_{name}") for name in columns})
    )


LIVE_JOB_STATUSES = tuple(s.value for s in JobStatus if not s.is_terminal)
RECENT_JOBS_CHUNK = 100
"""Jobs per statement of :meth:`WorkflowRepository.recent_jobs` (SQLite allows 500 parts)."""


@functools.cache
def _recent_jobs_query(jobs: int, *, live: bool) -> CompoundSelect[Any]:
    """The statement of :meth:`WorkflowRepository.recent_jobs` for ``jobs`` jobs of a plan.

    Built once per size, with every value a bound parameter: SQLAlchemy then generates its
    cache key and result columns once instead of at every event. With ``live``, it reads the
    execution's live attempts too.
    """
    execution = JOB.c.execution_id == bindparam("execution_id")
    parts: list[Select[Any]] = []
    if live:
        parts.append(select(JOB).where(execution, JOB.c.status.in_(LIVE_JOB_STATUSES)))
    for index in range(jobs):
        parts.append(
            select(JOB)
            .where(execution, JOB.c.job == bindparam(f"job_{index}"))
            .order_by(JOB.c.attempt.desc())
            .limit(bindparam(f"limit_{index}", type_=Integer))
        )
    # Each part as a subquery: a compound SELECT takes no ORDER BY / LIMIT of its own parts.
    return union_all(*(select(part.subquery()) for part in parts))


SKIPPED_MARK = "(skipped"
"""What the scheduler writes into the rule of an action it recorded but did not take."""


class WorkflowRepository:
    """Workflows and their snapshots, executions, job executions and actions."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    # -- workflows and snapshots -------------------------------------------------------------

    def add_snapshot(
        self, project: str, name: str, values: Mapping[str, Any], now: datetime
    ) -> Snapshot:
        """Store a snapshot of workflow ``name`` (creating the workflow) and make it the latest."""
        workflow_id = self._workflow_id(project, name, lock=True, missing_ok=True)
        if workflow_id is None:
            try:
                result = self._c.execute(
                    WORKFLOW.insert(),
                    {
                        "project_id": project_id(self._c, project),
                        "name": name,
                        "create_time": now,
                        "update_time": now,
                    },
                )
            except IntegrityError as e:
                if is_unique_violation(e):  # a concurrent first submission: let the caller retry
                    raise AlreadyExistsError("workflow", name) from e
                raise
            workflow_id = inserted_id(result)
        result = self._c.execute(
            SNAPSHOT.insert(), {**values, "workflow_id": workflow_id, "create_time": now}
        )
        snapshot_id = inserted_id(result)
        self._c.execute(
            update(WORKFLOW)
            .where(WORKFLOW.c.id == workflow_id)
            .values(latest_snapshot_id=snapshot_id, update_time=now)
        )
        # The scheduler's start_on index follows the latest snapshot, in the same transaction.
        SchedulerRepository(self._c).refresh_triggers(
            workflow_id, project, snapshot_id, values["plan"]
        )
        return SnapshotRow.to_domain({**values, "id": snapshot_id, "create_time": now}, name)

    def find_snapshot(self, project: str, name: str, identity: str) -> Snapshot | None:
        """The newest snapshot of workflow ``name`` with that identity, locking the workflow.

        The lock serialises concurrent submissions of one workflow, so two identical ones
        cannot both store a snapshot.
        """
        workflow_id = self._workflow_id(project, name, lock=True, missing_ok=True)
        if workflow_id is None:
            return None
        row = self._c.execute(
            select(SNAPSHOT)
            .where(SNAPSHOT.c.workflow_id == workflow_id, SNAPSHOT.c.identity == identity)
            .order_by(SNAPSHOT.c.id.desc())
            .limit(1)
        ).first()
        return None if row is None else SnapshotRow.to_domain(row._mapping, name)

    def make_latest(self, project: str, name: str, snapshot_id: int, now: datetime) -> None:
        """Point workflow ``name`` at one of its snapshots (a resubmission of older content)."""
        workflow_id = self._workflow_id(project, name)
        assert workflow_id is not None  # _workflow_id raises for a missing workflow
        self._c.execute(
            update(WORKFLOW)
            .where(WORKFLOW.c.id == workflow_id)
            .values(latest_snapshot_id=snapshot_id, update_time=now)
        )
        plan = self._c.execute(select(SNAPSHOT.c.plan).where(SNAPSHOT.c.id == snapshot_id)).scalar()
        SchedulerRepository(self._c).refresh_triggers(workflow_id, project, snapshot_id, plan or "")

    def list_snapshots(self, project: str, name: str) -> list[Snapshot]:
        """The snapshots of workflow ``name``, newest first."""
        workflow_id = self._workflow_id(project, name)
        rows = self._c.execute(
            select(SNAPSHOT)
            .where(SNAPSHOT.c.workflow_id == workflow_id)
            .order_by(SNAPSHOT.c.id.desc())
        )
        return [SnapshotRow.to_domain(row._mapping, name) for row in rows]

    def _workflow_id(
        self, project: str, name: str, *, lock: bool = False, missing_ok: bool = False
    ) -> int | None:
        query = select(WORKFLOW.c.id).where(_in_project(project), WORKFLOW.c.name == name)
        found = self._c.execute(query.with_for_update() if lock else query).scalar()
        if found is None and not missing_ok:
            raise NotFoundError(
                "workflow", name, message=f"workflow {name!r} not found in project {project!r}"
            )
        return None if found is None else int(found)

    def get_workflow(self, project: str, name: str) -> Workflow:
        """Workflow ``name``."""
        row = self._c.execute(
            select(WORKFLOW).where(_in_project(project), WORKFLOW.c.name == name)
        ).first()
        if row is None:
            raise NotFoundError(
                "workflow", name, message=f"workflow {name!r} not found in project {project!r}"
            )
        return WorkflowRow.to_domain(row._mapping)

    def list_workflows(self, project: str) -> list[Workflow]:
        """Every workflow of the project, by name."""
        rows = self._c.execute(
            select(WORKFLOW).where(_in_project(project)).order_by(WORKFLOW.c.name)
        )
        return [WorkflowRow.to_domain(row._mapping) for row in rows]

    def delete_workflow(self, project: str, name: str) -> None:
        """Delete a workflow with its snapshots and executions."""
        workflow_id = self._workflow_id(project, name)
        self._c.execute(WORKFLOW.delete().where(WORKFLOW.c.id == workflow_id))

    def get_snapshot(self, project: str, snapshot_id: int) -> Snapshot:
        """Snapshot ``snapshot_id`` of a workflow of the project."""
        row = self._c.execute(
            _SNAPSHOT_IN_PROJECT, {"project": project, "snapshot_id": snapshot_id}
        ).first()
        if row is None:
            raise NotFoundError("snapshot", snapshot_id)
        return SnapshotRow.to_domain(row._mapping, row.workflow)

    # -- workflow executions -----------------------------------------------------------------

    def create_execution(
        self, project: str, workflow: str, snapshot_id: int | None, values: Mapping[str, Any]
    ) -> WorkflowExecution:
        """Insert an execution of ``workflow`` on ``snapshot_id`` (default: the latest)."""
        current = self.get_workflow(project, workflow)
        snapshot = snapshot_id if snapshot_id is not None else current.latest_snapshot_id
        if snapshot is None or self.get_snapshot(project, snapshot).workflow != workflow:
            raise NotFoundError(
                "snapshot", snapshot, message=f"workflow {workflow!r} has no snapshot {snapshot!r}"
            )
        workflow_id = self._workflow_id(project, workflow)
        result = self._c.execute(
            EXECUTION.insert(), {**values, "workflow_id": workflow_id, "snapshot_id": snapshot}
        )
        return self.get_execution(project, inserted_id(result))

    def get_execution(
        self, project: str, execution_id: int, *, lock: bool = False
    ) -> WorkflowExecution:
        """Execution ``execution_id`` of the project."""
        query = _EXECUTION_FOR_UPDATE if lock else _EXECUTION
        row = self._c.execute(query, {"project": project, "execution_id": execution_id}).first()
        if row is None:
            raise NotFoundError("workflow execution", execution_id)
        return WorkflowExecutionRow.to_domain(row._mapping, row.workflow)

    def list_executions(
        self,
        project: str,
        workflow: str | None,
        status: str | None,
        limit: int,
        before: int | None = None,
    ) -> list[WorkflowExecution]:
        """The newest ``limit`` executions (with an id below ``before``), optionally filtered."""
        query = _executions(project)
        if before is not None:
            query = query.where(EXECUTION.c.id < before)
        if workflow is not None:
            query = query.where(WORKFLOW.c.name == workflow)
        if status is not None:
            query = query.where(EXECUTION.c.status == status)
        rows = self._c.execute(query.order_by(EXECUTION.c.id.desc()).limit(limit))
        return [WorkflowExecutionRow.to_domain(row._mapping, row.workflow) for row in rows]

    def update_execution(self, execution_id: int, values: Mapping[str, Any]) -> None:
        """Change columns of an execution."""
        self._c.execute(update(EXECUTION).where(EXECUTION.c.id == execution_id).values(**values))

    def insert_action(self, values: Mapping[str, Any]) -> ExecutionAction:
        """Record an action taken in an execution."""
        result = self._c.execute(ACTION.insert(), values)
        return ExecutionActionRow.to_domain({**values, "id": inserted_id(result)})

    def list_actions(
        self, execution_id: int, jobs: Sequence[str] | None = None
    ) -> list[ExecutionAction]:
        """The actions of an execution, oldest first; with ``jobs``, those on these jobs only.

        Actions on the execution itself (``job`` NULL) are always included.
        """
        query = select(ACTION).where(ACTION.c.execution_id == execution_id)
        if jobs is not None:
            query = query.where(or_(ACTION.c.job.in_(list(jobs)), ACTION.c.job.is_(None)))
        rows = self._c.execute(query.order_by(ACTION.c.id))
        return [ExecutionActionRow.to_domain(row._mapping) for row in rows]

    def start_actions(
        self, execution_id: int, jobs: Collection[str], ordinals: Collection[int]
    ) -> dict[tuple[str, int], ExecutionAction]:
        """The n-th START or RESTART taken (not skipped) on each job, for n in ``ordinals``.

        Within a job the n-th such action created attempt n, so this maps attempts to what
        started them without reading every action of a long execution.
        """
        if not jobs or not ordinals:
            return {}
        numbered = (
            select(
                ACTION,
                func.row_number()
                .over(partition_by=ACTION.c.job, order_by=ACTION.c.id)
                .label("ordinal"),
            )
            .where(
                ACTION.c.execution_id == execution_id,
                ACTION.c.job.in_(sorted(jobs)),
                ACTION.c.action.in_(["START", "RESTART"]),
                ~ACTION.c.rule.contains(SKIPPED_MARK, autoescape=True),
            )
            .subquery()
        )
        query = select(numbered).where(numbered.c.ordinal.in_(sorted(ordinals)))
        return {
            (row.job, int(row.ordinal)): ExecutionActionRow.to_domain(row._mapping)
            for row in self._c.execute(query)
        }

    def stop_actions(self, execution_id: int, jobs: Collection[str]) -> list[ExecutionAction]:
        """STOP actions taken (not skipped) on ``jobs`` or on the whole execution, oldest first."""
        query = (
            select(ACTION)
            .where(
                ACTION.c.execution_id == execution_id,
                ACTION.c.action == "STOP",
                or_(ACTION.c.job.in_(sorted(jobs)), ACTION.c.job.is_(None)),
                ~ACTION.c.rule.contains(SKIPPED_MARK, autoescape=True),
            )
            .order_by(ACTION.c.id)
        )
        return [ExecutionActionRow.to_domain(row._mapping) for row in self._c.execute(query)]

    # -- job executions ----------------------------------------------------------------------

    def create_job(self, execution: WorkflowExecution, values: Mapping[str, Any]) -> JobExecution:
        """Insert a job execution in ``execution``."""
        try:
            result = self._c.execute(
                JOB.insert(), {**values, "execution_id": execution.execution_id}
            )
        except IntegrityError as e:
            if is_unique_violation(e):
                key = f"{execution.execution_id}/{values['job']}/{values['attempt']}"
                raise AlreadyExistsError("job execution", key) from e
            raise
        row = self._c.execute(_JOB_BY_ID, {"job_id": inserted_id(result)}).one()
        return JobExecutionRow.to_domain(row._mapping, execution.workflow)

    def get_job(self, project: str, job_execution_id: int) -> JobExecution:
        """Job execution ``job_execution_id`` of the project."""
        row = self._c.execute(
            _JOB_IN_PROJECT, {"project": project, "job_id": job_execution_id}
        ).first()
        if row is None:
            raise NotFoundError("job execution", job_execution_id)
        return JobExecutionRow.to_domain(row._mapping, row.workflow)

    def list_jobs(
        self,
        project: str,
        execution_id: int,
        *,
        after: int = 0,
        limit: int | None = None,
        job: str | None = None,
        live: bool = False,
    ) -> list[JobExecution]:
        """The job executions of an execution, by id (after id ``after``, of ``job``).

        ``live`` keeps only attempts that have not ended.
        """
        query = _jobs(project).where(JOB.c.execution_id == execution_id)
        if live:
            query = query.where(JOB.c.status.in_([s.value for s in JobStatus if not s.is_terminal]))
        if after:
            query = query.where(JOB.c.id > after)
        if job is not None:
            query = query.where(JOB.c.job == job)
        query = query.order_by(JOB.c.id)
        if limit is not None:
            query = query.limit(limit)
        rows = self._c.execute(query)
        return [JobExecutionRow.to_domain(row._mapping, row.workflow) for row in rows]

    def recent_jobs(
        self, execution: WorkflowExecution, newest: Mapping[str, int]
    ) -> list[JobExecution]:
        """The live attempts of ``execution`` and the newest ``newest[job]`` of each job, by id.

        What the scheduler decides from (:meth:`tideflow.scheduler.actions.Actor.view`): an
        execution that restarts a job per event keeps one ended attempt per event, and reading
        them all made every event cost time in proportion to the execution's age. Each part
        reads through an index -- ``(execution_id, status)`` for the live ones,
        ``(execution_id, job, attempt)`` for the newest -- so the cost stays flat. The caller
        has read ``execution`` in its project already.
        """
        found: dict[int, JobExecution] = {}
        jobs = list(newest.items())
        # In chunks: SQLite takes at most 500 parts in one compound SELECT, and a plan may
        # have more jobs than that. The first chunk reads the live attempts too.
        for start in range(0, max(len(jobs), 1), RECENT_JOBS_CHUNK):
            chunk = jobs[start : start + RECENT_JOBS_CHUNK]
            values: dict[str, Any] = {"execution_id": execution.execution_id}
            for index, (job, count) in enumerate(chunk):
                values[f"job_{index}"] = job
                values[f"limit_{index}"] = max(count, 1)
            query = _recent_jobs_query(len(chunk), live=start == 0)
            for row in self._c.execute(query, values):
                found.setdefault(
                    row.id, JobExecutionRow.to_domain(row._mapping, execution.workflow)
                )
        return [found[key] for key in sorted(found)]

    def latest_jobs(self, project: str, execution_id: int) -> list[tuple[JobExecution, int]]:
        """The latest attempt of each job of an execution, with its number of attempts."""
        per_job = (
            select(func.max(JOB.c.id).label("id"), func.count().label("attempts"))
            .where(JOB.c.execution_id == execution_id)
            .group_by(JOB.c.job)
            .subquery()
        )
        query = (
            _jobs(project)
            .add_columns(per_job.c.attempts)
            .join(per_job, per_job.c.id == JOB.c.id)
            .order_by(JOB.c.id)
        )
        return [
            (JobExecutionRow.to_domain(row._mapping, row.workflow), int(row.attempts))
            for row in self._c.execute(query)
        ]

    def last_attempt(self, execution_id: int, job: str) -> int:
        """The highest attempt number of ``job`` in the execution (0 if it never ran)."""
        query = select(JOB.c.attempt).where(JOB.c.execution_id == execution_id, JOB.c.job == job)
        return max((row.attempt for row in self._c.execute(query)), default=0)

    def swap_job_status(
        self, job_execution_id: int, expected: str, values: Mapping[str, Any]
    ) -> bool:
        """Apply ``values`` if the job execution is still in status ``expected``."""
        parameters = {f"b_{name}": value for name, value in values.items()}
        result = self._c.execute(
            _swap_job_status(tuple(sorted(values))),
            {**parameters, "b_id": job_execution_id, "b_expected": expected},
        )
        return result.rowcount == 1
