"""One PyFlink environment and one local Flink cluster per pytest session, shared by every test.

The environment is built by the project's own command (``tideflow engines setup flink``) into
``<repo>/.venv-flink`` (gitignored), so CI builds it once and later runs reuse it; outside CI
the tests skip with the command to run when it is missing. The cluster is started from that
environment's PyFlink package on loopback the first time a test needs it and stopped when the
session ends (``tests/session_end.py``: not left to the process's exit, which a pytest-xdist
worker may not live through); the Flink tests in ``tests/engines/flink`` and the contract suite's
``harness_flink.py`` share it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.session_end import at_session_end
from tideflow.executors.flink.cluster import LocalFlinkCluster
from tideflow.executors.flink.environment import FlinkEnvironment

REPO = Path(__file__).resolve().parents[3]
VENV = REPO / ".venv-flink"
JOBS = Path(__file__).with_name("jobs")

_cluster: dict[str, object] = {}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def flink_environment() -> FlinkEnvironment:
    """The session's PyFlink environment, built in CI; skip (or fail in CI) without it."""
    if "environment" in _cluster:
        return _cluster["environment"]  # type: ignore[return-value]
    environment = FlinkEnvironment(VENV)
    if not environment.is_ready() or in_ci():
        if not in_ci():
            pytest.skip(
                f"no PyFlink environment at {VENV}: run `tideflow engines setup flink --path "
                f"{VENV}` (CI=true builds it)"
            )
        result = subprocess.run(
            [sys.executable, "-m", "tideflow", "engines", "setup", "flink", "--path", str(VENV)],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if result.returncode != 0:
            pytest.fail(f"tideflow engines setup flink failed:\n{result.stderr[-3000:]}")
    _cluster["environment"] = environment
    return environment


def flink_address() -> str:
    """The REST address of the session's local cluster (started on first use)."""
    if "address" in _cluster:
        return str(_cluster["address"])
    environment = flink_environment()
    root = Path(tempfile.mkdtemp(prefix="tideflow-flink-cluster-"))
    cluster = LocalFlinkCluster(root, environment, task_slots=8)
    try:
        address = cluster.ensure_started(timeout=300)
    except Exception as exc:
        pytest.fail(f"the local Flink cluster did not start: {exc}")
    _cluster["address"] = address
    _cluster["cluster"] = cluster
    at_session_end(cluster.stop)
    return address
