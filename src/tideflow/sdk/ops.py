"""The node ops: ``tide.read_dataset``, ``tide.transform``, ``tide.train`` ... and ``tide.command``.

Each op adds one AI node to the workflow being declared (and to the job block, if inside one)
and returns a :class:`~tideflow.sdk.builder.Handle` -- or a tuple of handles with ``outputs=N``
-- that later ops take as inputs. Passing a handle creates a data edge. ``tide.command``
returns nothing: a program is a job of its own and hands data over through files or datasets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from tideflow.domain.command import ARGV, ENV
from tideflow.domain.graph import Node, NodeKind, NodeOutput
from tideflow.errors import GraphProblem
from tideflow.sdk.builder import Handle, Workflow, current_job, current_workflow
from tideflow.sdk.location import user_location
from tideflow.sdk.processor import processor_problem

Inputs = Handle | Sequence[Handle] | None
Output = Handle | tuple[Handle, ...]

# Ops whose node needs at least one input to mean anything.
_NEEDS_INPUT = frozenset(
    {
        NodeKind.WRITE_DATASET,
        NodeKind.TRANSFORM,
        NodeKind.TRAIN,
        NodeKind.PREDICT,
        NodeKind.EVALUATE,
    }
)
# Ops that may run without user code: later issues give them built-in dataset readers/writers.
_PROCESSOR_OPTIONAL = frozenset({NodeKind.READ_DATASET, NodeKind.WRITE_DATASET})


def _add(
    kind: NodeKind,
    inputs: Inputs,
    *,
    processor: Any,
    name: str | None,
    config: Mapping[str, Any] | None,
    outputs: int,
    model: str | None = None,
    dataset: str | None = None,
) -> Output:
    wf = current_workflow(f"tide.{kind if kind != NodeKind.USER else 'user_node'}()")
    job = current_job()
    location = user_location()
    node_name = name if name is not None else wf.next_node_name(str(kind))
    job_name = job.name if job is not None else None

    def problem(message: str) -> None:
        wf.record(
            GraphProblem(message, workflow=wf.name, job=job_name, node=node_name, location=location)
        )

    refs = _input_refs(wf, inputs, problem)
    if not refs and kind in _NEEDS_INPUT:
        problem(f"missing input: tide.{kind}() needs the output of another node as its input")
    if processor is None and kind not in _PROCESSOR_OPTIONAL:
        problem(f"missing processor: pass processor=... to tide.{kind}()")
    elif processor is not None and (reason := processor_problem(processor)) is not None:
        problem(reason)
    for label, value in (("model", model), ("dataset", dataset)):
        if value is not None and (not isinstance(value, str) or not value):
            problem(f"{label} must be a non-empty name, got {value!r}")
    node = Node(
        name=node_name,
        kind=kind,
        processor=processor,
        inputs=refs,
        outputs=outputs,
        job=job_name,
        config=dict(config)
        if isinstance(config, Mapping)
        else (config if config is not None else {}),
        model=model,
        dataset=dataset,
        location=location,
    )
    wf.add_node(node)
    if isinstance(outputs, int) and outputs > 1:
        return tuple(Handle(wf, node_name, index) for index in range(outputs))
    return Handle(wf, node_name, 0)


def _input_refs(wf: Workflow, inputs: Inputs, problem: Any) -> tuple[NodeOutput, ...]:
    if inputs is None:
        return ()
    items: Sequence[Any] = [inputs] if isinstance(inputs, Handle) else inputs
    if not isinstance(items, Sequence) or isinstance(items, str):
        problem(f"inputs must be node handles returned by other ops, got {type(inputs).__name__}")
        return ()
    refs: list[NodeOutput] = []
    for position, item in enumerate(items):
        if not isinstance(item, Handle):
            problem(
                f"missing input: input {position} is a {type(item).__name__}, not the handle "
                "returned by another op"
            )
        elif item.workflow is not wf:
            problem(
                f"missing input: input {position} is node '{item.node}' of workflow "
                f"'{item.workflow.name}'; data edges stay inside one workflow"
            )
        else:
            refs.append(NodeOutput(item.node, item.index))
    return tuple(refs)


def read_dataset(
    dataset: str,
    *,
    processor: Any = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    outputs: int = 1,
) -> Output:
    """Read ``dataset`` (a batch table or a stream) as the start of a data flow."""
    return _add(
        NodeKind.READ_DATASET,
        None,
        processor=processor,
        name=name,
        config=config,
        outputs=outputs,
        dataset=dataset,
    )


def write_dataset(
    inputs: Inputs,
    dataset: str,
    *,
    processor: Any = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    outputs: int = 1,
) -> Output:
    """Write ``inputs`` to ``dataset``; another job can read it (the way to hand data over)."""
    return _add(
        NodeKind.WRITE_DATASET,
        inputs,
        processor=processor,
        name=name,
        config=config,
        outputs=outputs,
        dataset=dataset,
    )


def transform(
    inputs: Inputs,
    *,
    processor: Any,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    outputs: int = 1,
) -> Output:
    """Turn tables or streams into new ones (feature engineering, cleaning, joins)."""
    return _add(
        NodeKind.TRANSFORM, inputs, processor=processor, name=name, config=config, outputs=outputs
    )


def train(
    inputs: Inputs,
    *,
    model: str,
    processor: Any,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    outputs: int = 1,
) -> Output:
    """Train ``model`` on ``inputs``; the processor logs model versions as it goes."""
    return _add(
        NodeKind.TRAIN,
        inputs,
        processor=processor,
        name=name,
        config=config,
        outputs=outputs,
        model=model,
    )


def predict(
    inputs: Inputs,
    *,
    model: str,
    processor: Any,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    outputs: int = 1,
) -> Output:
    """Score ``inputs`` with a version of ``model``."""
    return _add(
        NodeKind.PREDICT,
        inputs,
        processor=processor,
        name=name,
        config=config,
        outputs=outputs,
        model=model,
    )


def evaluate(
    inputs: Inputs,
    *,
    model: str,
    processor: Any,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    outputs: int = 1,
) -> Output:
    """Measure a version of ``model`` on ``inputs`` (metrics, no status change)."""
    return _add(
        NodeKind.EVALUATE,
        inputs,
        processor=processor,
        name=name,
        config=config,
        outputs=outputs,
        model=model,
    )


def validate(
    inputs: Inputs = None,
    *,
    model: str,
    processor: Any,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    outputs: int = 1,
) -> Output:
    """Decide whether a new version of ``model`` is good enough (VALIDATED or REJECTED)."""
    return _add(
        NodeKind.VALIDATE,
        inputs,
        processor=processor,
        name=name,
        config=config,
        outputs=outputs,
        model=model,
    )


def push_model(
    inputs: Inputs = None,
    *,
    model: str,
    processor: Any,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    outputs: int = 1,
) -> Output:
    """Deploy a version of ``model`` to where it is served."""
    return _add(
        NodeKind.PUSH_MODEL,
        inputs,
        processor=processor,
        name=name,
        config=config,
        outputs=outputs,
        model=model,
    )


def user_node(
    *inputs: Handle,
    processor: Any,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    outputs: int = 1,
) -> Output:
    """A node of the user's own kind, taking any number of inputs."""
    return _add(
        NodeKind.USER, list(inputs), processor=processor, name=name, config=config, outputs=outputs
    )


