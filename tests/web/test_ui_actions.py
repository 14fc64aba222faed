"""Every write action clicked through in a real browser, on a real server running real jobs.

One server (``--auth required``) and the session's Chromium. Each button is clicked, its
confirmation answered in the page's dialog, and its effect checked twice: on the page itself
(it updates without a reload) and through the JSON API. The audit page then lists every action
under the token's name; a reader's pages have no buttons, and a write without the page's CSRF
token is refused. Screenshots go to the test's tmp dir.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tideflow.cli.loader import load_workflows
from tideflow.client import Client, connect
from tideflow.metadata import AccessService
from tideflow.store import Store
from tideflow.testing import TideflowTestServer, wait_until

# The audit test reads what the tests before it did: the module runs on one pytest-xdist
# worker (``--dist loadgroup``), in order, on one server.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.timeout(300),
    pytest.mark.xdist_group("web_ui_actions"),
]

WAIT_MS = 90_000
PROJECT = "opsui"
WORKFLOW = "ops_demo"
WRITER_NAME = "ops writer"
FLOW = """
    import threading

    import tideflow as tide


    def hold(ctx, inputs):
        print(f"serve attempt {ctx.attempt} up", flush=True)
        threading.Event().wait()


    def quick(ctx, inputs):
        print("prep done", flush=True)


    with tide.workflow("ops_demo") as wf:
        with tide.job("prep"):
            tide.user_node(processor=quick, name="prep_node")
        with tide.job("serve", streaming=True):
            tide.user_node(processor=hold, name="serve_node")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TideflowTestServer]:
    running = TideflowTestServer(home=tmp_path_factory.mktemp("home"), args=["--auth", "required"])
    try:
        running.start()
        yield running
    finally:
        running.close()


def _token(server: TideflowTestServer, role: str, name: str) -> str:
    with connect(server.db_url, project=PROJECT):  # the project exists
        pass
    with Store.open(server.db_url) as store:
        _, token = AccessService(store).create_token(PROJECT, role, name=name)
    return token


@pytest.fixture(scope="module")
def token(server: TideflowTestServer) -> str:
    return _token(server, "writer", WRITER_NAME)


@pytest.fixture(scope="module")
def client(server: TideflowTestServer, token: str) -> Iterator[Client]:
    with server.client(PROJECT, token=token) as opened:
        yield opened


@pytest.fixture(scope="module")
def api(server: TideflowTestServer, token: str) -> Iterator[httpx.Client]:
    base = f"{server.http_url}/api/v1/projects/{PROJECT}"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as opened:
        yield opened


