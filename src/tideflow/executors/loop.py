"""The command loop: takes commands from the outbox and hands them to one executor.

It runs on its own thread (the server starts one per executor). Each START is handed over with
its job's slice of the execution's plan (plans are cached per snapshot: a snapshot never
changes); each STOP as is. Commands are deduplicated by id -- one seen before is skipped, so a
command delivered twice runs once -- and a command whose ``not_before`` lies ahead (a retry's
backoff) is held until then. The executor completes a command in the outbox once its effect is
durable (``ExecutorContext.on_command_done``), not when it is handed over: a crash in between
leaves it to be delivered again, and the executor's own checks (the job execution's status, the
attempt's ``launch.json``) make that delivery harmless.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections import OrderedDict
from datetime import UTC, datetime

from tideflow import logs
from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain.scheduling import CommandAction, JobCommand
from tideflow.executors.base import CommandSource, Executor, job_plan

log = logging.getLogger(__name__)

MAX_SEEN = 100_000
MAX_PLANS = 256
IDLE_LOOK_SECONDS = 1.0
"""How often an idle loop looks for commands of other processes (one read each)."""


class CommandLoop:
    """Feeds ``executor`` the commands ``source`` holds for it.

    Args:
        source: The outbox.
        executor: The executor; its ``on_command_done`` is pointed at ``source``.
        batch: Commands taken per round.
        idle_wait: Longest wait before looking at the outbox again. The source wakes the
            loop at once for a command committed by this process for this executor, an
            attempt's end or a backoff running out; this bound is for commands committed by
            another process (an in-process client on the server's store), which no local
            signal announces. An idle look is one read (``wait_for_commands``); ``None``
            waits for a wake-up only.
    """

    def __init__(
        self,
        source: CommandSource,
        executor: Executor,
        *,
        batch: int = 100,
        idle_wait: float | None = IDLE_LOOK_SECONDS,
    ) -> None:
        self.source = source
        self.executor = executor
        self.batch = batch
        self.idle_wait = idle_wait
        executor.context.on_command_done = source.complete_command
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._plans: OrderedDict[tuple[str, int], WorkflowPlan] = OrderedDict()
        self._delayed: list[tuple[datetime, int, JobCommand]] = []
        self._sequence = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> CommandLoop:
        """Re-attach the executor to its running attempts, then run on a thread."""
        self.executor.reconcile(self.source.running_attempts(self.executor.name))
        self._thread = threading.Thread(
            target=self._run, name=f"executor-{self.executor.name}", daemon=True
        )
        self._thread.start()
        return self

    def run_once(self, *, take: bool = True) -> int:
        """Take and dispatch one batch (plus held commands now due); return how many.

        With ``take=False`` only the held commands now due are handed over.
        """
        commands = self.source.take_commands(self.executor.name, limit=self.batch) if take else []
        for command in commands:
            self.dispatch(command)
        now = datetime.now(UTC)
        while self._delayed and self._delayed[0][0] <= now:
            self._handle(heapq.heappop(self._delayed)[2])
        self.executor.poll()
        return len(commands)

    def dispatch(self, command: JobCommand) -> None:
        """Hand one command to the executor, unless it was seen before or is not due yet."""
        if command.command_id in self._seen:
            log.debug("skipping duplicate command %s", command.command_id)
            return
        self._seen[command.command_id] = None
        if len(self._seen) > MAX_SEEN:
            self._seen.popitem(last=False)
        not_before = command.not_before
        if not_before is not None:
            if not_before.tzinfo is None:
                not_before = not_before.replace(tzinfo=UTC)
            if not_before > datetime.now(UTC):
                self._sequence += 1
                heapq.heappush(self._delayed, (not_before, self._sequence, command))
                return
        self._handle(command)

    def _handle(self, command: JobCommand) -> None:
        # Every line logged while the command is handled names it and its attempt.
        with logs.bound(
            command_id=command.command_id,
            project=command.project,
            workflow=command.workflow,
            execution_id=command.execution_id,
            job=command.job,
            attempt=command.attempt,
            job_execution_id=command.job_execution_id,
        ):
            log.info("command %s handed to the %s executor", command.command_id, self.executor.name)
            if command.action is CommandAction.STOP:
                self.executor.stop(command)
                return
            try:
                plan = job_plan(self._plan(command), command.job)
            except KeyError:
                self.executor.fail(
                    command, f"job {command.job!r} is not in snapshot {command.snapshot_id}'s plan"
                )
                return
            self.executor.launch(command, plan)

    def _plan(self, command: JobCommand) -> WorkflowPlan:
        key = (command.project, command.snapshot_id)
        plan = self._plans.get(key)
        if plan is None:
            snapshot = self.executor.context.workflows.get_snapshot(*key)
            plan = self._plans[key] = WorkflowPlan.from_json(snapshot.plan)
            if len(self._plans) > MAX_PLANS:
                self._plans.popitem(last=False)
        return plan

    def _run(self) -> None:
        take = True
        while not self._stopping.is_set():
            try:
                if self.run_once(take=take) == 0 and not self._stopping.is_set():
                    wait = self.idle_wait
                    if self._delayed:
                        due = (self._delayed[0][0] - datetime.now(UTC)).total_seconds()
                        wait = max(0.0, due if wait is None else min(wait, due))
                    # Woken, or a command is due: take. Timed out: only look again (a read),
                    # so an idle loop never writes.
                    take = self.source.wait_for_commands(wait, executor=self.executor.name)
                else:
                    take = True
            except Exception:  # the loop's edge: log, back off, go on
                log.exception("the %s executor's command loop failed", self.executor.name)
                self._stopping.wait(1.0)

    def stop(self) -> None:
        """Stop taking commands and close the executor; running jobs keep running."""
        self._stopping.set()
        self.source.wake(self.executor.name)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.executor.close()
