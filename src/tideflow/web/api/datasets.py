"""Datasets and lineage: ``/datasets``, ``/datasets/{name}`` and ``/lineage``.

Lineage is a graph around one model version or dataset, walked a few hops each way: the job
executions that wrote it (and what they read), the ones that read it (and what they wrote),
and so on. Datasets are one node each (the versions read or written are on the edges, a job's
several ranges of one stream drawn as their whole span); model versions are one node per
version. A model version's writer is drawn with what was recorded with that version alone
(``LineageService.writers``): around version 12 of a streaming trainer, its job execution
shows the offsets version 12 was trained on, not those of every version the attempt logged.
"""

from __future__ import annotations

from collections import deque
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from tideflow.domain.limits import check_name
from tideflow.domain.lineage import LineageKind, LineageRecord, LineageRef
from tideflow.errors import InvalidArgumentError
from tideflow.web.api import encode
from tideflow.web.api.params import (
    Cursor,
    Limit,
    ProjectAccess,
    ProjectName,
    Services,
    errors,
    page,
    paged,
)
from tideflow.web.deps import WebServices

router = APIRouter(tags=["datasets"])
MAX_NODES = 500


@router.get(
    "/projects/{project}/datasets",
    summary="Datasets, in registration order",
    responses=paged(),
)
def list_datasets(
    project: ProjectName,
    access: ProjectAccess,
    services: Services,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The project's datasets."""
    found = services.datasets.list_datasets(project, limit=limit, cursor=cursor)
    return page((encode.dataset(d) for d in found.items), found.next_cursor)


@router.get(
    "/projects/{project}/datasets/{name}",
    summary="One dataset",
    responses=errors(404),
)
def get_dataset(
    project: ProjectName,
    name: Annotated[str, Path(description="The dataset.")],
    access: ProjectAccess,
    services: Services,
) -> dict[str, Any]:
    """A dataset (``version`` counts its updates)."""
    check_name(name, "name")
    return encode.dataset(services.datasets.get_dataset(project, name))


def _entity_id(ref: LineageRef) -> str:
    if ref.kind is LineageKind.MODEL_VERSION:
        return f"model_version:{ref.name}@{ref.version}"
    return f"{ref.kind.value}:{ref.name}"


class _Graph:
    """Nodes and edges collected by the walk."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.edges: dict[tuple[str, str], dict[str, Any]] = {}
        self.truncated = False

    def entity(self, ref: LineageRef) -> str:
        node_id = _entity_id(ref)
        if node_id not in self.nodes:
            self.nodes[node_id] = {
                "id": node_id,
                "kind": ref.kind.value,
                "name": ref.name,
                "version": ref.version if ref.kind is LineageKind.MODEL_VERSION else None,
            }
        return node_id

    def job(self, record: LineageRecord) -> str:
        node_id = f"job_execution:{record.job_execution_id}"
        if node_id not in self.nodes:
            self.nodes[node_id] = {
                "id": node_id,
                "kind": "job_execution",
                "name": record.job,
                "job_execution_id": record.job_execution_id,
                "execution_id": record.execution_id,
                "workflow": record.workflow,
                "time": encode.time(record.time),
            }
        return node_id

    def edge(self, source: str, target: str, ref: LineageRef, direction: str) -> None:
        known = self.edges.get((source, target))
        if known is not None:  # a job that read a stream in several ranges: the whole span
            for key, pick in (("start_offset", min), ("end_offset", max)):
                given = getattr(ref, key)
                if given is not None:
                    known[key] = given if known[key] is None else pick(known[key], given)
            return
        self.edges[(source, target)] = {
            "source": source,
            "target": target,
            "direction": direction,
            "version": ref.version,
            "start_offset": ref.start_offset,
            "end_offset": ref.end_offset,
        }


def lineage_graph(
    services: WebServices, project: str, start: LineageRef, *, hops: int
) -> dict[str, Any]:
    """The graph within ``hops`` job executions of ``start``, both ways."""
    graph = _Graph()
    root = graph.entity(start)
    queue: deque[tuple[LineageRef, int]] = deque([(start, 0)])
    seen_jobs: set[int] = set()
    seen_refs = {root}
    while queue:
        ref, depth = queue.popleft()
        if depth >= hops:
            continue
        records = services.lineage.writers(project, ref) + services.lineage.readers(project, ref)
        for record in records:
            if record.job_execution_id in seen_jobs:
                continue
            if len(graph.nodes) >= MAX_NODES:
                graph.truncated = True
                break
            seen_jobs.add(record.job_execution_id)
            job = graph.job(record)
            for direction, refs in (("input", record.inputs), ("output", record.outputs)):
                for r in refs:
                    node = graph.entity(r)
                    if direction == "input":
                        graph.edge(node, job, r, direction)
                    else:
                        graph.edge(job, node, r, direction)
                    if node not in seen_refs:
                        seen_refs.add(node)
                        queue.append(
                            (
                                r
                                if r.kind is LineageKind.MODEL_VERSION
                                else LineageRef(r.kind, r.name),
                                depth + 1,
                            )
                        )
    return {
        "root": root,
        "nodes": list(graph.nodes.values()),
        "edges": list(graph.edges.values()),
        "truncated": graph.truncated,
    }


@router.get(
    "/projects/{project}/lineage",
    summary="What produced and consumed a model version or a dataset",
    responses=errors(404),
)
def get_lineage(
    project: ProjectName,
    access: ProjectAccess,
    services: Services,
    model: Annotated[str | None, Query(description="A model (with `version`).")] = None,
    version: Annotated[int | None, Query(ge=1, lt=2**31, description="The model version.")] = None,
    dataset: Annotated[str | None, Query(description="A dataset (instead of a model).")] = None,
    hops: Annotated[
        int, Query(ge=1, le=10, description="How many job executions away to walk.")
    ] = 3,
) -> dict[str, Any]:
    """The lineage graph ``{"root", "nodes", "edges", "truncated"}`` around one entity.

    Nodes are datasets, model versions, artifacts and job executions; an edge goes from what was read to the job execution that
    read it, and from a job execution to what it wrote.
    """
    if (model is None) == (dataset is None):
        raise InvalidArgumentError(
            "give either model= (with version=) or dataset=", field="model" if model else "dataset"
        )
    if model is not None:
        check_name(model, "model")
        if version is None:
            raise InvalidArgumentError("model= needs version=", field="version")
        services.models.get_version(project, model, version=version)  # 404 if unknown
        start = LineageRef.model_version(model, version)
    else:
        assert dataset is not None
        check_name(dataset, "dataset")
        services.datasets.get_dataset(project, dataset)  # 404 if unknown
        start = LineageRef.dataset(dataset)
    return lineage_graph(services, project, start, hops=hops)
