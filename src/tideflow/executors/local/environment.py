"""Virtual environments for code packages with a ``requirements.txt``, one per requirements hash.

An environment is built once for each distinct (requirements content, Python version, installer
options) and shared by every job that needs the same: ``$TIDEFLOW_HOME/envs/<hash>/``. It is
created with ``--system-site-packages`` *and* a ``.pth`` file that adds the server's own
site-packages after the environment's, so a job sees Tideflow (and everything the server has)
while the packages its requirements install take precedence.

Packages are installed with the server's pip (``pip --python <env python>``), so the new
environment needs no pip of its own; the installer's options (``--no-index``, an index URL,
``--find-links``) come from the executor's ``installer_args``. A failed install removes the
half-built environment and raises :class:`RequirementsError` with the installer's own error
lines; the full output goes to the job's log. Builds of one environment are serialised by a
lock file, so two jobs (or two executors) never build it twice; a ``.ready`` marker, written
last, is what makes an environment usable.

Installing requirements runs code the package names (a local project's build, an sdist's
``setup.py``). With a job user (``--job-user``) the installer therefore runs as that user, never
as root: the server creates the environment and hands it over, ``pip`` installs into it as the
job user, and the server then takes it back and leaves it readable, not writable, by everyone
who can reach it -- one environment serves every project with the same requirements, so no
job may change it. A finished environment is always readable by others (``a+rX``), whatever the
server's umask: the job user must be able to run it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import site
import stat
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tideflow.errors import FailedPreconditionError
from tideflow.executors.identity import JobUser, hand_over
from tideflow.settings import scrubbed_environment

READY = ".ready"
_PTH = "_tideflow_server.pth"


class RequirementsError(FailedPreconditionError):
    """Installing a code package's requirements failed; the message holds the installer's error."""


class RequirementsEnvironments:
    """The requirements environments under ``root``.

    Args:
        root: ``$TIDEFLOW_HOME/envs``.
        installer_args: Extra ``pip install`` options.
        timeout: Seconds an install may take.
        job_user: The OS user the installer runs as (the server's own user if ``None``).
    """

    def __init__(
        self,
        root: Path,
        *,
        installer_args: Sequence[str] = (),
        timeout: float = 1800.0,
        job_user: JobUser | None = None,
    ) -> None:
        self.root = root
        self.installer_args = list(installer_args)
        self.timeout = timeout
        self.job_user = job_user
        self.builds = 0
        """How many environments this object has built (not reused)."""
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def key(self, requirements: bytes) -> str:
        """The hash naming the environment for ``requirements``."""
        h = hashlib.sha256()
        h.update(f"python {sys.version_info[0]}.{sys.version_info[1]}\n".encode())
        h.update(("\0".join(self.installer_args) + "\n").encode())
        h.update(requirements)
        return h.hexdigest()[:32]

    def ensure(self, requirements: Path, *, log: Path) -> Path:
        """The Python of the environment for ``requirements``, built now if needed.

        Args:
            requirements: The ``requirements.txt`` (relative paths in it are resolved from its
                directory).
            log: Where the installer's output is appended.

        Raises:
            RequirementsError: The installer failed.
        """
        key = self.key(requirements.read_bytes())
        target = self.root / key
        python = target / "bin" / "python"
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if (target / READY).exists():
                return python
            self.root.mkdir(parents=True, exist_ok=True)
            # 0600: a job user that could open it could hold the lock and block every build.
            lock_fd = os.open(self.root / f"{key}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
            with open(lock_fd, "w") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)  # another executor on this home
                if not (target / READY).exists():
                    self._build(target, requirements, log)
                    self.builds += 1
        return python

    def _build(self, target: Path, requirements: Path, log: Path) -> None:
        shutil.rmtree(target, ignore_errors=True)  # a build that crashed half-way
        with open(log, "ab") as out:
            out.write(f"[tideflow] building the environment {target}\n".encode())
            out.flush()
            self._run(
                [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", target],
                out,
                requirements.parent,
                target,
            )
            python = target / "bin" / "python"
            site_dir = Path(
                subprocess.run(
                    [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
            )
            parents = [*site.getsitepackages(), str(Path(__file__).resolve().parents[2])]
            (site_dir / _PTH).write_text(
                "".join(f"import site; site.addsitedir({p!r})\n" for p in parents)
            )
            if self.job_user is not None:
                hand_over(target, self.job_user)
            self._run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "--python",
                    python,
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "-r",
                    requirements.name,
                    *self.installer_args,
                ],
                out,
                requirements.parent,
                target,
                as_job_user=True,
            )
        _seal(target, self.job_user)
        (target / READY).write_text("")
        os.chmod(target / READY, 0o644)

    def _run(
        self,
        argv: Sequence[object],
        out: object,
        cwd: Path,
        target: Path,
        *,
        as_job_user: bool = False,
    ) -> None:
        user = self.job_user if as_job_user else None
        identity: dict[str, Any] = {}
        if user is not None:
            identity = {
                "user": user.uid,
                "group": user.gid,
                "extra_groups": list(user.groups),
                "env": {**scrubbed_environment(), "HOME": user.home, "USER": user.name},
            }
        try:
            done = subprocess.run(
                [str(a) for a in argv],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
                **identity,
            )
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise RequirementsError(
                f"installing requirements.txt took longer than {self.timeout:g} s"
            ) from exc
        output = done.stdout + done.stderr
        out.write(output.encode())  # type: ignore[attr-defined]
        if done.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
            errors = [line for line in lines if line.startswith("ERROR")] or lines[-3:]
            summary = " | ".join(errors)[:1500] or f"exit code {done.returncode}"
            raise RequirementsError(f"installing requirements.txt failed: {summary}")


def _seal(target: Path, user: JobUser | None) -> None:
    """Make the environment the server's again, readable (not writable) by everyone else.

    The installer may have run as ``user``, who owned the tree until now: the walk goes
    through directory descriptors, follows no link, and changes only what ``user`` owns (a
    hard link it made to someone else's file is left alone).
    """
    uid, gid = os.geteuid(), os.getegid()
    owner = None if user is None else user.uid
    for _, _, files, fd in os.fwalk(target, follow_symlinks=False):
        _take_back(fd, owner, uid, gid, 0o755)
        for name in files:
            try:
                file_fd = os.open(
                    name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd
                )
            except OSError:  # a symbolic link: only its owner matters (its mode means nothing)
                link = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if owner is None or link.st_uid == owner:
                    os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)
                continue
            try:
                info = os.fstat(file_fd)
                mode = 0o755 if stat.S_ISREG(info.st_mode) and info.st_mode & 0o111 else 0o644
                _take_back(file_fd, owner, uid, gid, mode)
            finally:
                os.close(file_fd)


def _take_back(fd: int, owner: int | None, uid: int, gid: int, mode: int) -> None:
    info = os.fstat(fd)
    if owner is not None and info.st_uid != owner:
        return
    os.fchown(fd, uid, gid)
    os.fchmod(fd, mode)
