"""The Graph Splitter: which nodes run together as one job.

Nodes declared inside ``with tide.job(...)`` form that job. A node outside any block joins the
job its data edges connect it to; nodes connected only to each other (a connected component
with no declared job) become a new batch ``python`` job named after its first node. Data edges
must never cross between two declared jobs -- each job is one program on one engine, so data is
handed over through a dataset instead, and the problem says how.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tideflow.domain.graph import AIGraph, JobSpec, Node
from tideflow.errors import GraphProblem


@dataclass
class SplitJob:
    """A job and its nodes, in declaration order."""

    spec: JobSpec
    nodes: list[Node] = field(default_factory=list)


class _Components:
    """Union-find over node names: the connected components of the data edges."""

    def __init__(self, names: list[str]) -> None:
        self.parent = {name: name for name in names}

    def find(self, name: str) -> str:
        root = name
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[name] != root:  # path compression keeps 1,000-node graphs linear
            self.parent[name], name = root, self.parent[name]
        return root

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def split(graph: AIGraph) -> tuple[list[SplitJob], list[GraphProblem]]:
    """Group the graph's nodes into jobs.

    Returns:
        The jobs (declared ones in declaration order, then formed ones in node order) and the
        problems found: data edges between declared jobs, empty job blocks, name clashes.
    """
    wf = graph.workflow
    problems: list[GraphProblem] = []
    nodes = {node.name: node for node in graph.nodes}  # duplicates are reported by the checks
    components = _Components(list(nodes))
    for edge in graph.edges:
        if edge.source.node in nodes:
            components.union(edge.source.node, edge.target)

    for edge in graph.edges:
        source = nodes.get(edge.source.node)
        target = nodes[edge.target]
        if source is None or source.job is None or target.job is None or source.job == target.job:
            continue
        problems.append(
            GraphProblem(
                f"data edge from node '{source.name}' (job '{source.job}') to node "
                f"'{target.name}' (job '{target.job}') crosses jobs: nodes joined by data edges "
                f"run in one job. To hand data over, write it with tide.write_dataset in "
                f"'{source.job}', read it with tide.read_dataset in '{target.job}', and add a "
                f"control edge such as wf.after('{target.job}', '{source.job}')",
                workflow=wf,
                job=target.job,
                node=target.name,
                location=target.location,
            )
        )

    # The declared jobs each component touches decide where its free nodes go.
    declared_in: dict[str, set[str]] = {}
    for node in nodes.values():
        if node.job is not None:
            declared_in.setdefault(components.find(node.name), set()).add(node.job)

    jobs: dict[str, SplitJob] = {}
    for spec in graph.jobs:
        jobs.setdefault(spec.name, SplitJob(spec))
    formed: dict[str, SplitJob] = {}
    for node in graph.nodes:
        if nodes.get(node.name) is not node:
            continue  # a duplicate name, already reported
        owner = node.job
        if owner is None:
            touched = declared_in.get(components.find(node.name), set())
            if len(touched) == 1:
                owner = next(iter(touched))
            elif len(touched) > 1:
                continue  # its component already has a crossing-edge problem
        if owner is not None:
            if owner in jobs:
                jobs[owner].nodes.append(node)
            continue
        root = components.find(node.name)
        if root not in formed:
            formed[root] = SplitJob(JobSpec(name=node.name))
        formed[root].nodes.append(node)

    for job in jobs.values():
        if not job.nodes:
            problems.append(
                GraphProblem(
                    "job block declares no nodes; put at least one op inside it",
                    workflow=wf,
                    job=job.spec.name,
                    location=job.spec.location,
                )
            )
    result = list(jobs.values())
    for job in formed.values():
        if job.spec.name in jobs:
            first = job.nodes[0]
            problems.append(
                GraphProblem(
                    f"nodes outside any job block form a job named after their first node "
                    f"'{first.name}', which clashes with the declared job of that name; rename "
                    "the node or put it inside a job block",
                    workflow=wf,
                    node=first.name,
                    location=first.location,
                )
            )
        else:
            result.append(job)
    return result, problems
