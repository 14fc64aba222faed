"""The test kit of ``tideflow.testing``: its functions, and the pytest fixtures of its plugin.

The fixtures are used here as a user's test uses them: this module names the plugin in its
``pytest_plugins``, as a user's conftest.py does.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

import tideflow as tide
from tests.databases import server_database
from tideflow.client import Client
from tideflow.testing import (
    InProcessServer,
    ManualClock,
    TideflowTestCluster,
    TideflowTestServer,
    WaitTimeout,
    invoke_cli,
    run_cli,
    wait_until,
)
from tideflow.testing.cli import cli_environment


def noop(ctx: Any, inputs: Any) -> Any:
    return None


def test_wait_until_returns_the_first_truthy_value() -> None:
    calls = iter([None, 0, "", "ready"])
    assert wait_until(lambda: next(calls), timeout=5, interval=0.001) == "ready"


def test_wait_until_fails_naming_what_it_waited_for_and_the_last_value() -> None:
    with pytest.raises(WaitTimeout, match=r"waiting for the answer \(last value: 0\)") as caught:
        wait_until(lambda: 0, timeout=0.05, what="the answer", interval=0.01)
    assert isinstance(caught.value, AssertionError)  # a test failure, as pytest reports it
    assert (caught.value.what, caught.value.last) == ("the answer", 0)


def test_wait_until_names_the_predicate_when_not_told_what() -> None:
    def job_started() -> bool:
        return False

    with pytest.raises(WaitTimeout, match=r"waiting for .*job_started"):
        wait_until(job_started, timeout=0.01, interval=0.01)


def test_the_cli_runner_scrubs_tideflow_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TIDEFLOW_SERVER", "grpc://127.0.0.1:1")
    monkeypatch.setenv("TIDEFLOW_TOKEN", "a-developers-own-token")
    monkeypatch.setenv("TIDEFLOW_HOME", "/home/someone/.tideflow")
    environment = cli_environment(home=tmp_path, env={"TIDEFLOW_PROJECT": "given", "COLUMNS": "9"})
    assert {k: v for k, v in environment.items() if k.startswith("TIDEFLOW_")} == {
        "TIDEFLOW_HOME": str(tmp_path),
        "TIDEFLOW_PROJECT": "given",
    }
    assert environment["COLUMNS"] == "9"
    assert environment["PATH"] == cli_environment()["PATH"]  # the rest is inherited


def test_the_cli_runner_runs_tideflow_on_the_home_it_is_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # An inherited server address would make the command fail to connect: it is not seen.
    monkeypatch.setenv("TIDEFLOW_SERVER", "grpc://127.0.0.1:1")
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    sent = run_cli("event", "send", "k", "v", "--db", db, "--project", "kit", timeout=60)
    assert sent.returncode == 0, sent.stderr
    listed = run_cli("event", "list", "--json", "--db", db, "--project", "kit", timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert '"key": "k"' in listed.stdout
    assert run_cli("no-such-command", home=tmp_path, timeout=60).returncode == 2


def test_the_in_process_cli_runs_tideflow_on_the_home_it_is_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TIDEFLOW_SERVER", "grpc://127.0.0.1:1")  # not seen by the command
    monkeypatch.setenv("TIDEFLOW_HOME", "/home/someone/.tideflow")
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    sent = invoke_cli("event", "send", "k", "v", "--db", db, "--project", "kit")
    assert sent.exit_code == 0, sent.output
    listed = invoke_cli("event", "list", "--json", "--db", db, "--project", "kit")
    assert '"key": "k"' in listed.stdout
    # The given home, not the developer's: its stale server.json (a dead pid) is cleared.
    (tmp_path / "server.json").write_text('{"pid": 999999999, "url": "grpc://127.0.0.1:1"}')
    stopped = invoke_cli("server", "stop", home=tmp_path)
    assert stopped.exit_code == 0, stopped.output
    assert not (tmp_path / "server.json").exists()
    assert invoke_cli("no-such-command", home=tmp_path).exit_code == 2


def test_the_kit_imports_no_pytest_and_no_plugin_is_registered_automatically() -> None:
    probe = "import sys, tideflow.testing; print('pytest' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"
    # An entry point would have pytest rewrite every tideflow module (see docs/testing.md).
    assert not [e for e in entry_points(group="pytest11") if e.value.startswith("tideflow")]


def test_the_client_fixture_talks_to_the_in_process_server(
    tideflow_client: Client, tideflow_server: InProcessServer, tideflow_project: str
) -> None:
    assert tideflow_project == "test"
    assert tideflow_server.url.startswith("grpc://127.0.0.1:")
    tideflow_client.models.create("ctr")
    version = tideflow_client.models.create_version("ctr", uri="file:///m1")
    assert version.version == 1
    sent = tideflow_client.events.send("ctr", "0.3", event_type="DRIFT_DETECTED")
    assert [e.offset for e in tideflow_client.events.list(key="ctr")][-1] == sent.offset


def test_the_clock_fixture_drives_the_in_process_schedulers_timers(
    tideflow_client: Client, tideflow_server: InProcessServer, tideflow_clock: ManualClock
) -> None:
    assert tideflow_server.clock is tideflow_clock
    wf = tide.workflow("hourly")
    with wf, tide.job("tick"):
        tide.user_node(processor=noop, name="tick_node")
    wf.periodic("tick", interval=timedelta(hours=1))
    tideflow_client.workflows.submit(wf)
    run = tideflow_client.workflows.start("hourly")

    def ticks() -> list[str]:
        return [j.status.value for j in tideflow_client.jobs.list(run.execution_id)]

    assert ticks() == []  # an hour has not passed: time stands still
    tideflow_clock.advance(timedelta(hours=1))
    # The local executor runs the job for real, in a process of its own.
    wait_until(lambda: ticks() == ["FINISHED"], timeout=60, what="the hourly tick to finish")
    tideflow_client.executions.stop(run.execution_id)


@pytest.mark.slow
def test_the_process_fixture_serves_and_survives_a_restart(
    tideflow_server_process: TideflowTestServer,
) -> None:
    with tideflow_server_process.client("kit") as client:
        client.models.create("ctr")
    tideflow_server_process.kill()
    tideflow_server_process.restart()
    with tideflow_server_process.client("kit") as client:
        assert [m.name for m in client.models.list()] == ["ctr"]


def test_a_cluster_refuses_sqlite_and_hosts_that_do_not_match_its_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SQLite is single-server"):
        TideflowTestCluster(f"sqlite:///{tmp_path / 'one.db'}")
    with pytest.raises(ValueError, match="hosts names 1 hosts for 2 members"):
        TideflowTestCluster("postgresql+psycopg://nowhere/db", size=2, hosts=["a"])


@pytest.mark.postgres
@pytest.mark.slow
def test_a_cluster_fails_over_as_docs_testing_shows() -> None:
    """The example of docs/testing.md, on a database of its own."""
    with server_database("postgres") as url, TideflowTestCluster(url) as cluster:
        assert cluster.url.count(",") == 2  # the multi-address URL names all three
        old = cluster.wait_for_leader()
        assert old is cluster.members[0]  # the first to start leads
        epoch = cluster.epoch()
        with cluster.client("test") as client:
            sent = client.events.send("ctr", "0.3")
            old.kill()
            new = cluster.wait_for_leader()
            assert new is not old
            assert cluster.epoch() == epoch + 1
            assert client.events.latest_offset() >= sent.offset  # answered by a survivor
        assert old not in cluster.beating()
        old.start()  # back on its home and port, as a follower
        assert cluster.wait_whole() is new
        assert cluster.member_id(old) is not None
