"""`tideflow workflow backfill` and `show` of a scheduled workflow through a real server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.submission.conftest import write_flow
from tideflow.cli.main import app
from tideflow.testing import TideflowTestServer


@pytest.fixture(scope="module")
def server() -> Iterator[TideflowTestServer]:
    with TideflowTestServer() as running:
        yield running


def test_backfill_through_the_server_records_each_tick_once(
    server: TideflowTestServer, tmp_path: Path, project: str
) -> None:
    runner = CliRunner()
    target = ["--server", server.url, "--project", project]
    flow = write_flow(tmp_path / "project", rule='wf.schedule(cron="0 0 * * *")')
    assert runner.invoke(app, ["workflow", "submit", str(flow), *target]).exit_code == 0
    shown = runner.invoke(app, ["workflow", "show", "clicks", *target])
    assert "schedule cron '0 0 * * *' (UTC), catchup=False, next run 20" in shown.output
    # Paused: every tick is recorded as skipped (and starts no job in this test).
    assert runner.invoke(app, ["workflow", "pause", "clicks", *target]).exit_code == 0
    args = ["workflow", "backfill", "clicks", "--from", "2024-01-01", "--to", "2024-01-02"]
    first = runner.invoke(app, [*args, *target, "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == [
        {
            "tick_time": f"2024-01-0{day}T00:00:00+00:00",
            "status": "SKIPPED",
            "execution_id": None,
            "reason": "the workflow is paused",
        }
        for day in (1, 2)
    ]
    again = runner.invoke(app, [*args, *target])
    assert again.exit_code == 0, again.output
    assert "tick 2/2 2024-01-02T00:00:00+00:00: already handled" in again.output
    assert "backfill of clicks: 0 started, 2 not" in again.output
