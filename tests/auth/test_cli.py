"""``tideflow token create|list|revoke`` and the ``--server`` / ``--token`` options."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from tideflow.cli.main import app
from tideflow.client import connect
from tideflow.errors import UnauthenticatedError
from tideflow.testing import TideflowTestServer


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_token_create_prints_a_working_token_as_the_last_word(
    runner: CliRunner, auth_server: TideflowTestServer
) -> None:
    project = f"cli_{uuid.uuid4().hex[:8]}"
    db = auth_server.db_url
    with connect(db, project=project):
        pass
    created = runner.invoke(
        app,
        ["token", "create", "--db", db, "--project", project, "--role", "writer", "--name", "ci"],
    )
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1].split()[-1]
    assert token.startswith("tf_")
    with auth_server.client(project, token=token) as client:
        client.models.create("from_cli")
        assert client.models.get("from_cli").name == "from_cli"

    listed = runner.invoke(app, ["token", "list", "--db", db, "--project", project, "--json"])
    assert listed.exit_code == 0, listed.output
    (entry,) = json.loads(listed.output)
    assert (entry["name"], entry["role"], entry["revoke_time"]) == ("ci", "writer", None)
    assert token not in listed.output  # only the hash is stored; it is never shown again

    revoked = runner.invoke(app, ["token", "revoke", str(entry["token_id"]), "--db", db, "--yes"])
    assert revoked.exit_code == 0, revoked.output
    with (
        pytest.raises(UnauthenticatedError, match="revoked"),
        auth_server.client(project, token=token) as client,
    ):
        client.models.list()


def test_token_create_refuses_an_unknown_role(runner: CliRunner, tmp_path: object) -> None:
    result = runner.invoke(
        app,
        ["token", "create", "--db", f"sqlite:///{tmp_path}/t.db", "-p", "x", "--role", "root"],
    )
    assert result.exit_code == 1
    assert "unknown role 'root'; choose one of reader, writer, admin" in result.output


def test_token_revoke_of_an_unknown_id_fails(runner: CliRunner, tmp_path: object) -> None:
    result = runner.invoke(
        app, ["token", "revoke", "42", "--yes", "--db", f"sqlite:///{tmp_path}/t.db"]
    )
    assert result.exit_code == 1
    assert "API token 42 not found" in result.output


def test_cli_commands_take_server_project_and_token(
    runner: CliRunner, auth_server: TideflowTestServer
) -> None:
    project = f"cli_{uuid.uuid4().hex[:8]}"
    db = auth_server.db_url
    created = runner.invoke(
        app, ["token", "create", "--db", db, "--project", project, "--role", "writer"]
    )
    token = created.output.strip().split()[-1]
    with connect(db, project=project) as local:
        local.models.create("ctr")
    remote = ["--server", auth_server.url, "--project", project]

    denied = runner.invoke(app, ["model", "list", *remote, "--json"])
    assert denied.exit_code == 1
    assert "requires an API token" in denied.output

    listed = runner.invoke(app, ["model", "list", *remote, "--token", token, "--json"])
    assert listed.exit_code == 0, listed.output
    assert [m["name"] for m in json.loads(listed.output)] == ["ctr"]

    sent = runner.invoke(
        app, ["event", "send", "k", "v", *remote, "--json"], env={"TIDEFLOW_TOKEN": token}
    )
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.output)["namespace"] == project

    both = runner.invoke(app, ["model", "list", *remote, "--db", db])
    assert both.exit_code == 2
    assert "give --server or --db, not both" in both.output
