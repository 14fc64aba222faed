"""``tide.compile``: validate a workflow and split it into a :class:`WorkflowPlan`.

Compilation is pure -- no server, no I/O beyond importing engine plugins -- and collects every
problem from every stage (structure, rules, split, engines, serialisation) into one
:class:`~tideflow.errors.GraphError`, each naming workflow / job / node and the user's line.
"""

from __future__ import annotations

from tideflow.compiler.check import graph_check
from tideflow.compiler.generator import GeneratorRegistry, default_registry
from tideflow.compiler.plan import PlanJob, WorkflowPlan
from tideflow.domain.graph import AIGraph
from tideflow.errors import GraphError, GraphProblem, InvalidArgumentError
from tideflow.sdk.builder import Workflow


def compile(
    workflow: Workflow | AIGraph, *, registry: GeneratorRegistry | None = None
) -> WorkflowPlan:
    """Validate ``workflow`` and compile it into a self-contained plan.

    Args:
        workflow: The builder from ``with tide.workflow(...) as wf`` (or a bare AI Graph).
        registry: Where engines are looked up; the entry-point registry by default.

    Raises:
        GraphError: Listing every problem found.
    """
    registry = registry or default_registry
    if isinstance(workflow, Workflow):
        graph, problems = workflow.graph, list(workflow.problems)
    else:
        graph, problems = workflow, []
    jobs, found = graph_check(graph)  # the server runs the same checks on a plan
    problems += found

    plan_jobs: list[PlanJob] = []
    payloads: dict[str, bytes] = {}
    for job in jobs:
        spec = job.spec
        try:
            generator = registry.get(spec.engine)
        except InvalidArgumentError as exc:
            problems.append(
                GraphProblem(
                    str(exc), workflow=graph.workflow, job=spec.name, location=spec.location
                )
            )
            continue
        try:
            generated = generator.generate(graph.workflow, spec, job.nodes)
        except GraphError as exc:
            problems += exc.problems
            continue
        payloads.update(generated.payloads)
        plan_jobs.append(
            PlanJob(
                name=spec.name,
                engine=spec.engine,
                platform=spec.platform,
                streaming=spec.streaming,
                config=dict(spec.config),
                retries=spec.retries,
                timeout=spec.timeout,
                resources=dict(spec.resources),
                location=spec.location,
                nodes=generated.nodes,
                engine_payload=dict(generated.engine_payload),
            )
        )
    if problems:
        raise GraphError(_dedupe(problems))
    return WorkflowPlan(
        workflow=graph.workflow,
        jobs=tuple(plan_jobs),
        rules=graph.rules,
        payloads=payloads,
        per_context=graph.per_context,
        schedule=graph.schedule,
    )


def _dedupe(problems: list[GraphProblem]) -> list[GraphProblem]:
    """Drop exact repeats (one mistake can be seen by two stages), keeping the first order."""
    return list(dict.fromkeys(problems))
