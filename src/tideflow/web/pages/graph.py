"""The drawing of a workflow's AI Graph: jobs as groups, nodes inside, data and control edges.

Jobs are laid out left to right along their control edges (``after`` / ``with_start``); a rule
with no upstream job (periodic, on event, on a model version, on a dataset) becomes a small
trigger box that points at its job, so every control edge has two ends and a label. Inside each
job its nodes are laid out along their data edges. Everything is in absolute SVG coordinates;
the template only draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tideflow.compiler.plan import PlanJob, WorkflowPlan
from tideflow.domain.rules import Rule, RuleKind, describe_condition, describe_rule
from tideflow.domain.status import JobAction
from tideflow.web.pages.layout import Box, Layout, layered

CHAR = 7.3
"""Estimated width of one character of the 12 px labels (bold names are wider still)."""
SMALL_CHAR = 6.5
"""... and of the 11 px ones."""
NODE_HEIGHT = 42.0
JOB_PAD = 14.0
JOB_HEADER = 30.0
MARGIN = 24.0


@dataclass(frozen=True)
class NodeBox:
    """An AI node placed inside its job."""

    name: str
    kind: str
    x: float
    y: float
    width: float
    height: float
    detail: str = ""


@dataclass(frozen=True)
class EdgePath:
    """One drawn edge: its SVG path, its ends, a label and where the label goes."""

    kind: str
    """``data`` or ``control``."""
    source: str
    target: str
    d: str
    label: str = ""
    label_x: float = 0.0
    label_y: float = 0.0
    label_width: float = 0.0
    action: str = ""


@dataclass(frozen=True)
class JobBox:
    """A job group with its nodes and the data edges between them."""

    name: str
    engine: str
    platform: str
    streaming: bool
    x: float
    y: float
    width: float
    height: float
    nodes: list[NodeBox]
    edges: list[EdgePath]


@dataclass(frozen=True)
class TriggerBox:
    """The source of a control edge that is not another job (a timer, an event, a model...)."""

    id: str
    label: str
    kind: str
    x: float
    y: float
    width: float
    height: float


@dataclass
class GraphScene:
    """Everything the graph template draws."""

    width: float
    height: float
    jobs: list[JobBox] = field(default_factory=list)
    triggers: list[TriggerBox] = field(default_factory=list)
    edges: list[EdgePath] = field(default_factory=list)
    workflow_rules: list[str] = field(default_factory=list)


def _text_width(*texts: str, char: float = CHAR) -> float:
    return max((len(t) for t in texts), default=0) * char


def _curve(x1: float, y1: float, x2: float, y2: float, *, back: bool) -> str:
    """A cubic Bezier from a right side to a left side; back edges swing below."""
    if back:
        drop = 60.0 + abs(x1 - x2) * 0.15
        return (
            f"M{x1:.1f},{y1:.1f} C{x1 + 70:.1f},{y1 + drop:.1f} "
            f"{x2 - 70:.1f},{y2 + drop:.1f} {x2:.1f},{y2:.1f}"
        )
    bend = max((x2 - x1) / 2, 30.0)
    return (
        f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
    )


def _node_detail(job: PlanJob, name: str) -> str:
    node = job.node(name)
    if node.model:
        return f"model {node.model}"
    if node.dataset:
        return f"dataset {node.dataset}"
    return ""


def _job_inside(job: PlanJob) -> tuple[Layout, float, float]:
    """Lay out a job's nodes; return the layout and the job box's size."""
    boxes = []
    for node in job.nodes:
        detail = _node_detail(job, node.name)
        kind = f"{node.kind} · {detail}" if detail else str(node.kind)
        width = (
            max(96.0, _text_width(node.name, char=CHAR + 0.7), _text_width(kind, char=SMALL_CHAR))
            + 20
        )
        boxes.append(Box(node.name, width, NODE_HEIGHT))
    inner = layered(
        boxes,
        [(edge.source.node, edge.target) for edge in job.edges],
        column_gap=40.0,
        row_gap=14.0,
    )
    title = f"{job.name}  {job.engine}/{job.platform}{' · streaming' if job.streaming else ''}"
    width = max(inner.width, _text_width(title, char=CHAR + 0.3)) + 2 * JOB_PAD
    height = inner.height + JOB_HEADER + JOB_PAD
    return inner, width, height


def rule_label(rule: Rule) -> str:
    """:func:`describe_rule`, said as a trigger ("on event(type=DRIFT_DETECTED)")."""
    if rule.kind in (RuleKind.EVENT, RuleKind.START_ON, RuleKind.STOP_ON):
        return f"on {describe_condition(rule.condition)}"
    return describe_rule(rule)


def _action_suffix(rule: Rule) -> str:
    return "" if rule.action == JobAction.START else f" → {rule.action}"


def build_graph(plan: WorkflowPlan) -> GraphScene:
    """Lay out ``plan`` as jobs (with their nodes), triggers and labelled edges."""
    insides = {job.name: _job_inside(job) for job in plan.jobs}
    outer: list[Box] = [Box(name, w, h) for name, (_, w, h) in insides.items()]
    links: list[tuple[str, str, Rule]] = []
    triggers: dict[str, tuple[str, str]] = {}
    workflow_rules = []
    for index, rule in enumerate(plan.rules):
        if rule.job is None:
            workflow_rules.append(f"{rule.kind}: {rule_label(rule)}{_action_suffix(rule)}")
            continue
        if rule.upstreams:
            links.extend((upstream, rule.job, rule) for upstream in rule.upstreams)
            continue
        trigger = f"rule-{index}"
        label = rule_label(rule)
        triggers[trigger] = (label, str(rule.kind))
        outer.append(Box(trigger, _text_width(label) + 22, 30.0))
        links.append((trigger, rule.job, rule))
    layout = layered(outer, [(s, t) for s, t, _ in links], column_gap=150.0, row_gap=34.0)
    scene = GraphScene(
        width=layout.width + 2 * MARGIN,
        # Room for back edges (closing a cycle), which swing below the drawing.
        height=layout.height + 2 * MARGIN + (80 if layout.back_edges else 0),
        workflow_rules=workflow_rules,
    )
    for job in plan.jobs:
        inner, _, _ = insides[job.name]
        box = layout.boxes[job.name]
        ox, oy = box.x + MARGIN + JOB_PAD, box.y + MARGIN + JOB_HEADER
        nodes = []
        for node in job.nodes:
            placed = inner.boxes[node.name]
            nodes.append(
                NodeBox(
                    node.name,
                    str(node.kind),
                    ox + placed.x,
                    oy + placed.y,
                    placed.width,
                    placed.height,
                    _node_detail(job, node.name),
                )
            )
        data = []
        for edge in job.edges:
            a, b = inner.boxes[edge.source.node], inner.boxes[edge.target]
            back = (edge.source.node, edge.target) in inner.back_edges or b.x <= a.x
            data.append(
                EdgePath(
                    "data",
                    edge.source.node,
                    edge.target,
                    _curve(ox + a.right, oy + a.middle, ox + b.x, oy + b.middle, back=back),
                )
            )
        scene.jobs.append(
            JobBox(
                job.name,
                job.engine,
                job.platform,
                job.streaming,
                box.x + MARGIN,
                box.y + MARGIN,
                box.width,
                box.height,
                nodes,
                data,
            )
        )
    for trigger, (label, kind) in triggers.items():
        box = layout.boxes[trigger]
        scene.triggers.append(
            TriggerBox(trigger, label, kind, box.x + MARGIN, box.y + MARGIN, box.width, box.height)
        )
    for source, target, rule in links:
        a, b = layout.boxes[source], layout.boxes[target]
        back = (source, target) in layout.back_edges or b.x <= a.x
        x1, y1 = a.right + MARGIN, a.middle + MARGIN
        x2, y2 = b.x + MARGIN, b.middle + MARGIN
        is_trigger = source in triggers
        label = rule.action.value if is_trigger else describe_rule(rule) + _action_suffix(rule)
        lx, ly = ((x1 + x2) / 2, max(y1, y2) + 50) if back else ((x1 + x2) / 2, (y1 + y2) / 2 - 6)
        scene.edges.append(
            EdgePath(
                "control",
                source,
                target,
                _curve(x1, y1, x2, y2, back=back),
                label,
                lx,
                ly,
                _text_width(label, char=SMALL_CHAR) + 10,
                rule.action.value,
            )
        )
    return scene
