"""The workflow graph in a real browser at 1, 10 and 50 jobs: nothing overlaps, it fits.

The web app runs on a temporary store (no gRPC server: the graph only reads plans), with three
workflows submitted as plans. For each, the laid-out SVG is measured in Chromium: no two boxes
(jobs, triggers) overlap, no edge label overlaps a box, another label or any edge between jobs,
every edge kind is drawn (control, dataset) and, after "Fit", every box is inside the visible
box. An execution's page colours each job by the state of its latest attempt, live.
Screenshots are kept in each test's tmp dir.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import tideflow as tide
from tests.web.api_support import AppServer
from tideflow.client.services import Services, local_services
from tideflow.metadata.access import AccessService
from tideflow.store import Store
from tideflow.web.app import create_app
from tideflow.web.deps import WebServices

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(300)]

PROJECT = "graphs"
WAIT_MS = 90_000


def noop(ctx: Any, inputs: Any) -> Any:
    return None


def one_job() -> Any:
    with tide.workflow("one") as wf, tide.job("only"):
        tide.user_node(processor=noop, name="alone")
    return wf


def ten_jobs() -> Any:
    """The shape of the ad_ctr example: streams handed over, model events, a monitor loop."""
    with tide.workflow("ten") as wf:
        with tide.job("ingest", streaming=True):
            tide.write_dataset(tide.read_dataset("raw", processor=noop), "clicks", processor=noop)
        with tide.job("train", streaming=True):
            clicks = tide.read_dataset("clicks", processor=noop)
            tide.train(
                tide.transform(clicks, processor=noop, name="featurize"),
                model="ctr",
                processor=noop,
            )
        with tide.job("validate"):
            tide.validate(tide.read_dataset("holdout", processor=noop), model="ctr", processor=noop)
        with tide.job("push"):
            tide.push_model(model="ctr", processor=noop)
        with tide.job("predict", streaming=True):
            requests = tide.read_dataset("requests", processor=noop)
            tide.write_dataset(
                tide.predict(requests, model="ctr", processor=noop), "predictions", processor=noop
            )
        with tide.job("monitor_data", streaming=True):
            tide.user_node(
                tide.read_dataset("predictions", processor=noop, name="preds_a"),
                processor=noop,
                name="drift",
            )
        with tide.job("monitor_model"):
            tide.user_node(
                tide.read_dataset("predictions", processor=noop, name="preds_b"),
                processor=noop,
                name="quality",
            )
        with tide.job("report"):
            tide.user_node(processor=noop, name="summarise")
        with tide.job("retrain"):
            tide.user_node(processor=noop, name="refit")
        with tide.job("archive"):
            tide.write_dataset(
                tide.read_dataset("clicks", processor=noop, name="old_clicks"),
                "cold",
                processor=noop,
            )
        wf.on_model_version("validate", model="ctr", event=tide.ModelVersionEvent.GENERATED)
        wf.on_model_version("push", model="ctr", event=tide.ModelVersionEvent.VALIDATED)
        wf.after("report", "validate", "push")
        wf.with_start("monitor_data", "predict")
        wf.with_start("monitor_model", "predict")
        wf.on_event("train", event_type="DRIFT_DETECTED", action=tide.JobAction.RESTART)
        wf.periodic("retrain", interval=3600)
        wf.after("archive", "retrain")
    return wf  # fmt: skip


def fifty_jobs() -> Any:
    """Five lanes of ten: chains, cross links, datasets between lanes, a few triggers."""
    with tide.workflow("fifty") as wf:
        for lane in range(5):
            for step in range(10):
                name = f"l{lane}s{step}"
                with tide.job(name, streaming=step == 0):
                    source = tide.read_dataset(
                        f"in_{lane}_{step}", processor=noop, name=f"r_{name}"
                    )
                    if step % 3 == 0:
                        tide.write_dataset(
                            source, f"out_{lane}_{step}", processor=noop, name=f"w_{name}"
                        )
                    else:
                        tide.transform(source, processor=noop, name=f"t_{name}")
        for lane in range(5):
            for step in range(1, 10):
                if step % 3 != 1:
                    wf.after(f"l{lane}s{step}", f"l{lane}s{step - 1}")
            wf.on_event(f"l{lane}s1", event_type=f"GO_{lane}")
        for lane in range(4):
            wf.after(f"l{lane + 1}s5", f"l{lane}s4")
    return wf  # fmt: skip


def ad_ctr() -> Any:
    """The example the issue found drawn wider than its box, with loose jobs."""
    import tideflow.examples.ad_ctr.workflow as example
    from tideflow.cli.loader import load_workflows

    (wf,) = load_workflows(Path(example.__file__))
    return wf


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Services]]:
    home = tmp_path_factory.mktemp("graphs")
    store = Store.open(f"sqlite:///{home / 'tideflow.db'}")
    services = local_services(store, owns_store=True, home=home)
    services.projects.create_project(PROJECT)
    for build in (one_job, ten_jobs, fifty_jobs, ad_ctr):
        wf = build()
        services.workflows.create_snapshot(PROJECT, wf.name, plan=tide.compile(wf).to_json())
    web = WebServices.of(services, AccessService(store), auth_required=False)
    server = AppServer(create_app(healthy=lambda: True, registry=CollectorRegistry(), services=web))
    try:
        yield server.url, services
    finally:
        server.stop()
        services.close()


@pytest.fixture
def page(browser: Any, site: tuple[str, Services]) -> Iterator[Any]:
    context = browser.new_context(base_url=site[0], viewport={"width": 1280, "height": 860})
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


MEASURE = """() => {
  const svg = document.getElementById('graph');
  const box = (e) => { const b = e.getBBox(); return [b.x, b.y, b.x + b.width, b.y + b.height]; };
  const boxes = [...svg.querySelectorAll('g.job > rect, g.trigger > rect, g.source > rect')].map(box);
  const labels = [...svg.querySelectorAll('.edge-label-bg')].map(box);
  const edges = [...svg.querySelectorAll('path.edge.control, path.edge.dataset')].map((p) => {
    const n = p.getTotalLength(), points = [];
    for (let at = 0; at <= n; at += 3) { const q = p.getPointAtLength(at); points.push([q.x, q.y]); }
    return points;
  });
  return {boxes, labels, edges};
}"""

VISIBLE = """() => {
  const frame = document.getElementById('graph').getBoundingClientRect();
  return [...document.querySelectorAll('#graph g.job > rect, #graph g.trigger > rect, #graph g.source > rect, #graph .edge-label-bg')]
    .map((e) => e.getBoundingClientRect())
    .filter((r) => r.left < frame.left - 1 || r.top < frame.top - 1 || r.right > frame.right + 1 || r.bottom > frame.bottom + 1)
    .length;
}"""


def _overlap(a: list[float], b: list[float], slack: float = 1.0) -> bool:
    return (
        a[0] + slack < b[2] and b[0] + slack < a[2] and a[1] + slack < b[3] and b[1] + slack < a[3]
    )


def _inside(point: list[float], r: list[float], slack: float = 1.0) -> bool:
    return r[0] + slack < point[0] < r[2] - slack and r[1] + slack < point[1] < r[3] - slack


def _check_layout(page: Any, workflow: str, jobs: int, tmp_path: Path) -> dict[str, Any]:
    page.goto(f"/ui/{PROJECT}/workflows/{workflow}")
    page.locator('#graph[data-ready="true"]').wait_for()
    assert page.locator("#graph g.job").count() == jobs
    page.screenshot(path=str(tmp_path / f"{workflow}-first.png"), full_page=True)
    found = page.evaluate(MEASURE)
    boxes, labels, edges = found["boxes"], found["labels"], found["edges"]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not _overlap(a, b), f"boxes overlap: {a} {b}"
    for i, label in enumerate(labels):
        for b in boxes:
            assert not _overlap(label, b), f"label {label} overlaps box {b}"
        for other in labels[i + 1 :]:
            assert not _overlap(label, other), f"labels overlap: {label} {other}"
        for line in edges:
            crossing = [p for p in line if _inside(p, label)]
            assert not crossing, f"an edge crosses label {label} at {crossing[0]}"
    page.locator("#graph-zoom-in").click()
    page.locator("#graph-zoom-in").click()
    page.locator("#graph-fit").click()
    assert page.evaluate(VISIBLE) == 0, "something lies outside the box after Fit"
    page.screenshot(path=str(tmp_path / f"{workflow}-fit.png"), full_page=True)
    return {"boxes": boxes, "labels": labels, "edges": edges}


def test_one_job(page: Any, tmp_path: Path) -> None:
    found = _check_layout(page, "one", 1, tmp_path)
    assert found["edges"] == []


def test_ten_jobs_with_datasets_streams_and_triggers(page: Any, tmp_path: Path) -> None:
    found = _check_layout(page, "ten", 10, tmp_path)
    drawn = set(
        page.locator("#graph g.edge-group").evaluate_all("gs => gs.map(g => g.dataset.edge)")
    )
    # jobs joined only by the data they hand over have an edge now (the monitors, archive)
    assert {
        "dataset:ingest->train",
        "dataset:ingest->archive",
        "dataset:predict->monitor_data",
        "dataset:predict->monitor_model",
    } <= drawn
    assert {
        "control:validate->report",
        "control:push->report",
        "control:predict->monitor_data",
    } <= drawn
    labels = page.locator("#graph .edge-label").all_text_contents()
    assert "stream clicks" in labels
    assert "RESTART" in labels
    labelled = page.locator("#graph .edge-label-box").count()
    assert len(found["labels"]) == labelled >= 12
    assert {"model:train->validate", "model:train->predict"} <= drawn
    assert page.locator('#graph g.source[data-source="dataset-raw"]').count() == 1
    dash = "el => getComputedStyle(el).strokeDasharray"
    control = page.locator("#graph g.edge-group.control path").first.evaluate(dash)
    dataset = page.locator("#graph g.edge-group.dataset path").first.evaluate(dash)
    assert control != dataset  # drawn apart


def test_fifty_jobs_fit_the_box(page: Any, tmp_path: Path) -> None:
    _check_layout(page, "fifty", 50, tmp_path)
    frame = page.locator("#graph").bounding_box()
    assert frame["width"] <= 1280  # no sideways scrolling: the box is the page's width


def test_the_ad_ctr_example_fits_with_every_job_joined(page: Any, tmp_path: Path) -> None:
    _check_layout(page, "ad_ctr", 7, tmp_path)
    frame = page.locator("#graph").bounding_box()
    for job in page.locator("#graph g.job > rect").all():
        box = job.bounding_box()
        assert frame["x"] <= box["x"]
        assert box["x"] + box["width"] <= frame["x"] + frame["width"]
    drawn = set(
        page.locator("#graph g.edge-group").evaluate_all("gs => gs.map(g => g.dataset.edge)")
    )
    ends = {e.split(":", 1)[1].split("->")[i] for e in drawn for i in (0, 1)}
    assert (
        set(page.locator("#graph g.job").evaluate_all("gs => gs.map(g => g.dataset.job)")) <= ends
    )


def test_an_execution_colours_jobs_by_state_live(
    page: Any, site: tuple[str, Services], tmp_path: Path
) -> None:
    services = site[1]
    assert services.scheduler is not None
    run = services.scheduler.start_execution(PROJECT, "ten")
    page.goto(f"/ui/{PROJECT}/executions/{run.execution_id}")
    page.locator('#graph[data-ready="true"]').wait_for()
    page.locator("#live-state.on").wait_for()
    executions = services.scheduler.executions
    ingest = next(
        a for a in executions.list_job_executions(PROJECT, run.execution_id) if a.job == "ingest"
    )
    assert page.locator('#graph g.job[data-job="ingest"]').get_attribute("data-state") == "INIT"
    executions.set_job_status(PROJECT, ingest.job_execution_id, "STARTING")
    executions.set_job_status(PROJECT, ingest.job_execution_id, "RUNNING")
    page.locator('#graph g.job[data-job="ingest"].state-running').wait_for()
    fill = page.locator('#graph g.job[data-job="ingest"] > rect').evaluate(
        "el => getComputedStyle(el).fill"
    )
    idle = page.locator('#graph g.job[data-job="report"] > rect').evaluate(
        "el => getComputedStyle(el).fill"
    )
    assert fill != idle
    executions.set_job_status(PROJECT, ingest.job_execution_id, "FAILED", error="boom")
    page.locator('#graph g.job[data-job="ingest"][data-state="FAILED"]').wait_for()
    page.screenshot(path=str(tmp_path / "execution-states.png"), full_page=True)


def test_the_api_page_lists_every_operation_offline(
    page: Any, site: tuple[str, Services], tmp_path: Path
) -> None:
    """The interactive API page (Swagger UI from the package) runs with no other host."""
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto("/api/v1/docs")
    page.locator(".opblock").first.wait_for()
    document = page.evaluate("() => fetch('/api/v1/openapi.json').then(r => r.json())")
    operations = sum(len(ops) for ops in document["paths"].values())
    assert page.locator(".opblock").count() == operations
    assert page.locator(".opblock-post").count() == 9  # the write actions
    assert asked
    assert all(url.startswith(site[0]) or url.startswith("data:") for url in asked), asked
    page.screenshot(path=str(tmp_path / "api-page.png"), full_page=True)
