"""The UI's finish: styled error pages, the project switcher, time axes, JSON, the API page.

HTML over HTTP on the populated store of ``tests.web.api_support`` (no browser); the pure
helpers (ticks, JSON) directly.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client import CollectorRegistry

from tests.web.api_support import OTHER, PROJECT, AppServer, World, start_world
from tideflow.domain.model import ModelVersion
from tideflow.web.app import create_app
from tideflow.web.pages.chart import build_chart, nice_step
from tideflow.web.pages.render import pretty_json
from tideflow.web.pages.timeline import time_ticks

VENDOR = "src/tideflow/web/static/vendor"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(tmp_path_factory.mktemp("web-polish"))
    yield w
    w.close()


@pytest.fixture(scope="module")
def ui(world: World) -> Iterator[httpx.Client]:
    cookies = {"tideflow_token": world.tokens["reader"]}
    with httpx.Client(base_url=world.url, cookies=cookies, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def open_site(world: World) -> Iterator[str]:
    """The same store served with auth off (every project visible, no token)."""
    server = AppServer(
        create_app(
            healthy=lambda: True,
            registry=CollectorRegistry(),
            services=replace(world.web, auth_required=False),
        )
    )
    yield server.url
    server.stop()


@pytest.mark.parametrize(
    "path",
    [
        f"/ui/{PROJECT}/no-such-page",
        f"/ui/{PROJECT}/executions/999999",
        f"/ui/{PROJECT}/models/nope",
    ],
)
def test_a_missing_page_is_styled_with_navigation(ui: httpx.Client, path: str) -> None:
    response = ui.get(path)
    assert response.status_code == 404
    page = response.text
    assert 'href="/static/tideflow.css"' in page
    assert 'id="error-page" data-status="404"' in page
    assert f'href="/ui/{PROJECT}/workflows"' in page  # the header's tabs and the page's links
    assert 'class="top"' in page
    assert "<h1>404 not found</h1>" in page


def test_an_error_page_outside_a_project_leads_to_the_default_one(ui: httpx.Client) -> None:
    response = ui.get("/nothing/here")
    assert response.status_code == 404
    assert 'href="/ui/default/workflows"' in response.text
    assert 'id="error-page"' in response.text


def test_the_project_switcher_lists_what_the_caller_may_see(
    ui: httpx.Client, open_site: str
) -> None:
    own = ui.get(f"/ui/{PROJECT}/models").text
    assert 'id="project-switch"' not in own  # a token sees its one project
    assert 'id="project-name"' in own
    with httpx.Client(base_url=open_site, timeout=60) as anyone:
        page = anyone.get(f"/ui/{PROJECT}/models").text
    options = re.findall(r'<option value="([^"]+)"( selected)?>', page)
    assert {name for name, _ in options} >= {PROJECT, OTHER}
    assert [name for name, chosen in options if chosen] == [PROJECT]
    assert 'data-section="models"' in page


def test_time_axis_labels_are_distinct_and_round() -> None:
    start = datetime(2026, 12, 6, 18, 10, 59, 500000, tzinfo=UTC)
    for span, first in [
        (1.0, "18:10:59.6"),
        (3.2, "18:10:59.5"),
        (75.0, "18:11:00"),
        (4000.0, "18:20"),
        (90000.0, "12-07 00:00"),
    ]:
        ticks = time_ticks(start, span)
        labels = [label for _, label in ticks]
        assert len(set(labels)) == len(labels) >= 2, (span, labels)
        assert len(labels) <= 8
        assert labels[0] == first, (span, labels)
        assert all(start <= when for when, _ in ticks)


def test_the_timeline_page_has_no_repeated_tick_labels(ui: httpx.Client, world: World) -> None:
    page = ui.get(f"/ui/{PROJECT}/executions/{world.ids['execution']}").text
    labels = re.findall(r'<text class="tick-label"[^>]*>([^<]+)</text>', page)
    assert len(labels) >= 2
    assert len(set(labels)) == len(labels), labels


def test_chart_ticks_are_round_numbers_with_a_legend() -> None:
    assert [nice_step(x) for x in (0.0367, 0.3, 1.2, 7, 30)] == [0.05, 0.5, 2, 10, 50]
    versions = [
        ModelVersion("m", n, status=status, metrics={"auc": value})
        for n, status, value in [(1, "DEPRECATED", 0.6367), (2, "DEPLOYED", 0.7133)]
    ]
    chart = build_chart("auc", versions)
    labels = [label for _, label in chart.y_ticks]
    assert labels == sorted(labels, key=float)
    assert all(len(label.split(".")[-1]) <= 2 for label in labels), labels
    assert chart.statuses == ["DEPLOYED", "DEPRECATED"]


def test_model_page_chart_has_a_legend(ui: httpx.Client) -> None:
    page = ui.get(f"/ui/{PROJECT}/models/ctr").text
    assert 'id="chart-legend"' in page
    assert "DEPLOYED" in page.split('id="chart-legend"')[1]


def test_json_is_shown_indented() -> None:
    assert pretty_json('{"b": 1, "a": {"c": 2}}') == '{\n  "a": {\n    "c": 2\n  },\n  "b": 1\n}'
    assert pretty_json({"x": [1]}) == '{\n  "x": [\n    1\n  ]\n}'
    assert pretty_json("0.42") == "0.42"
    assert pretty_json("{not json") == "{not json"
    assert pretty_json(None) == ""


def test_events_show_model_event_values_indented(ui: httpx.Client) -> None:
    page = ui.get(f"/ui/{PROJECT}/events", params={"key": "ctr"}).text
    blocks = [html.unescape(b) for b in re.findall(r'<pre class="json">(.*?)</pre>', page, re.S)]
    assert any('"status": "DEPLOYED"' in b and "\n  " in b for b in blocks)


def test_the_api_page_is_served_from_the_package(ui: httpx.Client) -> None:
    page = ui.get("/api/v1/docs")
    assert page.status_code == 200
    assert 'src="/static/vendor/swagger-ui/swagger-ui-bundle.js"' in page.text
    assert not re.search(r'(src|href)="(https?:)?//', page.text)
    for asset in ("swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css", "swagger-ui/LICENSE", "dagre/dagre.min.js", "dagre/LICENSE"):  # fmt: skip
        assert ui.get(f"/static/vendor/{asset}").status_code == 200, asset
    assert 'href="/api/v1/docs"' in ui.get(f"/ui/{PROJECT}/workflows").text
