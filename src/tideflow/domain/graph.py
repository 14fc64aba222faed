"""The AI Graph: nodes, data edges, declared jobs and rules of one workflow.

The graph is what the SDK builds and what the compiler splits into jobs. It holds the user's
processor objects as opaque values; only the compiler serialises them. Data edges are implied by
node inputs (each input names one output of another node), so a graph cannot hold a dangling
edge object, only a dangling input -- which :mod:`tideflow.domain.checks` reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tideflow.domain.contexts import ContextFrom
from tideflow.domain.rules import Rule
from tideflow.domain.schedule import Schedule


class NodeKind(StrEnum):
    """The role of an AI node in the ML pipeline."""

    READ_DATASET = "read_dataset"
    WRITE_DATASET = "write_dataset"
    TRANSFORM = "transform"
    TRAIN = "train"
    PREDICT = "predict"
    EVALUATE = "evaluate"
    VALIDATE = "validate"
    PUSH_MODEL = "push_model"
    USER = "user"
    COMMAND = "command"


@dataclass(frozen=True)
class NodeOutput:
    """One output of a node: the endpoint a data edge starts from."""

    node: str
    index: int = 0


@dataclass(frozen=True)
class DataEdge:
    """Node ``target`` consumes ``source`` as its input number ``target_index``."""

    source: NodeOutput
    target: str
    target_index: int


@dataclass(frozen=True)
class Node:
    """An AI node: the smallest logical step of a workflow.

    Attributes:
        name: Unique within the workflow.
        kind: Its role.
        processor: The user's code (a processor object or function); opaque here.
        inputs: The outputs of other nodes it consumes, in order.
        outputs: How many outputs it produces.
        job: The declared job block it was created in, or ``None``.
        config: JSON-serialisable settings handed to the processor.
        model: The model it trains / validates / pushes / predicts with, if any.
        dataset: The dataset it reads or writes, if any.
        location: ``file:line`` where the user declared it.
    """

    name: str
    kind: NodeKind
    processor: object = field(default=None, compare=False, repr=False)
    inputs: tuple[NodeOutput, ...] = ()
    outputs: int = 1
    job: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    model: str | None = None
    dataset: str | None = None
    location: str | None = None


@dataclass(frozen=True)
class JobSpec:
    """How a job runs: engine, platform, batch or streaming, and its run-time limits.

    Attributes:
        name: Unique within the workflow.
        engine: The kind of program (``python``, ``flink``, ``spark``).
        platform: Where a Python job runs (``local``, ``ray``).
        streaming: ``True`` for a job that runs until stopped.
        config: JSON-serialisable engine / executor settings.
        retries: How many times a failed attempt is retried.
        timeout: Seconds an attempt may run before it is stopped, or ``None``.
        resources: What the job asks of its platform (``{"cpus": 2}``).
        location: ``file:line`` where the user declared it (``None`` for jobs the splitter
            formed from nodes outside any job block).
    """

    name: str
    engine: str = "python"
    platform: str = "local"
    streaming: bool = False
    config: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0
    timeout: float | None = None
    resources: Mapping[str, Any] = field(default_factory=dict)
    location: str | None = None


@dataclass(frozen=True)
class AIGraph:
    """Everything one workflow declares, before it is split into jobs.

    Attributes:
        workflow: The workflow's name.
        nodes: Every node, in declaration order.
        jobs: The job blocks the user declared, in declaration order.
        rules: Every rule, in declaration order (the order alternatives are checked in).
        per_context: Where each event's contexts come from, when each context gets its own
            execution (``None``: executions are shared by every event).
        schedule: When the workflow starts executions by itself (``wf.schedule``), if ever.
    """

    workflow: str
    nodes: tuple[Node, ...] = ()
    jobs: tuple[JobSpec, ...] = ()
    rules: tuple[Rule, ...] = ()
    per_context: ContextFrom | None = None
    schedule: Schedule | None = None

    @property
    def edges(self) -> tuple[DataEdge, ...]:
        """The data edges implied by node inputs."""
        return tuple(
            DataEdge(source, node.name, index)
            for node in self.nodes
            for index, source in enumerate(node.inputs)
        )

    def node(self, name: str) -> Node:
        """The node called ``name``.

        Raises:
            KeyError: No such node.
        """
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)
