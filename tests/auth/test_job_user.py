"""``--job-user``: local jobs run as an unprivileged OS user and cannot reach the server's files.

For real: the module creates the OS user, lets it reach this checkout's interpreter (see
:func:`reachable_interpreter`), starts one server as root with ``--job-user`` and
``--auth required`` under umask 0, and runs probe jobs in project B (submitted with a project-B
writer token) that try what a hostile job would: read the database and the blobs, open the
store to mint a token, read project A through the API, switch back to root. Each probe writes
what it saw to its project's data directory and says it in its log.

These tests need root. CI runs as root, so there (``CI=true``) not being root fails them;
elsewhere they are skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import stat
import subprocess
import sys
import sysconfig
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tideflow
from tests.auth.conftest import Issue, issuer
from tests.executions.conftest import submit, wait_for_job
from tideflow.client import Client
from tideflow.errors import FailedPreconditionError, InvalidArgumentError
from tideflow.executors.identity import resolve_job_user
from tideflow.server.app import TideflowServer
from tideflow.server.config import ServerConfig
from tideflow.testing import TideflowTestServer

JOB_USER = "tideflow-job"

# One worker runs them all: one server start, and one worker changing folder modes.
pytestmark = pytest.mark.xdist_group("job_user")

PROBE = """
    import json
    import os
    import pwd
    import sys
    from pathlib import Path

    import tideflow as tide
    from tideflow.client import connect

    OTHER_PROJECT = {other!r}


    def attempt(call):
        try:
            return "ok: " + repr(call())[:200]
        except Exception as e:
            return f"{{type(e).__name__}}: {{e}}"[:600]


    def mint_a_token(db):
        from tideflow.metadata import AccessService
        from tideflow.store import Store

        with Store.open(f"sqlite:///{{db}}") as store:
            return AccessService(store).create_token(OTHER_PROJECT, "admin")[0].token_id


    def read_other_project():
        server, token = os.environ["TIDEFLOW_SERVER"], os.environ["TIDEFLOW_TOKEN"]
        with connect(server, project=OTHER_PROJECT, token=token) as other:
            return [e.value for e in other.events.list().items]


    def probe(ctx, inputs):
        home = Path(ctx.data_dir).parents[1]  # what a hostile job would guess
        fds = {{}}
        for fd in os.listdir("/proc/self/fd"):
            with __import__("contextlib").suppress(OSError):
                fds[fd] = os.readlink(f"/proc/self/fd/{{fd}}")
        seen = {{
            "uid": os.getuid(),
            "euid": os.geteuid(),
            "user": pwd.getpwuid(os.geteuid()).pw_name,
            "home_variable": os.environ.get("HOME"),
            "prefix": sys.prefix,
            "fds": fds,
            "become_root": attempt(lambda: os.setuid(0)),
            "read_database": attempt(lambda: (home / "tideflow.db").read_bytes()[:16]),
            "list_home": attempt(lambda: os.listdir(home)),
            "list_blobs": attempt(lambda: os.listdir(home / "blobs")),
            "read_server_json": attempt(lambda: (home / "server.json").read_text()),
            "read_server_log": attempt(lambda: (home / "logs" / "server.log").read_text()),
            "write_workdir": attempt(lambda: Path("scratch.txt").write_text("mine")),
            "write_environment": attempt(lambda: (Path(sys.prefix) / "planted.py").write_text("")),
            "mint_token": attempt(lambda: mint_a_token(home / "tideflow.db")),
            "read_other_project": attempt(read_other_project),
        }}
        for name, outcome in seen.items():
            print(f"probe {{name}}: {{outcome}}", flush=True)
        (ctx.data_dir / f"{{ctx.workflow}}.json").write_text(json.dumps(seen))


    with tide.workflow({workflow!r}) as wf:
        with tide.job("probe"):
            tide.user_node(processor=probe, name="probe")
