"""Jobs' own tokens: minted per attempt, role ``job``, one project and execution, revoked at the end.

A real server with ``--auth required`` runs a job that probes what its token may do and writes
what it saw to the project's data directory; the test then checks the answers, that the token
appears in no log, and that it is refused once the attempt has ended.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.auth.conftest import Issue
from tests.executions.conftest import submit, wait_for_job
from tideflow.errors import PermissionDeniedError, UnauthenticatedError
from tideflow.metadata import AccessService
from tideflow.store import Store
from tideflow.testing import TideflowTestServer

PROBE = """
    import json
    import os
    from datetime import timedelta

    import tideflow as tide
    from tideflow.client import connect
    from tideflow.errors import TideflowError


    def probe(ctx, inputs):
        client = ctx.client
        seen = {}

        def attempt(name, call):
            try:
                call()
                seen[name] = "ok"
            except TideflowError as e:
                seen[name] = f"{type(e).__name__}: {e}"

        def version():
            client.models.create("probed")
            client.models.create_version("probed", uri="file:///model")
            client.models.set_status("probed", 1, "VALIDATED")
            client.models.deploy("probed", 1)

        attempt("send_event", lambda: ctx.send_event("probe", "1"))
        attempt("model_version", version)
        attempt("dataset", lambda: client.datasets.register("probed", uri="file:///d"))
        attempt("own_execution", lambda: client.executions.get(ctx.execution_id))
        attempt("own_actions", lambda: client.executions.actions(ctx.execution_id))
        attempt("other_execution", lambda: client.executions.get(ctx.execution_id + 1000))
        attempt("list_executions", lambda: client.executions.list())
        attempt("start_workflow", lambda: client.workflows.start("probe"))
        attempt("delete_workflow", lambda: client.workflows.delete("probe"))
        attempt("stop_execution", lambda: client.executions.stop(ctx.execution_id))
        attempt("compact_events", lambda: client.events.compact(older_than=timedelta(0)))
        server, token = os.environ["TIDEFLOW_SERVER"], os.environ["TIDEFLOW_TOKEN"]

        def steal():
            with connect(server, project="someone_else", token=token) as other:
                other.events.send("stolen", "1")

        attempt("other_project", steal)
        report = {
            "seen": seen,
            "token": token,
            "variables": sorted(k for k in os.environ if k.startswith("TIDEFLOW_")),
        }
        (ctx.data_dir / "probe.json").write_text(json.dumps(report))


    with tide.workflow("probe") as wf:
        with tide.job("probe"):
            tide.user_node(processor=probe, name="probe")
"""


@pytest.fixture
def project() -> str:
    return f"jt_{uuid.uuid4().hex[:10]}"


def test_a_jobs_token_makes_the_jobs_calls_and_nothing_else(
    auth_server: TideflowTestServer, issue: Issue, project: str, tmp_path: Path
) -> None:
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "flow.py").write_text(textwrap.dedent(PROBE))
    with auth_server.client(project, token=issue(project, "writer")) as writer:
        submit(writer, tmp_path, "probe")
        run = writer.workflows.start("probe")
        wait_for_job(writer, run.execution_id, "probe", "probe", "FINISHED")
        log = writer.jobs.read_log(run.execution_id, "probe").text
    report = json.loads((auth_server.home / "data" / project / "probe.json").read_text())
    seen, token = report["seen"], report["token"]
    for allowed in ("send_event", "model_version", "dataset", "own_execution", "own_actions"):
        assert seen[allowed] == "ok", (allowed, seen[allowed])
    assert seen["other_execution"].startswith("PermissionDeniedError: a job's token may read")
    for method, name in [
        ("ListWorkflowExecutions", "list_executions"),
        ("StartWorkflowExecution", "start_workflow"),
        ("DeleteWorkflow", "delete_workflow"),
        ("StopWorkflowExecution", "stop_execution"),
        ("CompactEvents", "compact_events"),
    ]:
        assert seen[name].startswith("PermissionDeniedError"), (name, seen[name])
        assert f"jobs may not call {method}" in seen[name]
    assert seen["other_project"].startswith("PermissionDeniedError: API token")
    assert f"is for project '{project}'" in seen["other_project"]
    # The job got the server's address, its project, its data directory, its token and the
    # server's log format only.
    assert report["variables"] == [
        "TIDEFLOW_ATTEMPT_DIR",
        "TIDEFLOW_DATA_DIR",
        "TIDEFLOW_LOG_FORMAT",
        "TIDEFLOW_PROJECT",
        "TIDEFLOW_SERVER",
        "TIDEFLOW_TOKEN",
    ]
    # Minted for this attempt, listed with role job, and never written to a log.
    with Store.open(auth_server.db_url) as store:
        (minted,) = [t for t in AccessService(store).list_tokens(project) if t.role == "job"]
    assert minted.execution_id == run.execution_id
    assert minted.revoked  # the attempt FINISHED
    assert token not in log
    assert token not in auth_server.log_file.read_text()
    # Its attempt ended: the token is refused from then on.
    with (
        pytest.raises(UnauthenticatedError, match=f"API token {minted.token_id} was revoked"),
        auth_server.client(project, token=token) as late,
    ):
        late.events.list()


def test_job_tokens_are_not_for_people(auth_server: TideflowTestServer, project: str) -> None:
    with (
        Store.open(auth_server.db_url) as store,
        pytest.raises(Exception, match="job tokens are minted by the server"),
    ):
        AccessService(store).create_token(project, "job")


def test_a_job_token_of_project_b_cannot_read_project_a(
    auth_server: TideflowTestServer, issue: Issue, project: str
) -> None:
    other = f"{project}_b"
    with auth_server.client(project, token=issue(project, "writer")) as writer:
        writer.events.send("secret", "of a")
    with Store.open(auth_server.db_url) as store:
        _, token = AccessService(store).create_job_token(other, execution_id=1, job_execution_id=1)
    with (
        pytest.raises(PermissionDeniedError, match=f"is for project '{other}', not '{project}'"),
        auth_server.client(project, token=token) as intruder,
    ):
        intruder.events.list()
