"""What a workflow's AI Graph page draws: jobs with their nodes, and every edge between jobs.

The server decides *what* is drawn -- jobs (engine, platform, streaming) with their nodes and
data edges, one control edge per rule and upstream (a rule with no upstream job -- periodic, on
an event, a model version, a dataset -- gets a small trigger box as its source), and a
**dataset edge** from each job that writes a dataset or stream to each job that reads it, a
**model edge** from the job that trains a model to each job that uses it, and a source box for
each dataset read from outside the workflow, so no job that takes part in the data's story
floats loose. The browser decides *where*: ``tideflow.js``
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


def _data_links(plan: WorkflowPlan) -> tuple[list[Json], list[Json]]:
    """How data and models reach each job: the edges, and boxes for outside datasets.

    - a **dataset edge** from each job that writes a dataset or stream to each job that reads
      it (``stream`` when the writer is a streaming job);
    - a **model edge** from each job that trains a model to each other job that uses it
      (validates, pushes, predicts, evaluates): what a predictor or a monitor depends on;
    - a dataset read but written by no job of the workflow gets a **source** box of its own,
      with an edge to each job reading it, so jobs reading the same outside stream are joined.
    """
    writers: dict[str, list[PlanJob]] = {}
    readers: dict[str, list[PlanJob]] = {}
    trainers: dict[str, list[PlanJob]] = {}
    users: dict[str, list[PlanJob]] = {}
    for job in plan.jobs:
        for node in job.nodes:
            if node.dataset is not None and node.kind == NodeKind.WRITE_DATASET:
                writers.setdefault(node.dataset, []).append(job)
            elif node.dataset is not None and node.kind == NodeKind.READ_DATASET:
                readers.setdefault(node.dataset, []).append(job)
            if node.model is not None:
                side = trainers if node.kind == NodeKind.TRAIN else users
                side.setdefault(node.model, []).append(job)
    edges: list[Json] = []
    seen: set[tuple[str, str, str]] = set()

    def link(source: str, target: str, kind: str, name: str, label: str) -> None:
        key = (source, target, f"{kind}:{name}")
        if source != target and key not in seen:
            seen.add(key)
            edges.append(
                {"source": source, "target": target, "kind": kind, "name": name, "label": label}
            )

    for dataset, wrote in writers.items():
        for writer in wrote:
            word = "stream" if writer.streaming else "dataset"
            for reader in readers.get(dataset, []):
                link(writer.name, reader.name, "dataset", dataset, f"{word} {dataset}")
    for model, trained in trainers.items():
        for trainer in trained:
            for user in users.get(model, []):
                link(trainer.name, user.name, "model", model, f"model {model}")
    sources: list[Json] = []
    for dataset, read in readers.items():
        if dataset in writers:
            continue
        source = f"dataset-{dataset}"
        sources.append({"id": source, "label": f"dataset {dataset}"})
        for reader in read:
            link(source, reader.name, "dataset", dataset, "")
    return edges, sources


def build_graph(plan: WorkflowPlan) -> Json:
    """The scene of ``plan``: ``jobs``, ``triggers``, ``sources``, ``control`` and data edges.

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
    links, sources = _data_links(plan)
    return {
        "workflow": plan.workflow,
        "jobs": jobs,
        "triggers": triggers,
        "sources": sources,
        "control": control,
        "datasets": links,
        "workflow_rules": workflow_rules,
    }