"""


def _needs_root() -> None:
    if os.geteuid() == 0:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"CI runs as root and must test --job-user, but this runs as uid {os.geteuid()}"
        )
    pytest.skip("--job-user needs root (a server switching jobs to another OS user); CI runs it")


def ensure_user(name: str) -> pwd.struct_passwd:
    """The OS user ``name``, created (system user, no home, no shell) if missing."""
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    done = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 9):  # 9: it exists (another test run made it meanwhile)
        pytest.fail(f"useradd {name} failed: {done.stderr.strip()}")
    return pwd.getpwnam(name)


def _may_pass(path: Path, user: pwd.struct_passwd) -> bool:
    info = path.stat()
    groups = os.getgrouplist(user.pw_name, user.pw_gid)
    if info.st_uid == user.pw_uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


@contextlib.contextmanager
def reachable_interpreter(user: pwd.struct_passwd) -> Iterator[None]:
    """Let ``user`` pass through the folders above this checkout's Python, for the duration.

    A job runs the server's interpreter and imports Tideflow from the server's environment
    (here: ``.venv`` of the checkout, its base interpreter maybe under root's ``0700`` home, as
    pyenv's). Every folder above them that ``user`` may not pass through gets ``o+x`` (pass
    through by name, no listing) until the tests end -- what docs/server.md tells operators to
    grant with ``setfacl -m u:USER:x`` instead.
    """
    targets = {
        Path(os.path.realpath(sys.executable)).parent,
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(tideflow.__file__).resolve().parent,
        *(Path(sysconfig.get_path(name)) for name in ("stdlib", "platstdlib", "purelib")),
    }
    opened: dict[Path, int] = {}
    for target in targets:
        for folder in [*reversed(target.parents), target]:
            if folder not in opened and not _may_pass(folder, user):
                opened[folder] = stat.S_IMODE(folder.stat().st_mode)
                os.chmod(folder, opened[folder] | stat.S_IXOTH)
    try:
        yield
    finally:
        for folder, mode in opened.items():
            os.chmod(folder, mode)


@pytest.fixture(scope="module")
def job_user() -> Iterator[pwd.struct_passwd]:
    """The job user, able to run this checkout's Python (root only)."""
    _needs_root()
    user = ensure_user(JOB_USER)
    with reachable_interpreter(user):
        yield user


@pytest.fixture(scope="module")
def isolated(job_user: pwd.struct_passwd) -> Iterator[TideflowTestServer]:
    """A root server with ``--job-user`` and ``--auth required``, started under umask 0."""
    server = TideflowTestServer(args=["--job-user", job_user.pw_name, "--auth", "required"])
    previous = os.umask(0)  # the server sets its files' modes itself, whatever the umask
    try:
        server.start()
    finally:
        os.umask(previous)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def issue_on(isolated: TideflowTestServer) -> Issue:
    return issuer(isolated.db_url)


def run_probe(
    server: TideflowTestServer,
    issue: Issue,
    tmp_path: Path,
    *,
    project: str,
    other: str,
    requirements: str | None = None,
) -> tuple[dict[str, Any], str]:
    """Run the probe in ``project`` with a writer token; its report and its log."""
    workflow = "probe_env" if requirements else "probe"
    folder = tmp_path / workflow
    folder.mkdir()
    (folder / "flow.py").write_text(textwrap.dedent(PROBE.format(other=other, workflow=workflow)))
    if requirements is not None:
        (folder / "requirements.txt").write_text(requirements)
    client: Client
    with server.client(project, token=issue(project, "writer")) as client:
        submit(client, tmp_path, workflow)
        run = client.workflows.start(workflow)
        wait_for_job(client, run.execution_id, workflow, "probe", "FINISHED")
        log = client.jobs.read_log(run.execution_id, "probe").text
    report = json.loads((server.home / "data" / project / f"{workflow}.json").read_text())
    return report, log


@pytest.fixture(scope="module")
def projects(isolated: TideflowTestServer, issue_on: Issue) -> tuple[str, str]:
    """Project A, holding a secret event, and project B, whose jobs try to reach it."""
    a, b = f"ja_{uuid.uuid4().hex[:8]}", f"jb_{uuid.uuid4().hex[:8]}"
    with isolated.client(a, token=issue_on(a, "writer")) as writer:
        writer.events.send("secret", "of project a")
    return a, b


def test_a_job_runs_as_the_job_user_and_cannot_reach_the_server_or_project_a(
    isolated: TideflowTestServer,
    issue_on: Issue,
    projects: tuple[str, str],
    job_user: pwd.struct_passwd,
    tmp_path: Path,
) -> None:
    a, b = projects
    report, log = run_probe(isolated, issue_on, tmp_path, project=b, other=a)

    assert (report["uid"], report["euid"], report["user"]) == (
        job_user.pw_uid,
        job_user.pw_uid,
        job_user.pw_name,
    )
    assert report["home_variable"] == job_user.pw_dir
    assert report["become_root"].startswith("PermissionError")
    for what in ("read_database", "list_home", "list_blobs", "read_server_json"):
        assert report[what].startswith("PermissionError: [Errno 13] Permission denied"), (
            what,
            report[what],
        )
    assert report["read_server_log"].startswith("PermissionError"), report["read_server_log"]
    # No store: opening the database fails, so no token can be minted there.
    assert not report["mint_token"].startswith("ok"), report["mint_token"]
    assert "unable to open database file" in report["mint_token"], report["mint_token"]
    # Its own token is for project B only.
    assert report["read_other_project"].startswith("PermissionDeniedError"), report
    assert f"is for project '{b}', not '{a}'" in report["read_other_project"]
    assert report["write_workdir"].startswith("ok")
    # It holds no descriptor of the server's: stdin is /dev/null, stdout / stderr its log, fd 3
    # the status pipe, and whatever it opened itself (the listing above, gRPC's own).
    fds = report["fds"]
    assert fds["0"] == "/dev/null"
    assert fds["1"] == fds["2"]
    assert fds["1"].startswith(str(isolated.home / "logs" / "jobs"))
    assert not [target for target in fds.values() if "tideflow.db" in target or "blobs" in target]
    # And it says why, in its log.
    assert "probe read_database: PermissionError: [Errno 13] Permission denied" in log
    assert "probe mint_token: " in log
    assert "unable to open database file" in log
    assert "probe read_other_project: PermissionDeniedError" in log
    # What it made is the job user's; the data directory is the job user's too.
    data = isolated.home / "data" / b
    assert data.stat().st_uid == job_user.pw_uid
    assert (data / "probe.json").stat().st_uid == job_user.pw_uid


