"""The executor plugin boundary: where job attempts run.

An :class:`Executor` is told to start or stop job attempts; it reports their status through
:meth:`~tideflow.metadata.ExecutionService.set_job_status` (``STARTING`` once launched,
``RUNNING`` once the job's processors are open, then ``FINISHED`` / ``FAILED`` / ``STOPPED``).
It decides nothing: retries, restarts and ordering are the scheduler's. The boundary is small on
purpose (dagster's ``RunLauncher``): :meth:`Executor.launch`, :meth:`Executor.stop`,
:meth:`Executor.reconcile` (re-attach after a restart), :meth:`Executor.close`, and
``supports_*`` flags saying what an implementation can do.

Executors are plugins found through the ``tideflow.executors`` entry-point group
(``local = "tideflow.executors.local:LocalExecutor"``) and imported only when used.
Commands come from a :class:`CommandSource` -- the scheduler's outbox -- through
:class:`~tideflow.executors.loop.CommandLoop`, which deduplicates them by id.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoints, entry_points
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.scheduling import AttemptOwner, JobCommand, OwnedAttempt
from tideflow.errors import InvalidArgumentError
from tideflow.executors.identity import JobUser
from tideflow.metadata import ExecutionService, LineageService, MetricService, WorkflowService

EXECUTOR_GROUP = "tideflow.executors"

SettingsT = TypeVar("SettingsT")


class CommandSource(Protocol):
    """Where an executor's commands come from (the scheduler's outbox)."""

    def take_commands(self, executor: str, *, limit: int = 100) -> list[JobCommand]:
        """Pending commands for ``executor``, marked taken atomically (oldest first)."""
        ...

    def complete_command(self, command_id: str) -> None:
        """Mark a taken command done: its effect is durable."""
        ...

    def wait_for_commands(self, timeout: float | None = None, *, executor: str = "local") -> bool:
        """Block until ``executor`` may have a due command, or ``timeout`` seconds pass."""
        ...

    def wake(self, executor: str) -> None:
        """Make ``executor``'s :meth:`wait_for_commands` return now (its loop is stopping)."""
        ...

    def running_attempts(self, executor: str) -> list[JobCommand]:
        """The START commands ``executor`` took whose attempts are still live (to re-attach)."""
        ...


@dataclass
class ExecutorContext:
    """What an executor is given to work with.

    Attributes:
        home: ``$TIDEFLOW_HOME``: executors keep working directories, logs and environments
            under it.
        executions: Where job status is reported.
        workflows: Snapshots (plans) and their code packages.
        server_url: The server jobs connect back to (``grpc://...``), if any.
        job_tokens: Mints the API token of one attempt (role ``job``, scoped to the
            command's project and execution, revoked when the attempt ends); ``None`` gives
            jobs no token (a server without auth, in tests).
        options: Executor-specific settings (see each executor's documentation).
        on_command_done: Called with a command id once the command's effect is durable (the
            attempt is launched and STARTING is committed, or it failed before that, or a STOP
            took effect); the command loop marks the outbox entry done.
        metrics: Where an executor records what engine jobs measured (Spark, Flink: their
            processors cannot reach the server themselves); ``None`` records no metrics.
        lineage: Where an executor records which datasets engine jobs read and wrote.
        job_user: The unprivileged OS user job processes run as (``--job-user``); ``None``
            runs them as the server's own user. Only executors that
            :attr:`~Executor.supports_job_user` are given one.
        owner: The cluster member this executor runs in (``None``: a single server): its
            status reports are checked against the attempts' owners (docs/ha.md).
    """

    home: Path
    executions: ExecutionService
    workflows: WorkflowService
    server_url: str | None = None
    job_tokens: Callable[[JobCommand], str] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    on_command_done: Callable[[str], None] = lambda command_id: None
    metrics: MetricService | None = None
    lineage: LineageService | None = None
    job_user: JobUser | None = None
    owner: AttemptOwner | None = None


