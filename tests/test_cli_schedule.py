"""`tideflow workflow show` of a scheduled workflow: its schedule and next run time."""

import json
import textwrap
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from tideflow.cli.main import app

runner = CliRunner()

SCHEDULED = """
import tideflow as tide

def noop(ctx, inputs):
    return None

with tide.workflow("nightly") as wf, tide.job("report"):
    tide.command(["echo", "{schedule_time}"], name="echo")
wf.schedule(interval=3600, catchup=True)
"""


def test_show_prints_the_schedule_and_next_run_time(tmp_path):
    path = tmp_path / "nightly.py"
    path.write_text(textwrap.dedent(SCHEDULED))
    db = ["--db", f"sqlite:///{tmp_path / 'tideflow.db'}"]
    submitted = runner.invoke(app, ["workflow", "submit", str(path), *db])
    assert submitted.exit_code == 0, submitted.output
    before = datetime.now(UTC)
    shown = runner.invoke(app, ["workflow", "show", "nightly", *db])
    assert shown.exit_code == 0, shown.output
    assert "schedule every 3600s, catchup=True, next run 20" in shown.output
    as_json = json.loads(runner.invoke(app, ["workflow", "show", "nightly", *db, "--json"]).stdout)
    next_run = datetime.fromisoformat(as_json["next_run_time"])
    assert before < next_run <= datetime.now(UTC) + timedelta(hours=1)
    assert as_json["plan"]["schedule"]["catchup"] is True
    paused = runner.invoke(app, ["workflow", "pause", "nightly", *db])
    assert paused.exit_code == 0, paused.output
    shown = runner.invoke(app, ["workflow", "show", "nightly", *db])
    assert "(paused: ticks are skipped)" in shown.output