def test_a_job_with_requirements_runs_as_the_job_user_in_a_read_only_environment(
    isolated: TideflowTestServer,
    issue_on: Issue,
    projects: tuple[str, str],
    job_user: pwd.struct_passwd,
    tmp_path: Path,
) -> None:
    a, b = projects
    report, log = run_probe(
        isolated, issue_on, tmp_path, project=b, other=a, requirements="cloudpickle\n"
    )

    assert report["euid"] == job_user.pw_uid
    envs = isolated.home / "envs"
    assert Path(report["prefix"]).parent == envs  # it ran in its environment (exec'd)
    assert report["write_environment"].startswith("PermissionError"), report
    assert report["read_database"].startswith("PermissionError")
    assert report["read_other_project"].startswith("PermissionDeniedError")
    env = Path(report["prefix"])
    assert env.stat().st_uid == 0
    assert stat.S_IMODE(env.stat().st_mode) == 0o755
    assert "probe write_environment: PermissionError" in log


def test_the_servers_files_are_private_whatever_the_umask(
    isolated: TideflowTestServer, job_user: pwd.struct_passwd
) -> None:
    home = isolated.home

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert (mode(home), home.stat().st_gid) == (0o710, job_user.pw_gid)
    for private_file in ("tideflow.db", "tideflow.db-wal", "tideflow.db-shm", "server.json"):
        assert mode(home / private_file) == 0o600, private_file
    assert mode(home / "logs" / "server.log") == 0o600
    assert mode(home / "server.out") == 0o600
    assert mode(home / "blobs") == 0o700
    for passable in ("work", "logs", "logs/jobs", "data", "envs"):
        assert (mode(home / passable), (home / passable).stat().st_gid) == (
            0o710,
            job_user.pw_gid,
        ), passable


def test_job_user_needs_a_root_server(job_user: pwd.struct_passwd, tmp_path: Path) -> None:
    home = tmp_path / "home"
    command = [
        sys.executable, "-m", "tideflow", "server", "start", "--job-user", job_user.pw_name,
        "--port", "0", "--http-port", "0",
    ]  # fmt: skip
    env = {**os.environ, "TIDEFLOW_HOME": str(home), "HOME": "/"}
    as_job_user = subprocess.run(
        ["runuser", "-u", job_user.pw_name, "--", *command],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert as_job_user.returncode == 2, as_job_user.stderr
    message = " ".join(as_job_user.stderr.split())
    assert f"--job-user {job_user.pw_name} needs the server to run as root" in message
    assert f"this server runs as {job_user.pw_name} (uid {job_user.pw_uid})" in message

    unknown = subprocess.run(
        [*command[:6], "tideflow-no-such-user", *command[7:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert unknown.returncode == 2, unknown.stderr
    assert "--job-user 'tideflow-no-such-user': there is no such OS user" in " ".join(
        unknown.stderr.split()
    )
    assert not home.exists()  # refused before touching anything


def test_the_root_check_says_why_and_names_the_user() -> None:
    with pytest.raises(FailedPreconditionError, match="needs the server to run as root") as info:
        resolve_job_user("nobody", euid=4242)
    assert "this server runs as uid 4242 (uid 4242)" in str(info.value)
    with pytest.raises(InvalidArgumentError, match="'tideflow-no-such-user': there is no such"):
        resolve_job_user("tideflow-no-such-user", euid=0)
    with pytest.raises(InvalidArgumentError, match="'root' has uid 0"):
        resolve_job_user("root", euid=0)


def test_a_server_config_with_a_job_user_refuses_to_start_unless_root(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("checked as a non-root user by test_job_user_needs_a_root_server")
    config = ServerConfig(db_url=f"sqlite:///{tmp_path / 'db'}", home=tmp_path, job_user="nobody")
    with pytest.raises(FailedPreconditionError, match="needs the server to run as root"):
        TideflowServer(config).start()
