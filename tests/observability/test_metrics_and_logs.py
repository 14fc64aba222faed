"""/metrics after a small real run, and the server's and a job's JSON logs (issue 18, item 3).

One server (``--log-format json``) runs one small workflow to its end: a job that finishes, one
after it that logs a model version, one that fails. Then every family docs/operations.md lists
must be on /metrics with the counts of that run, and the logs must carry the ids as fields.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tideflow.cli.loader import load_workflows
from tideflow.domain.status import ExecutionStatus
from tideflow.testing import TideflowTestServer, wait_until

DOCS = Path(__file__).parents[2] / "docs" / "operations.md"
FLOW = textwrap.dedent(
    """\
    import tideflow as tide


    def first(ctx, inputs):
        ctx.logger.info("first job ran")


    def model(ctx, inputs):
        ctx.client.models.create("observed")
        ctx.client.models.create_version("observed", uri="file:///m")


    def broken(ctx, inputs):
        raise RuntimeError("meant to fail")


    with tide.workflow("observed") as wf:
        with tide.job("first"):
            tide.user_node(processor=first)
        with tide.job("model"):
            tide.user_node(processor=model)
        with tide.job("broken"):
            tide.user_node(processor=broken)
        wf.after("model", "first")
    """
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The server, and the execution it ran to its end."""
    home = tmp_path_factory.mktemp("observability")
    flow = home / "flow.py"
    flow.write_text(FLOW)
    with TideflowTestServer(home=home / "home", args=["--log-format", "json"]) as server:
        with server.client("observe") as client:
            (workflow,) = load_workflows(flow)
            client.workflows.submit(workflow)
            execution_id = client.workflows.start("observed").execution_id
            ended = wait_until(
                lambda: client.executions.get(execution_id).status is not ExecutionStatus.RUNNING,
                timeout=120,
                what="the execution to end",
            )
            assert ended
            logs = {job: client.jobs.logs(execution_id, job) for job in ("first", "broken")}
        yield {"server": server, "execution_id": execution_id, "job_logs": logs}


def documented_families() -> list[str]:
    """The metric names in the first column of docs/operations.md's metrics tables."""
    return re.findall(r"^\| `([a-z_]+)`", DOCS.read_text(), flags=re.MULTILINE)


def scrape(server: TideflowTestServer) -> dict[str, Any]:
    text = httpx.get(f"{server.http_url}/metrics", timeout=30).text
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample(families: dict[str, Any], name: str, suffix: str = "", **labels: str) -> float:
    """The value of ``name`` (+ ``suffix``) with ``labels`` (summed over the other labels)."""
    samples = [
        s
        for s in families[name].samples
        if s.name == name + suffix and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(s.value for s in samples)


def test_every_documented_family_is_on_metrics_after_a_run(run: dict[str, Any]) -> None:
    documented = documented_families()
    assert len(documented) >= 15  # the doc's tables were found
    families = scrape(run["server"])
    missing = [name for name in documented if name not in families]
    assert not missing, f"documented but not on /metrics: {missing}"


def test_the_run_is_counted(run: dict[str, Any]) -> None:
    families = scrape(run["server"])
    assert sample(families, "tideflow_store_up") == 1
    assert sample(families, "tideflow_attempts") == 0  # none left running once it ended
    assert sample(families, "tideflow_model_versions", status="GENERATED") == 1
    assert sample(families, "tideflow_commands_waiting") == 0  # every command was carried out
    finished = sample(
        families, "tideflow_job_duration_seconds", "_count", engine="python", status="FINISHED"
    )
    assert finished == 2
    failed = sample(
        families, "tideflow_job_duration_seconds", "_count", engine="python", status="FAILED"
    )
    assert failed >= 1
    # The execution's start and the "after" rule's firing at least.
    assert sample(families, "tideflow_scheduler_decision_seconds", "_count") >= 1
    assert sample(families, "tideflow_dispatcher_lag_events") >= 0
    assert sample(families, "process_resident_memory_bytes") > 0


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as JSON (each must be: that is the format)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_the_server_logs_actions_and_attempt_transitions_as_json(run: dict[str, Any]) -> None:
    server, execution_id = run["server"], run["execution_id"]
    lines = json_lines(server.log_file.read_text())
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    actions = [line for line in lines if line["message"].startswith("action ")]
    fired = [a for a in actions if a.get("job") == "model"]
    assert fired, actions
    assert fired[0]["execution_id"] == execution_id
    assert fired[0]["project"] == "observe"
    assert fired[0]["workflow"] == "observed"
    assert "after" in fired[0]["rule"]
    assert isinstance(fired[0]["event_offset"], int)
    moves = [line for line in lines if line.get("attempt") and line.get("job") == "broken"]
    assert [m["message"].rsplit(" ", 1)[-1] for m in moves][-1] == "FAILED"
    assert all(m["level"] == "INFO" and m["execution_id"] == execution_id for m in moves)


def test_jobs_log_json_with_their_ids(run: dict[str, Any]) -> None:
    first = json_lines(run["job_logs"]["first"])
    said = [line for line in first if line["message"] == "first job ran"]
    assert said
    assert said[0]["job"] == "first"
    assert said[0]["attempt"] == 1
    assert said[0]["execution_id"] == run["execution_id"]
    assert said[0]["workflow"] == "observed"
    assert said[0]["project"] == "observe"
    (failed,) = [
        line
        for line in json_lines(run["job_logs"]["broken"])
        if "RuntimeError: meant to fail" in line["message"]
    ]
    assert failed["level"] == "ERROR"
    assert failed["job"] == "broken"
    # The traceback, inside the one JSON line, names the user's file and line (item 5).
    assert 'flow.py", line 14, in broken' in failed["message"]


def test_lines_logged_while_serving_an_rpc_carry_its_request_id(run: dict[str, Any]) -> None:
    lines = json_lines(run["server"].log_file.read_text())
    # The execution's start (a StartWorkflowExecution call) records the first jobs' starts.
    started = [
        line
        for line in lines
        if line["message"].startswith("action START") and line.get("event_offset") is None
    ]
    assert started, [line["message"] for line in lines]
    assert all(len(line["request_id"]) == 32 for line in started)
    assert all(line["project"] == "observe" for line in started)


def test_executors_log_each_command_with_its_id(run: dict[str, Any]) -> None:
    lines = json_lines(run["server"].log_file.read_text())
    handed = [line for line in lines if line.get("command_id") and line.get("job") == "first"]
    assert handed, [line["message"] for line in lines]
    assert handed[0]["command_id"] == f"{run['execution_id']}:first:1:START"
    assert handed[0]["attempt"] == 1
    assert handed[0]["message"].startswith(f"command {handed[0]['command_id']} handed to the")
