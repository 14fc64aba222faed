"""``tideflow db`` and ``tideflow model`` on a temporary SQLite store, in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tideflow.cli.main import app
from tideflow.client import connect


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def seed(db: str) -> None:
    with connect(db, project="ctr") as client:
        client.models.create("ctr", description="click-through")
        for _ in range(2):
            v = client.models.create_version(
                "ctr", uri="file:///m", flavour="sklearn", metrics={"auc": 0.7}
            )
            client.models.set_status("ctr", v.version, "VALIDATED")


def test_db_check_then_upgrade(runner: CliRunner, db: str) -> None:
    checked = runner.invoke(app, ["db", "check", "--db", db])
    assert checked.exit_code == 1
    assert "empty" in checked.output
    assert f"tideflow db upgrade --db {db}" in checked.output
    upgraded = runner.invoke(app, ["db", "upgrade", "--db", db, "--json"])
    assert upgraded.exit_code == 0, upgraded.output
    assert json.loads(upgraded.output)["state"] == "current"
    assert runner.invoke(app, ["db", "check", "--db", db]).exit_code == 0


def test_db_defaults_to_tideflow_home(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade"], env={"TIDEFLOW_HOME": str(tmp_path / "home")})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "home" / "tideflow.db").exists()


def test_model_lifecycle_commands(runner: CliRunner, db: str) -> None:
    seed(db)
    base = ["--db", db, "--project", "ctr"]
    listed = runner.invoke(app, ["model", "list", *base])
    assert listed.exit_code == 0, listed.output
    assert "ctr" in listed.output
    assert "click-through" in listed.output
    assert runner.invoke(app, ["model", "deploy", "ctr", "1", *base]).exit_code == 0
    deployed = runner.invoke(app, ["model", "deploy", "ctr", "2", *base, "--json"])
    assert json.loads(deployed.output)[0]["status"] == "DEPLOYED"
    assert json.loads(deployed.output)[0]["flavour"] == "sklearn"
    versions = runner.invoke(app, ["model", "versions", "ctr", *base, "--json"])
    assert [v["status"] for v in json.loads(versions.output)] == ["DEPRECATED", "DEPLOYED"]
    rolled = runner.invoke(app, ["model", "rollback", "ctr", *base, "--json"])
    assert json.loads(rolled.output)[0]["version"] == 1
    table = runner.invoke(app, ["model", "versions", "ctr", *base])
    assert "DEPLOYED" in table.output
    assert "auc=0.7" in table.output


def test_model_errors_are_clean_messages(runner: CliRunner, db: str) -> None:
    seed(db)
    base = ["--db", db, "--project", "ctr"]
    illegal = runner.invoke(app, ["model", "set-status", "ctr", "1", "GENERATED", *base])
    assert illegal.exit_code == 1
    assert "illegal transition VALIDATED -> GENERATED" in illegal.output
    missing = runner.invoke(app, ["model", "versions", "nope", *base])
    assert missing.exit_code == 1
    assert "model 'nope' not found" in missing.output
    bad_db = runner.invoke(app, ["model", "list", "--db", "oracle://x/y"])
    assert bad_db.exit_code == 1
    assert "unsupported database" in bad_db.output
