"""What a workflow's AI Graph page draws: jobs with their nodes, and every edge between jobs.

The server decides *what* is drawn -- jobs (engine, platform, streaming) with their nodes and
data edges, one control edge per rule and upstream (a rule with no upstream job -- periodic, on
an event, a model version, a dataset -- gets a small trigger box as its source), and a
**dataset edge** from each job that writes a dataset or stream to each job that reads it, so
jobs that only hand data over are joined too. The browser decides *where*: ``tideflow.js``
lays the scene out with dagre (``static/vendor/dagre``, from npm, MIT), measuring the real
text, with every edge label in a space of its own beside its line, and offers zoom and fit.
We moved the layout there because a layout library does it better than hand-written code (a
9-job workflow overflowed its box, labels sat on lines), and the text is measured where it is
drawn. The scene is plain JSON (:func:`build_graph`), so it is tested without a browser too.
"""

from __future__ import annotations

from typing import Any

from tideflow.compiler.plan import PlanJob, WorkflowPlan
from tideflow.domain.graph import NodeKind
from tideflow.domain.rules import Rule, RuleKind, describe_condition, describe_rule
from tideflow.domain.status import JobAction

CHAR = 7.3
"""Estimated width of one character of the 12 px labels (the lineage graph's server layout)."""
SMALL_CHAR = 6.5
"""... and of the 11 px ones."""

Json = dict[str, Any]


def _node_detail(job: PlanJob, name: str) -> str:
    node = job.node(name)
    if node.model:
        return f"model {node.model}"
    if node.dataset:
        return f"dataset {node.dataset}"
    return ""


def rule_label(rule: Rule) -> str:
    """:func:`describe_rule`, said as a trigger ("on event(type=DRIFT_DETECTED)")."""
    if rule.kind in (RuleKind.EVENT, RuleKind.START_ON, RuleKind.STOP_ON):
        return f"on {describe_condition(rule.condition)}"
    return describe_rule(rule)


def _action_suffix(rule: Rule) -> str:
    return "" if rule.action == JobAction.START else f" → {rule.action}"


def _dataset_edges(plan: WorkflowPlan) -> list[Json]:
    """One edge per (writer job, reader job, dataset): how jobs hand data to each other."""
    writers: dict[str, list[PlanJob]] = {}
    readers: dict[str, list[PlanJob]] = {}
    for job in plan.jobs:
        for node in job.nodes:
            if node.dataset is None:
                continue
            if node.kind == NodeKind.WRITE_DATASET:
                writers.setdefault(node.dataset, []).append(job)
            elif node.kind == NodeKind.READ_DATASET:
                readers.setdefault(node.dataset, []).append(job)
    edges: list[Json] = []
    seen: set[tuple[str, str, str]] = set()
    for dataset, wrote in writers.items():
        for writer in wrote:
            for reader in readers.get(dataset, []):
                key = (writer.name, reader.name, dataset)
                if writer.name == reader.name or key in seen:
                    continue
                seen.add(key)
                edges.append(
                    {
                        "source": writer.name,
                        "target": reader.name,
                        "dataset": dataset,
                        "stream": writer.streaming,
                        "label": f"{'stream' if writer.streaming else 'dataset'} {dataset}",
                    }
                )
    return edges


def build_graph(plan: WorkflowPlan) -> Json:
    """The scene of ``plan``: ``jobs``, ``triggers``, ``control`` and ``datasets`` edges.

    Control edges go from an upstream job (``after``, ``with_start``) or a trigger to the
    rule's job, labelled with the rule (a trigger's edge with its action); ``workflow_rules``
    are the rules of the workflow itself (``start_on`` / ``stop_on``), listed, not drawn.
    """
    jobs = [
        {
            "name": job.name,
            "engine": job.engine,
            "platform": job.platform,
            "streaming": job.streaming,
            "nodes": [
                {"name": n.name, "kind": str(n.kind), "detail": _node_detail(job, n.name)}
                for n in job.nodes
            ],
            "edges": [{"source": e.source.node, "target": e.target} for e in job.edges],
        }
        for job in plan.jobs
    ]
    triggers: list[Json] = []
    control: list[Json] = []
    workflow_rules: list[str] = []
    for index, rule in enumerate(plan.rules):
        if rule.job is None:
            workflow_rules.append(f"{rule.kind}: {rule_label(rule)}{_action_suffix(rule)}")
            continue
        if rule.upstreams:
            label = describe_rule(rule) + _action_suffix(rule)
            control.extend(
                {"source": up, "target": rule.job, "label": label, "action": str(rule.action)}
                for up in rule.upstreams
            )
            continue
        trigger = f"rule-{index}"
        triggers.append({"id": trigger, "label": rule_label(rule), "kind": str(rule.kind)})
        control.append(
            {
                "source": trigger,
                "target": rule.job,
                "label": str(rule.action),
                "action": str(rule.action),
            }
        )
    return {
        "workflow": plan.workflow,
        "jobs": jobs,
        "triggers": triggers,
        "control": control,
        "datasets": _dataset_edges(plan),
        "workflow_rules": workflow_rules,
    }
