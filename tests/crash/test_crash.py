"""Kill the server at every crash point, restart it, and check nothing ran twice or got lost.

Each test starts a real server process with ``TIDEFLOW_CRASH_AT=<point>``, the first point of
a group (``GROUPS``); it ``os._exit``\\s the first time it reaches the point while the test
drives ``crashflow`` through it (jobs with ``after``, an ``on_event`` rule, a periodic rule on
the test clock, a restart and a stop of a streaming job, a ``stop_on`` end). A watcher restarts
the server at once (same port, store and home) set to crash at the group's next point, and
after the last one without the crash setting; the driver's calls ride over the gaps on the
client's retries and request-id dedup, and the jobs outlive the crashes and are re-attached.
Once everything has settled:

* the server did crash at each point of the group, in turn (the flow passes through them);
* every action is unique per (job, action, rule, event offset), and the actions are the same
  as in a crash-free run (so each event caused its actions exactly once);
* no job execution ran twice (its process recorded its id at most once), and the same
  attempts ran as in a crash-free run;
* the execution and its jobs end in the same states as in the crash-free run;
* every command is DONE.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tideflow.domain.scheduling import CommandStatus
from tideflow.domain.status import ExecutionStatus, JobStatus
from tideflow.errors import TideflowError, UnavailableError
from tideflow.metadata.workflow import ExecutionService
from tideflow.scheduler import crash
from tideflow.scheduler.clock import CLOCK_FILE_ENV
from tideflow.store import Store
from tideflow.store.repositories.outbox import OutboxRepository
from tideflow.testing import TideflowTestServer

# One pytest-xdist worker runs them all, so the crash-free baseline run happens once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("crash")]

FLOW = Path(__file__).with_name("crashflow.py")
PROJECT = "crash"
T0 = 1_704_067_200.0  # 2024-01-01 UTC
STEP_TIMEOUT = 30.0

IN_PROCESS_ONLY = [
    "dispatch.batch_read",
    "dispatch.before_evaluate",
    "dispatch.after_evaluate",
    "dispatch.after_job_execution",
    "dispatch.after_command",
    "dispatch.before_offset_commit",
]
"""Dispatcher points killed for real no more: each is inside the batch's one transaction, with
nothing done outside it before the commit, so a kill there leaves what a kill at
``dispatch.before_commit`` leaves (the transaction is lost whole), which is killed below.
Each is crashed in-process, the redo compared with a crash-free run, by
tests/scheduler/test_exactly_once.py::test_a_crash_anywhere_in_the_dispatcher_changes_nothing.
(``dispatch.after_execution_end`` stays: it crashes the batch that ends the execution.)"""

GROUPS: dict[str, list[str]] = {
    # the dispatcher: an event committed -> rules -> actions, commands, offset in one commit
    "dispatch": ["dispatch.before_commit", "dispatch.after_commit", "dispatch.after_execution_end"],
    # the timer firing the periodic rule (each crash before the commit fires it again)
    "timer": [
        "timer.before_fire",
        "timer.after_event",
        "timer.before_commit",
        "timer.after_commit",
    ],
    # start_execution (and the restart of the streaming job) / stop of a job
    "start": [
        "start.after_job_execution",
        "start.after_command",
        "start.before_commit",
        "start.after_commit",
    ],
    "stop": ["stop.after_command", "stop.before_commit", "stop.after_commit"],
    # the outbox
    "outbox": ["take.before_commit", "take.after_commit", "complete.after_commit"],
    # the local executor: a job starting, changing status, being stopped
    "launch": [
        "launch.before_spawn",
        "launch.after_spawn",
        "launch.before_starting",
        "launch.after_starting",
    ],
    "job": ["job.after_running", "job.after_end", "executor.after_stop_signal"],
}
"""The points killed for real, a group per server run: the server is started to crash at the
group's first point, restarted at once to crash at the next (its first time there after the
restart), and so on; then the run must end as a crash-free run does. Each group's points
follow the flow's order, and each is reached again after the previous crash (a crash before a
commit redoes the work; the flow passes the others more than once), so every point is killed
at in every run; one server run per group instead of one per point (issue 20: 24 runs -> 7)."""

POINTS = [point for group in GROUPS.values() for point in group]


def test_the_points_exist() -> None:
    assert set(POINTS) <= set(crash.POINTS)
    assert len(POINTS) == len(set(POINTS)) == 24  # each in one group, none lost by grouping


def test_the_dispatcher_points_left_out_are_crashed_in_process() -> None:
    from tests.scheduler.test_exactly_once import DISPATCH_POINTS

    assert set(IN_PROCESS_ONLY) <= set(DISPATCH_POINTS)
    assert not set(IN_PROCESS_ONLY) & set(POINTS)
    # the dispatcher's kill -9 mechanisms: before its commit, after it, at an execution's end
    assert {"dispatch.before_commit", "dispatch.after_commit"} <= set(POINTS)


@dataclass(frozen=True)
class Outcome:
    """What a run of crashflow left, with run-specific ids and offsets left out."""

    execution: str
    jobs: list[tuple[str, int, str]]
    actions: Counter[tuple[str | None, str, str]]
    ran: list[tuple[str, int]]


class Rig:
    """A server (restarted at once if it crashes), the code package and the record file."""

    def __init__(self, root: Path, crash_at: list[str]) -> None:
        self.root = root
        self.code = root / "code"
        self.code.mkdir(parents=True)
        shutil.copy(FLOW, self.code / "crashflow.py")
        self.record = root / "record.jsonl"
        self.record.touch()
        self.clock = root / "clock"
        self.clock.write_text(str(T0))
        env = {CLOCK_FILE_ENV: str(self.clock)}
        self.pending = list(crash_at)  # the points still to crash at, the next one first
        self.crashed_at: list[str] = []
        if self.pending:
            env[crash.CRASH_ENV] = self.pending[0]
        self.server = TideflowTestServer(home=root / "home", env=env).start()
        self.store = Store.open(self.server.db_url)
        self.executions = ExecutionService(self.store)
        self.client = self.server.client(project=PROJECT)
        self.crashes = 0
        self.up = threading.Event()
        self.up.set()
        self.back_at = time.monotonic()  # when the server last came (back) up
        self._closing = False
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        """Restart the server as soon as it dies: to crash at the next point, or not at all."""
        while True:
            process = self.server.process
            if process is None:
                return
            code = process.wait()
            if self._closing:
                return
            self.up.clear()
            assert code == crash.EXIT_CODE, f"the server exited with {code}"
            self.server.process = None
            while True:
                self.crashes += 1
                self.crashed_at.append(self.pending.pop(0))
                if self.pending:
                    self.server.env[crash.CRASH_ENV] = self.pending[0]
                else:
                    self.server.env.pop(crash.CRASH_ENV, None)
                try:
                    self.server.start()
                    break
                except UnavailableError as e:
                    # The next point came while the server started (its recovery passes it).
                    if f"(exit status {crash.EXIT_CODE})" not in str(e):
                        raise
            self.back_at = time.monotonic()
            self.up.set()

    # -- reading the store directly (works while the server is down) ---------------------------

    def run_id(self) -> int | None:
        runs = self.executions.list_executions(PROJECT, workflow="crashflow")
        return runs[0].execution_id if runs else None

    def jobs(self, run: int) -> list[Any]:
        return self.executions.list_job_executions(PROJECT, run)

    def latest(self, run: int, job: str) -> Any:
        attempts = [j for j in self.jobs(run) if j.job == job]
        return max(attempts, key=lambda j: j.attempt) if attempts else None

    def commands(self, run: int) -> list[Any]:
        return self.store.run(
            lambda c: OutboxRepository(c).list_commands(execution_id=run), write=False
        )

    def ran(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.record.read_text().splitlines() if line]

    # -- driving --------------------------------------------------------------------------------

    def until(self, check: Callable[[], Any], what: str, timeout: float = STEP_TIMEOUT) -> Any:
        """Wait for ``check()`` to hold (a deadline, never a fixed sleep)."""
        began = time.monotonic()
        while True:
            value = check()
            if value:
                return value
            if self._late(began, timeout):
                tail = self.server.log_file.read_text(errors="replace")[-4000:]
                pytest.fail(f"timed out waiting for {what}; server log:\n{tail}")
            time.sleep(0.02)

    def _late(self, began: float, timeout: float) -> bool:
        """Whether a step begun at ``began`` is past its deadline: ``timeout`` seconds from its
        beginning or from the server's last return, whichever is later (a group's crashes may
        all come within one step, and a restart takes seconds on a loaded machine)."""
        waiting_for_a_restart = not self.up.is_set() and self._watcher.is_alive()
        return not waiting_for_a_restart and time.monotonic() > max(began, self.back_at) + timeout

    def once(self, action: Callable[[], Any], done: Callable[[], bool], what: str) -> None:
        """Do ``action`` unless ``done()``; a call lost in a crash is checked, then redone."""
        began = time.monotonic()
        while not done():
            try:
                action()
            except TideflowError:
                if self._late(began, STEP_TIMEOUT):
                    raise
                self.up.wait(STEP_TIMEOUT)  # it crashed under the call: look again
                continue
            return
        # done() held before (or after a lost response): nothing to do
        _ = what

    def drive(self) -> int:
        from crashflow import build  # the copy in the code package, importable here too

        client = self.client
        client.workflows.submit(build(str(self.record)), source=self.code)
        self.once(lambda: client.workflows.start("crashflow"), lambda: bool(self.run_id()), "start")
        run = self.until(self.run_id, "the execution")

        def status(job: str, attempt: int = 1) -> JobStatus | None:
            latest = self.latest(run, job)
            return latest.status if latest is not None and latest.attempt == attempt else None

        self.until(lambda: status("c") is JobStatus.FINISHED, "a, b and c to finish")
        self.until(lambda: status("s") is JobStatus.RUNNING, "the stream to run")
        # RUNNING means its processors are open; wait until process() has recorded its run
        # too, or a restart could stop the attempt before that (then it "ran" nothing).
        self.until(lambda: self._recorded("s", 1), "the stream's processor to run")
        self.once(
            lambda: client.jobs.restart(run, "s"),
            lambda: self.latest(run, "s").attempt >= 2,
            "restart the stream",
        )
        self.until(lambda: status("s", 2) is JobStatus.RUNNING, "the restarted stream to run")
        self.until(lambda: self._recorded("s", 2), "the restarted stream's processor to run")

        self.once(lambda: client.jobs.stop(run, "s"), lambda: self._stop_issued(run), "stop")
        self.until(lambda: status("s", 2) is JobStatus.STOPPED, "the stream to stop")
        self.clock.write_text(str(T0 + 60))  # the periodic rule is due: tick, then d
        self.until(
            lambda: (
                self.executions.get_execution(PROJECT, run).status is not ExecutionStatus.RUNNING
            ),
            "the execution to end",
        )
        return run

    def _recorded(self, job: str, attempt: int) -> bool:
        return self.record.exists() and any(
            r["job"] == job and r["attempt"] == attempt for r in self.ran()
        )

    def _stop_issued(self, run: int) -> bool:
        return any(c.command_id == f"{run}:s:2:STOP" for c in self.commands(run))

    def settle(self, run: int) -> None:
        """Wait until the server is up, no attempt is live and every command is DONE."""

        def settled() -> bool:
            return (
                self.up.is_set()
                and all(j.status.is_terminal for j in self.jobs(run))
                and all(c.status is CommandStatus.DONE for c in self.commands(run))
            )

        self.until(settled, "every attempt to end and every command to be DONE")

    def outcome(self, run: int) -> Outcome:
        actions = self.executions.list_actions(PROJECT, run)
        keys = [(a.job, a.action.value, a.rule, a.event_offset) for a in actions]
        duplicates = [k for k, n in Counter(keys).items() if n > 1]
        assert not duplicates, f"actions taken twice: {duplicates}"
        ran = self.ran()
        twice = [i for i, n in Counter(r["job_execution_id"] for r in ran).items() if n > 1]
        assert not twice, f"job executions that ran twice: {twice}\n{ran}"
        return Outcome(
            execution=self.executions.get_execution(PROJECT, run).status.value,
            jobs=sorted((j.job, j.attempt, j.status.value) for j in self.jobs(run)),
            actions=Counter((a.job, a.action.value, a.rule) for a in actions),
            ran=sorted((r["job"], r["attempt"]) for r in ran),
        )

    def close(self) -> None:
        self._closing = True
        self.up.wait(STEP_TIMEOUT)
        with contextlib.suppress(Exception):
            run = self.run_id()
            for job in self.jobs(run) if run else []:  # leave no job behind
                if job.pid and not job.status.is_terminal:
                    with contextlib.suppress(OSError):
                        os.killpg(job.pid, signal.SIGKILL)
        # A job whose attempt the store never saw run (a server that died without a restart,
        # as under coverage) is known by its record line: stop it too, or it streams on.
        with contextlib.suppress(OSError, ValueError):
            for line in self.ran():
                kill_if_under(int(line["pid"]), self.root)
        self.client.close()
        self.store.close()
        self.server.close()
        self._watcher.join(10)


def kill_if_under(pid: int, root: Path) -> None:
    """SIGKILL process ``pid`` if it still runs in a folder under ``root`` (a pid the system
    gave to another process since is left alone)."""
    with contextlib.suppress(OSError):
        if Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(root):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module", autouse=True)
def importable_flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``crashflow`` importable in this process too (processors pickle by reference)."""
    directory = tmp_path_factory.mktemp("crashflow")
    shutil.copy(FLOW, directory / "crashflow.py")
    sys.path.insert(0, str(directory))
    yield
    sys.path.remove(str(directory))
    sys.modules.pop("crashflow", None)


