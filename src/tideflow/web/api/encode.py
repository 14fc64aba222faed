"""Domain entities as JSON-ready dicts: the one place the API decides its field names.

Times are ISO 8601 in UTC (``...+00:00``) or ``null``; enums are their string values; the
field names are the domain's (``execution_id``, ``job_execution_id``, ``create_time`` ...), so
the API reads like the Python client.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tideflow.compiler.plan import PlanJob, PlanNode, WorkflowPlan
from tideflow.domain.contexts import context_from_to_dict
from tideflow.domain.events import WILDCARD, Event
from tideflow.domain.lineage import LineageRef
from tideflow.domain.metadata import (
    Dataset,
    ExecutionAction,
    JobExecution,
    Metric,
    Project,
    Workflow,
    WorkflowExecution,
)
from tideflow.domain.model import ModelVersion, RegisteredModel, StatusChange
from tideflow.domain.rules import (
    Aggregate,
    AllOf,
    AnyOf,
    Condition,
    EventMatch,
    Life,
    Periodic,
    Rule,
    RuleKind,
    Trigger,
    describe_aggregate,
)

Json = dict[str, Any]


def time(value: datetime | None) -> str | None:
    """ISO 8601, or ``None``."""
    return None if value is None else value.isoformat()


def duration(start: datetime | None, end: datetime | None) -> float | None:
    """Seconds from ``start`` to ``end`` (``None`` unless both are known)."""
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def project(p: Project) -> Json:
    """A project."""
    return {"name": p.name, "description": p.description, "create_time": time(p.create_time)}


def workflow(w: Workflow, last: WorkflowExecution | None = None) -> Json:
    """A workflow, with its newest execution's id and status (``null`` if it never ran)."""
    return {
        "name": w.name,
        "latest_snapshot_id": w.latest_snapshot_id,
        "create_time": time(w.create_time),
        "update_time": time(w.update_time),
        "last_execution_id": None if last is None else last.execution_id,
        "last_execution_status": None if last is None else last.status.value,
    }


def execution(e: WorkflowExecution) -> Json:
    """A workflow execution."""
    return {
        "execution_id": e.execution_id,
        "workflow": e.workflow,
        "snapshot_id": e.snapshot_id,
        "status": e.status.value,
        "params": dict(e.params),
        "context": e.context,
        "start_time": time(e.start_time),
        "end_time": time(e.end_time),
        "duration": duration(e.start_time, e.end_time),
    }


def action(a: ExecutionAction, event: Event | None = None) -> Json:
    """A scheduler action, with the event behind it when it is still in the log."""
    return {
        "action": a.action.value,
        "rule": a.rule,
        "event_offset": a.event_offset,
        "event": None if event is None else event_json(event),
        "time": time(a.time),
    }


def job_execution(j: JobExecution) -> Json:
    """A job attempt (without its triggers)."""
    return {
        "job_execution_id": j.job_execution_id,
        "execution_id": j.execution_id,
        "workflow": j.workflow,
        "job": j.job,
        "attempt": j.attempt,
        "status": j.status.value,
        "create_time": time(j.create_time),
        "start_time": time(j.start_time),
        "end_time": time(j.end_time),
        "duration": duration(j.start_time, j.end_time),
        "exit_code": j.exit_code,
        "error": j.error,
        "host": j.host,
        "pid": j.pid,
        "external_id": j.external_id,
    }


def event_json(e: Event) -> Json:
    """An event of the log."""
    return {
        "offset": e.offset,
        "key": e.key,
        "value": e.value,
        "event_type": e.event_type,
        "sender": e.sender,
        "namespace": e.namespace,
        "context": dict(e.context),
        "create_time": time(e.create_time),
    }


def model(m: RegisteredModel, deployed: ModelVersion | None, aliases: Mapping[str, int]) -> Json:
    """A registered model with its deployed version (``null`` if none) and its aliases."""
    return {
        "name": m.name,
        "description": m.description,
        "tags": dict(m.tags),
        "last_version": m.last_version,
        "deployed_version": None if deployed is None else deployed.version,
        "aliases": dict(aliases),
        "create_time": time(m.create_time),
        "update_time": time(m.update_time),
    }


def model_version(v: ModelVersion, aliases: Mapping[str, int] | None = None) -> Json:
    """A model version; ``aliases`` (alias -> version) adds the ones pointing at it."""
    return {
        "model": v.model,
        "version": v.version,
        "status": v.status.value,
        "uri": v.uri,
        "flavour": v.flavour,
        "metrics": dict(v.metrics),
        "params": dict(v.params),
        "tags": dict(v.tags),
        "description": v.description,
        "job_execution_id": v.job_execution_id,
        "aliases": sorted(a for a, n in (aliases or {}).items() if n == v.version),
        "create_time": time(v.create_time),
        "update_time": time(v.update_time),
    }


def status_change(c: StatusChange) -> Json:
    """One status change of a model version."""
    return {
        "previous": None if c.previous is None else c.previous.value,
        "status": c.status.value,
        "time": time(c.time),
    }


