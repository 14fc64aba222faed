"""The web UI's pages in a real browser, against a real server running a real workflow.

Playwright drives Debian's Chromium (``/usr/bin/chromium``, headless). One server and one
browser serve the whole module; the workflow below runs for real on the server's local
executor: ``prepare`` starts with the execution and ``train`` with it, a streaming job (restarted by a ``DRIFT_DETECTED`` event), ``validate``
started by each new model version, ``report`` after it. Every test waits on what the page shows
(with a generous deadline), never on time, and nothing reloads a page that should update live.
Each page is saved as a screenshot under ``test-artifacts/screenshots/`` (or
``$TIDEFLOW_SCREENSHOTS``).
"""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tideflow.cli.loader import load_workflows
from tideflow.client import Client, connect
from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.lineage import LineageRef
from tideflow.domain.rules import Rule
from tideflow.metadata import AccessService
from tideflow.store import Store
from tideflow.testing import TideflowTestServer

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(300)]

WAIT_MS = 90_000
"""How long a page may take to show something (the machine is shared and busy)."""
PROJECT = "webui"
WORKFLOW = "web_demo"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("TIDEFLOW_SCREENSHOTS", ROOT / "test-artifacts" / "screenshots"))

FLOW = """
    import threading

    import tideflow as tide


    def rows(ctx, inputs):
        return [{"x": 1}]


    def same(ctx, inputs):
        return inputs[0]


    def hold(ctx, inputs):
        print(f"train attempt {ctx.attempt} running", flush=True)
        threading.Event().wait()


    def check(ctx, inputs):
        print("validate ran", flush=True)


    def summarise(ctx, inputs):
        print("report ran", flush=True)


    with tide.workflow("web_demo") as wf:
        with tide.job("prepare"):
            tide.user_node(processor=summarise, name="announce")
        with tide.job("train", streaming=True):
            clicks = tide.read_dataset("clicks", processor=rows)
            features = tide.transform(clicks, processor=same, name="featurize")
            tide.train(features, model="ctr", processor=hold)
        with tide.job("validate"):
            holdout = tide.read_dataset("holdout", processor=rows)
            tide.validate(holdout, model="ctr", processor=check)
        with tide.job("report"):
            tide.user_node(processor=summarise, name="summarise")
        wf.with_start("train", "prepare")
        wf.on_model_version("validate", model="ctr", event=tide.ModelVersionEvent.GENERATED)
        wf.after("report", "validate")
        wf.on_event("train", event_type="DRIFT_DETECTED", action=tide.JobAction.RESTART)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TideflowTestServer]:
    """One server for the module, requiring tokens (so isolation is tested on it too)."""
    running = TideflowTestServer(home=tmp_path_factory.mktemp("home"), args=["--auth", "required"])
    try:
        running.start()
        yield running
    finally:
        running.close()


def _token(server: TideflowTestServer, project: str, role: str) -> str:
    with connect(server.db_url, project=project):  # makes sure the project exists
        pass
    with Store.open(server.db_url) as store:
        _, token = AccessService(store).create_token(project, role, name=f"{role} web test")
    return token


@pytest.fixture(scope="module")
def token(server: TideflowTestServer) -> str:
    """A writer token of the project the workflow runs in."""
    return _token(server, PROJECT, "writer")


@pytest.fixture(scope="module")
def client(server: TideflowTestServer, token: str) -> Iterator[Client]:
    with server.client(PROJECT, token=token) as opened:
        yield opened


@pytest.fixture(scope="module")
def plan(client: Client, tmp_path_factory: pytest.TempPathFactory) -> WorkflowPlan:
    """The workflow, submitted (as ``tideflow workflow submit`` does) and compiled."""
    import tideflow as tide

    folder = tmp_path_factory.mktemp("flow")
    file = folder / "flow.py"
    file.write_text(textwrap.dedent(FLOW))
    (wf,) = load_workflows(file)
    client.workflows.submit(wf, source=file)
    return tide.compile(wf)


@pytest.fixture(scope="module")
def execution(client: Client, plan: WorkflowPlan) -> Iterator[int]:
    """A running execution whose streaming ``train`` job has started; stopped at the end.

    Jobs outlive their server by design (a new server re-attaches), so the module stops what it
    started before its server goes, or ``train`` would run on after the test session.
    """
    run = client.workflows.start(WORKFLOW)
    _wait_job(client, run.execution_id, "train", "RUNNING")
    yield run.execution_id
    client.executions.stop(run.execution_id)
    _wait_job(client, run.execution_id, "train", "STOPPED")


@pytest.fixture
def page(browser: Any, server: TideflowTestServer, token: str) -> Iterator[Any]:
    """A page logged in to the project (the cookie ``POST /ui/login`` would set)."""
    context = browser.new_context(base_url=server.http_url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT_MS)
    context.add_cookies([{"name": "tideflow_token", "value": token, "url": server.http_url}])
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


def _wait_job(client: Client, execution_id: int, job: str, status: str) -> None:
    """Until ``job``'s newest attempt has ``status`` (read from the job status events)."""
    from tideflow.domain.events import JOB_STATUS_CHANGED, job_event_key

    with client.events.listen(
        keys=[job_event_key(WORKFLOW, job)], event_types=[JOB_STATUS_CHANGED]
    ) as listener:
        attempts = [a for a in client.jobs.list(execution_id) if a.job == job]
        if attempts and str(attempts[-1].status) == status:
            return
        for _ in range(WAIT_MS // 1000):
            for event in listener.poll(1.0):
                if event.context.get("execution_id") == execution_id and event.value == status:
                    return
    raise AssertionError(f"{job} of execution {execution_id} never reached {status}")


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _live(page: Any) -> None:
    """Until the page's event stream is open (it then misses nothing that follows)."""
    page.wait_for_selector("#live-state.on")


def _mark_no_reload(page: Any) -> None:
    page.evaluate("window.__tideflowNoReload = true")


def _assert_not_reloaded(page: Any) -> None:
    assert page.evaluate("window.__tideflowNoReload === true"), "the page was reloaded"


def _control_edges(plan: WorkflowPlan) -> set[str]:
    """The ``data-edge`` of every control edge the graph must draw."""
    edges: set[str] = set()
    for index, rule in enumerate(plan.rules):
        assert isinstance(rule, Rule)
        if rule.job is None:
            continue
        sources = rule.upstreams or (f"rule-{index}",)
        edges.update(f"control:{source}->{rule.job}" for source in sources)
    return edges


def test_the_graph_page_shows_every_job_and_edge(
    page: Any, plan: WorkflowPlan, execution: int
) -> None:
    page.goto(f"/ui/{PROJECT}/workflows/{WORKFLOW}")
    graph = page.locator("#graph")
    page.locator('#graph[data-ready="true"]').wait_for()  # drawn by its script (dagre)
    jobs = {job.name for job in plan.jobs}
    assert set(graph.locator("g.job").evaluate_all("gs => gs.map(g => g.dataset.job)")) == jobs
    for job in plan.jobs:
        group = graph.locator(f'g.job[data-job="{job.name}"]')
        assert group.get_attribute("data-streaming") == str(job.streaming).lower()
        nodes = group.locator("g.node").evaluate_all(
            "gs => gs.map(g => [g.dataset.node, g.dataset.kind])"
        )
        assert sorted(map(tuple, nodes)) == sorted((n.name, str(n.kind)) for n in job.nodes)
    data = {f"data:{e.source.node}->{e.target}" for job in plan.jobs for e in job.edges}
    assert len(data) == 3  # read -> featurize -> train, read -> validate
    drawn = set(graph.locator("[data-edge]").evaluate_all("es => es.map(e => e.dataset.edge)"))
    links = {
        "dataset:dataset-clicks->train",  # outside datasets are boxes of their own
        "dataset:dataset-holdout->validate",
        "model:train->validate",  # validate judges what train makes
    }
    assert drawn == data | _control_edges(plan) | links
    # Control edges carry their rule; the streaming job looks different from batch ones.
    labels = graph.locator(".edge-label").all_text_contents()
    assert "after validate FINISHED" in labels
    assert "RESTART" in labels
    assert "with start of prepare" in labels
    assert "on event(type=DRIFT_DETECTED)" in graph.locator("g.trigger text").all_text_contents()
    streaming = graph.locator('g.job[data-job="train"] > rect')
    batch = graph.locator('g.job[data-job="report"] > rect')
    dash = "el => getComputedStyle(el).strokeDasharray"
    assert streaming.evaluate(dash) not in ("", "none")
    assert batch.evaluate(dash) in ("", "none")
    # Offline: nothing is fetched from anywhere but this server.
    assert page.locator("script[src*='//'], link[href*='//'], img[src*='//']").count() == 0
    _shot(page, "workflow-graph")


def test_the_workflows_and_executions_lists_show_the_running_execution(
    page: Any, execution: int
) -> None:
    page.goto(f"/ui/{PROJECT}/workflows")
    row = page.locator(f'#workflows tr[data-workflow="{WORKFLOW}"]')
    assert f"#{execution}" in row.inner_text()
    assert row.locator(".last-status").inner_text() == "RUNNING"
    _shot(page, "workflows")
    page.goto(f"/ui/{PROJECT}/executions?workflow={WORKFLOW}")
    page.locator(f'#executions tr[data-execution="{execution}"]').wait_for()
    _shot(page, "executions")


def test_the_timeline_shows_a_restart_triggered_by_an_event(
    page: Any, client: Client, execution: int
) -> None:
    page.goto(f"/ui/{PROJECT}/executions/{execution}")
    page.locator('#timeline rect.bar[data-job="train"][data-attempt="1"]').wait_for()
    _live(page)
    _mark_no_reload(page)
    sent = client.events.send("ctr", "0.42", event_type="DRIFT_DETECTED", sender="monitor")
    restart = page.locator('#actions tr[data-action="RESTART"][data-job="train"]')
    restart.wait_for()
    text = restart.inner_text()
    assert "DRIFT_DETECTED" in text
    assert f"offset {sent.offset}" in text
    assert "from monitor" in text
    page.locator('#timeline rect.bar[data-job="train"][data-attempt="2"]').wait_for()
    page.locator('#timeline path.mark[data-action="RESTART"][data-job="train"]').wait_for()
    first = page.locator('#attempts tr[data-job="train"][data-attempt="1"]')
    second = page.locator('#attempts tr[data-job="train"][data-attempt="2"]')
    assert "DRIFT_DETECTED" in first.locator(".cause").nth(1).inner_text()  # ended by
    assert "DRIFT_DETECTED" in second.locator(".cause").nth(0).inner_text()  # started by
    _assert_not_reloaded(page)
    _wait_job(client, execution, "train", "RUNNING")
    _shot(page, "execution-timeline")


def test_the_log_page_shows_the_running_attempt(page: Any, client: Client, execution: int) -> None:
    attempt = [a for a in client.jobs.list(execution) if a.job == "train"][-1]
    page.goto(f"/ui/{PROJECT}/job-executions/{attempt.job_execution_id}/log")
    page.wait_for_function(
        "n => document.getElementById('log').textContent.includes(`train attempt ${n} running`)",
        arg=attempt.attempt,
    )
    # The follower's first message replaced the rendered tail: nothing shows twice.
    page.locator('#log[data-streamed="true"]').wait_for()
    line = f"train attempt {attempt.attempt} running"
    assert page.locator("#log").text_content().count(line) == 1
    _shot(page, "job-log")


def test_a_new_model_version_appears_without_reloading(
    page: Any, client: Client, execution: int
) -> None:
    if not any(m.name == "ctr" for m in client.models.list()):
        client.models.create("ctr", description="click-through rate")
    first = client.models.create_version("ctr", uri="mem://1", metrics={"auc": 0.71})
    client.models.set_status("ctr", first.version, "VALIDATED")
    client.models.deploy("ctr", first.version)
    page.goto(f"/ui/{PROJECT}/models/ctr")
    page.locator(f'#versions tr[data-version="{first.version}"]').wait_for()
    assert page.locator("#deployed").inner_text() == f"v{first.version}"
    _live(page)
    _mark_no_reload(page)
    new = client.models.create_version("ctr", uri="mem://2", metrics={"auc": 0.74})
    row = page.locator(f'#versions tr[data-version="{new.version}"]')
    row.wait_for()
    assert row.get_attribute("data-status") == "GENERATED"
    page.locator(f'#chart circle[data-version="{new.version}"]').wait_for()
    client.models.set_status("ctr", new.version, "VALIDATED")
    client.models.deploy("ctr", new.version)
    page.locator(f'#versions tr[data-version="{new.version}"][data-status="DEPLOYED"]').wait_for()
    page.wait_for_function(
        "v => document.getElementById('deployed').textContent === `v${v}`", arg=new.version
    )
    _assert_not_reloaded(page)
    _shot(page, "model")
    page.goto(f"/ui/{PROJECT}/models")
    assert page.locator('#models tr[data-model="ctr"] .deployed').inner_text() == f"v{new.version}"
    _shot(page, "models")


def test_the_lineage_page_draws_what_produced_a_version(
    page: Any, client: Client, execution: int
) -> None:
    if not any(m.name == "ctr" for m in client.models.list()):
        client.models.create("ctr")
    version = client.models.create_version("ctr", uri="mem://lineage")
    client.datasets.register("clicks", uri="mem://clicks", stream=True)
    train = [a for a in client.jobs.list(execution) if a.job == "train"][-1]
    client.lineage.record(
        train.job_execution_id,
        inputs=[LineageRef.dataset("clicks", start_offset=0, end_offset=99)],
        outputs=[LineageRef.model_version("ctr", version.version)],
    )
    page.goto(f"/ui/{PROJECT}/lineage?model=ctr&version={version.version}")
    ids = page.locator("#lineage g.lineage-node").evaluate_all(
        "gs => gs.map(g => g.dataset.lineage)"
    )
    assert f"model_version:ctr@{version.version}" in ids
    assert f"job_execution:{train.job_execution_id}" in ids
    assert "dataset:clicks" in ids
    assert page.locator("#lineage [data-edge]").count() == 2
    _shot(page, "lineage")


def test_the_events_page_receives_a_live_event(page: Any, client: Client) -> None:
    key = f"web_{uuid.uuid4().hex[:6]}"
    page.goto(f"/ui/{PROJECT}/events?key={key}")
    _live(page)
    _mark_no_reload(page)
    client.events.send(key, "ignored", event_type="OTHER", sender="tests")  # filtered: same key
    sent = client.events.send(key, "hello", event_type="GREETING", sender="tests")
    other = client.events.send("another_key", "no", event_type="GREETING", sender="tests")
    row = page.locator(f'#events tr[data-offset="{sent.offset}"]')
    row.wait_for()
    assert row.locator(".type").inner_text() == "GREETING"
    assert row.locator(".value").inner_text() == "hello"
    assert page.locator(f'#events tr[data-offset="{other.offset}"]').count() == 0
    _assert_not_reloaded(page)
    _shot(page, "events")


# -- auth: a reader token of one project sees nothing of another --------------------------


def test_a_reader_token_cannot_reach_another_projects_pages_or_api(
    browser: Any, server: TideflowTestServer
) -> None:
    mine, theirs = f"a_{uuid.uuid4().hex[:6]}", f"b_{uuid.uuid4().hex[:6]}"
    reader = _token(server, mine, "reader")
    _token(server, theirs, "writer")
    base = server.http_url
    context = browser.new_context(base_url=base)
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        # Without a token the pages lead to the login form.
        page.goto(f"/ui/{mine}/workflows")
        assert page.url.startswith(f"{base}/ui/login")
        page.fill("#token", reader)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/ui/{mine}/workflows")
        assert page.locator("h1").inner_text() == "Workflows"
        _shot(page, "login-own-project")
        for path in ("workflows", "executions", "models", "events", "lineage"):
            response = page.goto(f"/ui/{theirs}/{path}")
            assert response is not None
            assert response.status == 403, path
            assert theirs in page.inner_text("body")
        _shot(page, "other-project-403")
    finally:
        context.close()
    headers = {"Authorization": f"Bearer {reader}"}
    with httpx.Client(base_url=base, timeout=60) as http:
        assert http.get(f"/api/v1/projects/{mine}/workflows", headers=headers).status_code == 200
        for path in ("workflows", "executions", "models", "events", "datasets"):
            denied = http.get(f"/api/v1/projects/{theirs}/{path}", headers=headers)
            assert denied.status_code == 403, path
            assert denied.json()["error"]["code"] == "permission_denied"
        assert http.get(f"/api/v1/projects/{mine}/workflows").status_code == 401
        assert http.get(f"/ui/{theirs}/workflows", headers=headers).status_code == 403
