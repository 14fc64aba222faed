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


def test_backfill_starts_each_tick_once_with_progress(tmp_path):
    path = tmp_path / "nightly.py"
    path.write_text(textwrap.dedent(SCHEDULED))
    db = ["--db", f"sqlite:///{tmp_path / 'tideflow.db'}"]
    assert runner.invoke(app, ["workflow", "submit", str(path), *db]).exit_code == 0
    args = ["workflow", "backfill", "nightly", "--from", "2024-01-01T00:00", "--to"]
    first = runner.invoke(app, [*args, "2024-01-01T02:00:00+00:00", *db])
    assert first.exit_code == 0, first.output
    assert "tick 1/3 2024-01-01T00:00:00+00:00: started execution 1" in first.output
    assert "tick 3/3 2024-01-01T02:00:00+00:00: started execution 3" in first.output
    assert "backfill of nightly: 3 started, 0 not" in first.output
    again = runner.invoke(app, [*args, "2024-01-01T03:00:00Z", *db, "--json"])
    assert again.exit_code == 0, again.output
    (only,) = json.loads(again.stdout)  # the first three ticks were handled already
    assert only["tick_time"] == "2024-01-01T03:00:00+00:00"
    assert only["execution_id"] == 4
    listed = json.loads(runner.invoke(app, ["execution", "list", *db, "--json"]).stdout)
    assert sorted(e["params"]["schedule_time"] for e in listed) == [
        f"2024-01-01T0{h}:00:00+00:00" for h in range(4)
    ]


def test_backfill_refuses_a_workflow_without_schedule_and_a_bad_time(tmp_path):
    path = tmp_path / "plain.py"
    path.write_text(
        textwrap.dedent(SCHEDULED).replace("wf.schedule(interval=3600, catchup=True)", "")
    )
    db = ["--db", f"sqlite:///{tmp_path / 'tideflow.db'}"]
    assert runner.invoke(app, ["workflow", "submit", str(path), *db]).exit_code == 0
    base = ["workflow", "backfill", "nightly", *db]
    missing = runner.invoke(app, [*base, "--from", "2024-01-01", "--to", "2024-01-02"])
    assert missing.exit_code == 1
    assert "has no schedule to backfill" in missing.output
    bad = runner.invoke(app, [*base, "--from", "yesterday", "--to", "2024-01-02"])
    assert bad.exit_code == 1
    assert "--from 'yesterday' is not an ISO 8601 time" in bad.output
