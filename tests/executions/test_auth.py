"""Roles on the execution RPCs: readers look, writers start, stop, restart, pause."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.auth.conftest import issuer
from tests.executions.conftest import submit
from tideflow.errors import PermissionDeniedError
from tideflow.testing import TideflowTestServer


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TideflowTestServer]:
    home = tmp_path_factory.mktemp("auth-home")
    with TideflowTestServer(home=home, args=["--auth", "required"]) as running:
        yield running


def test_readers_see_executions_and_writers_change_them(
    auth_server: TideflowTestServer, project: str, flows: Path
) -> None:
    issue = issuer(auth_server.db_url)
    with auth_server.client(project, token=issue(project, "writer")) as writer:
        submit(writer, flows, "waits")
        run = writer.workflows.start("waits")
        with auth_server.client(project, token=issue(project, "reader")) as reader:
            assert reader.executions.get(run.execution_id).workflow == "waits"
            assert [e.execution_id for e in reader.executions.list()] == [run.execution_id]
            reader.executions.actions(run.execution_id)
            reader.executions.waiting_on(run.execution_id)
            reader.jobs.list(run.execution_id)
            assert reader.workflows.settings("waits").paused is False
            refused = [
                ("StartWorkflowExecution", lambda: reader.workflows.start("waits")),
                ("StopWorkflowExecution", lambda: reader.executions.stop(run.execution_id)),
                ("RestartJob", lambda: reader.jobs.restart(run.execution_id, "idle")),
                ("StopJob", lambda: reader.jobs.stop(run.execution_id, "first")),
                ("PauseWorkflow", lambda: reader.workflows.pause("waits")),
                ("ResumeWorkflow", lambda: reader.workflows.resume("waits")),
                (
                    "SetMaxActiveExecutions",
                    lambda: reader.workflows.set_max_active_executions("waits", 3),
                ),
            ]
            for method, call in refused:
                with pytest.raises(PermissionDeniedError, match=f"{method} needs 'writer'"):
                    call()
        assert writer.workflows.pause("waits").paused is True
        assert writer.workflows.resume("waits").paused is False
        assert writer.executions.stop(run.execution_id).status.value == "STOPPED"
