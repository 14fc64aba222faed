"""Compile a ``python`` job: topological order plus cloudpickled processors.

Processors are pickled by reference when their module is importable from the code package and
by value otherwise (cloudpickle's rule), so the runtime needs the package on ``sys.path`` and
nothing else. Identical processor objects shared by several nodes are pickled once. Code
pickled by value keeps its file name (:mod:`tideflow.engines.python.pickling`), so a failing
job's traceback names the user's file and line.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from tideflow.compiler.generator import GeneratedJob, JobGenerator, digest
from tideflow.compiler.plan import PlanNode
from tideflow.domain.graph import JobSpec, Node
from tideflow.errors import GraphError, GraphProblem


class PythonJobGenerator(JobGenerator):
    """The generator of the ``python`` engine."""

    runtime = "tideflow.engines.python.runtime:run_attempt"

    def generate(self, workflow: str, job: JobSpec, nodes: Sequence[Node]) -> GeneratedJob:
        """Order ``nodes`` topologically and serialise their processors.

        Raises:
            GraphError: Naming every processor that cannot be serialised, and why.
        """
        from tideflow.engines.python.pickling import dumps  # cloudpickle: only when compiling

        problems: list[GraphProblem] = []
        payloads: dict[str, bytes] = {}
        by_object: dict[int, str] = {}
        plan_nodes: dict[str, PlanNode] = {}
        for node in nodes:
            processor_digest: str | None = None
            if node.processor is not None:
                processor_digest = by_object.get(id(node.processor))
                if processor_digest is None:
                    try:
                        blob = dumps(node.processor)
                    except Exception as exc:  # any pickling failure is the user's to fix
                        problems.append(
                            GraphProblem(
                                f"processor {type(node.processor).__name__} cannot be serialised "
                                f"with cloudpickle: {type(exc).__name__}: {exc}. Keep "
                                "unpicklable resources (locks, connections, open files) out of "
                                "the processor's attributes and create them in open(ctx)",
                                workflow=workflow,
                                job=job.name,
                                node=node.name,
                                location=node.location,
                            )
                        )
                        continue
                    processor_digest = digest(blob)
                    payloads[processor_digest] = blob
                    by_object[id(node.processor)] = processor_digest
            plan_nodes[node.name] = PlanNode(
                name=node.name,
                kind=node.kind,
                inputs=node.inputs,
                outputs=node.outputs,
                config=dict(node.config),
                processor=processor_digest,
                model=node.model,
                dataset=node.dataset,
                location=node.location,
            )
        if problems:
            raise GraphError(problems)
        order = topological_order(nodes)
        return GeneratedJob(
            nodes=tuple(plan_nodes[name] for name in order),
            engine_payload={"order": order},
            payloads=payloads,
        )


def topological_order(nodes: Sequence[Node]) -> list[str]:
    """Node names so that every node comes after its inputs; ties keep declaration order.

    Cycles were reported by the graph checks; any nodes caught in one are appended in
    declaration order so this never loops or drops a node.
    """
    position = {node.name: index for index, node in enumerate(nodes)}
    waiting = {node.name: 0 for node in nodes}
    downstream: dict[str, list[str]] = {node.name: [] for node in nodes}
    for node in nodes:
        for ref in node.inputs:
            if ref.node in downstream:
                downstream[ref.node].append(node.name)
                waiting[node.name] += 1
    ready = [(position[name], name) for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for after in downstream[name]:
            waiting[after] -= 1
            if waiting[after] == 0:
                heapq.heappush(ready, (position[after], after))
    if len(order) < len(nodes):
        done = set(order)
        order += [node.name for node in nodes if node.name not in done]
    return order
