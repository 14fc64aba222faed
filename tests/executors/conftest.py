"""A local executor on a temporary home, fed by an in-memory outbox, its jobs served by a server.

``FakeOutbox`` stands in for the scheduler's outbox (the ``CommandSource`` protocol): tests put
commands in, the real :class:`~tideflow.executors.loop.CommandLoop` takes them. Workflows are
built from ``steps.py``, copied into each code package as ``tfsteps.py`` so jobs import their
processors from the package, as users' jobs do.

Jobs speak only the API: a rig opens the SQLite store of the session's ``job_server`` (a real
server running no executors) in-process, with a project of its own, and its jobs call that
server over gRPC. The server's scheduler sees the rig's job-status events like any others, so
it may end a rig's execution once its attempts have ended; rigs never look at that.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tideflow.client import Client, connect
from tideflow.domain.metadata import JobExecution
from tideflow.domain.scheduling import CommandAction, JobCommand, command_id
from tideflow.domain.status import JobStatus
from tideflow.executors.base import ExecutorContext
from tideflow.executors.local import LocalExecutor
from tideflow.executors.loop import CommandLoop
from tideflow.metadata import ExecutionService
from tideflow.testing import TideflowTestServer, wait_until

STEPS = Path(__file__).with_name("steps.py")


class FakeOutbox:
    """An in-memory ``CommandSource``; it records what was taken and completed."""

    def __init__(self, executions: ExecutionService, project: str) -> None:
        self.executions = executions
        self.project = project
        self.pending: list[JobCommand] = []
        self.taken: list[str] = []
        self.done: list[str] = []
        self.issued: list[int] = []
        self.starts: dict[int, JobCommand] = {}
        self._cond = threading.Condition()

    def put(self, command: JobCommand) -> None:
        with self._cond:
            self.pending.append(command)
            if command.job_execution_id not in self.issued:
                self.issued.append(command.job_execution_id)
            if command.action is CommandAction.START:
                self.starts[command.job_execution_id] = command
            self._cond.notify_all()

    def take_commands(self, executor: str, *, limit: int = 100) -> list[JobCommand]:
        with self._cond:
            taken, self.pending = self.pending[:limit], self.pending[limit:]
            self.taken += [c.command_id for c in taken]
            return taken

    def complete_command(self, command_id: str) -> None:
        with self._cond:
            self.done.append(command_id)
            self._cond.notify_all()

    def wait_for_commands(self, timeout: float | None = None, *, executor: str = "local") -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: bool(self.pending), timeout)

    def wake(self, executor: str) -> None:
        with self._cond:
            self._cond.notify_all()

    def running_attempts(self, executor: str) -> list[JobCommand]:
        live = (JobStatus.STARTING, JobStatus.RUNNING)
        return [
            command
            for i, command in self.starts.items()
            if self.executions.get_job_execution(self.project, i).status in live
        ]


class Rig:
    """One home, project, outbox and executor (restartable) for a test, on ``server``'s store."""

    def __init__(self, root: Path, server: TideflowTestServer, **options: Any) -> None:
        self.root = root
        self.server = server
        self.home = root / "home"
        self.home.mkdir(parents=True)
        self.code = root / "code"
        self.code.mkdir()
        shutil.copy(STEPS, self.code / "tfsteps.py")
        (self.code / "flow.py").write_text("# the workflow is built by the test\n")
        self.project = f"p{uuid.uuid4().hex[:8]}"
        self.url = server.db_url
        self.client: Client = connect(self.url, project=self.project)
        self.executions = ExecutionService(self.client.store)
        self.outbox = FakeOutbox(self.executions, self.project)
        self.options = {"heartbeat_interval": 0.2, "stop_grace": 5.0, **options}
        self.executor: LocalExecutor | None = None
        self.loop: CommandLoop | None = None
        self.start()

    def start(self, source: Any = None, **options: Any) -> LocalExecutor:
        """Start (or restart) the executor and its command loop (on ``source``, or the fake)."""
        context = ExecutorContext(
            home=self.home,
            executions=self.executions,
            workflows=self.client.services.workflows,
            server_url=self.server.url,
            options={**self.options, **options},
        )
        self.executor = LocalExecutor(context)
        self.loop = CommandLoop(source or self.outbox, self.executor, idle_wait=0.1).start()
        return self.executor

    def stop(self) -> None:
        """Stop the loop and executor; running jobs keep running."""
        if self.loop is not None:
            self.loop.stop()
            self.loop = None
            self.executor = None

    def submit(self, wf: Any) -> int:
        return self.client.workflows.submit(wf, source=self.code).snapshot.snapshot_id

    def start_job(
        self, wf: Any, job: str, *, params: dict[str, Any] | None = None, attempt: int = 1
    ) -> JobCommand:
        """Submit ``wf``, create an execution and the job's attempt, and queue its START."""
        snapshot_id = self.submit(wf)
        run = self.executions.create_execution(
            self.project, wf.name, snapshot_id=snapshot_id, params=params
        )
        je = self.executions.create_job_execution(
            self.project, run.execution_id, job, attempt=attempt
        )
        command = self.command(run.execution_id, snapshot_id, job, attempt, je.job_execution_id)
        self.outbox.put(command)
        return command

    def command(
        self,
        execution_id: int,
        snapshot_id: int,
        job: str,
        attempt: int,
        job_execution_id: int,
        action: CommandAction = CommandAction.START,
    ) -> JobCommand:
        return JobCommand(
            command_id=command_id(execution_id, job, attempt, action),
            project=self.project,
            workflow="wf",
            execution_id=execution_id,
            snapshot_id=snapshot_id,
            job=job,
            attempt=attempt,
            job_execution_id=job_execution_id,
            action=action,
        )

    def stop_job(self, start: JobCommand) -> JobCommand:
        command = self.command(
            start.execution_id,
            start.snapshot_id,
            start.job,
            start.attempt,
            start.job_execution_id,
            CommandAction.STOP,
        )
        self.outbox.put(command)
        return command

    def job(self, command: JobCommand) -> JobExecution:
        return self.executions.get_job_execution(self.project, command.job_execution_id)

    def wait_status(self, command: JobCommand, *statuses: JobStatus, timeout: float = 30.0):
        return wait_until(
            lambda: (j := self.job(command)).status in statuses and j,
            timeout=timeout,
            what=f"job {command.job} to reach {[s.value for s in statuses]}",
        )

    def log(self, command: JobCommand) -> str:
        uri = self.job(command).log_uri
        return Path(uri).read_text() if uri else ""

    def close(self) -> None:
        self.stop()
        for job_execution_id in self.outbox.issued:  # leave no job behind
            job = self.executions.get_job_execution(self.project, job_execution_id)
            if job.pid and not job.status.is_terminal:
                with contextlib.suppress(OSError):
                    os.killpg(job.pid, signal.SIGKILL)
        self.client.close()


@pytest.fixture
def steps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The ``tfsteps`` module, importable in the test process."""
    directory = tmp_path_factory.getbasetemp() / "tfsteps"
    directory.mkdir(exist_ok=True)
    shutil.copy(STEPS, directory / "tfsteps.py")
    sys.path.insert(0, str(directory))
    try:
        import tfsteps

        yield tfsteps
    finally:
        sys.path.remove(str(directory))


@pytest.fixture
def rig(tmp_path: Path, steps: Any, job_server: TideflowTestServer) -> Iterator[Rig]:
    made = Rig(tmp_path, job_server)
    yield made
    made.close()


@pytest.fixture
def make_rig(
    tmp_path: Path, steps: Any, job_server: TideflowTestServer
) -> Iterator[Callable[..., Rig]]:
    """Build a rig with executor options (``heartbeat_timeout=...``)."""
    made: list[Rig] = []

    def build(**options: Any) -> Rig:
        rig = Rig(tmp_path / f"rig{len(made)}", job_server, **options)
        made.append(rig)
        return rig

    yield build
    for rig in made:
        rig.close()
