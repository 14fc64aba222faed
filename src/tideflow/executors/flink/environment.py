"""PyFlink's own virtual environment, created by ``tideflow engines setup flink``.

PyFlink pins old pandas, numpy, pyarrow, grpcio, protobuf and cloudpickle, so it can never live
in Tideflow's core environment. It gets a virtual environment of its own (default
``$TIDEFLOW_HOME/engines/flink/venv``; ``$TIDEFLOW_FLINK_VENV`` or ``--path`` elsewhere) holding
``apache-flink`` and, through a ``.pth`` file, the Tideflow package itself *without its
dependencies*: the in-engine driver (:mod:`tideflow.engines.flink.driver`) and user processors
that subclass ``tide.Processor`` import only Tideflow's pure layers (``sdk``, ``compiler``,
``domain``, ``io``), which need nothing beyond the standard library -- no gRPC, no protobuf.

The environment doubles as Flink's distribution: the ``apache-flink`` wheel ships Flink's
``bin/``, ``lib/`` and ``opt/`` inside the ``pyflink`` package, so ``FLINK_HOME`` is that package
directory.

Setup is idempotent: a ``tideflow-flink.json`` marker, written last, records what was installed;
a run that finds it (and the interpreter and ``pyflink`` in place) returns at once. A failed
install leaves no marker and raises :class:`FlinkEnvironmentError` with pip's own error lines.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tideflow
from tideflow.errors import FailedPreconditionError
from tideflow.settings import HOME_VARIABLE, Settings

VENV_VARIABLE = "TIDEFLOW_FLINK_VENV"
PYFLINK_REQUIREMENT = "apache-flink>=2.0,<3"
MARKER = "tideflow-flink.json"
_PTH = "_tideflow_source.pth"
SETUP_HINT = "tideflow engines setup flink"


class FlinkEnvironmentError(FailedPreconditionError):
    """The PyFlink environment is missing, incomplete or could not be built."""


def default_venv(environ: dict[str, str] | None = None) -> Path:
    """``$TIDEFLOW_FLINK_VENV``, else ``$TIDEFLOW_HOME/engines/flink/venv``."""
    env = dict(os.environ) if environ is None else environ
    if env.get(VENV_VARIABLE):
        return Path(env[VENV_VARIABLE]).expanduser().resolve()
    home = Settings.from_env({HOME_VARIABLE: env[HOME_VARIABLE]} if HOME_VARIABLE in env else {})
    return (home.home / "engines" / "flink" / "venv").resolve()


@dataclass(frozen=True)
class FlinkEnvironment:
    """One PyFlink virtual environment.

    Attributes:
        path: The environment's root directory.
    """

    path: Path

    @property
    def python(self) -> Path:
        """The environment's interpreter (Flink's ``python.executable``)."""
        return self.path / "bin" / "python"

    @property
    def marker(self) -> Path:
        """Written last by a complete setup."""
        return self.path / MARKER

    def info(self) -> dict[str, str] | None:
        """What the last complete setup recorded, or None when the environment is not ready."""
        try:
            data = json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return None
        if not self.python.exists() or not Path(data.get("flink_home", "")).is_dir():
            return None
        return {str(k): str(v) for k, v in data.items()}

    def is_ready(self) -> bool:
        """Whether a complete setup is in place."""
        return self.info() is not None

    def flink_home(self) -> Path:
        """``FLINK_HOME``: the installed ``pyflink`` package directory.

        Raises:
            FlinkEnvironmentError: The environment is not set up.
        """
        info = self.require()
        return Path(info["flink_home"])

    def require(self) -> dict[str, str]:
        """The setup record, or a clear error saying how to create the environment.

        Raises:
            FlinkEnvironmentError: The environment is missing or incomplete.
        """
        info = self.info()
        if info is None:
            raise FlinkEnvironmentError(
                f"the PyFlink environment {str(self.path)!r} is not set up: run "
                f"`{SETUP_HINT}` (or `{SETUP_HINT} --path DIR` and set ${VENV_VARIABLE})"
            )
        return info

    def setup(
        self,
        *,
        requirement: str = PYFLINK_REQUIREMENT,
        progress: Callable[[str], None] = lambda line: None,
        pip_args: tuple[str, ...] = (),
        timeout: float = 1800.0,
    ) -> dict[str, str]:
        """Create the environment if needed; return its setup record.

        Args:
            requirement: What to install for PyFlink.
            progress: Called with each line of progress (pip's output included).
            pip_args: Extra ``pip install`` options (an index, ``--find-links``).
            timeout: Seconds the whole install may take.

        Raises:
            FlinkEnvironmentError: The interpreter or pip failed; the message holds its last
                output lines.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time (CI and a test session)
            info = self.info()
            if info is not None and info.get("tideflow_source") == _source_dir():
                progress(f"PyFlink environment {self.path} is ready (pyflink {info['pyflink']})")
                return info
            started = time.monotonic()
            self.marker.unlink(missing_ok=True)
            if not self.python.exists():
                progress(f"creating the virtual environment {self.path}")
                self._run([sys.executable, "-m", "venv", str(self.path)], progress, timeout)
            if not (self.path / ".pyflink-installed").exists():
                progress(f"installing {requirement} (about 840 MB; takes a minute or two)")
                self._run(
                    [
                        str(self.python),
                        "-m",
                        "pip",
                        "install",
                        "--disable-pip-version-check",
                        "--progress-bar",
                        "off",
                        requirement,
                        *pip_args,
                    ],
                    progress,
                    timeout,
                )
                (self.path / ".pyflink-installed").write_text(requirement + "\n")
            self._link_tideflow()
            progress("checking that pyflink and tideflow import in the environment")
            probe = self._run(
                [
                    str(self.python),
                    "-c",
                    "import json, os, pyflink, tideflow.engines.flink.driver; "
                    "from importlib.metadata import version; "
                    "print(json.dumps({'flink_home': os.path.dirname(pyflink.__file__), "
                    "'pyflink': version('apache-flink')}))",
                ],
                lambda line: None,
                timeout=300,
            )
            found = json.loads(probe.strip().splitlines()[-1])
            info = {
                "flink_home": str(found["flink_home"]),
                "pyflink": str(found["pyflink"]),
                "python": str(self.python),
                "tideflow_source": _source_dir(),
                "tideflow": tideflow.__version__,
            }
            tmp = self.marker.with_suffix(".tmp")
            tmp.write_text(json.dumps(info, indent=2) + "\n")
            tmp.replace(self.marker)
            progress(
                f"PyFlink environment {self.path} is ready (pyflink {info['pyflink']}, "
                f"{time.monotonic() - started:.0f} s)"
            )
            return info

    def _link_tideflow(self) -> None:
        """Make this Tideflow importable in the environment, without its dependencies.

        A ``.pth`` file names the directory that holds the ``tideflow`` package when that
        directory is a source tree (an editable install); a package installed into another
        environment's site-packages is copied instead, so the environment never sees the
        core environment's other packages.
        """
        site_packages = Path(
            sysconfig.get_path("purelib", vars={"base": str(self.path), "platbase": str(self.path)})
        )
        site_packages.mkdir(parents=True, exist_ok=True)
        source = Path(_source_dir())
        pth = site_packages / _PTH
        copied = site_packages / "tideflow"
        if source.name in ("site-packages", "dist-packages"):
            import shutil

            pth.unlink(missing_ok=True)
            shutil.rmtree(copied, ignore_errors=True)
            shutil.copytree(
                source / "tideflow",
                copied,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
        else:
            pth.write_text(str(source) + "\n")

    def _run(self, argv: list[str], progress: Callable[[str], None], timeout: float) -> str:
        """Run ``argv``, streaming its output to ``progress``; return the output."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        try:
            proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
            )
        except OSError as exc:
            raise FlinkEnvironmentError(f"cannot run {argv[0]}: {exc}") from exc
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            lines.append(line)
            if not line.startswith("WARNING: Location"):
                progress(line)
            if time.monotonic() > deadline:
                proc.kill()
                break
        code = proc.wait()
        if code != 0:
            useful = [x for x in lines if x and not x.startswith("WARNING: Location")]
            tail = "\n".join(useful[-15:])
            raise FlinkEnvironmentError(
                f"setting up the PyFlink environment {str(self.path)!r} failed: "
                f"`{' '.join(argv[:4])} ...` exited with code {code}:\n{tail}"
            )
        return "\n".join(lines)


def _source_dir() -> str:
    """The directory holding the running ``tideflow`` package."""
    return str(Path(tideflow.__file__).resolve().parent.parent)
