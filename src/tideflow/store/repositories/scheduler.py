"""SQL of the scheduler's state: rule states, timers, routing indexes and workflow settings.

Routing is two indexed lookups per event: ``execution_route`` for running executions and
``workflow_trigger`` for ``start_on`` rules, each on ``(namespace, key IN (<key>, '*'))``. Both
indexes hold only what is live (routes are deleted when an execution ends; triggers are those of
each workflow's latest snapshot), so their cost does not grow with history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    String,
    bindparam,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    type_coerce,
    update,
)

from tideflow.domain.events import JOB_STATUS_CHANGED, WILDCARD
from tideflow.domain.rules import RuleKind, event_matches, rule_from_dict
from tideflow.domain.scheduling import QueuedFiring
from tideflow.domain.status import ExecutionStatus
from tideflow.errors import NotFoundError
from tideflow.store.repositories.project import project_id_query
from tideflow.store.rows.base import table_of
from tideflow.store.rows.event import EventRow
from tideflow.store.rows.execution import WorkflowExecutionRow, WorkflowRow
from tideflow.store.rows.metadata import ProjectRow
from tideflow.store.rows.scheduler import (
    ExecutionRouteRow,
    QueuedFiringRow,
    RuleStateRow,
    TimerRow,
    TriggerStateRow,
    WorkflowScheduleRow,
    WorkflowTriggerRow,
)
from tideflow.store.types import utcnow

RULE_STATE = table_of(RuleStateRow)
TIMER = table_of(TimerRow)
ROUTE = table_of(ExecutionRouteRow)
TRIGGER = table_of(WorkflowTriggerRow)
QUEUE = table_of(QueuedFiringRow)
_EVENT = table_of(EventRow)


def _batch_reach_statement() -> Any:
    """One statement: the size, last offset and reach of the dispatcher's next batch.

    Built once (SQLAlchemy then caches its compiled form): the dispatcher runs it for every
    batch, and building the routing queries per event cost more than running them.
    """
    batch = (
        select(
            _EVENT.c.offset,
            _EVENT.c.namespace,
            _EVENT.c.key,
            type_coerce(_EVENT.c.context, String).label("context"),
        )
        .where(_EVENT.c.offset > bindparam("after", type_=Integer))
        .order_by(_EVENT.c.offset)
        .limit(bindparam("size", type_=Integer))
        .subquery()
    )
    routed = exists().where(
        ROUTE.c.namespace == batch.c.namespace, ROUTE.c.key.in_([batch.c.key, WILDCARD])
    )
    triggered = exists().where(
        TRIGGER.c.namespace == batch.c.namespace, TRIGGER.c.key.in_([batch.c.key, WILDCARD])
    )
    # An event naming an execution reaches it (the JSON text is only looked at: a false hit
    # just sends the batch down the full path).
    names_execution = batch.c.context.like('%"execution_id"%')
    reach = case((or_(names_execution, routed, triggered), 1), else_=0)
    return select(func.count(), func.max(batch.c.offset), func.max(reach))


BATCH_REACH = _batch_reach_statement()
TRIGGER_STATE = table_of(TriggerStateRow)
SCHEDULE = table_of(WorkflowScheduleRow)
WORKFLOW = table_of(WorkflowRow)
EXECUTION = table_of(WorkflowExecutionRow)
PROJECT = table_of(ProjectRow)
EVENT = table_of(EventRow)


@dataclass(frozen=True)
class WorkflowRef:
    """A workflow as the scheduler addresses it.

    Attributes:
        workflow_id: Its row id.
        project: Its project (the namespace of its events).
        name: Its name.
        latest_snapshot_id: The snapshot new executions are pinned to.
    """

    workflow_id: int
    project: str
    name: str
    latest_snapshot_id: int | None


@dataclass(frozen=True)
class WorkflowSettings:
    """Scheduling settings of a workflow."""

    paused: bool = False
    max_active_executions: int | None = None


@dataclass(frozen=True)
class Due:
    """A timer that is due."""

    execution_id: int
    rule_index: int
    fire_time: datetime
    project: str
    workflow: str
    snapshot_id: int


def start_on_keys(plan_json: str) -> dict[int, set[str]]:
    """The keys each ``start_on`` rule of a plan (JSON) listens to, by rule index.

    A plan that cannot be read has none: it was stored unchecked (``create_snapshot``) and
    cannot be started either.
    """
    try:
        rules = json.loads(plan_json).get("rules", [])
        parsed = [rule_from_dict(rule) for rule in rules]
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}
    return {
        index: {leaf.key for leaf in event_matches(rule.condition)}
        for index, rule in enumerate(parsed)
        if rule.job is None and rule.kind == RuleKind.START_ON
    }


# The statements the dispatcher runs for every event it delivers, built once with bound
# parameters: building one anew (its operators, its cache key) cost several times running it.
_RULE_STATES = select(RULE_STATE.c.rule_index, RULE_STATE.c.state).where(
    RULE_STATE.c.execution_id == bindparam("execution_id")
)
_SAVE_RULE_STATE = (
    update(RULE_STATE)
    .where(
        RULE_STATE.c.execution_id == bindparam("b_execution_id"),
        RULE_STATE.c.rule_index == bindparam("b_rule_index"),
    )
    .values(state=bindparam("b_state"))
)
_QUEUED = (
    select(QUEUE).where(QUEUE.c.execution_id == bindparam("execution_id")).order_by(QUEUE.c.id)
)
_ROUTED = (
    select(ROUTE.c.execution_id)
    .where(
        ROUTE.c.namespace == bindparam("namespace"),
        ROUTE.c.key.in_(bindparam("keys", expanding=True)),
    )
    .distinct()
)
_TRIGGERED = (
    select(TRIGGER.c.workflow_id, TRIGGER.c.snapshot_id)
    .where(
        TRIGGER.c.namespace == bindparam("namespace"),
        TRIGGER.c.key.in_(bindparam("keys", expanding=True)),
    )
    .distinct()
)


class SchedulerRepository:
    """The scheduler's tables, on the caller's connection."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    # -- workflows -----------------------------------------------------------------------------

    def workflow(self, project: str, name: str, *, lock: bool = False) -> WorkflowRef:
        """Workflow ``name`` of ``project`` (locked for update when ``lock``).

        Raises:
            NotFoundError: No such workflow.
        """
        query = select(WORKFLOW.c.id, WORKFLOW.c.latest_snapshot_id).where(
            WORKFLOW.c.project_id == project_id_query(project), WORKFLOW.c.name == name
        )
        row = self._c.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFoundError(
                "workflow", name, message=f"workflow {name!r} not found in project {project!r}"
            )
        return WorkflowRef(row.id, project, name, row.latest_snapshot_id)

    def workflow_by_id(self, workflow_id: int, *, lock: bool = False) -> WorkflowRef:
        """Workflow ``workflow_id``."""
        query = (
            select(WORKFLOW.c.id, WORKFLOW.c.name, WORKFLOW.c.latest_snapshot_id, PROJECT.c.name)
            .join(PROJECT, PROJECT.c.id == WORKFLOW.c.project_id)
            .where(WORKFLOW.c.id == workflow_id)
        )
        row = self._c.execute(query.with_for_update(of=WORKFLOW) if lock else query).first()
        if row is None:
            raise NotFoundError("workflow", workflow_id)
        return WorkflowRef(row[0], row[3], row[1], row[2])

    def settings(self, workflow_id: int) -> WorkflowSettings:
        """The scheduling settings of a workflow."""
        row = self._c.execute(select(SCHEDULE).where(SCHEDULE.c.workflow_id == workflow_id)).first()
        if row is None:
            return WorkflowSettings()
        return WorkflowSettings(bool(row.paused), row.max_active_executions)

    def update_settings(self, workflow_id: int, **values: Any) -> WorkflowSettings:
        """Change some settings of a workflow (the caller holds its lock)."""
        current = self.settings(workflow_id)
        merged = {
            "paused": current.paused,
            "max_active_executions": current.max_active_executions,
            **values,
        }
        found = self._c.execute(
            update(SCHEDULE).where(SCHEDULE.c.workflow_id == workflow_id).values(**merged)
        ).rowcount
        if not found:
            self._c.execute(SCHEDULE.insert(), {"workflow_id": workflow_id, **merged})
        return WorkflowSettings(bool(merged["paused"]), merged["max_active_executions"])

    def running_count(self, workflow_id: int) -> int:
        """How many executions of a workflow are RUNNING."""
        return int(
            self._c.execute(
                select(func.count())
                .select_from(EXECUTION)
                .where(
                    EXECUTION.c.workflow_id == workflow_id,
                    EXECUTION.c.status == ExecutionStatus.RUNNING.value,
                )
            ).scalar_one()
        )

    def running_in_context(self, workflow_id: int, context: str) -> list[int]:
        """The RUNNING executions of a workflow serving event context ``context``."""
        rows = self._c.execute(
            select(EXECUTION.c.id).where(
                EXECUTION.c.workflow_id == workflow_id,
                EXECUTION.c.status == ExecutionStatus.RUNNING.value,
                EXECUTION.c.context == context,
            )
        )
        return [row.id for row in rows]

    def ended_in_context(self, workflow_id: int, context: str) -> int | None:
        """The latest ended execution of a workflow that served ``context``, if any.

        ``once_per_context`` refuses a new execution for such a context.
        """
        row = self._c.execute(
            select(EXECUTION.c.id)
            .where(
                EXECUTION.c.workflow_id == workflow_id,
                EXECUTION.c.status != ExecutionStatus.RUNNING.value,
                EXECUTION.c.context == context,
            )
            .order_by(EXECUTION.c.id.desc())
            .limit(1)
        ).first()
        return None if row is None else int(row.id)

    def has_unseen_job_events(
        self, namespace: str, keys: Iterable[str], execution_id: int, after_offset: int
    ) -> bool:
        """Whether a job-status event of the execution lies beyond ``after_offset``.

        One indexed range read on ``(namespace, key, offset)``; contexts are checked here
        because other executions of the workflow share the keys.
        """
        rows = self._c.execute(
            select(EVENT.c.context).where(
                EVENT.c.namespace == namespace,
                EVENT.c.key.in_(sorted(set(keys))),
                EVENT.c.offset > after_offset,
                EVENT.c.event_type == JOB_STATUS_CHANGED,
            )
        )
        return any((row.context or {}).get("execution_id") == execution_id for row in rows)

    # -- rule states ---------------------------------------------------------------------------

    def rule_states(self, execution_id: int) -> dict[int, Any]:
        """The stored states (JSON data) of an execution's rules, by rule index."""
        rows = self._c.execute(_RULE_STATES, {"execution_id": execution_id})
        return {row.rule_index: row.state for row in rows}

    def save_rule_states(
        self, execution_id: int, states: Mapping[int, Any], existing: Iterable[int]
    ) -> None:
        """Write changed rule states (``existing``: the indexes that already have a row)."""
        known = set(existing)
        for index, state in sorted(states.items()):
            if index in known:
                self._c.execute(
                    _SAVE_RULE_STATE,
                    {"b_execution_id": execution_id, "b_rule_index": index, "b_state": state},
                )
            else:
                self._c.execute(
                    RULE_STATE.insert(),
                    {"execution_id": execution_id, "rule_index": index, "state": state},
                )

    # -- queued firings ------------------------------------------------------------------------

    def queued(self, execution_id: int) -> list[QueuedFiring]:
        """The firings waiting for busy jobs of the execution, in the order they start."""
        rows = self._c.execute(_QUEUED, {"execution_id": execution_id})
        return [QueuedFiringRow.to_domain(row._mapping) for row in rows]

    def enqueue(
        self,
        execution_id: int,
        job: str,
        rule_index: int,
        rule: str,
        event_offset: int,
        trigger_offsets: list[int] | None,
    ) -> QueuedFiring:
        """Queue a firing behind the job's live attempt (and the firings queued before it)."""
        values = {
            "execution_id": execution_id,
            "job": job,
            "rule_index": rule_index,
            "rule": rule,
            "event_offset": event_offset,
            "trigger_offsets": trigger_offsets,
            "create_time": utcnow(),
        }
        result = self._c.execute(QUEUE.insert(), values)
        (queue_id,) = result.inserted_primary_key or (None,)
        return QueuedFiringRow.to_domain({"id": queue_id, **values})

    def replace_queued(
        self, queue_id: int, rule: str, event_offset: int, trigger_offsets: list[int] | None
    ) -> None:
        """Put a newer firing of the same rule in a queued firing's place (``latest``)."""
        self._c.execute(
            update(QUEUE)
            .where(QUEUE.c.id == queue_id)
            .values(rule=rule, event_offset=event_offset, trigger_offsets=trigger_offsets)
        )

    def dequeue(self, queue_ids: Iterable[int]) -> None:
        """Remove queued firings (started, or dropped)."""
        ids = list(queue_ids)
        if ids:
            self._c.execute(delete(QUEUE).where(QUEUE.c.id.in_(ids)))

    # -- routes --------------------------------------------------------------------------------

    def add_routes(self, execution_id: int, namespace: str, keys: Iterable[str]) -> None:
        """Route events of ``namespace`` with these keys (``'*'``: any) to the execution."""
        values = [
            {"namespace": namespace, "key": key, "execution_id": execution_id}
            for key in sorted(set(keys))
        ]
        if values:
            self._c.execute(ROUTE.insert(), values)

    def batch_reach(self, after_offset: int, limit: int) -> tuple[int, int, bool]:
        """The next batch after ``after_offset``: its size, last offset and reach.

        Reach is whether any of its events may reach an execution or a ``start_on`` rule.
        """
        count, last, reach = self._c.execute(
            BATCH_REACH, {"after": after_offset, "size": limit}
        ).one()
        return int(count), int(last or after_offset), bool(reach)

    def routed(self, namespace: str, key: str) -> list[int]:
        """The executions listening to ``key`` (or to every key) in ``namespace``, by id."""
        rows = self._c.execute(_ROUTED, {"namespace": namespace, "keys": [key, WILDCARD]})
        return sorted(row.execution_id for row in rows)

    def end_execution(self, execution_id: int) -> None:
        """Drop what only a running execution needs: routes, timers, rule states and queue."""
        for table in (ROUTE, TIMER, RULE_STATE, QUEUE):
            self._c.execute(delete(table).where(table.c.execution_id == execution_id))

    # -- timers --------------------------------------------------------------------------------

    def add_timer(self, execution_id: int, rule_index: int, next_fire_time: datetime) -> None:
        """Schedule a periodic rule's first firing."""
        self._c.execute(
            TIMER.insert(),
            {
                "execution_id": execution_id,
                "rule_index": rule_index,
                "next_fire_time": next_fire_time,
            },
        )

    def next_timer(self) -> datetime | None:
        """When the earliest timer fires, if there is one."""
        value: datetime | None = self._c.execute(select(func.min(TIMER.c.next_fire_time))).scalar()
        return value

    def due_timers(self, now: datetime, limit: int) -> list[Due]:
        """Up to ``limit`` timers due at ``now``, locked, earliest first."""
        query = (
            select(
                TIMER.c.execution_id,
                TIMER.c.rule_index,
                TIMER.c.next_fire_time,
                PROJECT.c.name.label("project"),
                WORKFLOW.c.name.label("workflow"),
                EXECUTION.c.snapshot_id,
            )
            .join(EXECUTION, EXECUTION.c.id == TIMER.c.execution_id)
            .join(WORKFLOW, WORKFLOW.c.id == EXECUTION.c.workflow_id)
            .join(PROJECT, PROJECT.c.id == WORKFLOW.c.project_id)
            .where(TIMER.c.next_fire_time <= now)
            .order_by(TIMER.c.next_fire_time, TIMER.c.execution_id, TIMER.c.rule_index)
            .limit(limit)
            .with_for_update(of=TIMER)
        )
        return [
            Due(
                r.execution_id, r.rule_index, r.next_fire_time, r.project, r.workflow, r.snapshot_id
            )
            for r in self._c.execute(query)
        ]

    def move_timer(self, execution_id: int, rule_index: int, next_fire_time: datetime) -> None:
        """Set when a timer fires next."""
        self._c.execute(
            update(TIMER)
            .where(TIMER.c.execution_id == execution_id, TIMER.c.rule_index == rule_index)
            .values(next_fire_time=next_fire_time)
        )

    def timers(self, execution_id: int) -> dict[int, datetime]:
        """The timers of an execution: next fire time by rule index."""
        rows = self._c.execute(select(TIMER).where(TIMER.c.execution_id == execution_id))
        return {row.rule_index: row.next_fire_time for row in rows}

    # -- start_on triggers ---------------------------------------------------------------------

    def refresh_triggers(
        self, workflow_id: int, namespace: str, snapshot_id: int, plan_json: str
    ) -> None:
        """Index the ``start_on`` rules of a workflow's new latest snapshot.

        The trigger states of the previous snapshot go too: rule indexes need not match.
        """
        current = self._c.execute(
            select(TRIGGER.c.snapshot_id).where(TRIGGER.c.workflow_id == workflow_id).limit(1)
        ).scalar()
        if current == snapshot_id:
            return
        self._c.execute(delete(TRIGGER).where(TRIGGER.c.workflow_id == workflow_id))
        self._c.execute(delete(TRIGGER_STATE).where(TRIGGER_STATE.c.workflow_id == workflow_id))
        values = [
            {
                "workflow_id": workflow_id,
                "rule_index": index,
                "key": key,
                "namespace": namespace,
                "snapshot_id": snapshot_id,
            }
            for index, keys in sorted(start_on_keys(plan_json).items())
            for key in sorted(keys)
        ]
        if values:
            self._c.execute(TRIGGER.insert(), values)

    def triggered(self, namespace: str, key: str) -> list[tuple[int, int]]:
        """``(workflow_id, snapshot_id)`` of workflows with a ``start_on`` rule on ``key``."""
        rows = self._c.execute(_TRIGGERED, {"namespace": namespace, "keys": [key, WILDCARD]})
        return sorted((row.workflow_id, row.snapshot_id) for row in rows)

    def trigger_states(self, workflow_id: int, context: str) -> dict[int, Any]:
        """The stored states of a workflow's ``start_on`` rules for one context."""
        rows = self._c.execute(
            select(TRIGGER_STATE.c.rule_index, TRIGGER_STATE.c.state).where(
                TRIGGER_STATE.c.workflow_id == workflow_id,
                TRIGGER_STATE.c.context == context,
            )
        )
        return {row.rule_index: row.state for row in rows}

    def save_trigger_states(
        self,
        workflow_id: int,
        context: str,
        states: Mapping[int, Any],
        existing: Iterable[int],
    ) -> None:
        """Write changed ``start_on`` rule states."""
        known = set(existing)
        for index, state in sorted(states.items()):
            where = (
                TRIGGER_STATE.c.workflow_id == workflow_id,
                TRIGGER_STATE.c.context == context,
                TRIGGER_STATE.c.rule_index == index,
            )
            if index in known:
                self._c.execute(update(TRIGGER_STATE).where(*where).values(state=state))
            else:
                self._c.execute(
                    TRIGGER_STATE.insert(),
                    {
                        "workflow_id": workflow_id,
                        "context": context,
                        "rule_index": index,
                        "state": state,
                    },
                )
