"""The server's files are private whatever the umask, and root never follows what a job planted.

No root needed: these check the pieces ``--job-user`` relies on (tests/auth/test_job_user.py
runs them together, as root).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tideflow.domain.attempt import AttemptFiles, write_control_file
from tideflow.executors.base import ExecutorContext
from tideflow.executors.identity import JobUser
from tideflow.executors.local.environment import _seal
from tideflow.server.app import _write_atomically
from tideflow.server.config import ServerConfig
from tideflow.server.executors import refusing_executor
from tideflow.server.home import private_database, secure_home
from tideflow.server.run import PrivateRotatingFileHandler


@pytest.fixture
def no_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_secure_home_makes_the_servers_files_private(tmp_path: Path, no_umask: None) -> None:
    home = tmp_path / "home"
    for folder in ("blobs/packages", "logs/jobs/1", "work/1", "data/p", "envs"):
        (home / folder).mkdir(parents=True)
    files = ["tideflow.db", "tideflow.db-wal", "server.json", "server.out", "logs/server.log"]
    for name in files:
        (home / name).write_text("x")
    outside = tmp_path / "outside"
    outside.write_text("not the server's")
    (home / "link").symlink_to(outside)

    secure_home(ServerConfig(db_url=f"sqlite:///{home / 'tideflow.db'}", home=home), None)

    assert mode(home) == 0o700
    for name in files:
        assert mode(home / name) == 0o600, name
    for folder in ("blobs", "logs", "logs/jobs", "work", "data", "envs"):
        assert mode(home / folder) == 0o700, folder
    assert mode(outside) == 0o666  # a link is left alone, and what it points to
    # Only the top is set: a private folder hides what is inside.
    assert mode(home / "blobs" / "packages") == 0o777


def test_the_servers_log_and_server_json_are_made_private(tmp_path: Path, no_umask: None) -> None:
    handler = PrivateRotatingFileHandler(tmp_path / "server.log", maxBytes=10, backupCount=2)
    try:
        handler.emit(logging.makeLogRecord({"msg": "a line longer than ten bytes"}))
        handler.emit(logging.makeLogRecord({"msg": "another line, rotated"}))
    finally:
        handler.close()
    logs = sorted(tmp_path.glob("server.log*"))
    assert len(logs) > 1  # rotated
    assert {mode(p) for p in logs} == {0o600}
    _write_atomically(tmp_path / "server.json", {"db": "sqlite:///x"})
    assert mode(tmp_path / "server.json") == 0o600


def test_a_new_database_is_private_before_sqlite_opens_it(tmp_path: Path, no_umask: None) -> None:
    # SQLite gives -wal and -shm the database's mode: created 0600 first, none of them is
    # ever world-readable, with no chmod after the fact.
    from tideflow.store import Store

    url = f"sqlite:///{tmp_path / 'store' / 'tideflow.db'}"
    private_database(url)
    assert mode(tmp_path / "store") == 0o700
    assert mode(tmp_path / "store" / "tideflow.db") == 0o600
    with Store.open(url) as store:
        store.run(lambda c: None)
        names = sorted(p.name for p in (tmp_path / "store").iterdir())
        assert names == ["tideflow.db", "tideflow.db-shm", "tideflow.db-wal"]
        assert {mode(tmp_path / "store" / name) for name in names} == {0o600}


def test_a_real_servers_files_are_private_under_a_permissive_umask(tmp_path: Path) -> None:
    from tideflow.testing import TideflowTestServer

    home = tmp_path / "home"
    previous = os.umask(0o022)  # the usual umask: files 0644, folders 0755 unless set
    try:
        with TideflowTestServer(home=home, env={"TIDEFLOW_EXECUTORS": ""}) as server:
            with server.client("modes") as client:
                client.events.send("k", "v")
                client.models.create("m")
            created = {
                name: mode(home / name)
                for name in (
                    "tideflow.db",
                    "tideflow.db-wal",
                    "tideflow.db-shm",
                    "server.json",
                    "logs/server.log",
                )
            }
            folders = {name: mode(home / name) for name in (".", "logs", "blobs")}
    finally:
        os.umask(previous)
    assert created == dict.fromkeys(created, 0o600)
    assert folders == dict.fromkeys(folders, 0o700)


def test_control_files_are_written_without_following_a_planted_link(tmp_path: Path) -> None:
    files = AttemptFiles(tmp_path / "work")
    files.control.mkdir(parents=True)
    target = tmp_path / "precious"
    target.write_text("untouched")
    files.stop.symlink_to(target)  # the job put a link where the executor writes

    write_control_file(files.stop, '{"reason": "STOPPED"}')

    assert target.read_text() == "untouched"
    assert not files.stop.is_symlink()
    assert files.read_json(files.stop) == {"reason": "STOPPED"}
    assert [p.name for p in files.control.iterdir()] == ["stop.json"]  # no temporary left


def test_control_files_are_not_written_through_a_linked_folder(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    files = AttemptFiles(tmp_path / "work")
    files.workdir.mkdir()
    files.control.symlink_to(elsewhere)  # the job swapped its control folder for a link

    with pytest.raises(NotADirectoryError):  # O_DIRECTORY | O_NOFOLLOW on a link
        write_control_file(files.launch, "{}")
    assert list(elsewhere.iterdir()) == []


def test_control_files_are_read_without_links_fifos_or_bound(tmp_path: Path) -> None:
    files = AttemptFiles(tmp_path / "work")
    files.control.mkdir(parents=True)
    secret = tmp_path / "secret.json"
    secret.write_text('{"status": "FAILED", "error": "a secret of the server"}')
    files.result.symlink_to(secret)
    os.mkfifo(files.spawned)  # would block a plain read for ever
    files.launch.write_text('{"pid": 1, "pad": "' + "x" * (2 << 20) + '"}')

    assert files.read_result() is None
    assert files.read_json(files.spawned) is None
    assert files.read_json(files.launch) is None


def test_a_finished_environment_is_readable_whatever_the_umask(tmp_path: Path) -> None:
    env = tmp_path / "env"
    previous = os.umask(0o077)
    try:
        (env / "bin").mkdir(parents=True)
        (env / "bin" / "tool").write_text("#!/bin/sh\n")
        os.chmod(env / "bin" / "tool", 0o700)
        (env / "lib.py").write_text("")
        (env / "bin" / "python").symlink_to("/usr/bin/python3")
    finally:
        os.umask(previous)

    _seal(env, None)

    assert (mode(env), mode(env / "bin")) == (0o755, 0o755)
    assert (mode(env / "bin" / "tool"), mode(env / "lib.py")) == (0o755, 0o644)


class _Executions:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def set_job_status(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((*args, kwargs))


def test_executors_that_cannot_switch_users_refuse_their_jobs(tmp_path: Path) -> None:
    executions = _Executions()
    done: list[str] = []
    context = ExecutorContext(
        home=tmp_path,
        executions=executions,  # type: ignore[arg-type]
        workflows=None,  # type: ignore[arg-type]
        on_command_done=done.append,
    )
    user = JobUser(name="tfjob", uid=999, gid=999, groups=(999,), home="/")
    command = type("Command", (), {"project": "p", "job_execution_id": 7, "command_id": "c7"})()

    executor = refusing_executor("spark", user, context)
    executor.launch(command, None)  # type: ignore[arg-type]

    assert executor.name == "spark"
    ((project, job_execution_id, status, extra),) = executions.calls
    assert (project, job_execution_id, status) == ("p", 7, "FAILED")
    assert "runs jobs as the OS user tfjob (--job-user)" in extra["error"]
    assert "the spark executor cannot" in extra["error"]
    assert done == ["c7"]
