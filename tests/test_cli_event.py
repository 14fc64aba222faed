"""``tideflow event send|list|watch`` as real processes on a SQLite store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tideflow.testing import run_cli

DEADLINE = 60.0


def tideflow(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "--db", db, "--project", "cli", timeout=DEADLINE)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'events.db'}"


def test_send_then_list(db: str) -> None:
    sent = tideflow(
        "event",
        "send",
        "ctr",
        "0.31",
        "--type",
        "DRIFT_DETECTED",
        "--context",
        '{"run": 1}',
        "--json",
        db=db,
    )
    assert sent.returncode == 0, sent.stderr
    event = json.loads(sent.stdout)
    assert (event["key"], event["value"], event["event_type"], event["context"]) == (
        "ctr",
        "0.31",
        "DRIFT_DETECTED",
        {"run": 1},
    )
    listed = tideflow("event", "list", "--type", "DRIFT_DETECTED", "--json", db=db)
    assert [e["offset"] for e in json.loads(listed.stdout)] == [event["offset"]]
    table = tideflow("event", "list", db=db)
    assert "DRIFT_DETECTED" in table.stdout


def test_list_pages_with_a_cursor_and_filters_by_time(db: str) -> None:
    offsets = []
    for i in range(3):
        sent = tideflow("event", "send", "k", str(i), "--json", db=db)
        assert sent.returncode == 0, sent.stderr
        offsets.append(json.loads(sent.stdout)["offset"])
    first = tideflow("event", "list", "--limit", "2", "--json", db=db)
    assert [e["offset"] for e in json.loads(first.stdout)] == offsets[:2]
    assert "--cursor " in first.stderr
    cursor = first.stderr.split("--cursor ", 1)[1].split()[0]
    rest = tideflow("event", "list", "--limit", "2", "--cursor", cursor, "--json", db=db)
    assert [e["offset"] for e in json.loads(rest.stdout)] == offsets[2:]
    future = tideflow("event", "list", "--since", "2999-01-01", "--json", db=db)
    assert json.loads(future.stdout) == []
    past = tideflow("event", "list", "--until", "2000-01-01T00:00:00", "--json", db=db)
    assert json.loads(past.stdout) == []
    everything = tideflow("event", "list", "--since", "2000-01-01", "--json", db=db)
    assert [e["offset"] for e in json.loads(everything.stdout)] == offsets


def test_bad_input_is_a_clear_error(db: str) -> None:
    bad_context = tideflow("event", "send", "k", "v", "--context", "[1]", db=db)
    assert bad_context.returncode == 2
    assert "--context must be a JSON object" in bad_context.stderr
    empty_key = tideflow("event", "send", "", "v", db=db)
    assert empty_key.returncode == 1
    assert "event key must not be empty" in empty_key.stderr


def _watch(db: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tideflow",
            "event",
            "watch",
            "--db",
            db,
            "--project",
            "cli",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_banner(proc: subprocess.Popen[str]) -> None:
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "watching project 'cli'" in line


def test_watch_streams_new_events_live(db: str) -> None:
    tideflow("event", "send", "old", "before", db=db)
    watcher = _watch(db, "--count", "2", "--json", "--type", "T")
    _wait_for_banner(watcher)
    tideflow("event", "send", "skip", "x", "--type", "OTHER", db=db)
    tideflow("event", "send", "a", "1", "--type", "T", db=db)
    tideflow("event", "send", "b", "2", "--type", "T", db=db)
    out, err = watcher.communicate(timeout=DEADLINE)
    assert watcher.returncode == 0, err
    # Only events after the offset the watcher started at, and only of type T.
    assert [json.loads(line)["value"] for line in out.splitlines()] == ["1", "2"]


def test_ctrl_c_ends_watch_cleanly(db: str) -> None:
    watcher = _watch(db)
    _wait_for_banner(watcher)
    tideflow("event", "send", "k", "seen", db=db)
    assert watcher.stdout is not None
    line = watcher.stdout.readline()
    assert "k = seen" in line
    watcher.send_signal(signal.SIGINT)
    _, err = watcher.communicate(timeout=DEADLINE)
    assert watcher.returncode == 0
    assert "stopped after 1 event(s); resume with --after" in err
    assert "Traceback" not in err


def test_watch_replays_after_an_offset(db: str) -> None:
    first = json.loads(tideflow("event", "send", "k", "1", "--json", db=db).stdout)
    tideflow("event", "send", "k", "2", db=db)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tideflow",
            "event",
            "watch",
            "--db",
            db,
            "--project",
            "cli",
            "--after",
            str(first["offset"]),
            "--count",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["value"] == "2"
