"""``tide.compile``: validate a workflow and split it into a :class:`WorkflowPlan`.

Compilation is pure -- no server, no I/O beyond importing engine plugins -- and collects every
problem from every stage (structure, rules, split, engines, serialisation) into one
:class:`~tideflow.errors.GraphError`, each naming workflow / job / node and the user's line.
"""

from __future__ import annotations

from tideflow.compiler.cron import cron_problem
from tideflow.compiler.generator import GeneratorRegistry, default_registry
from tideflow.compiler.plan import PlanJob, WorkflowPlan
from tideflow.compiler.splitter import split
from tideflow.domain.checks import graph_problems, rule_problems
from tideflow.domain.graph import AIGraph
from tideflow.domain.rules import Periodic
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
    problems += graph_problems(graph)
    jobs, split_problems = split(graph)
    problems += split_problems
    problems += rule_problems(graph, {job.spec.name for job in jobs})
    for rule in graph.rules:
        cron = rule.condition.cron if isinstance(rule.condition, Periodic) else None
        if isinstance(cron, str) and (message := cron_problem(cron)) is not None:
            problems.append(
                GraphProblem(
                    f"{rule.kind} rule: {message}",
                    workflow=graph.workflow,
                    job=rule.job,
                    location=rule.location,
                )
            )

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
    )


def _dedupe(problems: list[GraphProblem]) -> list[GraphProblem]:
    """Drop exact repeats (one mistake can be seen by two stages), keeping the first order."""
    return list(dict.fromkeys(problems))
