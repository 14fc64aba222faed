"""Reading job logs: offsets, tails, UTF-8 boundaries, and only files under the home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tideflow as tide
from tideflow.client import connect
from tideflow.errors import FailedPreconditionError
from tideflow.metadata import ExecutionService, WorkflowService
from tideflow.scheduler.joblog import log_path, read_log


def test_read_log_by_offset_tail_and_limit(tmp_path: Path) -> None:
    path = tmp_path / "1.log"
    path.write_text("one\ntwo\nthree\n")
    assert read_log(path, after=0, tail=None, limit=100) == ("one\ntwo\nthree\n", 0, 14, 14)
    assert read_log(path, after=4, tail=None, limit=3) == ("two", 4, 7, 14)
    assert read_log(path, after=0, tail=2, limit=100) == ("two\nthree\n", 4, 14, 14)
    assert read_log(path, after=0, tail=9, limit=100)[0] == "one\ntwo\nthree\n"
    assert read_log(path, after=99, tail=None, limit=100) == ("", 14, 14, 14)
    assert read_log(tmp_path / "missing.log", after=0, tail=None, limit=100) == ("", 0, 0, 0)


def test_a_cut_never_splits_a_utf8_character(tmp_path: Path) -> None:
    path = tmp_path / "1.log"
    path.write_bytes("aé€b".encode())  # 1 + 2 + 3 + 1 bytes
    text, _, end, _ = read_log(path, after=0, tail=None, limit=4)
    assert (text, end) == ("aé", 3)
    rest, start, end, size = read_log(path, after=end, tail=None, limit=100)
    assert (rest, start, end, size) == ("€b", 3, 7, 7)


def test_only_logs_under_the_home_are_served(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "logs").mkdir(parents=True)
    inside = home / "logs" / "1.log"
    inside.write_text("fine\n")
    outside = tmp_path / "secret.txt"
    outside.write_text("secret\n")
    os.symlink(outside, home / "logs" / "link.log")

    assert log_path(home, str(inside)) == inside.resolve()
    assert log_path(home, f"file://{inside}") == inside.resolve()
    with pytest.raises(FailedPreconditionError, match="outside the Tideflow home"):
        log_path(home, str(outside))
    with pytest.raises(FailedPreconditionError, match="outside the Tideflow home"):
        log_path(home, str(home / "logs" / "link.log"))
    with pytest.raises(FailedPreconditionError, match="outside the Tideflow home"):
        log_path(home, str(home / "logs" / ".." / ".." / "secret.txt"))


def test_a_job_whose_log_uri_leaves_the_home_gets_no_log(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("secret\n")
    url = f"sqlite:///{home / 'tideflow.db'}"
    with connect(url, project="p") as client:
        with tide.workflow("w") as wf, tide.job("j"):
            tide.user_node(processor=lambda ctx, inputs: None)
        plan = tide.compile(wf)
        WorkflowService(client.store).create_snapshot("p", "w", plan=plan.to_json())
        executions = ExecutionService(client.store)
        run = executions.create_execution("p", "w")
        attempt = executions.create_job_execution("p", run.execution_id, "j")
        executions.set_job_status("p", attempt.job_execution_id, "STARTING", log_uri=str(secret))
        with pytest.raises(FailedPreconditionError, match="outside the Tideflow home"):
            client.jobs.logs(run.execution_id, "j")
