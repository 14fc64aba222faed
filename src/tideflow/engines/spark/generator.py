"""Compile a ``spark`` job: the Python engine's ordering and pickling, plus Spark's own checks.

A Spark job's processors are data-only: ``process(ctx, inputs)`` receives Spark DataFrames (and,
in a streaming job, Structured Streaming DataFrames) and returns one. ``read_dataset`` and
``write_dataset`` nodes may leave out the processor and say what to read or write in their
``config`` instead (``path``, ``format``, ``options``, plus ``mode`` for batch writes and
``checkpoint`` for streaming ones); the driver (:mod:`tideflow.engines.spark.driver`) runs them
with Spark's readers and writers. Every other node needs a processor, and a built-in node
without a ``path`` is refused at compile time, so a job never fails half way for a typo the
compiler could see.
"""

from __future__ import annotations

from collections.abc import Sequence

from tideflow.compiler.generator import GeneratedJob
from tideflow.domain.graph import JobSpec, Node, NodeKind
from tideflow.engines.python.generator import PythonJobGenerator
from tideflow.errors import GraphError, GraphProblem

BUILT_IN = frozenset({NodeKind.READ_DATASET, NodeKind.WRITE_DATASET})
"""Node kinds the driver can run without a processor (from their ``config``)."""


class SparkJobGenerator(PythonJobGenerator):
    """The generator of the ``spark`` engine.

    ``runtime`` is the driver's entry point; the ``spark`` executor hands it to ``spark-submit``
    (through a one-line bootstrap script) rather than calling it in its own process.
    """

    runtime = "tideflow.engines.spark.driver:main"

    def generate(self, workflow: str, job: JobSpec, nodes: Sequence[Node]) -> GeneratedJob:
        """Check the nodes, then order them and serialise their processors.

        Raises:
            GraphError: Every node Spark cannot run, and every processor that cannot be
                serialised.
        """
        problems = [
            problem
            for node in nodes
            if (problem := _node_problem(workflow, job, node, streaming=job.streaming))
        ]
        try:
            generated = super().generate(workflow, job, nodes)
        except GraphError as exc:
            raise GraphError([*problems, *exc.problems]) from None
        if problems:
            raise GraphError(problems)
        return GeneratedJob(
            nodes=generated.nodes,
            engine_payload={**generated.engine_payload, "streaming": job.streaming},
            payloads=generated.payloads,
        )


def _node_problem(
    workflow: str, job: JobSpec, node: Node, *, streaming: bool
) -> GraphProblem | None:
    message: str | None = None
    if node.processor is None:
        if node.kind not in BUILT_IN:
            message = (
                f"{node.kind} node needs a processor in a Spark job (only read_dataset and "
                "write_dataset can run from their config alone)"
            )
        elif not node.config.get("path"):
            message = (
                f"{node.kind} node without a processor needs config['path'] (and optionally "
                "'format', 'options'"
                + (", 'checkpoint')" if streaming else ", 'mode')")
                + " in a Spark job"
            )
        elif (
            node.kind is NodeKind.WRITE_DATASET and streaming and not node.config.get("checkpoint")
        ):
            message = (
                "write_dataset node without a processor in a streaming Spark job needs "
                "config['checkpoint'] (the query's checkpoint directory)"
            )
        elif node.kind is NodeKind.WRITE_DATASET and len(node.inputs) != 1:
            message = "write_dataset node without a processor must have exactly one input"
    if message is None:
        return None
    return GraphProblem(
        message, workflow=workflow, job=job.name, node=node.name, location=node.location
    )
