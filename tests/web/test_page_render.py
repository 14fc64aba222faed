"""The pages as HTML (no browser): every page renders from real data, fragments, errors.

The app is served by uvicorn over a populated temporary store (``api_support``: a workflow
whose ``train`` job was restarted by a ``DRIFT_DETECTED`` event, three model versions with
lineage, a second project). The drawings' geometry is checked on its own below.
"""

from __future__ import annotations

import html as markup
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import tideflow as tide
from tests.web.api_support import OTHER, PROJECT, WORKFLOW, World, build_workflow, start_world
from tideflow.domain.metadata import ExecutionAction, JobExecution, WorkflowExecution
from tideflow.domain.model import ModelVersion
from tideflow.domain.status import JobAction, JobStatus
from tideflow.web.api.triggers import Triggers
from tideflow.web.pages.chart import build_chart
from tideflow.web.pages.executions import newest_attempts
from tideflow.web.pages.graph import build_graph
from tideflow.web.pages.layout import Box, layered
from tideflow.web.pages.timeline import build_timeline


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(tmp_path_factory.mktemp("web-pages"))
    yield w
    w.close()


@pytest.fixture(scope="module")
def ui(world: World) -> Iterator[httpx.Client]:
    cookies = {"tideflow_token": world.tokens["reader"]}
    with httpx.Client(base_url=world.url, cookies=cookies, timeout=60) as client:
        yield client


def noop(ctx: Any, inputs: Any) -> Any:
    return None


def _attr(html: str, name: str) -> list[str]:
    return [markup.unescape(v) for v in re.findall(rf'{name}="([^"]*)"', html)]


def test_every_page_renders(ui: httpx.Client, world: World) -> None:
    execution = world.ids["execution"]
    pages = {
        f"/ui/{PROJECT}/workflows": WORKFLOW,
        f"/ui/{PROJECT}/workflows/{WORKFLOW}": 'id="graph-spec"',
        f"/ui/{PROJECT}/executions": f'data-execution="{execution}"',
        f"/ui/{PROJECT}/executions/{execution}": 'data-action="RESTART"',
        f"/ui/{PROJECT}/job-executions/{world.ids['train_1']}/log": "line 5",
        f"/ui/{PROJECT}/models": 'data-model="ctr"',
        f"/ui/{PROJECT}/models/ctr": 'id="chart"',
        f"/ui/{PROJECT}/lineage": "?dataset=clicks",
        f"/ui/{PROJECT}/lineage?model=ctr&version=2": "model_version:ctr@2",
        f"/ui/{PROJECT}/lineage?dataset=clicks": "job_execution:",
        f"/ui/{PROJECT}/events": "DRIFT_DETECTED",
        f"/ui/{PROJECT}/audit": 'id="audit"',
    }
    for path, expected in pages.items():
        response = ui.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        assert response.headers["content-type"].startswith("text/html")
        assert expected in response.text, path
        assert "/static/tideflow.js" in response.text
        assert not re.search(r'(src|href)="(https?:)?//', response.text), path  # offline


def test_the_lineage_of_a_version_shows_that_version_alone(ui: httpx.Client) -> None:
    # The train attempt logged versions 1-3, each from its own window of clicks.
    html = ui.get(f"/ui/{PROJECT}/lineage?model=ctr&version=2").text
    nodes = set(_attr(html, "data-lineage"))
    assert "model_version:ctr@2" in nodes
    assert not {"model_version:ctr@1", "model_version:ctr@3"} & nodes
    assert "dataset:clicks" in nodes
    assert "[100..199]" in html
    assert 'id="lineage-note"' in html
    # Around the dataset, the attempt is drawn whole: every version, the span it read.
    html = ui.get(f"/ui/{PROJECT}/lineage?dataset=clicks").text
    assert {"model_version:ctr@1", "model_version:ctr@3"} <= set(_attr(html, "data-lineage"))
    assert "[0..299]" in html
    assert 'id="lineage-note"' not in html


def _scene(html: str) -> dict[str, Any]:
    """The graph's scene, as the page hands it to its script."""
    found = re.search(r'<script type="application/json" id="graph-spec">(.*?)</script>', html, re.S)
    assert found is not None, "no graph scene on the page"
    scene: dict[str, Any] = json.loads(found.group(1))
    return scene


