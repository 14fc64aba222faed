"""The compiled workflow plan: what the server stores and the scheduler and executors run.

A plan is self-contained: ``payloads`` maps the sha256 of each serialised processor to its bytes
and ``to_json`` embeds them (base64), so a plan read back on another machine needs nothing but
the code package. ``from_json(plan.to_json()) == plan`` holds exactly; ``schema_version`` lets a
newer server refuse, with a clear message, a plan it cannot read.

Schema versions: 2 added each rule's ``on_busy`` and ``max_queued``. A version-1 plan is still
read: its START job rules get ``on_busy="skip"``, what they did when they were compiled (a
snapshot keeps its meaning across a server upgrade; recompiling gives the new default).
A plan may hold a ``schedule`` (``wf.schedule``); plans without one (all older ones) have none.
Schema version 3 made ``per_context`` where an event's contexts come from (``null``, or
``{source, field, once}``, :mod:`tideflow.domain.contexts`); the ``true`` / ``false`` of older
plans read as ``{"source": "field", "field": "context", "once": false}`` / ``null``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tideflow.domain.contexts import ContextFrom, ContextSource, context_from_to_dict
from tideflow.domain.graph import DataEdge, NodeKind, NodeOutput
from tideflow.domain.limits import MAX_PLAN_DEPTH, load_json
from tideflow.domain.rules import OnBusy, Rule, rule_from_dict, rule_to_dict
from tideflow.domain.schedule import Schedule, schedule_to_dict
from tideflow.errors import InvalidArgumentError

SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
"""The plan schema versions this Tideflow reads (older ones are upgraded as they are read)."""


@dataclass(frozen=True)
class PlanNode:
    """A node as compiled: its processor is a payload digest, not an object.

    Attributes:
        name: Unique within the workflow.
        kind: Its role.
        inputs: The node outputs it consumes, in order (all inside the same job).
        outputs: How many outputs it produces.
        config: Settings for the processor.
        processor: sha256 of the serialised processor in ``WorkflowPlan.payloads``, or ``None``.
        model: The model it works on, if any.
        dataset: The dataset it reads or writes, if any.
        location: ``file:line`` of its declaration.
    """

    name: str
    kind: NodeKind
    inputs: tuple[NodeOutput, ...] = ()
    outputs: int = 1
    config: Mapping[str, Any] = field(default_factory=dict)
    processor: str | None = None
    model: str | None = None
    dataset: str | None = None
    location: str | None = None


@dataclass(frozen=True)
class PlanJob:
    """A job as compiled: its spec, its sub-graph and what its engine needs to run it.

    Attributes:
        name: Unique within the workflow.
        engine: The engine whose generator compiled it.
        platform: Where it runs.
        streaming: Runs until stopped.
        config: Engine / executor settings.
        retries: Retries after a failed attempt.
        timeout: Seconds an attempt may run, or ``None``.
        resources: What it asks of its platform.
        nodes: Its nodes, in the order the engine runs them.
        engine_payload: Engine-specific, JSON-serialisable instructions.
        location: ``file:line`` of the job block, ``None`` for jobs formed by the splitter.
    """

    name: str
    engine: str
    platform: str
    streaming: bool
    nodes: tuple[PlanNode, ...]
    config: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0
    timeout: float | None = None
    resources: Mapping[str, Any] = field(default_factory=dict)
    engine_payload: Mapping[str, Any] = field(default_factory=dict)
    location: str | None = None

    @property
    def edges(self) -> tuple[DataEdge, ...]:
        """The data edges inside this job."""
        return tuple(
            DataEdge(source, node.name, index)
            for node in self.nodes
            for index, source in enumerate(node.inputs)
        )

    def node(self, name: str) -> PlanNode:
        """The node called ``name``.

        Raises:
            KeyError: The job has no such node.
        """
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)


@dataclass(frozen=True)
class WorkflowPlan:
    """The compiled, serialisable form of one workflow: jobs, rules and processor payloads."""

    workflow: str
    jobs: tuple[PlanJob, ...]
    rules: tuple[Rule, ...] = ()
    payloads: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    per_context: ContextFrom | None = None
    schedule: Schedule | None = None
    schema_version: int = SCHEMA_VERSION

    def job(self, name: str) -> PlanJob:
        """The job called ``name``.

        Raises:
            KeyError: The plan has no such job.
        """
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)

    def rules_for(self, job: str | None) -> tuple[Rule, ...]:
        """The rules attached to ``job`` (``None``: workflow-level), in declaration order."""
        return tuple(rule for rule in self.rules if rule.job == job)

    def to_dict(self, *, include_payloads: bool = True) -> dict[str, Any]:
        """A JSON-ready form; without payloads it is what people read (``--json``)."""
        data: dict[str, Any] = {
            "schema_version": self.schema_version,
            "workflow": self.workflow,
            "per_context": (
                None if self.per_context is None else context_from_to_dict(self.per_context)
            ),
            "jobs": [_job_to_dict(job) for job in self.jobs],
            "rules": [rule_to_dict(rule) for rule in self.rules],
        }
        if self.schedule is not None:  # absent, not null: plans without one read as before
            data["schedule"] = schedule_to_dict(self.schedule)
        if include_payloads:
            data["payloads"] = {
                digest: base64.b64encode(blob).decode("ascii")
                for digest, blob in sorted(self.payloads.items())
            }
        return data

    def to_json(self, *, indent: int | None = None) -> str:
        """Serialise the whole plan, payloads included, deterministically."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkflowPlan:
        """The inverse of :meth:`to_dict` (with payloads).

        Only the shape is checked here -- every field of the type it must have, so that the
        checks of :mod:`tideflow.compiler.check` can run on the result; names, rules, engines
        and the rest are theirs.

        Raises:
            InvalidArgumentError: The data is not a plan this version can read, naming the
                field at fault (``jobs[2].nodes[0].name``).
        """
        version = data.get("schema_version")
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            raise InvalidArgumentError(
                f"workflow plan schema version {version!r} is not supported (this Tideflow "
                f"reads versions {', '.join(map(str, READABLE_VERSIONS))}); recompile the "
                "workflow with this version",
                field="schema_version",
            )
        try:
            payloads = _typed(data, "payloads", dict, "", default={})
            return cls(
                workflow=_typed(data, "workflow", str, ""),
                per_context=_per_context_from_dict(data, version),
                jobs=tuple(
                    _job_from_dict(job, f"jobs[{i}]")
                    for i, job in enumerate(_typed(data, "jobs", list, ""))
                ),
                rules=tuple(
                    _rule_from_dict(rule, f"rules[{i}]", version)
                    for i, rule in enumerate(_typed(data, "rules", list, ""))
                ),
                schedule=_schedule_from_dict(data.get("schedule")),
                schema_version=SCHEMA_VERSION,
                payloads={
                    digest: base64.b64decode(
                        _typed(payloads, digest, str, "payloads"), validate=True
                    )
                    for digest in payloads
                },
            )
        except InvalidArgumentError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
            raise InvalidArgumentError(f"malformed workflow plan: {exc!r}", field="plan") from exc

    @classmethod
    def from_json(cls, text: str) -> WorkflowPlan:
        """Read a plan written by :meth:`to_json`.

        Raises:
            InvalidArgumentError: ``text`` is not a readable plan, or it nests deeper than
                :data:`~tideflow.domain.limits.MAX_PLAN_DEPTH`.
        """
        data = load_json(text, "plan", MAX_PLAN_DEPTH)
        if not isinstance(data, dict):
            raise InvalidArgumentError("workflow plan JSON must be an object", field="plan")
        return cls.from_dict(data)


