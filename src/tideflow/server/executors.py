"""The server's executors: one command loop per executor on the scheduler's outbox.

The server runs every registered executor (``local``, and ``ray`` / ``flink`` / ``spark`` where
their plugins are registered): an idle executor costs a thread and nothing else -- clusters start
and engine libraries are imported only when a job needs them, so a workflow with a Flink job works
without configuring which executors a server runs. Jobs connect back to
this server (``$TIDEFLOW_SERVER`` = its gRPC URL). Stopping the server stops the loops and the
fork server but never the jobs: they run on in their own sessions, and the next server on the
same ``$TIDEFLOW_HOME`` re-attaches to them.

``$TIDEFLOW_EXECUTORS`` (comma-separated names; empty for none) chooses which executors a server
runs, every registered one by default. Tests that play the executor themselves (setting job statuses by
hand) start their server with it empty.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tideflow.domain.scheduling import JobCommand
from tideflow.executors.base import ExecutorContext, default_registry
from tideflow.executors.loop import CommandLoop
from tideflow.metadata import LineageService, MetricService, WorkflowService
from tideflow.metadata.access import AccessService
from tideflow.scheduler.service import SchedulerService

log = logging.getLogger(__name__)

EXECUTORS_VARIABLE = "TIDEFLOW_EXECUTORS"


def executor_names(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The executors a server runs: ``$TIDEFLOW_EXECUTORS``, else every registered one."""
    env = os.environ if environ is None else environ
    text = env.get(EXECUTORS_VARIABLE)
    if text is None:
        return tuple(default_registry.names())
    return tuple(name.strip() for name in text.split(",") if name.strip())


def job_token_minter(access: AccessService) -> Callable[[JobCommand], str]:
    """Mint each attempt's own token: role ``job``, its project and execution only."""

    def mint(command: JobCommand) -> str:
        return access.create_job_token(
            command.project,
            execution_id=command.execution_id,
            job_execution_id=command.job_execution_id,
            name=f"{command.workflow}.{command.job} attempt {command.attempt}",
        )[1]

    return mint


class ServerExecutors:
    """The executors of one server and their command loops.

    Args:
        home: ``$TIDEFLOW_HOME`` (working directories, logs, environments).
        scheduler: The scheduler service whose outbox feeds the executors.
        workflows: Snapshots and code packages.
        server_url: The URL jobs connect back to.
        access: Where each attempt's API token is minted.
        names: Executors to run.
        options: Per executor name, its options.
        metrics: Where executors record engine jobs' metrics.
        lineage: Where executors record engine jobs' lineage.
    """

    def __init__(
        self,
        *,
        home: Path,
        scheduler: SchedulerService,
        workflows: WorkflowService,
        server_url: str,
        access: AccessService,
        names: Sequence[str] | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        metrics: MetricService | None = None,
        lineage: LineageService | None = None,
    ) -> None:
        self.loops: list[CommandLoop] = []
        for name in executor_names() if names is None else names:
            context = ExecutorContext(
                home=home,
                executions=scheduler.executions,
                workflows=workflows,
                server_url=server_url,
                job_tokens=job_token_minter(access),
                options=(options or {}).get(name, {}),
                metrics=metrics,
                lineage=lineage,
            )
            executor = default_registry.create(name, context)
            self.loops.append(CommandLoop(scheduler, executor))

    def start(self) -> None:
        """Re-attach to running jobs and start taking commands."""
        for loop in self.loops:
            loop.start()
            log.info("executor %s started", loop.executor.name)

    def stop(self) -> None:
        """Stop taking commands; running jobs keep running."""
        for loop in self.loops:
            loop.stop()