def test_the_graph_scene_has_every_job_node_and_edge(ui: httpx.Client, world: World) -> None:
    plan = tide.compile(build_workflow())
    html = ui.get(f"/ui/{PROJECT}/workflows/{WORKFLOW}").text
    assert 'src="/static/vendor/dagre/dagre.min.js"' in html
    scene = _scene(html)
    jobs = {j["name"]: j for j in scene["jobs"]}
    assert set(jobs) == {job.name for job in plan.jobs}
    assert {n["name"] for j in scene["jobs"] for n in j["nodes"]} == {
        n.name for job in plan.jobs for n in job.nodes
    }
    data = {(e["source"], e["target"]) for j in scene["jobs"] for e in j["edges"]}
    assert data == {(e.source.node, e.target) for job in plan.jobs for e in job.edges}
    control = {(e["source"], e["target"]) for e in scene["control"]}
    assert {("validate", "report"), ("push", "report")} <= control
    assert len(control) == 2 + 3  # after(report; validate, push) + three triggers
    assert jobs["train"]["streaming"] is True
    labels = {e["label"] for e in scene["control"]}
    assert "after validate, push FINISHED" in labels
    assert "on MODEL_GENERATED of model ctr" in {t["label"] for t in scene["triggers"]}
    # The execution page has the same scene (its jobs coloured by state in the browser).
    page = ui.get(f"/ui/{PROJECT}/executions/{world.ids['execution']}").text
    assert {j["name"] for j in _scene(page)["jobs"]} == set(jobs)


def test_jobs_that_hand_data_over_are_joined_by_a_dataset_edge() -> None:
    with tide.workflow("handover") as wf:
        with tide.job("produce", streaming=True):
            tide.write_dataset(tide.read_dataset("raw", processor=noop), "clicks", processor=noop)
        with tide.job("consume"):
            tide.user_node(tide.read_dataset("clicks", processor=noop), processor=noop, name="use")
        with tide.job("alone"):
            tide.user_node(processor=noop, name="solo")
    scene = build_graph(tide.compile(wf))
    assert scene["datasets"] == [
        {
            "source": "produce",
            "target": "consume",
            "kind": "dataset",
            "name": "clicks",
            "label": "stream clicks",
        },
        {
            "source": "dataset-raw",
            "target": "produce",
            "kind": "dataset",
            "name": "raw",
            "label": "",
        },
    ]
    assert scene["sources"] == [{"id": "dataset-raw", "label": "dataset raw"}]
    assert scene["control"] == []


def test_the_ad_ctr_example_leaves_no_job_loose() -> None:
    """Its predictor and both monitors share no declared dataset with the rest: the model
    they use (and the outside stream the monitors both read) join them."""
    import tideflow.examples.ad_ctr.workflow as example
    from tideflow.cli.loader import load_workflows

    (wf,) = load_workflows(Path(example.__file__))
    scene = build_graph(tide.compile(wf))
    ends = {e["source"] for e in [*scene["control"], *scene["datasets"]]} | {
        e["target"] for e in [*scene["control"], *scene["datasets"]]
    }
    assert {j["name"] for j in scene["jobs"]} <= ends
    models = {(e["source"], e["target"]) for e in scene["datasets"] if e["kind"] == "model"}
    assert {
        ("train", "predict"),
        ("train", "monitor_examples"),
        ("train", "monitor_model"),
    } <= models
    readers = {e["target"] for e in scene["datasets"] if e["source"] == "dataset-ctr_predictions"}
    assert readers == {"monitor_examples", "monitor_model"}


def test_the_timeline_names_the_event_behind_the_restart(ui: httpx.Client, world: World) -> None:
    html = ui.get(f"/ui/{PROJECT}/executions/{world.ids['execution']}").text
    rows = re.findall(r'<tr data-action="RESTART" data-job="train">.*?</tr>', html, re.S)
    assert len(rows) == 2  # the first drift started train, the second restarted it
    assert all("DRIFT_DETECTED" in row for row in rows)
    assert f"offset {world.ids['drift_2']}" in rows[1]
    assert 'data-job="train" data-attempt="2"' in html


def test_a_long_execution_shows_its_newest_attempts(world: World) -> None:
    eid = world.ids["execution"]
    every = world.web.scheduler.executions.list_job_executions(PROJECT, eid)
    assert len(every) > 2
    newest, total = newest_attempts(world.web, PROJECT, eid, 2)
    assert total == len(every)
    assert newest == every[-2:]
    shown, _ = newest_attempts(world.web, PROJECT, eid, 1000)
    assert shown == every


def test_a_fragment_is_only_the_live_part(ui: httpx.Client) -> None:
    full = ui.get(f"/ui/{PROJECT}/models/ctr").text
    part = ui.get(f"/ui/{PROJECT}/models/ctr", params={"fragment": "1"}).text
    assert "<html" in full
    assert "<html" not in part
    assert 'id="versions"' in part
    assert 'data-version="3"' in part
    assert 'data-live-types="MODEL_*"' in full


