"""Lineage: what produced and what consumed a model version or a dataset, as a graph.

The walk is the JSON API's (:func:`tideflow.web.api.datasets.lineage_graph`: job executions
within a few hops of the entity, both ways), so page and API show the same graph; this module
only lays it out (:mod:`~tideflow.web.pages.layout`, left to right along the data flow). Every
box links onwards: a dataset to its own lineage, a model version to its model page, a job
execution to its log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from tideflow.domain.lineage import LineageRef
from tideflow.errors import InvalidArgumentError
from tideflow.web.api.datasets import lineage_graph
from tideflow.web.auth import Access, current_access
from tideflow.web.deps import WebServices, web_services
from tideflow.web.pages.graph import CHAR, SMALL_CHAR
from tideflow.web.pages.layout import Box, layered
from tideflow.web.pages.render import render

router = APIRouter()
Services = Annotated[WebServices, Depends(web_services)]
Allowed = Annotated[Access, Depends(current_access)]
MARGIN = 20.0
HOPS = 3
LINEAGE_EVENTS = "DATASET_UPDATED,MODEL_*"


@dataclass(frozen=True)
class LineageBox:
    """One thing in the lineage drawing."""

    id: str
    kind: str
    label: str
    detail: str
    href: str
    focus: bool
    x: float
    y: float
    width: float
    height: float


@dataclass
class LineageScene:
    """What the lineage template draws."""

    width: float
    height: float
    boxes: list[LineageBox] = field(default_factory=list)
    edges: list[tuple[str, str, str, str]] = field(default_factory=list)
    """``(source id, target id, SVG path, label)``."""
    truncated: bool = False


def _describe(project: str, node: dict[str, Any]) -> tuple[str, str, str]:
    """Label, detail line and link of one node of the API's graph."""
    kind, name = node["kind"], node["name"]
    if kind == "job_execution":
        return (
            name,
            f"{node['workflow']} #{node['execution_id']}",
            f"/ui/{project}/job-executions/{node['job_execution_id']}/log",
        )
    if kind == "model_version":
        version = node["version"]
        return (
            f"{name} v{version}",
            "model version",
            f"/ui/{project}/models/{name}?version={version}",
        )
    if kind == "dataset":
        return name, "dataset", f"/ui/{project}/lineage?dataset={name}"
    return name, kind, ""


def _edge_label(edge: dict[str, Any]) -> str:
    """``v2 [0..99]``: the dataset version and stream offsets an edge read or wrote."""
    parts = []
    if edge.get("version") is not None and not str(edge["source"]).startswith("model_version"):
        parts.append(f"v{edge['version']}")
    if edge.get("start_offset") is not None or edge.get("end_offset") is not None:
        parts.append(f"[{edge.get('start_offset')}..{edge.get('end_offset')}]")
    return " ".join(parts)


def build_lineage(project: str, graph: dict[str, Any]) -> LineageScene:
    """Lay out the API's lineage ``graph`` (``root``, ``nodes``, ``edges``) left to right."""
    info = {node["id"]: (node["kind"], *_describe(project, node)) for node in graph["nodes"]}
    links = [(edge["source"], edge["target"]) for edge in graph["edges"]]
    boxes = [
        Box(i, max(len(label) * (CHAR + 0.7), len(detail) * SMALL_CHAR) + 24, 42.0)
        for i, (_, label, detail, _) in info.items()
    ]
    layout = layered(boxes, links, column_gap=90.0, row_gap=18.0)
    scene = LineageScene(
        layout.width + 2 * MARGIN, layout.height + 2 * MARGIN, truncated=graph["truncated"]
    )
    for i, (kind, label, detail, href) in info.items():
        b = layout.boxes[i]
        scene.boxes.append(
            LineageBox(
                i, kind, label, detail, href, i == graph["root"],
                b.x + MARGIN, b.y + MARGIN, b.width, b.height,
            )
        )  # fmt: skip
    for edge in graph["edges"]:
        a, b = layout.boxes[edge["source"]], layout.boxes[edge["target"]]
        x1, y1, x2, y2 = a.right + MARGIN, a.middle + MARGIN, b.x + MARGIN, b.middle + MARGIN
        bend = max((x2 - x1) / 2, 20.0)
        path = f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        scene.edges.append((edge["source"], edge["target"], path, _edge_label(edge)))
    return scene


@router.get("/ui/{project}/lineage")
def lineage_page(
    project: str,
    request: Request,
    _: Allowed,
    services: Services,
    model: Annotated[str | None, Query(max_length=256)] = None,
    version: Annotated[int | None, Query(ge=1, lt=2**31)] = None,
    dataset: Annotated[str | None, Query(max_length=256)] = None,
) -> HTMLResponse:
    """The lineage of a model version (``?model=&version=``) or a dataset (``?dataset=``).

    Without either, a list of datasets and models to pick from.
    """
    live = {"types": LINEAGE_EVENTS, "after": services.events.latest_offset()}
    common: dict[str, Any] = {"project": project, "section": "lineage", "live": live}
    if not model and not dataset and version is None:
        return render(
            request,
            "lineage.html",
            "_lineage.html",
            title="Lineage",
            subject="",
            scene=None,
            datasets=list(services.datasets.list_datasets(project, limit=1000)),
            models=list(services.models.list_models(project, limit=1000)),
            **common,
        )
    note = ""
    if dataset and not model:
        services.datasets.get_dataset(project, dataset)  # an unknown dataset is a 404
        start = LineageRef.dataset(dataset)
        subject = f"dataset {dataset}"
    elif model and version is not None and not dataset:
        services.models.get_version(project, model, version=version)
        start = LineageRef.model_version(model, version)
        subject = f"model {model} v{version}"
        note = (
            f"{model} v{version} is drawn with the inputs recorded with it alone (for a "
            "stream, the offsets it was trained on), not with everything its job read."
        )
    else:
        raise InvalidArgumentError(
            "lineage needs ?model=NAME&version=N (a model version) or ?dataset=NAME",
            field="version" if model else "dataset",
        )
    return render(
        request,
        "lineage.html",
        "_lineage.html",
        title=f"Lineage of {subject}",
        subject=subject,
        scene=build_lineage(project, lineage_graph(services, project, start, hops=HOPS)),
        note=note,
        datasets=[],
        models=[],
        **common,
    )