def command(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    name: str | None = None,
) -> None:
    """Run a program as a job: ``tide.command(["bash", "prepare.sh", "{date}"])``.

    A command is its job's only node (inside ``with tide.job(...)``, or a job of its own when
    declared outside any block) and runs on the python engine: the job's process starts the
    program in the job's working directory (where the code package is extracted), its output
    goes to the job's log, exit code 0 ends the attempt FINISHED and any other FAILED, and a
    STOP sends it SIGTERM.

    Args:
        argv: The program and its arguments; no shell parses them. Each is a template:
            ``{name}`` is the execution's param ``name``, ``{trigger.value}`` (``key``,
            ``event_type``, ``sender``, ``offset``) a field of the event that started the
            attempt, ``{{`` and ``}}`` literal braces (:mod:`tideflow.domain.command`).
        env: Variables added to the job's environment; their values are templates too.
        name: The node's name (default ``command_<n>``).
    """
    wf = current_workflow("tide.command()")
    job = current_job()
    node_name = name if name is not None else wf.next_node_name(str(NodeKind.COMMAND))
    args: Any = argv
    if isinstance(argv, Sequence) and not isinstance(argv, str):
        args = [os.fspath(item) if isinstance(item, os.PathLike) else item for item in argv]
    config: dict[str, Any] = {ARGV: args}
    if env is not None:
        config[ENV] = dict(env) if isinstance(env, Mapping) else env
    wf.add_node(
        Node(
            name=node_name,
            kind=NodeKind.COMMAND,
            job=job.name if job is not None else None,
            config=config,
            location=user_location(),
        )
    )
