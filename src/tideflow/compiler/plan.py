"""The compiled workflow plan: what the server stores and the scheduler and executors run.

A plan is self-contained: ``payloads`` maps the sha256 of each serialised processor to its bytes
and ``to_json`` embeds them (base64), so a plan read back on another machine needs nothing but
the code package. ``from_json(plan.to_json()) == plan`` holds exactly; ``schema_version`` lets a
newer server refuse, with a clear message, a plan it cannot read.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tideflow.domain.graph import DataEdge, NodeKind, NodeOutput
from tideflow.domain.rules import Rule, rule_from_dict, rule_to_dict
from tideflow.errors import InvalidArgumentError

SCHEMA_VERSION = 1


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
    per_context: bool = False
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
            "per_context": self.per_context,
            "jobs": [_job_to_dict(job) for job in self.jobs],
            "rules": [rule_to_dict(rule) for rule in self.rules],
        }
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

        Raises:
            InvalidArgumentError: The data is not a plan this version can read.
        """
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise InvalidArgumentError(
                f"workflow plan schema version {version!r} is not supported (this Tideflow "
                f"reads version {SCHEMA_VERSION}); recompile the workflow with this version",
                field="schema_version",
            )
        try:
            return cls(
                workflow=data["workflow"],
                per_context=bool(data["per_context"]),
                jobs=tuple(_job_from_dict(job) for job in data["jobs"]),
                rules=tuple(rule_from_dict(rule) for rule in data["rules"]),
                payloads={
                    digest: base64.b64decode(text)
                    for digest, text in data.get("payloads", {}).items()
                },
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"malformed workflow plan: {exc!r}", field="plan") from exc

    @classmethod
    def from_json(cls, text: str) -> WorkflowPlan:
        """Read a plan written by :meth:`to_json`.

        Raises:
            InvalidArgumentError: ``text`` is not a readable plan.
        """
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidArgumentError(
                f"workflow plan is not valid JSON: {exc}", field="plan"
            ) from exc
        if not isinstance(data, dict):
            raise InvalidArgumentError("workflow plan JSON must be an object", field="plan")
        return cls.from_dict(data)


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


def _node_from_dict(data: Mapping[str, Any]) -> PlanNode:
    return PlanNode(
        name=data["name"],
        kind=NodeKind(data["kind"]),
        inputs=tuple(NodeOutput(name, index) for name, index in data["inputs"]),
        outputs=data["outputs"],
        config=data["config"],
        processor=data["processor"],
        model=data["model"],
        dataset=data["dataset"],
        location=data["location"],
    )


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


def _job_from_dict(data: Mapping[str, Any]) -> PlanJob:
    return PlanJob(
        name=data["name"],
        engine=data["engine"],
        platform=data["platform"],
        streaming=data["streaming"],
        config=data["config"],
        retries=data["retries"],
        timeout=data["timeout"],
        resources=data["resources"],
        engine_payload=data["engine_payload"],
        location=data["location"],
        nodes=tuple(_node_from_dict(node) for node in data["nodes"]),
    )