def test_bad_input_is_a_4xx_page_never_a_500(ui: httpx.Client, world: World) -> None:
    cases = {
        f"/ui/{PROJECT}/models/nope": 404,
        f"/ui/{PROJECT}/models/ctr?version=99": 404,
        f"/ui/{PROJECT}/models/ctr?version=zero": 400,
        f"/ui/{PROJECT}/workflows/nope": 404,
        f"/ui/{PROJECT}/executions/999999": 404,
        f"/ui/{PROJECT}/executions/abc": 400,
        f"/ui/{PROJECT}/executions?status=DANCING": 400,
        f"/ui/{PROJECT}/job-executions/999999/log": 404,
        f"/ui/{PROJECT}/lineage?model=ctr": 400,
        f"/ui/{PROJECT}/lineage?dataset=nope": 404,
        f"/ui/{PROJECT}/events?key=" + "k" * 300: 400,
        "/ui/Bad%20Name/workflows": 400,
    }
    for path, status in cases.items():
        response = ui.get(path)
        assert response.status_code == status, (path, response.status_code, response.text[:200])
        assert response.headers["content-type"].startswith("text/html")


def test_another_projects_pages_are_refused(ui: httpx.Client, world: World) -> None:
    response = ui.get(f"/ui/{OTHER}/models")
    assert response.status_code == 403
    assert OTHER in response.text
    with httpx.Client(base_url=world.url, timeout=60) as anonymous:
        refused = anonymous.get(f"/ui/{PROJECT}/models")
        assert refused.status_code == 303
        assert refused.headers["location"].startswith("/ui/login?next=")


def test_home_leads_to_the_tokens_project(ui: httpx.Client) -> None:
    for path in ("/", "/ui"):
        response = ui.get(path)
        assert response.status_code == 307
        assert response.headers["location"] == f"/ui/{PROJECT}/workflows"


# -- geometry ------------------------------------------------------------------------------


def test_layered_layout_puts_edges_left_to_right_and_survives_cycles() -> None:
    boxes = [Box(name, 50, 20) for name in "abcd"]
    layout = layered(boxes, [("a", "b"), ("b", "c"), ("a", "c"), ("c", "a"), ("d", "d")])
    x = {name: box.x for name, box in layout.boxes.items()}
    assert x["a"] < x["b"] < x["c"]
    assert layout.back_edges == {("c", "a")}
    same_column = [b for b in layout.boxes.values() if b.x == x["a"]]
    assert len({(b.y, b.y + b.height) for b in same_column}) == len(same_column)  # no overlap


def test_a_long_chain_lays_out_without_recursion() -> None:
    boxes = [Box(f"j{i}", 40, 20) for i in range(3000)]
    edges = [(f"j{i}", f"j{i + 1}") for i in range(2999)]
    layout = layered(boxes, edges)
    assert layout.boxes["j2999"].x > layout.boxes["j0"].x


def test_graph_of_a_hundred_jobs() -> None:
    with tide.workflow("wide") as wf:
        for i in range(100):
            with tide.job(f"job{i}"):
                tide.user_node(processor=lambda ctx, inputs: None, name=f"n{i}")
        for i in range(1, 100):
            wf.after(f"job{i}", f"job{i - 1}")
    scene = build_graph(tide.compile(wf))
    assert len(scene["jobs"]) == 100
    assert [(e["source"], e["target"]) for e in scene["control"]] == [
        (f"job{i - 1}", f"job{i}") for i in range(1, 100)
    ]


def test_timeline_places_attempts_in_time_and_links_actions() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    execution = WorkflowExecution(1, "w", 1, start_time=t0)
    attempts = [
        JobExecution(1, 1, "w", "train", 1, JobStatus.STOPPED, t0, t0, t0 + timedelta(seconds=60)),
        JobExecution(2, 1, "w", "train", 2, JobStatus.RUNNING, t0 + timedelta(seconds=60), t0 + timedelta(seconds=61)),
    ]  # fmt: skip
    actions = [
        ExecutionAction(1, 1, "train", JobAction.START, "start of execution", None, t0),
        ExecutionAction(2, 1, "train", JobAction.RESTART, "on drift", 7, t0 + timedelta(seconds=60)),
    ]  # fmt: skip
    triggers = {
        1: Triggers(started_by=actions[0], stopped_by=actions[1]),
        2: Triggers(started_by=actions[1]),
    }
    timeline = build_timeline(
        execution,
        attempts,
        actions,
        {},
        triggers,
        jobs=["train", "idle"],
        now=t0 + timedelta(seconds=120),
    )
    first, second = timeline.bars
    assert first.x < second.x
    assert first.duration == 60
    assert second.duration is None
    assert first.ended_by is not None
    assert first.ended_by.action.action is JobAction.RESTART
    assert second.started_by is not None
    assert "event offset 7" in second.started_by.text
    assert [job for job, _ in timeline.rows] == ["train", "idle"]
    assert second.x + second.width == pytest.approx(timeline.width - 20)  # runs until now


def test_chart_orders_versions_and_scales_values() -> None:
    versions = [
        ModelVersion("m", 2, metrics={"auc": 0.8}),
        ModelVersion("m", 1, metrics={"auc": 0.6}),
        ModelVersion("m", 3, metrics={"loss": 1.0}),
    ]
    chart = build_chart("auc", versions)
    assert [p.version for p in chart.points] == [1, 2]
    low, high = chart.points
    assert high.y < low.y  # higher values are drawn higher
    assert low.x < high.x
