"""``tideflow engines setup flink``: idempotent, clear errors, and a venv that imports the driver."""

from __future__ import annotations

import functools
import subprocess
import time
from pathlib import Path

import pytest

from tests.engines.flink.cluster import VENV
from tideflow.executors.flink.environment import FlinkEnvironment, FlinkEnvironmentError
from tideflow.testing import run_cli

# No TIDEFLOW_* variable reaches the command: no $TIDEFLOW_FLINK_VENV, so --path decides.
tideflow = functools.partial(run_cli, timeout=600)


def test_an_unknown_engine_is_refused() -> None:
    result = tideflow("engines", "setup", "storm")
    assert result.returncode == 2
    assert "unknown engine 'storm'" in result.stderr


def test_a_missing_environment_names_the_setup_command(tmp_path: Path) -> None:
    with pytest.raises(FlinkEnvironmentError, match="tideflow engines setup flink"):
        FlinkEnvironment(tmp_path / "nowhere").require()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_failed_install_exits_1_with_pips_error_and_no_marker(tmp_path: Path) -> None:
    target = tmp_path / "venv"
    result = tideflow(
        "engines",
        "setup",
        "flink",
        "--path",
        str(target),
        "--requirement",
        "apache-flink==0.0.0.dev0",
    )
    assert result.returncode == 1, result.stderr
    assert "setting up the PyFlink environment" in result.stderr
    assert "apache-flink==0.0.0.dev0" in result.stderr
    assert not FlinkEnvironment(target).is_ready()


@pytest.mark.flink
def test_a_second_setup_finds_the_environment_ready_quickly() -> None:
    if not FlinkEnvironment(VENV).is_ready():
        pytest.skip(
            f"no PyFlink environment at {VENV} (tideflow engines setup flink --path {VENV})"
        )
    started = time.monotonic()
    result = tideflow("engines", "setup", "flink", "--path", str(VENV), "--json")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 60
    assert '"pyflink"' in result.stdout
    assert "is ready" in result.stderr
    probe = subprocess.run(
        [
            str(VENV / "bin" / "python"),
            "-c",
            "import sys, tideflow.engines.flink.driver; "
            "print('grpc' in sys.modules, 'google.protobuf' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.stdout.split() == ["False", "False"], probe.stderr