def play(root: Path, crash_at: list[str]) -> tuple[Outcome, list[str]]:
    """Run crashflow on a server crashing at each of ``crash_at`` in turn; what it left and
    the points it crashed at."""
    rig = Rig(root, crash_at)
    try:
        run = rig.drive()
        rig.settle(run)
        return rig.outcome(run), rig.crashed_at
    finally:
        rig.close()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    outcome, crashed_at = play(tmp_path_factory.mktemp("baseline"), [])
    assert crashed_at == []
    assert outcome.execution == "STOPPED"
    assert [(job, status) for job, _, status in outcome.jobs] == [
        ("a", "FINISHED"),
        ("b", "FINISHED"),
        ("c", "FINISHED"),
        ("d", "FINISHED"),
        ("s", "STOPPED"),
        ("s", "STOPPED"),
        ("tick", "FINISHED"),
    ]
    return outcome


@pytest.mark.timeout(600)  # up to five server starts, each seconds to tens on a loaded machine
@pytest.mark.parametrize("group", sorted(GROUPS))
def test_crashes_at_the_points_repeat_and_lose_nothing(
    group: str, baseline: Outcome, tmp_path: Path
) -> None:
    outcome, crashed_at = play(tmp_path, GROUPS[group])

    missed = GROUPS[group][len(crashed_at) :]
    assert crashed_at == GROUPS[group], f"the flow never reached {missed[:1]} after the crashes"
    assert outcome.execution == baseline.execution
    assert outcome.jobs == baseline.jobs
    assert outcome.actions == baseline.actions
    assert outcome.ran == baseline.ran
