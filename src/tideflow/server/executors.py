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

With a job user (``--job-user``), an executor that cannot run its jobs as that user
(``supports_job_user`` false: Ray, Spark and Flink start drivers, and by default clusters, as the
server's own user) is replaced by one that fails each of its jobs saying why: a job must never
get root's privileges by asking for another platform.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.scheduling import AttemptOwner, JobCommand
from tideflow.domain.status import JobStatus
from tideflow.errors import IllegalTransitionError, InvalidArgumentError
from tideflow.executors.base import CommandSource, Executor, ExecutorContext, default_registry
from tideflow.executors.identity import JobUser
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
        job_user: The OS user jobs run as; executors that cannot do that refuse their jobs.
        owner: The cluster member this server is (``None``: a single server): its executors
            take commands and own attempts as that member.
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
        job_user: JobUser | None = None,
        owner: AttemptOwner | None = None,
    ) -> None:
        self.loops: list[CommandLoop] = []
        self._scheduler = scheduler
        self._owner = owner
        source: CommandSource = scheduler if owner is None else MemberCommands(scheduler, owner)
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
                job_user=job_user,
                owner=owner,
            )
            executor: Executor
            if job_user is not None and not default_registry.get(name).supports_job_user:
                executor = refusing_executor(name, job_user, context)
            else:
                executor = default_registry.create(name, context)
            self.loops.append(CommandLoop(source, executor))

    def start(self) -> None:
        """Re-attach to running jobs and start taking commands."""
        for loop in self.loops:
            loop.start()
            log.info("executor %s started", loop.executor.name)

    def adopt_assigned(self) -> None:
        """Re-attach the attempts the leader handed to this member (one indexed read).

        Called at every heartbeat of a cluster member; attempts already watched are skipped.
        """
        if self._owner is None or not self.loops:
            return
        owned = self._scheduler.executions.owned_attempts(self._owner.member_id)
        for loop in self.loops:  # every one: an executor also lets go of what it lost
            loop.executor.adopt([o for o in owned if o.start.executor == loop.executor.name])

    def stop(self) -> None:
        """Stop taking commands; running jobs keep running.

        The loops stop side by side: each waits for the command in hand and closes its
        executor (a fork server, a Ray or Flink client), and one after another those waits
        added up on every server stop. The first error raised by a loop is raised here, once
        every loop has stopped.
        """
        if not self.loops:
            return
        with ThreadPoolExecutor(len(self.loops), thread_name_prefix="executor-stop") as pool:
            for stopped in [pool.submit(loop.stop) for loop in self.loops]:
                stopped.result()


class MemberCommands:
    """The outbox as a cluster member's executors see it: taken commands are the member's.

    A :class:`~tideflow.executors.base.CommandSource` over the scheduler service that passes
    the member along: the commands it takes record it, the attempts of its STARTs become its
    own, it waits only for STOPs of attempts it owns, and it re-attaches after a restart only
    the attempts whose files are in its home.
    """

    def __init__(self, scheduler: SchedulerService, owner: AttemptOwner) -> None:
        self._scheduler = scheduler
        self._owner = owner

    def take_commands(self, executor: str, *, limit: int = 100) -> list[JobCommand]:
        """Take due commands of ``executor`` as this member."""
        return self._scheduler.take_commands(executor, limit=limit, owner=self._owner)

    def complete_command(self, command_id: str) -> None:
        """Mark a taken command done."""
        self._scheduler.complete_command(command_id)

    def wait_for_commands(self, timeout: float | None = None, *, executor: str = "local") -> bool:
        """Wait until this member's ``executor`` may have a command to take."""
        return self._scheduler.wait_for_commands(
            timeout, executor=executor, member=self._owner.member_id
        )

    def wake(self, executor: str) -> None:
        """Wake ``executor``'s wait."""
        self._scheduler.wake(executor)

    def running_attempts(self, executor: str) -> list[JobCommand]:
        """Live attempts of ``executor`` with files in this member's home."""
        return self._scheduler.running_attempts(executor, owner=self._owner)


def host_bound(executor: str) -> bool:
    """Whether attempts of ``executor`` can be re-attached only on their host (unknown: yes)."""
    try:
        return default_registry.get(executor).host_bound
    except InvalidArgumentError:  # an executor this server does not know: the safe answer
        return True


class _RefusingExecutor(Executor):
    """Stands in for an executor that cannot run jobs as the job user: fails them, saying why."""

    reason = ""

    def launch(self, command: JobCommand, plan: WorkflowPlan) -> None:
        """Fail the job: it would run as the server's user."""
        log.warning("refused job execution %s: %s", command.job_execution_id, self.reason)
        try:
            self.fail(command, self.reason)
        except IllegalTransitionError:  # it was stopped meanwhile
            self.context.on_command_done(command.command_id)

    def stop(self, command: JobCommand) -> None:
        """Nothing runs: a job not yet failed is stopped."""
        with contextlib.suppress(IllegalTransitionError):  # it was refused already
            self.context.executions.set_job_status(
                command.project, command.job_execution_id, JobStatus.STOPPED
            )
        self.context.on_command_done(command.command_id)


def refusing_executor(name: str, job_user: JobUser, context: ExecutorContext) -> Executor:
    """An executor named ``name`` that fails every job it is given, naming ``--job-user``."""
    reason = (
        f"this server runs jobs as the OS user {job_user.name} (--job-user), and the {name} "
        f"executor cannot: it would run the job's code as the server's own user, so it "
        f"refuses {name} jobs. Run them on a server without --job-user"
    )
    refusing: type[_RefusingExecutor] = type(
        f"Refusing{name.title()}Executor", (_RefusingExecutor,), {"name": name, "reason": reason}
    )
    return refusing(context)
