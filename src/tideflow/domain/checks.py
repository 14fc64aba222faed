"""Structural checks of an AI Graph: each returns every problem it finds, never raises.

The compiler runs these, adds what only it can see (split, engines, serialisation, cron syntax)
and raises one :class:`~tideflow.errors.GraphError` with everything, so a user fixes all problems
in one pass instead of one per run.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from tideflow.domain.graph import AIGraph, JobSpec, Node
from tideflow.domain.limits import MAX_JSON_DEPTH, json_depth
from tideflow.domain.names import name_problem
from tideflow.domain.rules import (
    MAX_AGGREGATE_SAMPLES,
    MAX_MAX_QUEUED,
    Aggregate,
    AggregateOp,
    AllOf,
    AnyOf,
    Comparison,
    EventMatch,
    Last,
    Life,
    OnBusy,
    Periodic,
    Rule,
    RuleKind,
    Trigger,
    Window,
)
from tideflow.domain.status import JobAction
from tideflow.errors import GraphProblem

MAX_INTERVAL_SECONDS = 1000 * 365 * 24 * 3600
"""The longest periodic interval: past it no timer can be meant, and a few thousand years on,
the next fire time is past year 9999 and no longer a datetime (the scheduler overflowed)."""


def graph_problems(graph: AIGraph) -> list[GraphProblem]:
    """Problems with the workflow's name, its nodes, its job blocks and its data edges."""
    wf = graph.workflow
    problems: list[GraphProblem] = []
    if (msg := name_problem(wf, "workflow name")) is not None:
        problems.append(GraphProblem(msg, workflow=wf if isinstance(wf, str) else None))
    if not graph.nodes:
        problems.append(
            GraphProblem(
                "workflow is empty: declare at least one node (tide.read_dataset, "
                "tide.transform, ...) inside `with tide.workflow(...)`",
                workflow=wf,
            )
        )
    problems += _job_spec_problems(wf, graph.jobs)
    problems += _node_problems(wf, graph)
    problems += _cycle_problems(wf, graph.nodes)
    return problems


CLUSTER_ENGINES = frozenset({"flink", "spark"})
"""Engines whose jobs run on the engine's own cluster, through the executor of that name."""


def _job_spec_problems(wf: str, jobs: Iterable[JobSpec]) -> list[GraphProblem]:
    problems: list[GraphProblem] = []
    seen: dict[str, JobSpec] = {}
    for job in jobs:

        def problem(message: str, job: JobSpec = job) -> GraphProblem:
            return GraphProblem(message, workflow=wf, job=job.name, location=job.location)

        if (msg := name_problem(job.name, "job name")) is not None:
            problems.append(problem(msg))
        if job.name in seen:
            first = seen[job.name].location or "earlier"
            problems.append(
                problem(f"duplicate job name: a job block of that name is declared at {first}")
            )
        seen.setdefault(job.name, job)
        for label, value in (("engine", job.engine), ("platform", job.platform)):
            if (msg := name_problem(value, label)) is not None:
                problems.append(problem(msg))
        if job.engine in CLUSTER_ENGINES and job.platform != job.engine:
            problems.append(
                problem(
                    f"a {job.engine} job runs on its {job.engine} cluster, so its platform must "
                    f"be {job.engine!r} (or left out), not {job.platform!r}; platform= chooses "
                    "where a python job runs (local or ray)"
                )
            )
        if not isinstance(job.streaming, bool):
            problems.append(problem(f"streaming must be True or False, got {job.streaming!r}"))
        if not isinstance(job.retries, int) or isinstance(job.retries, bool) or job.retries < 0:
            problems.append(problem(f"retries must be a whole number >= 0, got {job.retries!r}"))
        if job.timeout is not None and not _positive_number(job.timeout):
            problems.append(
                problem(f"timeout must be a positive number of seconds, got {job.timeout!r}")
            )
        for label, mapping in (("config", job.config), ("resources", job.resources)):
            if (msg := _json_problem(mapping, label)) is not None:
                problems.append(problem(msg))
    return problems


