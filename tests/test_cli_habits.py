"""CLI habits (issue 18, item 5): output formats, confirmations, clear errors, no stray stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
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
