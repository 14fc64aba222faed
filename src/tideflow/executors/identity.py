"""Who local jobs run as: the ``--job-user``, resolved once, and what it may reach.

A server started as root with ``--job-user NAME`` runs every local job process as that
unprivileged OS user, so user code never runs as root and cannot open the server's database,
blobs or tokens. Decisions:

- **Where the switch happens.** In the fork server's child, after it has opened the attempt's
  log and before it claims the attempt, changes directory, imports the runtime or execs
  anything (:func:`become`): supplementary groups, then gid, then uid (real, effective and saved
  alike, so nothing can switch back), ``HOME`` / ``USER`` / ``LOGNAME`` set to the user's. The
  fork server itself stays root (it has to, to switch), but a job never gets one of its file
  descriptors: the child keeps only stdin (``/dev/null``), its log and its status pipe.
- **What the job user reaches.** The home and the folders above a job's own ones are the
  server's, mode ``0710`` with the job user's group: the job user may pass through them by
  name but not list them, and everything else in the home stays ``0600`` / ``0700``
  (:mod:`tideflow.server.home`). What is the job's is handed over to it
  (:func:`hand_over`): its attempt's working directory, its log file, its project's data
  directory. Requirements environments are opened for reading only: one environment serves
  every project with the same requirements, so a job that could write into it could plant
  code another project's job then runs.
- **The interpreter.** A job runs the server's own Python and imports Tideflow from the
  server's environment, so the job user must be able to read them. :func:`check_job_user`
  runs that import as the job user when the server starts and refuses to start, saying what
  failed, rather than letting every job fail later.

All local jobs share the one job user: they are isolated from the server, not from each other
(docs/server.md says so).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tideflow.errors import FailedPreconditionError, InvalidArgumentError
from tideflow.settings import scrubbed_environment

JOB_DIRECTORIES = ("work", "logs", "logs/jobs", "data", "envs")
"""Folders of the home a job user passes through (by name, without listing them)."""
PASS_THROUGH = 0o710
"""Mode of a folder the job user passes through: the server's, its group the job user's."""
_CHECK_MODULES = ("tideflow.engines.python.runtime", "tideflow.client")
_CHECK_TIMEOUT = 120.0


@dataclass(frozen=True)
class JobUser:
    """An unprivileged OS user that local jobs run as.

    Attributes:
        name: The user's name.
        uid: Its user id.
        gid: Its primary group id (the group of the folders it passes through).
        groups: Every group id it belongs to (its supplementary groups).
        home: Its home directory (``$HOME`` of its jobs; it need not exist).
    """

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str

    def to_json(self) -> dict[str, Any]:
        """The user as a JSON object (how the fork server is told)."""
        return {
            "name": self.name,
            "uid": self.uid,
            "gid": self.gid,
            "groups": list(self.groups),
            "home": self.home,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobUser:
        """The user :meth:`to_json` described."""
        return cls(
            name=str(data["name"]),
            uid=int(data["uid"]),
            gid=int(data["gid"]),
            groups=tuple(int(g) for g in data["groups"]),
            home=str(data["home"]),
        )


def resolve_job_user(name: str, *, euid: int | None = None) -> JobUser:
    """The job user ``name``, checked: the server must be root, the user must not be.

    Args:
        name: The OS user's name.
        euid: The server's effective uid (default: this process's).

    Raises:
        FailedPreconditionError: The server does not run as root.
        InvalidArgumentError: No such user, or it is root itself.
    """
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        raise FailedPreconditionError(
            f"--job-user {name} needs the server to run as root: switching each job to another "
            f"OS user takes root's privileges, and this server runs as {_user_name(euid)} "
            f"(uid {euid}). Start it as root, or drop --job-user (local jobs then run as the "
            "server's own user; see docs/server.md)"
        )
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise InvalidArgumentError(
            f"--job-user {name!r}: there is no such OS user (create one, e.g. "
            f"`useradd --system --no-create-home --shell /usr/sbin/nologin {name}`)",
            field="job_user",
        ) from None
    if entry.pw_uid == 0:
        raise InvalidArgumentError(
            f"--job-user {name!r} has uid 0: jobs must run as an unprivileged user",
            field="job_user",
        )
    return JobUser(
        name=name,
        uid=entry.pw_uid,
        gid=entry.pw_gid,
        groups=tuple(os.getgrouplist(name, entry.pw_gid)),
        home=entry.pw_dir,
    )


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def become(user: JobUser) -> None:
    """Turn this process into ``user`` for good (a fork server child, before any job code).

    Raises:
        PermissionError: The switch failed, or could be undone (the process must then exit).
    """
    os.setgroups(list(user.groups))
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
    if os.getresuid() != (user.uid,) * 3 or os.getresgid() != (user.gid,) * 3:
        raise PermissionError(f"could not switch to the job user {user.name}")
    try:
        os.setuid(0)
    except PermissionError:
        pass  # what we want: root is out of reach
    else:
        raise PermissionError(f"the job user {user.name} could switch back to root")
    os.environ.update({"HOME": user.home, "USER": user.name, "LOGNAME": user.name})


def pass_through(directory: Path, user: JobUser) -> None:
    """Let ``user`` pass through ``directory`` by name, without listing it (``0710``).

    The directory stays the server's; only its group becomes the job user's. It must be in a
    folder of the server's (so that no job can swap it for a link meanwhile).
    """
    info = directory.stat()
    if info.st_gid != user.gid:
        os.chown(directory, -1, user.gid)
    if stat.S_IMODE(info.st_mode) != PASS_THROUGH:
        os.chmod(directory, PASS_THROUGH)


def pass_through_below(top: Path, directory: Path, user: JobUser) -> None:
    """Make ``directory`` and its parents below ``top`` (exclusive) passable for ``user``.

    Missing ones are made ``0700`` first, whatever the umask: none is ever writable by the job
    user, who could otherwise slip a folder or a link of its own into the path.
    """
    folder = top
    for part in directory.relative_to(top).parts:
        folder = folder / part
        folder.mkdir(mode=0o700, exist_ok=True)
        pass_through(folder, user)


def hand_over(path: Path, user: JobUser) -> None:
    """Make ``path`` (and everything below it) ``user``'s, following no symbolic link.

    Walks with directory descriptors (``os.fwalk``), so a link planted meanwhile is changed
    itself, never what it points to.
    """
    os.chown(path, user.uid, user.gid, follow_symlinks=False)
    if not stat.S_ISDIR(path.lstat().st_mode):
        return
    for _, dirs, files, fd in os.fwalk(path, follow_symlinks=False):
        for name in (*dirs, *files):
            with contextlib.suppress(FileNotFoundError):
                os.chown(name, user.uid, user.gid, dir_fd=fd, follow_symlinks=False)


def check_job_user(user: JobUser, home: Path, *, python: str = sys.executable) -> None:
    """Check, as ``user``, that it can run jobs: import the runtime and pass into ``home``.

    Raises:
        FailedPreconditionError: It cannot, with what failed and what to do.
    """
    code = (
        "import os, sys\n"
        + "".join(f"import {module}\n" for module in _CHECK_MODULES)
        + "os.stat(os.path.join(sys.argv[1], '.'))\n"
    )
    env = {**scrubbed_environment(), "HOME": user.home, "USER": user.name}
    try:
        done = subprocess.run(
            [python, "-c", code, str(home)],
            user=user.uid,
            group=user.gid,
            extra_groups=list(user.groups),
            env=env,
            cwd="/",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_CHECK_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise FailedPreconditionError(
            f"--job-user {user.name} cannot run this server's Python {python}: {exc}. {_ADVICE}"
        ) from exc
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {done.returncode}"
        raise FailedPreconditionError(
            f"--job-user {user.name} cannot run jobs: as that user, this server's Python "
            f"{python} failed to import Tideflow's job runtime or to enter {home} ({reason}). "
            + _ADVICE
        )


_ADVICE = (
    "The job user needs to read and execute the interpreter, its standard library and the "
    "site-packages Tideflow is installed in, and to pass through every directory above them "
    "(a virtual environment under root's home is not reachable by another user): see "
    "docs/server.md, 'Running jobs as another OS user'"
)
