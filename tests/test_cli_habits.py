"""CLI habits (issue 18, item 5): output formats, confirmations, clear errors, no stray stores."""

from __future__ import annotations

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


def test_serve_of_an_unknown_model_is_refused_with_the_models_there_are(
    runner: CliRunner, db: str
) -> None:
    with connect(db, project="ctr") as client:
        client.models.create("ctr")
        client.models.create("churn")
    result = runner.invoke(app, ["serve", "nosuch", "--db", db, "--project", "ctr"])
    assert result.exit_code == 1
    assert "no model 'nosuch' in project 'ctr'; its models: churn, ctr" in result.output
