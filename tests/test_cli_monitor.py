"""``tideflow monitor report`` on a real SQLite store with monitor metrics logged by the client."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tideflow.cli.main import app
from tideflow.client import connect

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'monitor.db'}"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def seed(db: str) -> None:
    """Two versions; 4 drift windows (device breached in window 2) and 3 quality windows."""
    with connect(db, project="ctr") as client:
        client.models.create("ctr")
        for _ in range(2):
            client.models.create_version("ctr", uri="file:///m", flavour="pickle")
        for step, (device, site) in enumerate([(0.01, 0.02), (0.02, 0.03), (0.41, 0.04)]):
            client.metrics.log("drift.device.chi2", device, step=step, model="ctr", version=1)
            client.metrics.log("drift.site.psi", site, step=step, model="ctr", version=1)
        client.metrics.log("drift.device.chi2", 0.03, step=3, model="ctr", version=2)
        client.metrics.log("drift.site.psi", 0.01, step=3, model="ctr", version=2)
        for step, (auc, loss) in enumerate([(0.74, 0.41), (0.73, 0.42), (0.58, 0.61)]):
            for name, value in (
                ("quality.auc", auc),
                ("quality.log_loss", loss),
                ("quality.calibration", 1.0 + step / 10),
                ("quality.samples", 500.0),
            ):
                client.metrics.log(name, value, step=step, model="ctr", version=1)
        client.metrics.log("prequential_auc", 0.7, model="ctr", version=1)  # not a monitor's
        drifted = {"device": {"stat": "chi2", "score": 0.41, "threshold": 0.2}}
        client.events.send(
            "ctr",
            json.dumps(
                {"model": "ctr", "version": 1, "window": 2, "samples": 500, "features": drifted}
            ),
            event_type="DRIFT_DETECTED",
            sender="example_monitor",
        )
        client.events.send(
            "ctr",
            json.dumps(
                {
                    "model": "ctr",
                    "version": 1,
                    "detector": "adwin",
                    "window": 2,
                    "samples": 500,
                    "metrics": {"auc": 0.58, "log_loss": 0.61},
                }
            ),
            event_type="MODEL_DEGRADED",
            sender="model_monitor",
        )


def test_report_json_groups_windows_and_marks_breaches(runner: CliRunner, db: str) -> None:
    seed(db)
    result = runner.invoke(app, ["monitor", "report", "ctr", "--db", db, "-p", "ctr", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [(w["step"], w["version"]) for w in report["drift"]] == [(0, 1), (1, 1), (2, 1), (3, 2)]
    assert report["drift"][2]["values"] == {"device": 0.41, "site": 0.04}
    assert report["drift"][2]["stats"] == {"device": "chi2", "site": "psi"}
    assert report["drift"][2]["breaches"] == {"device": 0.2}
    assert all(not w["breaches"] for i, w in enumerate(report["drift"]) if i != 2)
    assert [w["values"]["auc"] for w in report["quality"]] == [0.74, 0.73, 0.58]
    assert set(report["quality"][0]["values"]) == {"auc", "log_loss", "calibration", "samples"}
    assert [e["event_type"] for e in report["events"]] == ["DRIFT_DETECTED", "MODEL_DEGRADED"]
    assert report["files"] == []


def test_report_table(runner: CliRunner, db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rich reads COLUMNS once, when the CLI's console is made -- in whichever test of this
    # process imported it first: fix the width here, or the table wraps at 80 columns.
    from tideflow.cli import output

    monkeypatch.setattr(output.stdout, "_width", 200)
    seed(db)
    result = runner.invoke(
        app, ["monitor", "report", "ctr", "--db", db, "-p", "ctr"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "model quality per window" in out
    assert "device (chi2)" in out
    assert "site (psi)" in out
    assert "0.41" in out
    assert "0.58" in out
    assert "DRIFT_DETECTED" in out
    assert "MODEL_DEGRADED" in out
    assert "device chi2 0.41 > 0.2" in out
    assert "adwin: auc=0.58, log_loss=0.61" in out
    assert "prequential_auc" not in out


def test_report_writes_png_and_self_contained_html(
    runner: CliRunner, db: str, tmp_path: Path
) -> None:
    seed(db)
    out = tmp_path / "report"
    result = runner.invoke(
        app, ["monitor", "report", "ctr", "--db", db, "-p", "ctr", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    files = json.loads(result.output)["files"]
    assert sorted(Path(f).name for f in files) == ["drift.png", "quality.png", "report.html"]
    for name in ("drift.png", "quality.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 5000  # a real figure, not an empty canvas
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    assert page.count('src="data:image/png;base64,') == 2
    assert "http://" not in page
    assert "https://" not in page
    assert '<td class="breach">0.41</td>' in page
    assert "<th>device (chi2)</th>" in page
    assert "MODEL_DEGRADED" in page
    from html.parser import HTMLParser

    HTMLParser().feed(page)  # parses


def test_unknown_model_is_named(runner: CliRunner, db: str) -> None:
    seed(db)
    result = runner.invoke(app, ["monitor", "report", "nope", "--db", db, "-p", "ctr"])
    assert result.exit_code == 1
    assert "model 'nope' not found in project 'ctr'" in result.output


def test_no_monitor_metrics_yet(runner: CliRunner, db: str, tmp_path: Path) -> None:
    with connect(db, project="ctr") as client:
        client.models.create("ctr")
        client.models.create_version("ctr", uri="file:///m")
        client.metrics.log("prequential_auc", 0.7, model="ctr", version=1)
    out = tmp_path / "empty"
    result = runner.invoke(
        app, ["monitor", "report", "ctr", "--db", db, "-p", "ctr", "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "no monitor metrics for model 'ctr' yet" in result.output
    assert not out.exists()


def test_missing_matplotlib_names_the_extra(
    runner: CliRunner, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(db)
    # A None entry in sys.modules makes `import matplotlib` raise ImportError, as when absent.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = runner.invoke(
        app, ["monitor", "report", "ctr", "--db", db, "-p", "ctr", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "pip install 'tideflow[ml]'" in result.output
    assert "matplotlib" in result.output
