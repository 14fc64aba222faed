"""What a platform (local processes, Ray, Spark, Flink, ...) gives the attempt supervisor.

The lifecycle of an attempt -- taking its command, preparing its working directory, reporting
STARTING / RUNNING / its end, stops, timeouts, heartbeats, re-attaching after a restart,
completing commands -- is the same wherever the attempt runs, and lives once in
:class:`~tideflow.executors.supervisor.AttemptSupervisor`. A platform says only how to run
one prepared attempt there:

- :meth:`Platform.launch` starts it and fills in its *handle* (the JSON-able facts that find
  it again: a pid, a submission id, a Flink job id);
- :meth:`Platform.observe` reads its state (:class:`Observation`);
- :meth:`Platform.stop` asks it to stop, or kills it;
- :meth:`Platform.find` tells, after a crash, whether an attempt whose launch was begun (its
  handle *reserved*, :meth:`Platform.reserve`) really started;
- optional hooks: :meth:`Platform.prepare` (more files), :meth:`Platform.on_end` (record
  lineage before the end is reported), :meth:`Platform.close` (its cluster, its threads).

The supervisor stores handles in the server's own files (``<home>/attempts/``, never in the
job's folder), calls the platform from its worker and supervision threads, and serialises
nothing for it: a platform must be safe to call for different attempts at once.
docs/executors.md walks through writing one.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from tideflow.compiler.plan import PlanJob, WorkflowPlan
from tideflow.domain.attempt import AttemptFiles
from tideflow.domain.scheduling import JobCommand
from tideflow.domain.status import JobStatus
from tideflow.executors.base import ExecutorContext


@dataclass
class Attempt:
    """One attempt, as the supervisor and its platform see it.

    Attributes:
        command: Its START command.
        files: Its working directory and control files.
        log: The log file ``tideflow job logs`` shows.
        plan: The execution's plan narrowed to the job (read back from ``plan.json`` after a
            restart; ``None`` when that file is gone).
        env: The variables its processes get (identity, server, token, data directory);
            filled in by the supervisor when it prepares the attempt.
        handle: The platform's facts about the launched attempt (persisted by the
            supervisor; JSON values only).
        scratch: The platform's in-memory notes about the attempt (never persisted).
    """

    command: JobCommand
    files: AttemptFiles
    log: Path
    plan: WorkflowPlan | None = None
    env: dict[str, str] = field(default_factory=dict)
    handle: dict[str, Any] = field(default_factory=dict)
    scratch: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> int:
        """The job execution id: one attempt per job execution."""
        return self.command.job_execution_id

    @property
    def workdir(self) -> Path:
        """The attempt's working directory."""
        return self.files.workdir

    @property
    def job(self) -> PlanJob | None:
        """The attempt's job in its plan, if the plan is known."""
        if self.plan is None:
            return None
        try:
            return self.plan.job(self.command.job)
        except KeyError:
            return None


@dataclass(frozen=True)
class Started:
    """What the STARTING report carries: where the attempt runs."""

    pid: int | None = None
    host: str | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class Observation:
    """An attempt's state as its platform sees it now.

    Attributes:
        running: The job's runtime reported its processors open.
        ended: The attempt is over (its process exited, the cluster says it finished).
        result: What the job's runtime said at its end (status and error), if it said it.
        failure: For an attempt that ended without a result: why, in the platform's words
            (``None``: it ended well, e.g. exit code 0).
        exit_code: The process's exit code (negative: the signal), if known.
        ended_at: When it ended (seconds since the epoch), if known: recorded as the job's
            end time even when the server was down then.
        external_id: The platform's id of the running job (a Spark application id), if new.
        heartbeat: When the job last proved alive (seconds since the epoch), for platforms
            whose jobs beat (:attr:`Platform.heartbeats`).
    """

    running: bool = False
    ended: bool = False
    result: tuple[JobStatus, str | None] | None = None
    failure: str | None = None
    exit_code: int | None = None
    ended_at: float | None = None
    external_id: str | None = None
    heartbeat: float | None = None