def metric(m: Metric) -> Json:
    """A logged metric."""
    return {
        "metric_id": m.metric_id,
        "name": m.name,
        "value": m.value,
        "step": m.step,
        "time": time(m.time),
        "tags": dict(m.tags),
        "job_execution_id": m.job_execution_id,
        "model": m.model,
        "version": m.version,
        "dataset": m.dataset,
    }


def dataset(d: Dataset) -> Json:
    """A dataset."""
    return {
        "name": d.name,
        "uri": d.uri,
        "format": d.format,
        "stream": d.stream,
        "schema": dict(d.schema),
        "properties": dict(d.properties),
        "description": d.description,
        "version": d.version,
        "create_time": time(d.create_time),
        "update_time": time(d.update_time),
    }


def lineage_ref(r: LineageRef) -> Json:
    """A lineage reference (dataset version, model version or artifact)."""
    return {
        "kind": r.kind.value,
        "name": r.name,
        "version": r.version,
        "start_offset": r.start_offset,
        "end_offset": r.end_offset,
    }


# -- plans ------------------------------------------------------------------------------------


def _match_label(m: EventMatch) -> str:
    parts = [
        f"{label}={value}"
        for label, value in (("type", m.event_type), ("key", m.key), ("sender", m.sender))
        if value != WILDCARD
    ]
    if m.value is not None:
        parts.append(f"value={m.value}")
    if m.life is Life.REPEATED:
        parts.append("(repeated)")
    return "event " + (" ".join(parts) if parts else "any")


def condition_label(condition: Trigger) -> str:
    """A condition in words: ``event type=X key=Y``, ``all of (...)``, ``cron '...' (UTC)``."""
    if isinstance(condition, EventMatch):
        return _match_label(condition)
    if isinstance(condition, Aggregate):
        return describe_aggregate(condition, _match_label(condition.match))
    if isinstance(condition, AllOf | AnyOf):
        word = "all of" if isinstance(condition, AllOf) else "any of"
        inner: tuple[Condition, ...] = condition.conditions
        return f"{word} ({'; '.join(condition_label(c) for c in inner)})"
    if isinstance(condition, Periodic) and condition.cron is not None:
        return f"cron {condition.cron} ({condition.timezone})"
    return f"every {condition.interval_seconds:g}s"


def rule_label(rule: Rule) -> str:
    """A control edge in words, as it was declared.

    ``after a, b``, ``with start of x``, ``periodic cron 0 * * * * (UTC)``, ``on event
    type=DRIFT_DETECTED``, ``on model ctr MODEL_VALIDATED``, ``on dataset clicks updated``;
    a non-START action is appended (``-> RESTART``).
    """
    c = rule.condition
    if rule.kind is RuleKind.AFTER:
        text = f"after {', '.join(rule.upstreams)}"
    elif rule.kind is RuleKind.WITH_START:
        text = f"with start of {', '.join(rule.upstreams)}"
    elif rule.kind is RuleKind.PERIODIC:
        text = f"periodic {condition_label(c)}"
    elif rule.kind is RuleKind.MODEL_VERSION and isinstance(c, EventMatch):
        text = f"on model {c.key} {c.event_type}"
    elif rule.kind is RuleKind.DATASET and isinstance(c, EventMatch):
        text = f"on dataset {c.key} updated"
    elif rule.kind is RuleKind.START_ON:
        text = f"start execution on {condition_label(c)}"
    elif rule.kind is RuleKind.STOP_ON:
        text = f"stop execution on {condition_label(c)}"
    else:
        text = f"on {condition_label(c)}"
    if rule.action.value != "START" and rule.kind not in (RuleKind.START_ON, RuleKind.STOP_ON):
        text += f" -> {rule.action.value}"
    return text


def _node(n: PlanNode) -> Json:
    return {
        "name": n.name,
        "kind": str(n.kind),
        "inputs": [{"node": i.node, "index": i.index} for i in n.inputs],
        "outputs": n.outputs,
        "model": n.model,
        "dataset": n.dataset,
        "location": n.location,
    }


def _job(j: PlanJob) -> Json:
    return {
        "name": j.name,
        "engine": j.engine,
        "platform": j.platform,
        "streaming": j.streaming,
        "retries": j.retries,
        "timeout": j.timeout,
        "location": j.location,
        "nodes": [_node(n) for n in j.nodes],
    }


def plan(p: WorkflowPlan, snapshot_id: int) -> Json:
    """A workflow plan: jobs with their nodes (``inputs`` are the data edges) and the rules.

    Each rule is a control edge: ``job`` it acts on (``null`` for the execution), ``action``,
    ``kind``, ``upstreams`` (the jobs an ``after`` / ``with_start`` edge comes from), a human
    ``label`` and the condition as data.
    """
    from tideflow.domain.rules import condition_to_dict

    return {
        "workflow": p.workflow,
        "snapshot_id": snapshot_id,
        "per_context": None if p.per_context is None else context_from_to_dict(p.per_context),
        "jobs": [_job(j) for j in p.jobs],
        "rules": [
            {
                "job": r.job,
                "action": r.action.value,
                "kind": r.kind.value,
                "upstreams": list(r.upstreams),
                "label": rule_label(r),
                "condition": condition_to_dict(r.condition),
                "location": r.location,
            }
            for r in p.rules
        ],
    }
