"""Compile a ``flink`` job: topological order plus processors pickled *by reference*.

A Flink job runs in PyFlink's own environment (``tideflow engines setup flink``), where
cloudpickle is pinned to 2.2 while Tideflow compiles with cloudpickle 3: a by-value cloudpickle
payload does not cross that gap reliably. So a Flink processor travels as a *standard* pickle,
which refers to its class (and any functions it holds) by module and name: the class must be
importable in the job -- from a module of the code package (a file beside the workflow file) or
an installed package such as ``tideflow`` itself. The generator checks every global the pickle
refers to and reports, as one :class:`~tideflow.errors.GraphError`, each node whose processor is
a lambda, a local class, or a class defined in the workflow file itself (its module exists only
while ``tideflow run`` loads it), saying where to move it.
"""

from __future__ import annotations

import pickle
import pickletools
from collections.abc import Sequence

from tideflow.compiler.generator import GeneratedJob, JobGenerator, digest
from tideflow.compiler.plan import PlanNode
from tideflow.domain.graph import JobSpec, Node
from tideflow.errors import GraphError, GraphProblem

PICKLE_PROTOCOL = 4
"""Protocol 4 (Python 3.8+): what both environments read."""
_UNIMPORTABLE_PREFIXES = ("__main__", "tideflow_user_", "__mp_main__")


class FlinkJobGenerator(JobGenerator):
    """The generator of the ``flink`` engine; its runtime is the in-engine driver."""

    runtime = "tideflow.engines.flink.driver:main"

    def generate(self, workflow: str, job: JobSpec, nodes: Sequence[Node]) -> GeneratedJob:
        """Order ``nodes`` topologically and pickle their processors by reference.

        Raises:
            GraphError: Naming every node whose processor cannot travel to the Flink
                environment, and why.
        """
        from tideflow.engines.python.generator import topological_order

        problems: list[GraphProblem] = []
        payloads: dict[str, bytes] = {}
        by_object: dict[int, str] = {}
        plan_nodes: dict[str, PlanNode] = {}
        for node in nodes:
            processor_digest: str | None = None
            if node.processor is not None:
                processor_digest = by_object.get(id(node.processor))
                if processor_digest is None:
                    blob, problem = pickle_by_reference(node.processor)
                    if blob is None:
                        problems.append(
                            GraphProblem(
                                str(problem),
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
            engine_payload={
                "order": order,
                "pickle": "standard",
                "protocol": PICKLE_PROTOCOL,
            },
            payloads=payloads,
        )


def pickle_by_reference(processor: object) -> tuple[bytes | None, str | None]:
    """``(payload, None)``, or ``(None, why)`` when it cannot be loaded in the Flink job."""
    name = type(processor).__name__
    try:
        blob = pickle.dumps(processor, protocol=PICKLE_PROTOCOL)
    except Exception as exc:  # any pickling failure is the user's to fix
        return None, (
            f"processor {name} cannot be sent to the Flink environment: standard pickle "
            f"failed ({type(exc).__name__}: {exc}). Flink processors are pickled by reference: "
            "define the class (and any function it holds) at the top level of a module beside "
            "the workflow file, not as a lambda or inside a function, and keep unpicklable "
            "resources out of its attributes (create them in open(ctx))"
        )
    for module, qualname in referenced_globals(blob):
        if module.startswith(_UNIMPORTABLE_PREFIXES):
            return None, (
                f"processor {name} refers to {qualname} defined in the workflow file itself "
                f"(module {module!r} exists only while the file is loaded), which the Flink "
                "environment cannot import: move it into a module beside the workflow file "
                "(e.g. flink_processors.py) and import it from there"
            )
    return blob, None


def referenced_globals(blob: bytes) -> list[tuple[str, str]]:
    """Every ``(module, name)`` a pickle imports when loaded."""
    found: list[tuple[str, str]] = []
    pushed: list[str | None] = []  # what each opcode pushed, strings kept (memo included)
    memo: dict[int, str | None] = {}
    for opcode, arg, _ in pickletools.genops(blob):
        name = opcode.name
        if name in ("GLOBAL", "INST") and isinstance(arg, str):
            module, _, qualname = arg.partition(" ")
            found.append((module, qualname))
            pushed.append(None)
        elif name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            pushed.append(str(arg))
        elif name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(arg)] = pushed[-1] if pushed else None  # type: ignore[arg-type]
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            pushed.append(memo.get(int(arg)))  # type: ignore[arg-type]
        elif name == "STACK_GLOBAL":
            if len(pushed) >= 2 and pushed[-2] is not None and pushed[-1] is not None:
                found.append((str(pushed[-2]), str(pushed[-1])))
            pushed.append(None)
        else:
            pushed.append(None)
    return found
