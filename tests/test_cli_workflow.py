import json
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from tideflow.cli.main import app
from tideflow.compiler import WorkflowPlan

GOOD = """
import tideflow as tide


class Step(tide.Processor):
    def process(self, ctx, inputs):
        return inputs


with tide.workflow("alpha") as wf:
    with tide.job("train", streaming=True):
        tide.train(tide.read_dataset("clicks", processor=Step()), model="ctr", processor=Step())
    with tide.job("validate"):
        tide.validate(model="ctr", processor=Step())
wf.on_model_version("validate", model="ctr", event=tide.ModelVersionEvent.GENERATED)
wf.stop_on(tide.EventMatch(event_type="HALT"))

with tide.workflow("beta") as other:
    tide.read_dataset("d", processor=Step())
"""

BAD = """
import tideflow as tide

with tide.workflow("broken") as wf:
    tide.transform(None, processor=print)
wf.after("ghost", "nobody")
"""

runner = CliRunner()


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "flows.py"
    path.write_text(textwrap.dedent(GOOD))
    return path


def test_compile_prints_a_tree_of_jobs_nodes_and_rules(good_file):
    result = runner.invoke(app, ["workflow", "compile", str(good_file)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "workflow alpha" in out
    assert "workflow beta" in out
    assert "job train" in out
    assert "streaming" in out
    assert "train_1 (train; model=ctr; <- read_dataset_1)" in out
    assert "START on MODEL_GENERATED of model ctr" in out
    assert "STOP execution stop_on: event(type=HALT)" in out


def test_compile_json_prints_one_loadable_plan_per_workflow(good_file):
    result = runner.invoke(app, ["workflow", "compile", str(good_file), "--json"])
    assert result.exit_code == 0, result.output
    plans = [WorkflowPlan.from_json(line) for line in result.output.splitlines()]
    assert [plan.workflow for plan in plans] == ["alpha", "beta"]
    assert plans[0].payloads


def test_compile_selects_one_workflow(good_file):
    result = runner.invoke(
        app, ["workflow", "compile", str(good_file), "--workflow", "beta", "--json"]
    )
    assert result.exit_code == 0
    assert json.loads(result.output)["workflow"] == "beta"
    missing = runner.invoke(app, ["workflow", "compile", str(good_file), "-w", "gamma"])
    assert missing.exit_code == 2
    assert "no workflow named 'gamma' in the file (found: alpha, beta)" in missing.output


def test_compile_reports_every_problem_and_exits_1(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text(textwrap.dedent(BAD))
    result = runner.invoke(app, ["workflow", "compile", str(path)])
    assert result.exit_code == 1
    assert "workflow 'broken' does not compile" in result.output
    assert "missing input" in result.output
    assert "names unknown job 'ghost'" in result.output
    assert "bad.py:5" in result.output


def test_compile_of_a_missing_file_or_a_file_without_workflows(tmp_path):
    result = runner.invoke(app, ["workflow", "compile", str(tmp_path / "nope.py")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    result = runner.invoke(app, ["workflow", "compile", str(empty)])
    assert result.exit_code == 2
    assert "declares no workflow" in result.output


def test_compile_of_a_file_that_raises_shows_the_users_traceback(tmp_path):
    path = tmp_path / "raises.py"
    path.write_text("import tideflow\nraise RuntimeError('boom in user code')\n")
    result = runner.invoke(app, ["workflow", "compile", str(path)])
    assert result.exit_code == 1
    assert "RuntimeError: boom in user code" in result.output
    assert "raises.py" in result.output


def test_quickstart_refuses_a_duration_too_short_to_show_anything():
    # The real run is tests/test_ad_ctr.py::test_quickstart_json_in_a_fresh_home.
    result = runner.invoke(app, ["quickstart", "--duration", "3"])
    assert result.exit_code == 2
    assert "at least 10 seconds" in result.output


def test_console_script_runs_as_a_real_process(good_file):
    version = subprocess.run(
        [sys.executable, "-m", "tideflow", "version"], capture_output=True, text=True
    )
    assert version.returncode == 0
    assert version.stdout.strip().count(".") == 2
    result = subprocess.run(
        [sys.executable, "-m", "tideflow", "workflow", "compile", str(good_file), "--json"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_loader_leaves_no_trace_on_the_import_path(good_file, tmp_path):
    from tideflow.cli.loader import load_workflows

    before = list(sys.path)
    assert [wf.name for wf in load_workflows(good_file)] == ["alpha", "beta"]
    assert sys.path == before
    broken = tmp_path / "broken.py"
    broken.write_text("raise ValueError('no')\n")
    modules = set(sys.modules)
    with pytest.raises(Exception, match="raised ValueError: no"):
        load_workflows(broken)
    assert sys.path == before
    assert set(sys.modules) == modules