class Executor(ABC):
    """Runs job attempts somewhere and reports their status.

    Implementations must be safe to call from several threads, must never run one attempt
    twice (a START for an attempt already launched, even by an earlier instance on the same
    home, is ignored or re-attached), and must not kill running jobs on :meth:`close`.
    """

    name: ClassVar[str] = ""
    supports_stop: ClassVar[bool] = True
    """STOP commands end attempts gracefully (SIGTERM first, or the platform's equivalent)."""
    supports_reattach: ClassVar[bool] = False
    """Attempts outlive the server, and :meth:`reconcile` re-attaches to them."""
    supports_requirements: ClassVar[bool] = False
    """A code package's ``requirements.txt`` is installed for its jobs."""
    supports_job_user: ClassVar[bool] = False
    """Job processes run as ``ExecutorContext.job_user`` (never as the server's user)."""
    host_bound: ClassVar[bool] = True
    """Attempts can be re-attached only on the host that launched them (a local process);
    ``False``: from any host (a job on a cluster, found again by its id)."""

    def __init__(self, context: ExecutorContext) -> None:
        self.context = context

    @abstractmethod
    def launch(self, command: JobCommand, plan: WorkflowPlan) -> None:
        """Start the attempt ``command`` names; returns without waiting.

        Args:
            command: The START command.
            plan: The execution's plan narrowed to the command's job (:func:`job_plan`): one
                job, only its processors' payloads, no rules.
        """

    @abstractmethod
    def stop(self, command: JobCommand) -> None:
        """Stop the attempt ``command`` names (queued, starting or running); returns at once."""

    def fail(self, command: JobCommand, error: str) -> None:
        """Record that a START could not even be handed to the executor (no plan, no job)."""
        self.context.executions.set_job_status(
            command.project, command.job_execution_id, "FAILED", error=error
        )
        self.context.on_command_done(command.command_id)

    def reconcile(self, attempts: Sequence[JobCommand]) -> None:  # noqa: B027 - optional hook
        """Re-attach to live attempts (their START commands) after a restart.

        The default does nothing (an executor without re-attachment).
        """

    def adopt(self, attempts: Sequence[OwnedAttempt]) -> None:  # noqa: B027 - optional hook
        """Re-attach attempts handed to this cluster member because their owner died.

        The default does nothing (an executor without re-attachment: the leader's next
        round finds them still owned by nobody alive).
        """

    def poll(self) -> None:  # noqa: B027 - optional hook
        """Check on running attempts; called by the command loop between commands."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Stop supervising; running jobs keep running (and are re-attached later)."""


def settings_from_options(
    settings: type[SettingsT], options: Mapping[str, Any], executor: str
) -> SettingsT:
    """An executor's settings dataclass from its options; unknown keys are refused by name.

    Options often come from JSON or a CLI, so lists become tuples (the dataclasses are frozen).

    Raises:
        InvalidArgumentError: An unknown option.
    """
    known = set(getattr(settings, "__dataclass_fields__", {}))
    unknown = sorted(set(options) - known)
    if unknown:
        raise InvalidArgumentError(
            f"unknown {executor} executor options {unknown}; known: {sorted(known)}",
            field="options",
        )
    values = {key: tuple(v) if isinstance(v, list) else v for key, v in options.items()}
    return settings(**values)


def job_plan(plan: WorkflowPlan, job: str) -> WorkflowPlan:
    """``plan`` narrowed to ``job``: what one attempt needs to run, and nothing else.

    Raises:
        KeyError: The plan has no such job.
    """
    spec = plan.job(job)
    wanted = {node.processor for node in spec.nodes if node.processor is not None}
    return WorkflowPlan(
        workflow=plan.workflow,
        jobs=(spec,),
        payloads={digest: plan.payloads[digest] for digest in sorted(wanted)},
        per_context=plan.per_context,
    )


class ExecutorRegistry:
    """Executor name -> class, from the entry-point group plus programmatic registrations."""

    def __init__(self, group: str = EXECUTOR_GROUP) -> None:
        self._group = group
        self._registered: dict[str, type[Executor]] = {}
        self._entry_points: EntryPoints | None = None

    def _plugins(self) -> EntryPoints:
        """The group's entry points, read once.

        Each read scans every installed distribution; a server start asked five times (the
        names, then each executor).
        """
        if self._entry_points is None:
            self._entry_points = entry_points(group=self._group)
        return self._entry_points

    def register(self, name: str, executor: type[Executor]) -> None:
        """Add (or replace) executor ``name`` without an entry point."""
        self._registered[name] = executor

    def names(self) -> list[str]:
        """Every known executor, sorted."""
        found = {ep.name for ep in self._plugins()}
        return sorted(found | set(self._registered))

    def get(self, name: str) -> type[Executor]:
        """The class of executor ``name``, importing its plugin on first use.

        Raises:
            InvalidArgumentError: Unknown executor, or its plugin cannot be loaded.
        """
        if name in self._registered:
            return self._registered[name]
        matches = [ep for ep in self._plugins() if ep.name == name]
        if not matches:
            known = ", ".join(self.names()) or "none"
            raise InvalidArgumentError(
                f"unknown executor {name!r} (known executors: {known})", field="executor"
            )
        try:
            target = matches[0].load()
        except Exception as exc:  # a plugin's import failure must name the plugin
            raise InvalidArgumentError(
                f"executor {name!r} plugin {matches[0].value!r} failed to load: {exc}",
                field="executor",
            ) from exc
        if not (isinstance(target, type) and issubclass(target, Executor)):
            raise InvalidArgumentError(
                f"executor {name!r} plugin {matches[0].value!r} is not an Executor class",
                field="executor",
            )
        self._registered[name] = target
        return target

    def create(self, name: str, context: ExecutorContext) -> Executor:
        """A new executor ``name`` working in ``context``."""
        return self.get(name)(context)


default_registry = ExecutorRegistry()
