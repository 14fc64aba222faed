"""The checks of a workflow: at compile time on the AI Graph, at the server on the plan.

A plan that arrives at the server is input, never trusted: a hand-written one can name a job
``../../escape``, a cron that never fires or an engine nobody installed. So the server rebuilds
the graph a plan describes and runs on it exactly what ``tide.compile`` runs
(:func:`graph_check`: names, job blocks, nodes, data edges, command nodes, rules, cron and time
zones, where a ``per_context`` workflow's contexts come from), then adds what only a plan has
(:func:`plan_problems`): engines and platforms this installation knows, processor payloads that
match their digests, model and dataset names, rule kinds that fit their conditions, bounded
text. Everything found is reported together in one
:class:`~tideflow.errors.GraphError` (an ``InvalidArgumentError``), each problem naming the
workflow, job and node at fault.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from importlib.metadata import entry_points

from tideflow.compiler.cron import cron_problem
from tideflow.compiler.generator import GeneratorRegistry, default_registry
from tideflow.compiler.plan import WorkflowPlan
from tideflow.compiler.splitter import SplitJob, split
from tideflow.domain.checks import graph_problems, rule_problems, trigger_problems
from tideflow.domain.command import command_problems
from tideflow.domain.contexts import context_from_problems
from tideflow.domain.graph import AIGraph, JobSpec, Node, NodeKind
from tideflow.domain.limits import MAX_KEY_LENGTH, MAX_TYPE_LENGTH, MAX_URI_LENGTH
from tideflow.domain.names import name_problem
from tideflow.domain.rules import Periodic, Rule, RuleKind, event_matches
from tideflow.domain.schedule import Schedule
from tideflow.domain.status import JobAction
from tideflow.errors import GraphError, GraphProblem

PLATFORM_GROUP = "tideflow.executors"
"""The entry-point group of executors (platforms); the executors package registers there."""


def graph_check(graph: AIGraph) -> tuple[list[SplitJob], list[GraphProblem]]:
    """Split ``graph`` into jobs and find every problem ``tide.compile`` reports before engines.

    Returns:
        The jobs and the problems (structure, split, rules, cron).
    """
    problems = graph_problems(graph)
    jobs, split_problems = split(graph)
    problems += split_problems
    problems += command_job_problems(graph.workflow, jobs)
    problems += rule_problems(graph, {job.spec.name for job in jobs})
    problems += cron_problems(graph.workflow, graph.rules)
    if graph.schedule is not None:
        problems += schedule_problems(graph.workflow, graph.schedule)
    if graph.per_context is not None:
        problems += [
            GraphProblem(message, workflow=graph.workflow)
            for message in context_from_problems(graph.per_context)
        ]
    problems += [
        GraphProblem(
            f"{rule.kind} takes an event condition, not a timer (it would never fire); "
            "to start one execution per tick use wf.schedule(cron=... | interval=...)",
            workflow=graph.workflow,
            location=rule.location if isinstance(rule.location, str) else None,
        )
        for rule in graph.rules
        if rule.kind in (RuleKind.START_ON, RuleKind.STOP_ON)
        and isinstance(rule.condition, Periodic)
    ]
    return jobs, problems


def schedule_problems(workflow: str, schedule: Schedule) -> list[GraphProblem]:
    """What is wrong with ``wf.schedule(...)``: the checks of a periodic rule, and catchup."""
    messages = list(trigger_problems(schedule.timer))
    if isinstance(schedule.cron, str) and (message := cron_problem(schedule.cron)) is not None:
        messages.append(message)
    if not isinstance(schedule.catchup, bool):
        messages.append(f"catchup must be True or False, got {schedule.catchup!r}")
    location = schedule.location if isinstance(schedule.location, str) else None
    return [
        GraphProblem(f"schedule: {message}", workflow=workflow, location=location)
        for message in messages
    ]


def cron_problems(workflow: str, rules: Collection[Rule]) -> list[GraphProblem]:
    """Cron expressions that are malformed, too long or never fire."""
    problems: list[GraphProblem] = []
    for rule in rules:
        cron = rule.condition.cron if isinstance(rule.condition, Periodic) else None
        if isinstance(cron, str) and (message := cron_problem(cron)) is not None:
            problems.append(
                GraphProblem(
                    f"{rule.kind} rule: {message}",
                    workflow=workflow,
                    job=rule.job,
                    location=rule.location,
                )
            )
    return problems


COMMAND_ENGINE = "python"
"""The engine whose runtime runs command jobs (:func:`tideflow.command`)."""
COMMAND_PLATFORMS = ("local", "ray")
"""The platforms a command job runs on: each runs the python runtime as a job process of its
own, which the program is a child of. Others (spark, flink, a plugin's) are refused up front."""


def command_job_problems(workflow: str, jobs: Collection[SplitJob]) -> list[GraphProblem]:
    """Command nodes: a valid argv and env, alone in a python job, no inputs."""
    problems: list[GraphProblem] = []
    for job in jobs:
        for node in job.nodes:
            if node.kind is not NodeKind.COMMAND:
                continue
            messages = command_problems(node.config)
            if len(job.nodes) > 1:
                others = ", ".join(repr(other.name) for other in job.nodes if other is not node)
                messages.append(
                    f"a command is its job's only node, but job {job.spec.name!r} also holds "
                    f"{others}: declare it in a job of its own and order the jobs with a "
                    "control edge (wf.after)"
                )
            if node.inputs:
                messages.append(
                    "a command takes no inputs: its program reads files or datasets itself"
                )
            if job.spec.engine != COMMAND_ENGINE:
                messages.append(
                    f"a command runs in a {COMMAND_ENGINE} job (its runtime starts the "
                    f"program), not on engine {job.spec.engine!r}"
                )
            elif job.spec.platform not in COMMAND_PLATFORMS:
                messages.append(
                    f"a command job runs on platform {' or '.join(map(repr, COMMAND_PLATFORMS))}, "
                    f"not {job.spec.platform!r}"
                )
            problems += [
                GraphProblem(
                    message,
                    workflow=workflow,
                    job=job.spec.name,
                    node=node.name,
                    location=node.location,
                )
                for message in messages
            ]
    return problems


def known_platforms() -> list[str]:
    """The platforms (executors) installed, by entry point, without importing any of them."""
    return sorted({ep.name for ep in entry_points(group=PLATFORM_GROUP)})


def check_plan(
    plan: WorkflowPlan,
    *,
    engines: Collection[str] | None = None,
    platforms: Collection[str] | None = None,
) -> WorkflowPlan:
    """Return ``plan`` if it passes every check, else raise listing every problem.

    Args:
        plan: A plan read from outside (:meth:`WorkflowPlan.from_json`).
        engines: The engines known; those of the engine registry by default.
        platforms: The platforms known; :func:`known_platforms` by default.

    Raises:
        GraphError: Listing every problem, each naming its workflow, job and node.
    """
    problems = plan_problems(plan, engines=engines, platforms=platforms)
    if problems:
        raise GraphError(list(dict.fromkeys(problems)))
    return plan


def plan_problems(
    plan: WorkflowPlan,
    *,
    engines: Collection[str] | None = None,
    platforms: Collection[str] | None = None,
    registry: GeneratorRegistry | None = None,
) -> list[GraphProblem]:
    """Every problem of ``plan``: those of its graph (:func:`graph_check`) and the plan's own."""
    engines = set((registry or default_registry).names() if engines is None else engines)
    platforms = set(known_platforms() if platforms is None else platforms)
    graph = AIGraph(
        workflow=plan.workflow,
        nodes=tuple(
            Node(
                name=node.name,
                kind=node.kind,
                inputs=node.inputs,
                outputs=node.outputs,
                job=job.name,
                config=node.config,
                model=node.model,
                dataset=node.dataset,
                location=node.location,
            )
            for job in plan.jobs
            for node in job.nodes
        ),
        jobs=tuple(
            JobSpec(
                name=job.name,
                engine=job.engine,
                platform=job.platform,
                streaming=job.streaming,
                config=job.config,
                retries=job.retries,
                timeout=job.timeout,
                resources=job.resources,
                location=job.location,
            )
            for job in plan.jobs
        ),
        rules=plan.rules,
        per_context=plan.per_context,
        schedule=plan.schedule,
    )
    _, problems = graph_check(graph)
    problems += _job_problems(plan, engines, platforms)
    problems += _rule_problems(plan)
    problems += _payload_problems(plan)
    return problems


def _job_problems(
    plan: WorkflowPlan, engines: Collection[str], platforms: Collection[str]
) -> list[GraphProblem]:
    wf = plan.workflow
    problems: list[GraphProblem] = []
    for job in plan.jobs:
        if job.engine not in engines:
            known = ", ".join(sorted(engines)) or "none"
            problems.append(
                GraphProblem(
                    f"unknown engine {job.engine!r} (known engines: {known})",
                    workflow=wf,
                    job=job.name,
                    location=job.location,
                )
            )
        if job.platform not in platforms:
            known = ", ".join(sorted(platforms)) or "none"
            problems.append(
                GraphProblem(
                    f"unknown platform {job.platform!r} (known platforms: {known})",
                    workflow=wf,
                    job=job.name,
                    location=job.location,
                )
            )
        if (message := _location_problem(job.location)) is not None:
            problems.append(GraphProblem(message, workflow=wf, job=job.name))
        for node in job.nodes:
            messages: list[str] = [
                message
                for label, value in (("model", node.model), ("dataset", node.dataset))
                if value is not None and (message := name_problem(value, label)) is not None
            ]
            if node.processor is not None and node.processor not in plan.payloads:
                messages.append(
                    f"processor {node.processor[:80]!r} is not among the plan's payloads"
                )
            if node.kind is NodeKind.COMMAND and (
                node.processor is not None or node.model is not None or node.dataset is not None
            ):
                messages.append("a command node has no processor, model or dataset")
            problems += [
                GraphProblem(
                    message, workflow=wf, job=job.name, node=node.name, location=node.location
                )
                for message in messages
            ]
            if (message := _location_problem(node.location)) is not None:
                problems.append(GraphProblem(message, workflow=wf, job=job.name, node=node.name))
    return problems


_ONLY_WORKFLOW_LEVEL = {RuleKind.START_ON: JobAction.START, RuleKind.STOP_ON: JobAction.STOP}


def _rule_problems(plan: WorkflowPlan) -> list[GraphProblem]:
    """What a hand-made plan can get wrong that the SDK's rule methods never produce."""
    problems: list[GraphProblem] = []
    for index, rule in enumerate(plan.rules):

        def problem(message: str, rule: Rule = rule, index: int = index) -> GraphProblem:
            return GraphProblem(
                f"{rule.kind} rule (rules[{index}]): {message}",
                workflow=plan.workflow,
                job=rule.job,
                location=rule.location if isinstance(rule.location, str) else None,
            )

        timer = isinstance(rule.condition, Periodic)
        if timer != (rule.kind == RuleKind.PERIODIC):
            problems.append(
                problem("a periodic rule needs a cron or interval condition, and only it may")
            )
        expected = _ONLY_WORKFLOW_LEVEL.get(rule.kind)
        if expected is not None and rule.job is not None:
            problems.append(problem(f"acts on the workflow, so it names no job, not {rule.job!r}"))
        if expected is not None and rule.action != expected:
            problems.append(problem(f"its action must be {expected}, not {rule.action}"))
        for leaf in event_matches(rule.condition):
            for label, limit in (
                ("key", MAX_KEY_LENGTH),
                ("sender", MAX_KEY_LENGTH),
                ("event_type", MAX_TYPE_LENGTH),
            ):
                value = getattr(leaf, label)
                if isinstance(value, str) and len(value) > limit:
                    problems.append(
                        problem(
                            f"EventMatch {label} is {len(value)} characters long; "
                            f"the limit is {limit}"
                        )
                    )
        if (message := _location_problem(rule.location)) is not None:
            problems.append(problem(message))
    return problems


def _payload_problems(plan: WorkflowPlan) -> list[GraphProblem]:
    problems: list[GraphProblem] = []
    for name, blob in plan.payloads.items():
        if hashlib.sha256(blob).hexdigest() != name:
            problems.append(
                GraphProblem(
                    f"payload {name[:80]!r} is not the SHA-256 of its bytes",
                    workflow=plan.workflow,
                )
            )
    return problems


def _location_problem(location: object) -> str | None:
    if location is None:
        return None
    if not isinstance(location, str) or len(location) > MAX_URI_LENGTH or "\x00" in location:
        return f"location must be 'file:line' text of at most {MAX_URI_LENGTH} characters"
    return None
