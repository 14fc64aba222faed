"""Run the ``tideflow`` CLI as a user would: a child process, isolated from the caller's set-up.

:func:`invoke_cli` runs the same command line in the caller's process instead (typer's test
runner): no interpreter start-up and imports, which cost a child 1.5 s on a quiet 2-core machine
and ~5 s under load -- for the commands a test only reads with, after a real run.

The child inherits the environment *without* any ``TIDEFLOW_*`` variable, so a developer's own
``$TIDEFLOW_SERVER``, ``$TIDEFLOW_TOKEN`` or ``$TIDEFLOW_HOME`` can never point a test's command
at a real server or home; the test gives what the command should see (``home=``, ``env=``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typer.testing import Result

SCRUBBED_PREFIX = "TIDEFLOW_"
DEFAULT_TIMEOUT = 120.0


def cli_environment(
    *, home: Path | None = None, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """This process's environment without ``TIDEFLOW_*``, then ``$TIDEFLOW_HOME`` and ``env``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIX)}
    if home is not None:
        environment["TIDEFLOW_HOME"] = str(home)
    environment.update(env or {})
    return environment


def run_cli(
    *args: str,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    cwd: Path | str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``tideflow ARGS...`` (``python -m tideflow`` of this interpreter) and capture it.

    Args:
        args: The command line after ``tideflow``.
        home: ``$TIDEFLOW_HOME`` of the command (unset by default).
        env: Variables to set on top of the scrubbed environment (``TIDEFLOW_*`` ones too).
        timeout: Seconds before the command is killed (``subprocess.TimeoutExpired``).
        cwd: The working directory (this process's by default).

    Returns:
        The finished process, with ``stdout`` and ``stderr`` as text; a non-zero exit status is
        returned, not raised, so a test can assert on it.
    """
    return subprocess.run(
        [sys.executable, "-m", "tideflow", *args],
        env=cli_environment(home=home, env=env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
    )


def invoke_cli(
    *args: str, home: Path | None = None, env: Mapping[str, str] | None = None
) -> Result:
    """Run ``tideflow ARGS...`` in this process, with the environment :func:`run_cli` gives.

    Returns:
        typer's result: ``exit_code``, ``output`` (stdout and stderr), ``stdout``, ``stderr``;
        a non-zero exit status is returned, not raised.
    """
    from typer.testing import CliRunner

    from tideflow.cli.main import app

    overrides: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith(SCRUBBED_PREFIX)
    }
    if home is not None:
        overrides["TIDEFLOW_HOME"] = str(home)
    overrides.update(env or {})
    return CliRunner().invoke(app, list(args), env=overrides)
