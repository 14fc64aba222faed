"""Lineage: what produced a model version, or what consumed a dataset, as a small graph.

The lineage service answers two questions: which job executions produced a model version
(``upstream``) and which read a dataset (``downstream``). The page shows one hop each way
around those job executions: a model version's producers with everything they read and wrote,
or a dataset's consumers with everything they read and wrote. Every box links onwards (a dataset
to its own lineage, a model version to its model page, a job execution to its log), so a user
walks further hop by hop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from tideflow.domain.lineage import LineageKind, LineageRecord, LineageRef
from tideflow.errors import InvalidArgumentError
from tideflow.web.auth import Access, current_access
from tideflow.web.deps import WebServices, web_services
from tideflow.web.pages.graph import CHAR
from tideflow.web.pages.layout import Box, layered
from tideflow.web.pages.render import render

router = APIRouter()
Services = Annotated[WebServices, Depends(web_services)]
Allowed = Annotated[Access, Depends(current_access)]
MARGIN = 20.0


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
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    """``(source id, target id, SVG path)``."""


def _ref_id(ref: LineageRef) -> str:
    return f"{ref.kind}:{ref.name}@{ref.version}"


def _ref_label(project: str, ref: LineageRef) -> tuple[str, str, str]:
    if ref.kind == LineageKind.MODEL_VERSION:
        return (
            f"{ref.name} v{ref.version}",
            "model version",
            f"/ui/{project}/models/{ref.name}?version={ref.version}",
        )
    if ref.kind == LineageKind.DATASET:
        detail = f"dataset v{ref.version}" if ref.version is not None else "dataset"
        if ref.start_offset is not None or ref.end_offset is not None:
            detail += f" [{ref.start_offset}..{ref.end_offset}]"
        return ref.name, detail, f"/ui/{project}/lineage?dataset={ref.name}"
    return ref.name, str(ref.kind), ""


def build_lineage(project: str, records: list[LineageRecord], focus: str) -> LineageScene:
    """Lay out ``records`` (job executions with inputs and outputs) left to right."""
    info: dict[str, tuple[str, str, str, str]] = {}
    links: list[tuple[str, str]] = []
    for record in records:
        job = f"job:{record.job_execution_id}"
        info[job] = (
            "job",
            f"{record.job}",
            f"{record.workflow} #{record.execution_id}",
            f"/ui/{project}/job-executions/{record.job_execution_id}/log",
        )
        for ref in record.inputs:
            info.setdefault(_ref_id(ref), (str(ref.kind), *_ref_label(project, ref)))
            links.append((_ref_id(ref), job))
        for ref in record.outputs:
            info.setdefault(_ref_id(ref), (str(ref.kind), *_ref_label(project, ref)))
            links.append((job, _ref_id(ref)))
    boxes = [
        Box(i, max(len(label), len(detail)) * CHAR + 24, 42.0)
        for i, (_, label, detail, _) in info.items()
    ]
    layout = layered(boxes, links, column_gap=70.0, row_gap=18.0)
    scene = LineageScene(layout.width + 2 * MARGIN, layout.height + 2 * MARGIN)
    for i, (kind, label, detail, href) in info.items():
        b = layout.boxes[i]
        scene.boxes.append(
            LineageBox(
                i, kind, label, detail, href, i == focus,
                b.x + MARGIN, b.y + MARGIN, b.width, b.height,
            )
        )  # fmt: skip
    for source, target in dict.fromkeys(links):
        a, b = layout.boxes[source], layout.boxes[target]
        x1, y1, x2, y2 = a.right + MARGIN, a.middle + MARGIN, b.x + MARGIN, b.middle + MARGIN
        bend = max((x2 - x1) / 2, 20.0)
        path = f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        scene.edges.append((source, target, path))
    return scene


@router.get("/ui/{project}/lineage")
def lineage_page(
    project: str,
    request: Request,
    _: Allowed,
    services: Services,
    model: Annotated[str | None, Query(max_length=256)] = None,
    version: Annotated[int | None, Query(ge=1)] = None,
    dataset: Annotated[str | None, Query(max_length=256)] = None,
) -> HTMLResponse:
    """The lineage of a model version (``?model=&version=``) or a dataset (``?dataset=``)."""
    if dataset and not model:
        records = services.lineage.downstream(project, dataset=dataset, version=version)
        focus = next(
            (
                _ref_id(ref)
                for r in records
                for ref in r.inputs
                if ref.kind == LineageKind.DATASET and ref.name == dataset
            ),
            f"dataset:{dataset}@{version}",
        )
        subject = f"dataset {dataset}" + (f" v{version}" if version else "")
    elif model and version is not None and not dataset:
        records = services.lineage.upstream(project, model=model, version=version)
        focus = _ref_id(LineageRef.model_version(model, version))
        subject = f"model {model} v{version}"
    elif not model and not dataset and version is None:
        return render(
            request,
            "lineage.html",
            "_lineage.html",
            project=project,
            title="Lineage",
            section="lineage",
            live={"types": "DATASET_UPDATED,MODEL_*", "after": services.events.latest_offset()},
            subject="",
            scene=None,
            records=[],
            datasets=list(services.datasets.list_datasets(project, limit=1000)),
            models=list(services.models.list_models(project, limit=1000)),
        )
    else:
        raise InvalidArgumentError(
            "lineage needs ?model=NAME&version=N (a model version) or ?dataset=NAME",
            field="model" if model else "dataset",
        )
    return render(
        request,
        "lineage.html",
        "_lineage.html",
        project=project,
        title=f"Lineage of {subject}",
        section="lineage",
        live={"types": "DATASET_UPDATED,MODEL_*", "after": services.events.latest_offset()},
        subject=subject,
        scene=build_lineage(project, records, focus),
        records=records,
        datasets=[],
        models=[],
    )