class Platform(ABC):
    """Where attempts run: launch, observe, stop, find again.

    Class attributes say what the platform can do; instance attributes set by the constructor
    (from its options) tune the supervisor.
    """

    name: ClassVar[str] = ""
    supports_stop: ClassVar[bool] = True
    """STOP ends attempts gracefully (SIGTERM first, or the platform's equivalent)."""
    supports_reattach: ClassVar[bool] = True
    """Attempts outlive the server and are found again after a restart."""
    supports_requirements: ClassVar[bool] = False
    """A code package's ``requirements.txt`` is installed for its jobs."""
    supports_job_user: ClassVar[bool] = False
    """Job processes run as ``ExecutorContext.job_user``."""
    host_bound: ClassVar[bool] = True
    """Attempts are found again only on the launching host (processes, files in its home).
    ``False``: :meth:`find` finds one from any host by its deterministic id (a cluster job),
    so a dead cluster member's attempts may go to a member on another host."""
    job_token: ClassVar[bool] = True
    """The job's processes call the server (they get the attempt's token)."""

    poll_interval: float = 0.5
    """Seconds between two observations of a live attempt (:meth:`notify` comes sooner)."""
    max_running: int | None = None
    """Attempts active at once (``None``: no limit); further STARTs wait in arrival order."""
    stop_grace: float | None = 10.0
    """Seconds from a graceful stop to a kill (``None``: the platform kills by itself)."""
    heartbeats: bool = False
    """Jobs beat (:attr:`Observation.heartbeat`); a silent one is killed and FAILED."""
    heartbeat_interval: float = 1.0
    """Seconds between a job's heartbeats (written into ``attempt.json``)."""
    heartbeat_timeout: float = 10.0
    """A job whose heartbeat is older than this is killed and FAILED."""

    def __init__(self, context: ExecutorContext) -> None:
        self.context = context
        self.home = Path(context.home)
        self.notify: Callable[[int], None] = lambda key: None
        """Set by the supervisor: call with an attempt's key when its state changed."""

    def check(self, attempt: Attempt) -> None:  # noqa: B027 - optional hook
        """Refuse an attempt this platform cannot run, before anything is prepared.

        Raises:
            TideflowError: Why it cannot run (the job FAILS with this message).
        """

    def prepare(self, attempt: Attempt) -> None:  # noqa: B027 - optional hook
        """Add to a prepared working directory (code, ``attempt.json``, ``plan.json``)."""

    def reserve(self, attempt: Attempt) -> None:  # noqa: B027 - optional hook
        """Fill in the handle's parts known before launching (a deterministic submission id).

        The supervisor persists them before :meth:`launch`, so :meth:`find` can look for an
        attempt whose launch a crash interrupted.
        """

    @abstractmethod
    def launch(self, attempt: Attempt) -> Started:
        """Start the prepared attempt and fill in ``attempt.handle``; may block a while.

        Must not start an attempt twice (a second call for one attempt, even from another
        instance on the same home, starts nothing).

        Raises:
            TideflowError: It could not start (the job FAILS with this message).
        """

    @abstractmethod
    def find(self, attempt: Attempt) -> Started | None:
        """After a crash: whether the attempt (its handle as last persisted) was launched.

        Returns:
            Where it runs (it was launched, and ``attempt.handle`` is complete), or ``None``:
            it surely never started, and launching it now is safe.

        Raises:
            TideflowError: It cannot be known (the job FAILS with this message).
        """

    @abstractmethod
    def observe(self, attempt: Attempt) -> Observation:
        """The attempt's state now (called often: keep it cheap)."""

    @abstractmethod
    def stop(self, attempt: Attempt, *, kill: bool) -> None:
        """Ask the attempt to stop (``kill=False``, graceful) or end it now (``kill=True``)."""

    def on_running(self, attempt: Attempt) -> None:  # noqa: B027 - optional hook
        """The attempt was reported RUNNING (record a streaming job's lineage)."""

    def on_end(self, attempt: Attempt, status: JobStatus) -> None:  # noqa: B027 - optional hook
        """The attempt ended ``status``; called before that is reported (record lineage)."""

    def forget(self, attempt: Attempt) -> None:  # noqa: B027 - optional hook
        """The attempt's end is recorded: drop what the platform keeps about it."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Stop the platform's threads; attempts keep running (they are found again later)."""


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``; ``None`` if it is missing, unreadable or not an object.

    Platforms keep their own small state files (claims, progress); a torn or foreign file
    reads as absent rather than failing the attempt.
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def as_int(value: Any) -> int | None:
    """``value`` as an int, or ``None`` (absent or not a number): a handle's fields are JSON."""
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def describe_signal_exit(returncode: int | None, what: str = "the job's process") -> str:
    """``returncode`` in words: "exited with code 2", "was killed by SIGKILL"."""
    import signal

    if returncode is None:
        return f"{what} is gone and left no result"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"{what} was killed by {name}"
    return f"{what} exited with code {returncode}"
