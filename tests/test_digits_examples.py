"""The four digits examples (batch / stream train x batch / stream predict) for real.

Each runs with ``tideflow run`` as a real process in a fresh ``$TIDEFLOW_HOME``, and must end
FINISHED by itself with every job FINISHED: the streams are bounded, the streaming predictor
waits for a deployed version, then scores its stream and returns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pandas")
pytest.importorskip("sklearn")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
JOBS = {"train", "validate", "push", "predict"}
EXAMPLES = {
    "batch_train_batch_predict": "digits_batch_batch",
    "batch_train_stream_predict": "digits_batch_stream",
    "stream_train_batch_predict": "digits_stream_batch",
    "stream_train_stream_predict": "digits_stream_stream",
}


def tideflow(*args: str, home: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TIDEFLOW_HOME": str(home)}
    for variable in ("TIDEFLOW_SERVER", "TIDEFLOW_PROJECT", "TIDEFLOW_TOKEN", "TIDEFLOW_DB"):
        env.pop(variable, None)
    return subprocess.run(
        [sys.executable, "-m", "tideflow", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_tideflow_run_ends_finished_with_every_job_finished(example: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        run = tideflow(
            "run", f"examples/{example}/workflow.py", "--timeout", "180", home=home, timeout=240
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"workflow {EXAMPLES[example]}" in run.stdout
        assert "FINISHED" in run.stdout

        shown = tideflow("execution", "show", "1", "--json", home=home, timeout=60)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        data = json.loads(shown.stdout)
        assert data["execution"]["workflow"] == EXAMPLES[example]
        assert data["execution"]["status"] == "FINISHED"
        assert {job["job"] for job in data["jobs"]} == JOBS
        assert {job["status"] for job in data["jobs"]} == {"FINISHED"}, data["jobs"]

        # The predictions were written: every serving row scored by the deployed version.
        # Batch prediction runs again on each deployment: one file per predict attempt.
        files = sorted(home.glob(f"work/*/predict/*/{EXAMPLES[example]}_predictions.jsonl"))
        assert files
        for written in files:
            text = written.read_text(encoding="utf-8")
            rows = [json.loads(line) for line in text.splitlines()]
            assert len(rows) == 359
            assert all(0 <= row["prediction"] <= 9 for row in rows)
            assert all(row["model_version"] >= 1 for row in rows)
    finally:
        stopped = tideflow("server", "stop", home=home, timeout=60)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