def _node_problems(wf: str, graph: AIGraph) -> list[GraphProblem]:
    problems: list[GraphProblem] = []
    by_name: dict[str, Node] = {}
    counts = Counter(node.name for node in graph.nodes)
    declared_jobs = {job.name for job in graph.jobs}
    for node in graph.nodes:

        def problem(message: str, node: Node = node) -> GraphProblem:
            return GraphProblem(
                message, workflow=wf, job=node.job, node=node.name, location=node.location
            )

        if (msg := name_problem(node.name, "node name")) is not None:
            problems.append(problem(msg))
        if counts[node.name] > 1 and node.name in by_name:
            first = by_name[node.name].location or "earlier"
            problems.append(
                problem(f"duplicate node name: another node of that name is declared at {first}")
            )
        by_name.setdefault(node.name, node)
        if node.job is not None and node.job not in declared_jobs:
            problems.append(problem(f"belongs to job '{node.job}', which is not declared"))
        if not isinstance(node.outputs, int) or isinstance(node.outputs, bool) or node.outputs < 1:
            problems.append(problem(f"outputs must be a whole number >= 1, got {node.outputs!r}"))
        if (msg := _json_problem(node.config, "config")) is not None:
            problems.append(problem(msg))
    for node in graph.nodes:
        for position, source in enumerate(node.inputs):
            upstream = by_name.get(source.node)
            if upstream is None:
                problems.append(
                    GraphProblem(
                        f"input {position} names node '{source.node}', which is not in this workflow",
                        workflow=wf,
                        job=node.job,
                        node=node.name,
                        location=node.location,
                    )
                )
            elif not 0 <= source.index < max(upstream.outputs, 1):
                problems.append(
                    GraphProblem(
                        f"input {position} is output {source.index} of node '{source.node}', "
                        f"which has {upstream.outputs} output(s)",
                        workflow=wf,
                        job=node.job,
                        node=node.name,
                        location=node.location,
                    )
                )
    return problems


def _cycle_problems(wf: str, nodes: tuple[Node, ...]) -> list[GraphProblem]:
    """Report each data cycle once, naming its nodes in order."""
    names = {node.name for node in nodes}
    successors: dict[str, list[str]] = {node.name: [] for node in nodes}
    for node in nodes:
        for source in node.inputs:
            if source.node in names:
                successors[source.node].append(node.name)
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(successors, white)
    problems: list[GraphProblem] = []
    location = {node.name: node.location for node in nodes}

    for root in successors:
        if colour[root] != white:
            continue
        # Iterative DFS: user graphs may be deep enough to exhaust recursion.
        path: list[str] = [root]
        stack = [iter(successors[root])]
        colour[root] = grey
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = black
                stack.pop()
            elif colour[nxt] == grey:
                cycle = [*path[path.index(nxt) :], nxt]
                problems.append(
                    GraphProblem(
                        "cycle of data edges: "
                        + " -> ".join(cycle)
                        + " (data must flow one way; to loop, use control edges between jobs)",
                        workflow=wf,
                        node=nxt,
                        location=location[nxt],
                    )
                )
            elif colour[nxt] == white:
                colour[nxt] = grey
                path.append(nxt)
                stack.append(iter(successors[nxt]))
    return problems


