"""The web API on a real server process running a real workflow; ``tideflow ui``; shutdown.

One server (``--auth required``) for the module; the last test stops it with a live stream
open and checks that it exits promptly.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.web.test_api import SseReader
from tideflow.cli.loader import load_workflows
from tideflow.client import connect
from tideflow.metadata import AccessService
from tideflow.store import Store
from tideflow.testing import TideflowTestServer, run_cli

PROJECT = "webdemo"
FLOW = """
    import tideflow as tide


    def first(ctx, inputs):
        for i in range(3):
            print("first says", i, flush=True)


    def second(ctx, inputs):
        print("second runs", flush=True)


    with tide.workflow("chain") as wf:
        with tide.job("first"):
            tide.user_node(processor=first, name="say")
        with tide.job("second"):
            tide.user_node(processor=second, name="run")
        wf.after("second", "first")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TideflowTestServer]:
    running = TideflowTestServer(
        home=tmp_path_factory.mktemp("web-home"), args=["--auth", "required"]
    )
    try:
        running.start()
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def token(server: TideflowTestServer) -> str:
    with connect(server.db_url, project=PROJECT):  # the project exists
        pass
    with Store.open(server.db_url) as store:
        _, issued = AccessService(store).create_token(PROJECT, "writer", name="web test")
    return issued


@pytest.fixture(scope="module")
def api(server: TideflowTestServer, token: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.http_url, headers=headers, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def finished(
    server: TideflowTestServer, token: str, tmp_path_factory: pytest.TempPathFactory
) -> int:
    """A real execution of the ``chain`` workflow, run by the server's local executor."""
    file = tmp_path_factory.mktemp("flow") / "flow.py"
    file.write_text(textwrap.dedent(FLOW))
    (wf,) = load_workflows(file)
    with server.client(PROJECT, token=token) as client:
        client.workflows.submit(wf, source=file)
        run = client.workflows.start("chain")
        ended = client.executions.wait(run.execution_id, timeout=180)
    assert ended.status.value == "FINISHED"
    return run.execution_id


@pytest.mark.slow
def test_a_real_execution_through_the_api(api: httpx.Client, finished: int) -> None:
    base = f"/api/v1/projects/{PROJECT}"
    workflows = api.get(f"{base}/workflows").json()["items"]
    assert [(w["name"], w["last_execution_status"]) for w in workflows] == [("chain", "FINISHED")]
    jobs = api.get(f"{base}/executions/{finished}/jobs").json()["items"]
    assert [(j["job"], j["status"]) for j in jobs] == [
        ("first", "FINISHED"),
        ("second", "FINISHED"),
    ]
    assert all(j["duration"] is not None and j["duration"] >= 0 for j in jobs)
    second = jobs[1]["started_by"]
    assert second["rule"].startswith("after first")
    assert second["event"]["key"] == "chain.first"
    assert second["event"]["value"] == "FINISHED"
    first_id = jobs[0]["job_execution_id"]
    log = api.get(f"{base}/job-executions/{first_id}/logs", params={"tail": 1})
    assert "ended FINISHED" in log.text
    assert log.text.count("\n") == 1
    assert log.headers["x-tideflow-log-complete"] == "true"
    with api.stream("GET", f"{base}/job-executions/{first_id}/logs/stream") as response:
        reader = SseReader(response)
        text = ""
        message = reader.next()
        while message.get("event") != "end":
            text += json.loads(message["data"])["text"]
            message = reader.next()
    assert [line for line in text.splitlines() if "first says" in line][-3:] == [
        "first says 0",
        "first says 1",
        "first says 2",
    ]
    plan = api.get(f"{base}/workflows/chain/plan").json()
    assert [r["label"] for r in plan["rules"]] == ["after first"]


def _tideflow(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, home=home, timeout=120)


def test_tideflow_ui_prints_the_url_of_the_local_or_a_remote_server(
    server: TideflowTestServer, token: str, tmp_path: Path
) -> None:
    expected = f"{server.http_url}/ui/{PROJECT}/workflows"
    local = _tideflow("ui", "--project", PROJECT, home=server.home)
    assert local.returncode == 0, local.stderr
    assert local.stdout.strip() == expected
    remote = _tideflow(
        "ui",
        "--server",
        server.url,
        "--project",
        PROJECT,
        "--token",
        token,
        "--json",
        home=tmp_path,
    )
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout)["url"] == expected
    assert httpx.get(expected, headers={"Authorization": f"Bearer {token}"}).status_code < 500
    refused = _tideflow("ui", "--server", server.url, "--project", PROJECT, home=tmp_path)
    assert refused.returncode == 1
    assert "requires an API token" in refused.stderr
    nothing = _tideflow("ui", home=tmp_path)
    assert nothing.returncode == 1
    assert "no Tideflow server is running" in nothing.stderr


def test_server_stops_promptly_with_an_open_stream(
    server: TideflowTestServer, api: httpx.Client
) -> None:
    """Last in the module: it stops the server."""
    ended = threading.Event()
    received: list[str] = []

    def follow() -> None:
        try:
            with api.stream("GET", f"/api/v1/projects/{PROJECT}/events/stream") as response:
                for line in response.iter_lines():
                    received.append(line)
        except httpx.HTTPError:
            pass
        ended.set()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not received and time.monotonic() < deadline:  # connected: the retry line came
        thread.join(0.05)
    assert received, "the stream never opened"
    began = time.monotonic()
    code = server.stop(timeout=60)
    took = time.monotonic() - began
    assert code == 0
    assert took < 15, f"server stop took {took:.1f}s with an open stream"
    assert ended.wait(30), "the stream did not end when the server stopped"
