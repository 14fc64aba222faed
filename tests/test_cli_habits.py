"""CLI habits (issue 18, item 5): output formats, confirmations, clear errors, no stray stores."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tideflow.cli.instant import parse_instant
from tideflow.cli.main import app
from tideflow.client import connect


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_serve_of_an_unknown_model_is_refused_with_the_models_there_are(
    runner: CliRunner, db: str
) -> None:
    with connect(db, project="ctr") as client:
        client.models.create("ctr")
        client.models.create("churn")
    result = runner.invoke(app, ["serve", "nosuch", "--db", db, "--project", "ctr"])
    assert result.exit_code == 1
    assert "no model 'nosuch' in project 'ctr'; its models: churn, ctr" in result.output


def seed_versions(db: str) -> None:
    with connect(db, project="ctr") as client:
        client.models.create("ctr")
        for _ in range(2):
            client.models.create_version("ctr", uri="file:///m", metrics={"auc": 0.7})


@pytest.mark.parametrize(
    ("flags", "parse"),
    [
        (["--json"], json.loads),
        (["--output", "json"], json.loads),
        (["-o", "yaml"], yaml.safe_load),
        (["--output", "YAML", "--json"], yaml.safe_load),  # --output decides
    ],
)
def test_output_formats_print_the_same_data(
    runner: CliRunner, db: str, flags: list[str], parse: Any
) -> None:
    seed_versions(db)
    result = runner.invoke(app, ["model", "versions", "ctr", "--db", db, "-p", "ctr", *flags])
    assert result.exit_code == 0, result.output
    assert [(v["version"], v["status"]) for v in parse(result.output)] == [
        (1, "GENERATED"),
        (2, "GENERATED"),
    ]


def test_output_table_is_the_default_and_a_bad_format_is_refused(
    runner: CliRunner, db: str
) -> None:
    seed_versions(db)
    base = ["model", "versions", "ctr", "--db", db, "-p", "ctr"]
    table = runner.invoke(app, [*base, "--output", "table"])
    assert table.exit_code == 0, table.output
    assert table.output == runner.invoke(app, base).output
    assert "GENERATED" in table.output
    assert "auc=0.7" in table.output
    bad = runner.invoke(app, [*base, "--output", "xml"])
    assert bad.exit_code == 2
    assert "'xml' is not one of" in bad.output


def test_streamed_yaml_is_one_document_per_item(runner: CliRunner, db: str) -> None:
    with connect(db, project="ctr") as client:
        client.events.send("k", "1")
        client.events.send("k", "2")
    result = runner.invoke(app, ["event", "list", "--db", db, "-p", "ctr", "-o", "yaml"])
    assert result.exit_code == 0, result.output
    (events,) = list(yaml.safe_load_all(result.output))
    assert [e["value"] for e in events] == ["1", "2"]


def test_project_list_names_every_project(runner: CliRunner, db: str) -> None:
    for name in ("ads", "churn"):
        connect(db, project=name).close()
    result = runner.invoke(app, ["project", "list", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    assert {"ads", "churn"} <= {p["name"] for p in json.loads(result.output)}
    table = runner.invoke(app, ["project", "list", "--db", db])
    assert "churn" in table.output


def test_workflow_delete_asks_first_and_yes_skips_the_question(
    runner: CliRunner, db: str, tmp_path: Path
) -> None:
    source = tmp_path / "flow.py"
    source.write_text(
        "import tideflow as tide\n\n"
        "def noop(ctx, inputs):\n    return None\n\n"
        "with tide.workflow('doomed') as wf:\n"
        "    with tide.job('only'):\n"
        "        tide.user_node(processor=noop)\n"
    )
    base = ["--db", db, "-p", "ctr"]
    submitted = runner.invoke(app, ["workflow", "submit", str(source), *base])
    assert submitted.exit_code == 0, submitted.output
    declined = runner.invoke(app, ["workflow", "delete", "doomed", *base], input="n\n")
    assert declined.exit_code == 1
    assert "Delete workflow 'doomed' of project 'ctr'" in declined.output
    assert "cancelled, nothing changed (pass --yes" in declined.output
    no_terminal = runner.invoke(app, ["workflow", "delete", "doomed", *base], input="")
    assert no_terminal.exit_code == 1
    assert runner.invoke(app, ["workflow", "show", "doomed", *base]).exit_code == 0
    agreed = runner.invoke(app, ["workflow", "delete", "doomed", *base], input="y\n")
    assert agreed.exit_code == 0, agreed.output
    assert runner.invoke(app, ["workflow", "show", "doomed", *base]).exit_code == 1
    runner.invoke(app, ["workflow", "submit", str(source), *base])
    scripted = runner.invoke(app, ["workflow", "delete", "doomed", "--yes", *base])
    assert scripted.exit_code == 0, scripted.output
    unknown = runner.invoke(app, ["workflow", "delete", "nosuch", *base])
    assert unknown.exit_code == 1
    assert "workflow 'nosuch' not found" in unknown.output  # before any question


def test_read_commands_never_create_a_store(runner: CliRunner, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"TIDEFLOW_HOME": str(home), "TIDEFLOW_DB": None, "TIDEFLOW_SERVER": None}
    for command in (
        ["execution", "list"],
        ["model", "list"],
        ["project", "list"],
        ["token", "list"],
        ["monitor", "report", "ctr"],
    ):
        result = runner.invoke(app, command, env=env)
        assert result.exit_code == 1, result.output
        assert f"no Tideflow store at {home / 'tideflow.db'} and no local server" in result.output
        assert "tideflow server start" in result.output
    assert not (home / "tideflow.db").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_server_that_is_down_is_reported_after_the_configured_deadline(
    runner: CliRunner,
) -> None:
    url = f"grpc://127.0.0.1:{free_port()}"
    began = time.monotonic()
    result = runner.invoke(
        app, ["execution", "list", "--server", url], env={"TIDEFLOW_CONNECT_TIMEOUT": "0.4"}
    )
    took = time.monotonic() - began
    assert result.exit_code == 1
    assert f"no Tideflow server answers at {url} (waited 0.4 s)" in result.output
    assert "tideflow server start" in result.output
    assert "Connection refused" not in result.output
    assert 0.4 <= took < 2.0  # one attempt: the calls' retries would take over 2.5 s


def test_a_bad_connect_deadline_names_the_variable(runner: CliRunner, db: str) -> None:
    result = runner.invoke(
        app, ["model", "list", "--db", db], env={"TIDEFLOW_CONNECT_TIMEOUT": "soon"}
    )
    assert result.exit_code == 2
    assert "$TIDEFLOW_CONNECT_TIMEOUT must be a positive number of seconds, got 'soon'" in (
        result.output
    )


def test_since_takes_iso_times_and_ages_and_explains_a_bad_value(
    runner: CliRunner, db: str
) -> None:
    with connect(db, project="ctr") as client:
        client.events.send("k", "1")
    base = ["event", "list", "--db", db, "-p", "ctr", "--json"]
    recent = runner.invoke(app, [*base, "--since", "1h"])
    assert recent.exit_code == 0, recent.output
    assert [e["value"] for e in json.loads(recent.output)] == ["1"]
    later = runner.invoke(app, [*base, "--since", "2999-01-01"])
    assert json.loads(later.output) == []
    before = runner.invoke(app, [*base, "--until", "2000-01-01T00:00:00+00:00"])
    assert json.loads(before.output) == []
    bad = runner.invoke(app, [*base, "--since", "yesterday"])
    assert bad.exit_code == 2
    flat = " ".join(bad.output.replace("│", " ").split())
    assert "'yesterday' is not a time: give an ISO 8601 time such as 2026-01-31" in flat
    assert "(e.g. --since 1d for the last 24 hours)" in flat


def test_ages_count_back_from_now() -> None:
    now = datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert parse_instant("1d12h", now=now) == datetime(2026, 1, 30, 0, tzinfo=UTC)
    assert parse_instant("2026-01-31T08:00", now=now) == datetime(2026, 1, 31, 8, tzinfo=UTC)


def test_shell_completion_is_on(runner: CliRunner) -> None:
    script = runner.invoke(app, ["--show-completion", "bash"], env={"SHELL": "/bin/bash"})
    assert script.exit_code == 0, script.output
    assert "complete -o default -F _tideflow_completion tideflow" in script.output

    def complete(words: str) -> list[str]:
        env = {
            "_TIDEFLOW_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - 1),
        }
        return runner.invoke(app, [], prog_name="tideflow", env=env).output.split()

    assert complete("tideflow project l") == ["list"]
    assert complete("tideflow model versions ctr --out") == ["--output"]


def test_token_revoke_asks_first(runner: CliRunner, db: str) -> None:
    created = runner.invoke(
        app, ["token", "create", "--db", db, "--project", "ctr", "--role", "reader", "--json"]
    )
    assert created.exit_code == 0, created.output
    token_id = str(json.loads(created.output)["token_id"])
    declined = runner.invoke(app, ["token", "revoke", token_id, "--db", db], input="n\n")
    assert declined.exit_code == 1
    assert f"Revoke API token {token_id}?" in declined.output
    listed = runner.invoke(app, ["token", "list", "--db", db, "--json"])
    assert json.loads(listed.output)[0]["revoke_time"] is None
    agreed = runner.invoke(app, ["token", "revoke", token_id, "--db", db, "-y"])
    assert agreed.exit_code == 0, agreed.output