def rule_problems(graph: AIGraph, job_names: Collection[str]) -> list[GraphProblem]:
    """Problems with rules, given the names of the jobs the graph splits into."""
    wf = graph.workflow
    problems: list[GraphProblem] = []
    known = ", ".join(sorted(job_names)) or "none"
    for rule in graph.rules:

        def problem(message: str, rule: Rule = rule) -> GraphProblem:
            return GraphProblem(
                f"{rule.kind} rule: {message}", workflow=wf, job=rule.job, location=rule.location
            )

        if rule.job is None:
            if rule.kind not in (RuleKind.START_ON, RuleKind.STOP_ON):
                problems.append(problem("a job rule must name a job"))
        elif rule.job not in job_names:
            problems.append(problem(f"names unknown job '{rule.job}' (jobs: {known})"))
        if not isinstance(rule.action, JobAction):
            problems.append(
                problem(f"unknown action {rule.action!r}; use one of {', '.join(JobAction)}")
            )
        for upstream in rule.upstreams:
            if upstream not in job_names:
                problems.append(problem(f"waits on unknown job '{upstream}' (jobs: {known})"))
        if rule.kind == RuleKind.AFTER and rule.job in rule.upstreams:
            problems.append(problem("a job cannot wait for itself to finish; it would never start"))
        problems += [problem(msg) for msg in busy_problems(rule)]
        if rule.kind in (RuleKind.AFTER, RuleKind.WITH_START) and not rule.upstreams:
            # Its condition is then empty too; one mistake, one problem.
            problems.append(problem("needs at least one upstream job"))
            continue
        problems += [problem(msg) for msg in trigger_problems(rule.condition)]
    return problems


def busy_problems(rule: Rule) -> list[str]:
    """What is wrong with a rule's ``on_busy`` / ``max_queued``."""
    out: list[str] = []
    if rule.on_busy is None and rule.max_queued is None:
        return out
    if rule.job is None or rule.action != JobAction.START:
        what = "a workflow rule" if rule.job is None else f"its action is {rule.action}"
        given = "on_busy=" if rule.on_busy is not None else "max_queued="
        return [
            f"{given} applies only to a job rule whose action is START ({what}); "
            "remove it, or use action=START"
        ]
    if rule.on_busy is not None and not isinstance(rule.on_busy, OnBusy):
        out.append(f"unknown on_busy {rule.on_busy!r}; use one of {', '.join(OnBusy)}")
    if rule.max_queued is not None:
        if rule.busy is not OnBusy.QUEUE:
            out.append(f"max_queued= applies only to on_busy='queue', not {rule.on_busy!r}")
        elif (
            not isinstance(rule.max_queued, int)
            or isinstance(rule.max_queued, bool)
            or not 1 <= rule.max_queued <= MAX_MAX_QUEUED
        ):
            out.append(
                f"max_queued must be a whole number from 1 to {MAX_MAX_QUEUED}, "
                f"got {rule.max_queued!r}"
            )
    return out


def trigger_problems(trigger: Trigger) -> list[str]:
    """What is wrong with a condition or timer, apart from cron syntax (the compiler's job)."""
    if isinstance(trigger, Periodic):
        return _periodic_problems(trigger)
    if isinstance(trigger, EventMatch):
        return _match_problems(trigger)
    if isinstance(trigger, Aggregate):
        return _aggregate_problems(trigger)
    if isinstance(trigger, AllOf | AnyOf):
        label = "all_of" if isinstance(trigger, AllOf) else "any_of"
        if not trigger.conditions:
            return [f"{label}() needs at least one condition"]
        out: list[str] = []
        for sub in trigger.conditions:
            if not isinstance(sub, EventMatch | Aggregate | AllOf | AnyOf):
                out.append(
                    f"{label}() takes EventMatch, Aggregate, all_of or any_of conditions, "
                    f"got {type(sub).__name__}"
                )
            else:
                out += trigger_problems(sub)
        return out
    return [
        "a condition must be an EventMatch, Aggregate, all_of(...) or any_of(...), "
        f"got {type(trigger).__name__}"
    ]


def _match_problems(match: EventMatch) -> list[str]:
    out: list[str] = []
    for label in ("key", "event_type", "sender"):
        value = getattr(match, label)
        if not isinstance(value, str) or not value:
            out.append(
                f"EventMatch {label} must be a non-empty string ('*' for any), got {value!r}"
            )
    if match.value is not None and not isinstance(match.value, str):
        out.append(f"EventMatch value must be a string or None (any value), got {match.value!r}")
    if not isinstance(match.life, Life):
        out.append(f"EventMatch life must be 'once' or 'repeated', got {match.life!r}")
    return out