@pytest.fixture(scope="module")
def submitted(client: Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    file = tmp_path_factory.mktemp("flow") / "flow.py"
    file.write_text(textwrap.dedent(FLOW))
    (wf,) = load_workflows(file)
    client.workflows.submit(wf, source=file)
    return WORKFLOW


@pytest.fixture(scope="module")
def started(api: httpx.Client) -> Iterator[list[int]]:
    """Executions the tests start; the module stops what still runs (jobs outlive servers)."""
    ids: list[int] = []
    yield ids
    for eid in ids:
        api.post(f"/executions/{eid}/stop")  # a 409 for those already stopped


def _page(browser: Any, server: TideflowTestServer, token: str) -> Any:
    context = browser.new_context(base_url=server.http_url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT_MS)
    context.add_cookies([{"name": "tideflow_token", "value": token, "url": server.http_url}])
    return context.new_page()


@pytest.fixture
def page(browser: Any, server: TideflowTestServer, token: str) -> Iterator[Any]:
    opened = _page(browser, server, token)
    try:
        yield opened
    finally:
        opened.context.close()


def _act(page: Any, button: str, *, params: str | None = None) -> str:
    """Click ``button``, confirm in the dialog, and return the result line once it is shown."""
    before = int(page.evaluate("Number(document.body.dataset.acted || 0)"))
    page.locator(button).click()
    page.locator("#confirm[open]").wait_for()
    if params is not None:
        page.locator("#confirm-params").fill(params)
    page.locator("#confirm-ok").click()
    page.wait_for_function("n => Number(document.body.dataset.acted || 0) > n", arg=before)
    text: str = page.locator("#action-result").inner_text()
    assert "refused" not in text, text
    return text


def _shot(page: Any, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def _job(api: httpx.Client, eid: int, job: str) -> dict[str, Any]:
    jobs = api.get(f"/executions/{eid}").json()["jobs"]
    return next((j for j in jobs if j["job"] == job), {})


def test_workflow_page_starts_pauses_and_resumes(
    page: Any, api: httpx.Client, submitted: str, started: list[int], tmp_path: Path
) -> None:
    page.goto(f"/ui/{PROJECT}/workflows/{WORKFLOW}")
    page.locator("#live-state.on").wait_for()
    page.evaluate("window.__noReload = true")

    # Cancel changes nothing.
    page.locator('button[data-act="pause"]').click()
    page.locator("#confirm-cancel").click()
    assert api.get(f"/workflows/{WORKFLOW}").json()["paused"] is False

    # A bad params text is refused in the dialog itself, before anything is sent.
    page.locator('button[data-act="start"]').click()
    page.locator("#confirm-params").fill("[1, 2]")
    page.locator("#confirm-ok").click()
    assert "JSON object" in page.locator("#confirm-error").inner_text()
    page.locator("#confirm-cancel").click()

    text = _act(page, 'button[data-act="start"]', params='{"lr": 0.5}')
    assert "execution #" in text
    (newest,) = api.get("/executions", params={"limit": 1}).json()["items"]
    started.append(newest["execution_id"])
    assert newest["params"] == {"lr": 0.5}
    assert f"#{newest['execution_id']} of {WORKFLOW}" in text
    page.locator(f'#executions tr[data-execution="{newest["execution_id"]}"]').wait_for()

    _act(page, 'button[data-act="pause"]')
    page.locator("#paused-badge").wait_for()
    assert api.get(f"/workflows/{WORKFLOW}").json()["paused"] is True
    _shot(page, tmp_path, "workflow-paused")
    _act(page, 'button[data-act="resume"]')
    page.locator('button[data-act="pause"]').wait_for()
    assert page.locator("#paused-badge").count() == 0
    assert api.get(f"/workflows/{WORKFLOW}").json()["paused"] is False
    assert page.evaluate("window.__noReload === true"), "the page was reloaded"


def _running(api: httpx.Client, started: list[int]) -> int:
    """A new execution whose streaming ``serve`` job runs."""
    eid = int(api.post(f"/workflows/{WORKFLOW}/executions", json={}).json()["execution_id"])
    started.append(eid)
    wait_until(
        lambda: _job(api, eid, "serve").get("status") == "RUNNING",
        timeout=WAIT_MS / 1000,
        what="serve to run",
    )
    return eid


def test_job_and_execution_pages_restart_and_stop_a_job(
    page: Any, api: httpx.Client, submitted: str, started: list[int], tmp_path: Path
) -> None:
    eid = _running(api, started)
    page.goto(f"/ui/{PROJECT}/executions/{eid}")
    page.locator("#live-state.on").wait_for()
    serve = '#jobs tr[data-job="serve"]'

    # The job page (the attempt's log) restarts its job.
    first = _job(api, eid, "serve")
    log_page = page.context.new_page()
    log_page.goto(f"/ui/{PROJECT}/job-executions/{first['job_execution_id']}/log")
    text = _act(log_page, 'button[data-act="restart-job"]')
    assert "job serve: attempt 2" in text
    _shot(log_page, tmp_path, "job-restarted")
    log_page.close()
    page.locator(f'{serve}[data-status="RUNNING"] a:text("#2")').wait_for()

    # The execution page restarts it again, then stops it (the run then has nothing left to
    # do and ends by itself).
    _act(page, f'{serve} button[data-act="restart-job"]')
    page.locator(f'{serve}[data-status="RUNNING"] a:text("#3")').wait_for()
    assert _job(api, eid, "serve")["attempt"] == 3
    text = _act(page, f'{serve} button[data-act="stop-job"]')
    assert "job serve: attempt 3" in text
    page.locator(f'{serve}[data-status="STOPPED"]').wait_for()
    assert _job(api, eid, "serve")["status"] == "STOPPED"
    _shot(page, tmp_path, "job-stopped")


def test_execution_page_stops_the_run(
    page: Any, api: httpx.Client, submitted: str, started: list[int], tmp_path: Path
) -> None:
    eid = _running(api, started)
    page.goto(f"/ui/{PROJECT}/executions/{eid}")
    page.locator("#live-state.on").wait_for()
    text = _act(page, 'button[data-act="stop-execution"]')
    assert f"execution #{eid} of {WORKFLOW}: STOPPED" in text
    page.locator("#execution-summary .s-stopped").wait_for()
    assert page.locator('button[data-act="stop-execution"]').count() == 0
    page.locator('#jobs tr[data-job="serve"][data-status="STOPPED"]').wait_for()
    assert api.get(f"/executions/{eid}").json()["status"] == "STOPPED"
    _shot(page, tmp_path, "execution-stopped")


def test_model_page_validates_deploys_rolls_back_and_rejects(
    page: Any, client: Client, api: httpx.Client, tmp_path: Path
) -> None:
    client.models.create("churn")
    for n in (1, 2, 3):
        client.models.create_version("churn", uri=f"mem://{n}", metrics={"auc": 0.6 + n / 20})
    page.goto(f"/ui/{PROJECT}/models/churn")
    page.locator("#live-state.on").wait_for()

    def row(version: int, status: str) -> str:
        return f'#versions tr[data-version="{version}"][data-status="{status}"]'

    def status(version: int) -> str:
        return str(api.get(f"/models/churn/versions/{version}").json()["status"])

    _act(page, f'{row(1, "GENERATED")} button[data-act="validate"]')
    page.locator(row(1, "VALIDATED")).wait_for()
    assert "churn v1: DEPLOYED" in _act(page, f'{row(1, "VALIDATED")} button[data-act="deploy"]')
    page.locator(row(1, "DEPLOYED")).wait_for()
    _act(page, f'{row(2, "GENERATED")} button[data-act="validate"]')
    _act(page, f'{row(2, "VALIDATED")} button[data-act="deploy"]')
    page.locator(row(1, "DEPRECATED")).wait_for()
    page.wait_for_function("() => document.getElementById('deployed').textContent === 'v2'")
    assert (status(1), status(2)) == ("DEPRECATED", "DEPLOYED")

    assert "churn v1: DEPLOYED" in _act(page, 'button[data-act="rollback"]')
    page.locator(row(2, "DEPRECATED")).wait_for()
    assert (status(1), status(2)) == ("DEPLOYED", "DEPRECATED")
    _act(page, f'{row(1, "DEPLOYED")} button[data-act="deprecate"]')
    page.locator(row(1, "DEPRECATED")).wait_for()
    _act(page, f'{row(3, "GENERATED")} button[data-act="reject"]')
    page.locator(row(3, "REJECTED")).wait_for()
    assert (status(1), status(3)) == ("DEPRECATED", "REJECTED")
    assert page.locator(f"{row(3, 'REJECTED')} button").count() == 0  # nothing legal is left
    _shot(page, tmp_path, "model-moved")


def test_events_page_sends_an_event(page: Any, api: httpx.Client) -> None:
    page.goto(f"/ui/{PROJECT}/events")
    page.locator("#live-state.on").wait_for()
    page.locator("details.send-event summary").click()
    form = page.locator("#send-event")
    form.locator('input[name="key"]').fill("ops-key")
    form.locator('input[name="value"]').fill("42")
    form.locator('input[name="event_type"]').fill("OPS_CHECK")
    text = _act(page, 'button[data-act="send-event"]')
    assert "OPS_CHECK key=ops-key sent" in text
    page.locator('#events td.key:text-is("ops-key")').wait_for()
    (event,) = api.get("/events", params={"event_type": "OPS_CHECK"}).json()["items"]
    assert (event["key"], event["value"]) == ("ops-key", "42")


def test_audit_page_names_who_did_each_action(
    page: Any,
    api: httpx.Client,
    submitted: str,
) -> None:
    api.post("/models/nosuch/rollback")  # a refused action is listed too
    page.goto(f"/ui/{PROJECT}/audit")
    page.locator("#audit").wait_for()
    actions = page.locator("#audit tr[data-action]").evaluate_all(
        "rows => rows.map(r => [r.dataset.action, r.querySelector('.actor').textContent, "
        "r.dataset.outcome])"
    )
    assert actions[0] == ["rollback_model", WRITER_NAME, "not_found"]
    assert {a for a, _, _ in actions} >= {
        "start_execution",
        "pause_workflow",
        "resume_workflow",
        "restart_job",
        "stop_job",
        "stop_execution",
        "set_model_status",
        "rollback_model",
        "send_event",
    }
    assert {who for _, who, _ in actions} == {WRITER_NAME}


def test_a_reader_gets_no_buttons_and_a_forged_write_is_refused(
    browser: Any, server: TideflowTestServer, submitted: str, token: str
) -> None:
    reader = _page(browser, server, _token(server, "reader", "ops reader"))
    try:
        reader.goto(f"/ui/{PROJECT}/workflows/{WORKFLOW}")
        reader.locator("#graph").wait_for()
        assert reader.locator("button.act").count() == 0
    finally:
        reader.context.close()
    writer = _page(browser, server, token)
    try:
        writer.goto(f"/ui/{PROJECT}/workflows/{WORKFLOW}")
        # the cookie alone (what another site's form would carry) is not enough
        status = writer.evaluate(
            "url => fetch(url, {method: 'POST', credentials: 'same-origin'}).then(r => r.status)",
            f"/api/v1/projects/{PROJECT}/workflows/{WORKFLOW}/pause",
        )
        assert status == 403
    finally:
        writer.context.close()