_MISSING = object()


def _typed(
    data: object, key: str, kind: type | tuple[type, ...], where: str, *, default: Any = _MISSING
) -> Any:
    """``data[key]`` if it is of ``kind``, else an error naming ``where.key``.

    ``bool`` is not accepted where a number is asked for (it is an ``int`` in Python, never
    in a plan).
    """
    path = f"{where}.{key}" if where else key
    if not isinstance(data, Mapping):
        raise InvalidArgumentError(
            f"malformed workflow plan: {where} must be a JSON object, got {type(data).__name__}",
            field=where,
        )
    if key not in data:
        if default is not _MISSING:
            return default
        raise InvalidArgumentError(f"malformed workflow plan: {path} is missing", field=path)
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise InvalidArgumentError(
            f"malformed workflow plan: {path} must be {names}, got {type(value).__name__}",
            field=path,
        )
    return value


_OPTIONAL_TEXT = (str, type(None))


def _node_to_dict(node: PlanNode) -> dict[str, Any]:
    return {
        "name": node.name,
        "kind": str(node.kind),
        "inputs": [[ref.node, ref.index] for ref in node.inputs],
        "outputs": node.outputs,
        "config": dict(node.config),
        "processor": node.processor,
        "model": node.model,
        "dataset": node.dataset,
        "location": node.location,
    }


def _node_from_dict(data: object, where: str) -> PlanNode:
    inputs: list[NodeOutput] = []
    for i, ref in enumerate(_typed(data, "inputs", list, where)):
        if not (
            isinstance(ref, list)
            and len(ref) == 2
            and isinstance(ref[0], str)
            and isinstance(ref[1], int)
            and not isinstance(ref[1], bool)
        ):
            raise InvalidArgumentError(
                f"malformed workflow plan: {where}.inputs[{i}] must be [node name, output "
                f"index], got {ref!r:.80}",
                field=f"{where}.inputs",
            )
        inputs.append(NodeOutput(ref[0], ref[1]))
    return PlanNode(
        name=_typed(data, "name", str, where),
        kind=_node_kind(_typed(data, "kind", str, where), where),
        inputs=tuple(inputs),
        outputs=_typed(data, "outputs", int, where),
        config=_typed(data, "config", dict, where),
        processor=_typed(data, "processor", _OPTIONAL_TEXT, where),
        model=_typed(data, "model", _OPTIONAL_TEXT, where),
        dataset=_typed(data, "dataset", _OPTIONAL_TEXT, where),
        location=_typed(data, "location", _OPTIONAL_TEXT, where),
    )