def _aggregate_problems(aggregate: Aggregate) -> list[str]:
    out: list[str] = []
    if isinstance(aggregate.match, EventMatch):
        out += [f"Aggregate match: {msg}" for msg in _match_problems(aggregate.match)]
    else:
        out.append(f"Aggregate match must be an EventMatch, got {aggregate.match!r}")
    if not isinstance(aggregate.op, AggregateOp):
        out.append(f"unknown Aggregate op {aggregate.op!r}; use one of {', '.join(AggregateOp)}")
    if not isinstance(aggregate.compare, Comparison):
        out.append(
            f"unknown Aggregate compare {aggregate.compare!r}; use one of {', '.join(Comparison)}"
        )
    over = aggregate.over
    if isinstance(over, Last):
        if (
            not isinstance(over.count, int)
            or isinstance(over.count, bool)
            or not 1 <= over.count <= MAX_AGGREGATE_SAMPLES
        ):
            out.append(
                f"Aggregate over last(N) needs N from 1 to {MAX_AGGREGATE_SAMPLES}, "
                f"got {over.count!r}"
            )
    elif isinstance(over, Window):
        if not _positive_number(over.seconds):
            out.append(
                f"Aggregate window must be a positive duration, got {over.seconds!r} seconds"
            )
        elif over.seconds > MAX_INTERVAL_SECONDS:
            out.append(
                f"Aggregate window of {over.seconds!r} seconds is over the limit of "
                f"{MAX_INTERVAL_SECONDS} seconds"
            )
    else:
        out.append(f"Aggregate over must be tide.last(N) or tide.window(duration), got {over!r}")
    threshold = aggregate.threshold
    if (
        not isinstance(threshold, int | float)
        or isinstance(threshold, bool)
        or not math.isfinite(threshold)
    ):
        out.append(f"Aggregate threshold must be a finite number, got {threshold!r}")
    return out


def _periodic_problems(periodic: Periodic) -> list[str]:
    out: list[str] = []
    if (periodic.cron is None) == (periodic.interval_seconds is None):
        out.append("give exactly one of cron= or interval=")
    if periodic.interval_seconds is not None and not _positive_number(periodic.interval_seconds):
        out.append(
            f"interval must be a positive duration, got {periodic.interval_seconds!r} seconds"
        )
    elif periodic.interval_seconds is not None and periodic.interval_seconds > MAX_INTERVAL_SECONDS:
        out.append(
            f"interval of {periodic.interval_seconds!r} seconds never fires: the limit is "
            f"{MAX_INTERVAL_SECONDS} seconds (1000 years)"
        )
    if periodic.cron is not None and not isinstance(periodic.cron, str):
        out.append(f"cron must be a string like '0 * * * *', got {periodic.cron!r}")
    if (msg := timezone_problem(periodic.timezone)) is not None:
        out.append(msg)
    return out


def timezone_problem(timezone: object) -> str | None:
    """Say what is wrong with an IANA time-zone name, or ``None`` when it is known."""
    import zoneinfo

    if not isinstance(timezone, str) or not timezone:
        return f"timezone must be an IANA name like 'UTC' or 'Europe/Paris', got {timezone!r}"
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown timezone {timezone!r}: use an IANA name like 'UTC' or 'Europe/Paris'"
    return None


def _positive_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _json_problem(value: Mapping[str, Any], label: str) -> str | None:
    if not isinstance(value, Mapping):
        return f"{label} must be a mapping, got {type(value).__name__}"
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return f"{label} must be JSON-serialisable: {exc}"
    if (depth := json_depth(text)) > MAX_JSON_DEPTH:
        return f"{label} nests {depth} levels deep; the limit is {MAX_JSON_DEPTH}"
    if json.loads(text) != value:
        # Tuples and non-string keys survive dumps but come back changed: the plan stored on
        # the server would differ from the one the user compiled.
        return f"{label} must be plain JSON data (lists rather than tuples, string keys only)"
    return None
