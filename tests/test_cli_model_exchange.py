"""``tideflow model versions`` shows signatures; ``model export`` and ``model import``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tideflow.cli.main import app
from tideflow.client import connect
from tideflow.serving.models import save_model

pytest.importorskip("mlflow")
pytest.importorskip("sklearn")


def test_versions_show_the_signature_and_models_go_out_and_come_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from river import linear_model
    from sklearn.linear_model import LogisticRegression

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    example = [{"a": 0.5, "b": 1, "tag": None}, {"a": 1.5, "b": 2, "tag": "x"}]
    with connect(db, project="ctr") as client:
        save_model(
            client,
            LogisticRegression().fit([[0, 0], [1, 1]], [0, 1]),
            model="ctr",
            input_example=example,
        )
        save_model(client, linear_model.LogisticRegression(), model="online")
    runner = CliRunner()
    # Rich fixes the console's width when the CLI's output module is imported, from COLUMNS
    # as it was then (80 in a pytest-xdist worker): fix it here or the signature is cut.
    from tideflow.cli import output

    monkeypatch.setattr(output.stdout, "_width", 250)
    base = ["--db", db, "--project", "ctr"]
    table = runner.invoke(app, ["model", "versions", "ctr", *base], env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    assert "a:double, b:long, tag:string?" in table.output
    listed = json.loads(runner.invoke(app, ["model", "versions", "ctr", *base, "--json"]).output)
    assert listed[0]["signature"][2] == {"name": "tag", "type": "string", "required": False}
    assert listed[0]["origin"] == "logged"
    assert "scikit-learn" in listed[0]["libraries"]

    out = tmp_path / "exported"
    exported = runner.invoke(
        app, ["model", "export", "ctr", "1", "--format", "mlflow", "--out", str(out), *base]
    )
    assert exported.exit_code == 0, exported.output
    assert (out / "MLmodel").is_file()
    imported = runner.invoke(app, ["model", "import", str(out), "--name", "back", *base, "--json"])
    assert imported.exit_code == 0, imported.output
    (version,) = json.loads(imported.output)
    assert (version["model"], version["version"], version["status"]) == ("back", 1, "GENERATED")
    assert version["origin"] == "imported"
    assert version["signature"] == listed[0]["signature"]

    refused = runner.invoke(
        app,
        ["model", "export", "online", "1", "--format", "onnx", "--out", str(tmp_path / "o"), *base],
    )
    assert refused.exit_code == 1
    assert "ONNX export covers scikit-learn" in refused.output
    assert not (tmp_path / "o").exists()
