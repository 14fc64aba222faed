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
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import site
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from tideflow.errors import FailedPreconditionError

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
    """

    def __init__(
        self, root: Path, *, installer_args: Sequence[str] = (), timeout: float = 1800.0
    ) -> None:
        self.root = root
        self.installer_args = list(installer_args)
        self.timeout = timeout
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
            with open(self.root / f"{key}.lock", "w") as lock_file:
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
            )
        (target / READY).write_text("")

    def _run(self, argv: Sequence[object], out: object, cwd: Path, target: Path) -> None:
        try:
            done = subprocess.run(
                [str(a) for a in argv],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
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