def _node_kind(value: str, where: str) -> NodeKind:
    try:
        return NodeKind(value)
    except ValueError:
        kinds = ", ".join(kind.value for kind in NodeKind)
        raise InvalidArgumentError(
            f"malformed workflow plan: {where}.kind {value[:40]!r} is not one of {kinds}",
            field=f"{where}.kind",
        ) from None


def _job_to_dict(job: PlanJob) -> dict[str, Any]:
    return {
        "name": job.name,
        "engine": job.engine,
        "platform": job.platform,
        "streaming": job.streaming,
        "config": dict(job.config),
        "retries": job.retries,
        "timeout": job.timeout,
        "resources": dict(job.resources),
        "engine_payload": dict(job.engine_payload),
        "location": job.location,
        "nodes": [_node_to_dict(node) for node in job.nodes],
    }


def _job_from_dict(data: object, where: str) -> PlanJob:
    return PlanJob(
        name=_typed(data, "name", str, where),
        engine=_typed(data, "engine", str, where),
        platform=_typed(data, "platform", str, where),
        streaming=_typed(data, "streaming", bool, where),
        config=_typed(data, "config", dict, where),
        retries=_typed(data, "retries", int, where),
        timeout=_typed(data, "timeout", (int, float, type(None)), where),
        resources=_typed(data, "resources", dict, where),
        engine_payload=_typed(data, "engine_payload", dict, where),
        location=_typed(data, "location", _OPTIONAL_TEXT, where),
        nodes=tuple(
            _node_from_dict(node, f"{where}.nodes[{i}]")
            for i, node in enumerate(_typed(data, "nodes", list, where))
        ),
    )


def _rule_from_dict(data: object, where: str, version: int = SCHEMA_VERSION) -> Rule:
    """A rule, once the fields the checks use as keys are strings.

    Its job and upstreams, and its location, which every problem about it carries: problems
    are deduplicated by hashing them, so a list there was INTERNAL, not INVALID_ARGUMENT.
    A version-1 START job rule skipped a firing while its job was busy: it keeps doing so.
    """
    _typed(data, "job", _OPTIONAL_TEXT, where)
    _typed(data, "location", _OPTIONAL_TEXT, where, default=None)
    _typed(data, "on_busy", _OPTIONAL_TEXT, where, default=None)
    _typed(data, "max_queued", (int, type(None)), where, default=None)
    upstreams = _typed(data, "upstreams", list, where)
    if not all(isinstance(name, str) for name in upstreams):
        raise InvalidArgumentError(
            f"malformed workflow plan: {where}.upstreams must be a list of job names",
            field=f"{where}.upstreams",
        )
    condition = _typed(data, "condition", dict, where)
    try:
        rule = rule_from_dict(data)  # type: ignore[arg-type]  # a Mapping: checked above
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidArgumentError(
            f"malformed workflow plan: {where} is not a readable rule ({exc!r:.200}): "
            f"{condition!r:.120}",
            field=where,
        ) from exc
    if version == 1 and rule.busy is not None:
        rule = replace(rule, on_busy=OnBusy.SKIP)
    return rule


def _per_context_from_dict(data: Mapping[str, Any], version: int) -> ContextFrom | None:
    """Where the plan's contexts come from (a version-1/2 ``true`` reads ``context["context"]``)."""
    if version < 3:
        return ContextFrom() if _typed(data, "per_context", (bool, type(None)), "") else None
    value = _typed(data, "per_context", (dict, type(None)), "")
    if value is None:
        return None
    where = "per_context"
    source = _typed(value, "source", str, where)
    try:
        kind = ContextSource(source)
    except ValueError:
        choices = ", ".join(member.value for member in ContextSource)
        raise InvalidArgumentError(
            f"malformed workflow plan: per_context.source {source[:40]!r} is not one of {choices}",
            field="per_context.source",
        ) from None
    return ContextFrom(
        source=kind,
        field=_typed(value, "field", _OPTIONAL_TEXT, where),
        once=_typed(value, "once", bool, where, default=False),
    )


def _schedule_from_dict(data: object) -> Schedule | None:
    """The workflow's schedule, once its fields have the types the checks expect."""
    if data is None:
        return None
    where = "schedule"
    if not isinstance(data, dict):
        raise InvalidArgumentError(
            f"malformed workflow plan: schedule must be an object, got {data!r:.80}",
            field=where,
        )
    return Schedule(
        cron=_typed(data, "cron", _OPTIONAL_TEXT, where, default=None),
        interval_seconds=_typed(
            data, "interval_seconds", (int, float, type(None)), where, default=None
        ),
        timezone=_typed(data, "timezone", str, where, default="UTC"),
        catchup=_typed(data, "catchup", bool, where, default=False),
        location=_typed(data, "location", _OPTIONAL_TEXT, where, default=None),
    )
