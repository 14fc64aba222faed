"""The executor contract suite's building blocks: what an executor contributes, and a rig.

Each executor under test contributes a :class:`Harness` (a session fixture
``<name>_harness`` in ``harness_<name>.py``): the executor's name and options, three small
workflows, and the texts its logs and errors must show. :class:`ContractRig` runs that
executor for real -- created from the executor registry, fed by the real
:class:`~tideflow.executors.loop.CommandLoop` from an in-memory outbox, reporting to the SQLite
store of the session's ``job_server`` (whose API its jobs call) -- and can restart it on the
same home, which is what a server restart does to an executor.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tideflow as tide
from tests.executors.conftest import FakeOutbox, wait_until
from tideflow.client import Client, connect
from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.metadata import JobExecution
from tideflow.domain.scheduling import CommandAction, JobCommand, command_id
from tideflow.domain.status import JobStatus
from tideflow.executors.base import Executor, ExecutorContext, default_registry, job_plan
from tideflow.executors.loop import CommandLoop
from tideflow.metadata import ExecutionService
from tideflow.testing import TideflowTestServer

KINDS = ("finish", "fail", "stream")
JOB = "main"


@dataclass
class Harness:
    """What one executor brings to the contract suite.

    Attributes:
        executor: The executor's registered name (``local``, ``ray``, ``flink``, ``spark``).
        options: Its ``ExecutorContext.options``.
        workflow: ``kind`` -> a workflow whose one job is ``main``: ``finish`` ends by itself
            and logs ``log_text``; ``fail`` fails with ``error_text``; ``stream`` runs until
            stopped.
        log_text: Text the ``finish`` job's log must contain.
        error_text: Text the ``fail`` job's error must contain.
        env: Extra environment for the executor and its jobs (cluster addresses, paths).
        source: The directory packaged as the workflows' code (``None``: an empty package).
        timeout: Seconds to wait for one status change (clusters are slow on a busy machine).
    """

    executor: str
    options: dict[str, Any]
    workflow: Callable[[str], tide.Workflow]
    log_text: str
    error_text: str
    env: dict[str, str] = field(default_factory=dict)
    source: Path | None = None
    timeout: float = 120.0


class ContractRig:
    """One home, project, outbox and (restartable) executor of ``harness.executor``.

    The rig's entities live in ``server``'s store (opened in-process, a project of the rig's
    own); the jobs reach them through ``server``'s API only.
    """

    def __init__(self, root: Path, harness: Harness, server: TideflowTestServer) -> None:
        self.harness = harness
        self.server = server
        self.home = root / "home"
        self.home.mkdir(parents=True)
        if harness.source is not None:
            self.code = harness.source
        else:
            self.code = root / "code"
            self.code.mkdir()
            (self.code / "flow.py").write_text("# the workflow is built by the test\n")
        self.project = f"c{uuid.uuid4().hex[:8]}"
        self.url = server.db_url
        self.client: Client = connect(self.url, project=self.project)
        self.executions = ExecutionService(self.client.store)
        self.outbox = FakeOutbox(self.executions, self.project)
        self.executor: Executor | None = None
        self.loop: CommandLoop | None = None
        self.plans: dict[int, WorkflowPlan] = {}
        self.start()

    # -- the executor --------------------------------------------------------------------------

    def start(self) -> Executor:
        """Create the executor (a new instance on the same home) and its command loop."""
        context = ExecutorContext(
            home=self.home,
            executions=self.executions,
            workflows=self.client.services.workflows,
            server_url=self.server.url,
            options=dict(self.harness.options),
        )
        self.executor = default_registry.create(self.harness.executor, context)
        self.loop = CommandLoop(self.outbox, self.executor, idle_wait=0.1).start()
        return self.executor

    def stop(self) -> None:
        """Stop the loop and close the executor (a server stop): jobs keep running."""
        if self.loop is not None:
            self.loop.stop()
            self.loop = None
            self.executor = None

    # -- jobs ----------------------------------------------------------------------------------

    def new_execution(self, kind: str) -> tuple[tide.Workflow, int, int]:
        """Submit the harness's ``kind`` workflow; return it, its snapshot and an execution."""
        wf = self.harness.workflow(kind)
        snapshot_id = self.client.workflows.submit(wf, source=self.code).snapshot.snapshot_id
        run = self.executions.create_execution(self.project, wf.name, snapshot_id=snapshot_id)
        return wf, snapshot_id, run.execution_id

    def start_attempt(
        self, wf: tide.Workflow, snapshot_id: int, execution_id: int, attempt: int = 1
    ) -> JobCommand:
        """Create attempt ``attempt`` of ``main`` and queue its START."""
        je = self.executions.create_job_execution(self.project, execution_id, JOB, attempt=attempt)
        command = self.command(wf.name, execution_id, snapshot_id, attempt, je.job_execution_id)
        self.outbox.put(command)
        return command

    def start_job(self, kind: str) -> JobCommand:
        """A new execution of the ``kind`` workflow, and its first attempt's START queued."""
        wf, snapshot_id, execution_id = self.new_execution(kind)
        return self.start_attempt(wf, snapshot_id, execution_id)

    def command(
        self,
        workflow: str,
        execution_id: int,
        snapshot_id: int,
        attempt: int,
        job_execution_id: int,
        action: CommandAction = CommandAction.START,
    ) -> JobCommand:
        return JobCommand(
            command_id=command_id(execution_id, JOB, attempt, action),
            project=self.project,
            workflow=workflow,
            execution_id=execution_id,
            snapshot_id=snapshot_id,
            job=JOB,
            attempt=attempt,
            job_execution_id=job_execution_id,
            action=action,
        )

    def stop_job(self, start: JobCommand) -> JobCommand:
        """Queue a STOP of ``start``'s attempt."""
        command = self.command(
            start.workflow,
            start.execution_id,
            start.snapshot_id,
            start.attempt,
            start.job_execution_id,
            CommandAction.STOP,
        )
        self.outbox.put(command)
        return command

    def plan(self, start: JobCommand) -> WorkflowPlan:
        """The one-job plan the command loop hands the executor with ``start``."""
        snapshot = self.client.services.workflows.get_snapshot(self.project, start.snapshot_id)
        return job_plan(WorkflowPlan.from_json(snapshot.plan), start.job)

    def job(self, command: JobCommand) -> JobExecution:
        return self.executions.get_job_execution(self.project, command.job_execution_id)

    def wait_status(self, command: JobCommand, *statuses: JobStatus) -> JobExecution:
        """Wait until ``command``'s attempt reaches one of ``statuses``; fail on another end."""

        def reached() -> JobExecution | None:
            job = self.job(command)
            if job.status in statuses:
                return job
            if job.status.is_terminal:
                raise AssertionError(
                    f"job ended {job.status.value} ({job.error}) while waiting for "
                    f"{[s.value for s in statuses]}; log:\n{self.log(command)[-3000:]}"
                )
            return None

        return wait_until(
            reached,
            timeout=self.harness.timeout,
            what=f"{self.harness.executor} job attempt {command.attempt} to reach "
            f"{[s.value for s in statuses]}",
        )

    def wait_done(self, command_id_: str) -> None:
        """Wait until the executor completed command ``command_id_`` in the outbox."""
        wait_until(
            lambda: command_id_ in self.outbox.done,
            timeout=self.harness.timeout,
            what=f"command {command_id_} to be completed",
        )

    def statuses(self, command: JobCommand) -> list[str]:
        """The JOB_STATUS_CHANGED values recorded for ``command``'s attempt, in order."""
        wf_key = f"{command.workflow}.{command.job}"
        return [
            e.value
            for e in self.client.events.list(key=wf_key)
            if e.context.get("execution_id") == command.execution_id
            and e.context.get("attempt") == command.attempt
        ]

    def log(self, command: JobCommand) -> str:
        """The attempt's log as Tideflow serves it (the file its ``log_uri`` names)."""
        uri = self.job(command).log_uri
        if not uri:
            return ""
        with contextlib.suppress(OSError):
            return Path(uri).read_text(errors="replace")
        return ""

    # -- cleanup -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every attempt still live (through the executor), then the executor."""
        live = [
            self.outbox.starts[i]
            for i in self.outbox.issued
            if i in self.outbox.starts and not self.job(self.outbox.starts[i]).status.is_terminal
        ]
        if live and self.loop is None:
            with contextlib.suppress(Exception):
                self.start()
        for start in live:
            self.stop_job(start)
        deadline = time.monotonic() + 60
        while live and time.monotonic() < deadline:
            if all(self.job(start).status.is_terminal for start in live):
                break
            time.sleep(0.2)
        self.stop()
        for start in live:  # the last resort for local processes
            job = self.job(start)
            if job.pid and not job.status.is_terminal:
                with contextlib.suppress(OSError):
                    os.killpg(job.pid, signal.SIGKILL)
        self.client.close()


def copy_source(files: dict[str, Path], directory: Path) -> Path:
    """A code directory holding ``files`` (name in the package -> file) and a ``flow.py``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, path in files.items():
        shutil.copy(path, directory / name)
    (directory / "flow.py").write_text("# the workflow is built by the contract suite\n")
    return directory
