"""Attempts and commands owned by cluster members: hand-over, loss, fencing of reports.

The process tests run two real servers on one PostgreSQL / MariaDB database with short lease
settings and only the local executor, and ``kill -9`` the member that owns a running job:

- both members on one host: the other member re-attaches the job, which ends FINISHED once;
- each member on a host of its own (``$TIDEFLOW_MEMBER_HOST``), the job's process group
  killed too (its host is gone): after the lease the attempt is declared lost (FAILED) and
  the job's retry policy runs it again on the survivor.

On PostgreSQL only (the same code on both): the owner paused (SIGSTOP) past its lease, its job
handed over, then woken -- it lets go of the job without touching it; and a lone
member killed and restarted on its home re-attaches its own job at once.

The in-process tests drive the repositories and the leader's hand-over by hand, on every
backend: a START a live member took is never re-offered, a dead member's is; two members
racing to take one orphaned attempt over, exactly one wins; a paused ex-owner's report is
refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.databases import server_database
from tests.scheduler.conftest import Env, env, jobs_workflow
from tideflow.domain.scheduling import AttemptOwner, JobCommand
from tideflow.domain.status import JobStatus
from tideflow.errors import NotOwnerError
from tideflow.metadata import ExecutionService
from tideflow.scheduler.handover import AttemptHandover
from tideflow.scheduler.leadership import Leadership, LeaseSettings
from tideflow.store import Store
from tideflow.store.repositories.cluster import ClusterRepository
from tideflow.store.repositories.outbox import OutboxRepository
from tideflow.store.repositories.ownership import OwnershipRepository
from tideflow.store.rows.base import table_of
from tideflow.store.rows.scheduler import JobCommandRow
from tideflow.testing import TideflowTestCluster, TideflowTestServer, wait_until

__all__ = ["env"]  # the scheduler's fixture, used by the in-process tests

LEASE = 1.0
HEARTBEAT = 0.3
LOCAL_ONLY = {"TIDEFLOW_EXECUTORS": "local"}
PROJECT = "owners"
FLOW = Path(__file__).with_name("ownerflow.py")
COMMAND = table_of(JobCommandRow)


class Pair:
    """Members on one database (one per host given), the code package and the record file."""

    def __init__(self, url: str, root: Path, hosts: tuple[str | None, ...]) -> None:
        self.code = root / "code"
        self.code.mkdir(parents=True)
        shutil.copy(FLOW, self.code / "ownerflow.py")
        self.record = root / "record.jsonl"
        self.record.touch()
        self.release = root / "release"
        self.cluster = TideflowTestCluster(
            url,
            size=len(hosts),
            root=root,
            lease=LEASE,
            heartbeat=HEARTBEAT,
            env=LOCAL_ONLY,
            hosts=hosts,
        ).start()
        self.servers = self.cluster.members
        self.store = self.cluster.store
        self.executions = ExecutionService(self.store)

    def close(self) -> None:
        self.release.touch()  # a job still waiting ends
        self.cluster.close()

    def start_job(self) -> int:
        """Submit and start the workflow; the job execution id of its first attempt, running."""
        from ownerflow import build  # type: ignore[import-not-found]  # the code package's copy

        client = self.servers[0].client(PROJECT)
        client.workflows.submit(build(str(self.record), str(self.release)), source=self.code)
        run = client.workflows.start("owned").execution_id
        self.run = run
        wait_until(lambda: len(self.ran()) == 1, timeout=60, what="the job's first run")
        wait_until(
            lambda: self.attempts()[0].status is JobStatus.RUNNING, timeout=30, what="RUNNING"
        )
        return int(self.attempts()[0].job_execution_id)

    def attempts(self) -> list[Any]:
        return sorted(
            self.executions.list_job_executions(PROJECT, self.run), key=lambda j: j.attempt
        )

    def ran(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.record.read_text().splitlines() if line]

    def owner(self, job_execution_id: int) -> str | None:
        return self.store.run(
            lambda c: OwnershipRepository(c).owner(job_execution_id)[0], write=False
        )

    def owning_server(self, job_execution_id: int) -> tuple[TideflowTestServer, TideflowTestServer]:
        """(the server that owns the attempt, the other one)."""
        owner = self.owner(job_execution_id)
        found = self.cluster.server_of(owner)
        assert found is not None, (owner, self.cluster.describe())
        a, b = self.servers
        return (a, b) if found is a else (b, a)

    def member_id(self, server: TideflowTestServer) -> str:
        """The id ``server`` registered under (it must have)."""
        found = self.cluster.member_id(server)
        assert found is not None, self.cluster.describe()
        return found

    def says(self, server: TideflowTestServer, text: str) -> bool:
        return server.log_file.exists() and text in server.log_file.read_text(errors="replace")


@pytest.fixture
def code_on_path(tmp_path: Path) -> Iterator[None]:
    """``ownerflow`` importable by the test (the servers import the package's copy)."""
    import sys

    sys.path.insert(0, str(FLOW.parent))
    try:
        yield
    finally:
        sys.path.remove(str(FLOW.parent))


@pytest.mark.usefixtures("code_on_path")
def test_a_dead_members_job_is_reattached_by_a_member_on_its_host(
    shared_url: str, tmp_path: Path
) -> None:
    pair = Pair(shared_url, tmp_path, (None, None))
    try:
        key = pair.start_job()
        owner, survivor = pair.owning_server(key)
        heir = pair.member_id(survivor)
        owner.kill()  # kill -9: the job runs on, in its own session

        wait_until(lambda: pair.owner(key) == heir, timeout=30, what="the hand-over")
        wait_until(
            lambda: pair.says(survivor, f"re-attached to local job execution {key}"),
            timeout=30,
            what="the survivor re-attaches the job",
        )
        pair.release.touch()
        wait_until(
            lambda: pair.attempts()[0].status is JobStatus.FINISHED,
            timeout=30,
            what="the job's end, reported by its new owner",
        )
        attempts = pair.attempts()
        assert [(j.attempt, j.status) for j in attempts] == [(1, JobStatus.FINISHED)]
        assert len(pair.ran()) == 1  # it ran once: re-attached, never launched again
        assert pair.owner(key) == heir
    finally:
        pair.close()


@pytest.mark.usefixtures("code_on_path")
def test_a_job_on_a_lost_host_is_declared_lost_and_retried(shared_url: str, tmp_path: Path) -> None:
    pair = Pair(shared_url, tmp_path, ("host-a.test", "host-b.test"))
    try:
        key = pair.start_job()
        owner, survivor = pair.owning_server(key)
        dead = pair.member_id(owner)
        dead_host = "host-a.test" if owner is pair.servers[0] else "host-b.test"
        pid = pair.attempts()[0].pid
        assert pid is not None
        owner.kill()  # the host is gone: its member ...
        os.killpg(pid, signal.SIGKILL)  # ... and the job's processes

        try:
            wait_until(
                lambda: (
                    [j.status for j in pair.attempts()] == [JobStatus.FAILED, JobStatus.FINISHED]
                ),
                timeout=45,
                what="attempt 1 lost, attempt 2 run by the survivor",
            )
        except AssertionError as exc:
            tail = survivor.log_file.read_text(errors="replace")[-6000:]
            raise AssertionError(f"{exc}\nattempts: {pair.attempts()}\nsurvivor:\n{tail}") from exc
        first, second = pair.attempts()
        assert first.error is not None
        assert f"member {dead} on host {dead_host} died; its local attempt was lost" in (
            first.error
        )
        assert [r["attempt"] for r in pair.ran()] == [1, 2]  # retried once, by the policy
        assert pair.owner(second.job_execution_id) == pair.member_id(survivor)
    finally:
        pair.close()


@pytest.mark.postgres
@pytest.mark.usefixtures("code_on_path")
def test_a_paused_owner_that_wakes_up_lets_go_of_the_job(tmp_path: Path) -> None:
    """SIGSTOP the owner past its lease: its job is handed over; woken, the owner lets go."""
    with server_database("postgres") as url:
        pair = Pair(url, tmp_path, (None, None))
        try:
            key = pair.start_job()
            owner, survivor = pair.owning_server(key)
            assert owner.process is not None
            assert survivor.process is not None
            heir = pair.member_id(survivor)
            paused = pair.member_id(owner)
            os.kill(owner.process.pid, signal.SIGSTOP)
            try:
                wait_until(lambda: pair.owner(key) == heir, timeout=30, what="the hand-over")
                wait_until(
                    lambda: pair.says(survivor, f"re-attached to local job execution {key}"),
                    timeout=30,
                    what="the survivor re-attaches the job",
                )
            finally:
                os.kill(owner.process.pid, signal.SIGCONT)
            # Woken, the ex-owner sees at its next heartbeat that the job is no longer its
            # own and lets go of it before the job ends (nothing of it was written).
            wait_until(
                lambda: pair.says(owner, f"letting go of job execution {key}"),
                timeout=30,
                what="the ex-owner lets go",
            )
            assert pair.says(owner, f"member {paused} no longer owns job execution {key}")
            pair.release.touch()
            wait_until(
                lambda: pair.attempts()[0].status is JobStatus.FINISHED,
                timeout=30,
                what="the job's end, reported by its new owner",
            )
            assert [(j.attempt, j.status) for j in pair.attempts()] == [(1, JobStatus.FINISHED)]
            assert len(pair.ran()) == 1
            assert pair.owner(key) == heir
        finally:
            pair.close()


@pytest.mark.postgres
@pytest.mark.usefixtures("code_on_path")
def test_a_restarted_member_reattaches_its_own_job_at_once(tmp_path: Path) -> None:
    """A lone member killed and started again on its home, within its old lease."""
    with server_database("postgres") as url:
        pair = Pair(url, tmp_path, (None,))
        try:
            key = pair.start_job()
            (server,) = pair.servers
            before = pair.owner(key)
            server.kill()
            server.start()  # its predecessor's heartbeat is still fresh: not dead by the lease
            me = pair.member_id(server)
            members, _ = pair.cluster.view()
            assert before not in {m.member_id for m in members}  # it replaced its predecessor
            wait_until(lambda: pair.owner(key) == me, timeout=30, what="it owns its job again")
            wait_until(
                lambda: pair.says(server, f"re-attached to local job execution {key}"),
                timeout=30,
                what="the job re-attached",
            )
            pair.release.touch()
            wait_until(
                lambda: pair.attempts()[0].status is JobStatus.FINISHED,
                timeout=30,
                what="the job's end",
            )
            assert [(j.attempt, j.status) for j in pair.attempts()] == [(1, JobStatus.FINISHED)]
            assert len(pair.ran()) == 1
        finally:
            pair.close()


# -- in process, on every backend ---------------------------------------------------------------


def _member(
    store: Store, member_id: str, host: str = "h", executors: tuple[str, ...] | None = None
) -> None:
    """Register (or renew) ``member_id`` as a live member."""
    store.run(
        lambda c: ClusterRepository(c).heartbeat(
            member_id,
            host=host,
            pid=os.getpid(),
            addresses={},
            home=f"/homes/{member_id}",
            executors=executors,
        )
    )


def _owner(member_id: str, host: str = "h", lease: float = 3600.0) -> AttemptOwner:
    return AttemptOwner(member_id=member_id, host=host, home=f"/homes/{member_id}", lease=lease)


def _taken_start(env: Env, workflow: str, owner: AttemptOwner) -> JobCommand:
    env.submit(jobs_workflow(workflow, "a"))
    run = env.start(workflow)
    taken = [
        c
        for c in env.service.take_commands("local", limit=1000, owner=owner)
        if c.execution_id == run.execution_id
    ]
    assert len(taken) == 1
    return taken[0]


def test_a_start_a_live_member_took_is_not_offered_again(env: Env) -> None:
    """The window docs/ha.md described: taken, not yet STARTING, and a new leader elected."""
    live = f"live-{env.project}"
    start = _taken_start(env, f"w{env.project}", _owner(live))
    member = env.store.run(
        lambda c: c.execute(
            select(COMMAND.c.member).where(COMMAND.c.command_id == start.command_id)
        ).scalar_one(),
        write=False,
    )
    assert member == live
    assert env.store.run(
        lambda c: OwnershipRepository(c).owner(start.job_execution_id), write=False
    ) == (live, f"/homes/{live}", "h")

    # The election's re-offer while the member lives: its START stays taken.
    again = env.store.run(lambda c: OutboxRepository(c).reoffer_taken(live=[live]))
    assert start.command_id not in again
    assert env.service.get_command(start.command_id).status.value == "TAKEN"
    # Once it is dead (not among the live), the START is offered again.
    again = env.store.run(lambda c: OutboxRepository(c).reoffer_taken(live=[]))
    assert start.command_id in again
    assert env.service.get_command(start.command_id).status.value == "PENDING"


def test_the_leader_hands_over_or_declares_lost_and_fences_the_old_owner(env: Env) -> None:
    # Only the leader takes the lease; the other members just beat (a row each), so however
    # slow the machine, nobody else leads and the leader's fence holds.
    settings = LeaseSettings(lease=1.0, heartbeat=0.2)
    leader = Leadership(
        env.store, settings, addresses={}, on_elected=lambda e: None, on_deposed=lambda: None
    )
    doomed, neighbour = f"doomed-{env.project}", f"neighbour-{env.project}"
    idle = f"idle-{env.project}"  # on the same host, but runs no local executor
    try:
        wait_until(leader.beat, timeout=10, what="the lease (a test before may hold it)")
        _member(env.store, doomed, "h2")
        handover = AttemptHandover(
            env.store,
            env.executions,
            fence=leader.fence,
            lease=settings.lease,
            host_bound=lambda executor: True,
        )
        owner = _owner(doomed, "h2", settings.lease)
        first = _taken_start(env, f"x{env.project}", owner)
        second = _taken_start(env, f"y{env.project}", owner)
        for start in (first, second):
            for status in (JobStatus.STARTING, JobStatus.RUNNING):
                env.executions.set_job_status(
                    env.project, start.job_execution_id, status, owner=doomed
                )

        # While its owner beats, nothing is handed over.
        _member(env.store, doomed, "h2")
        leader.beat()
        done = handover.run_once()
        assert first.job_execution_id not in {k for k, _ in done.moved}

        def owner_of(key: int) -> str | None:
            return env.store.run(lambda c: OwnershipRepository(c).owner(key)[0], write=False)

        # The owner stops beating (paused, dead); a member on its host beats on: after the
        # lease both attempts go to that member (never to one that runs no local executor).
        def handed() -> bool:
            leader.beat()
            _member(env.store, neighbour, "h2", ("local",))
            _member(env.store, idle, "h2", ())
            handover.run_once()
            return owner_of(first.job_execution_id) == neighbour

        wait_until(handed, timeout=15, what="the hand-over to the member on the same host")
        assert owner_of(second.job_execution_id) == neighbour

        # The paused ex-owner wakes up and reports: refused, nothing written.
        with pytest.raises(NotOwnerError, match=rf"member {doomed} no longer owns"):
            env.executions.set_job_status(
                env.project, first.job_execution_id, JobStatus.FINISHED, owner=doomed
            )
        assert env.latest(first.execution_id, "a").status is JobStatus.RUNNING

        # The neighbour dies too: no live member is left on h2, the attempts are lost.
        def lost() -> bool:
            leader.beat()
            handover.run_once()
            return env.latest(first.execution_id, "a").status is JobStatus.FAILED

        wait_until(lost, timeout=15, what="the attempt declared lost")
        failed = env.latest(first.execution_id, "a")
        assert failed.error is not None
        assert f"member {neighbour} on host h2 died" in failed.error
        assert env.latest(second.execution_id, "a").status is JobStatus.FAILED
    finally:
        leader.stop()
        for gone in (doomed, neighbour, idle):
            env.store.run(lambda c, m=gone: ClusterRepository(c).remove_member(m))


def test_an_owner_paused_in_a_report_holds_the_hand_over_up_for_a_lease_at_most(env: Env) -> None:
    if env.store.dialect == "sqlite":
        pytest.skip("SQLite takes no row locks (and has a single member)")
    owner = _owner(f"paused-{env.project}", lease=1.0)
    heir = f"heir-{env.project}"
    start = _taken_start(env, f"p{env.project}", owner)
    key = start.job_execution_id
    env.executions.set_job_status(env.project, key, JobStatus.STARTING, owner=owner.member_id)
    paused = env.store.engine.connect()  # the owner's next report, stopped before its commit
    try:
        paused.begin()
        OwnershipRepository(paused).check_owner(key, owner.member_id, lease_seconds=owner.lease)
        moved: list[bool] = []
        handing = threading.Thread(
            target=lambda: moved.append(
                env.store.run(lambda c: OwnershipRepository(c).assign(key, owner.member_id, heir))
            ),
            daemon=True,
        )
        handing.start()
        handing.join(timeout=20)
        assert moved == [True], "the hand-over still waits for the paused owner's report"
    finally:
        with contextlib.suppress(Exception):  # the database may have ended it already
            paused.close()
    with pytest.raises(NotOwnerError, match=rf"member {owner.member_id} no longer owns"):
        env.executions.set_job_status(
            env.project, key, JobStatus.RUNNING, owner=owner.member_id, owner_lease=owner.lease
        )


def _race(env: Env, key: int, racers: list[AttemptOwner], dead: str, heir: str) -> dict[str, bool]:
    """Two members claim attempt ``key`` while the leader hands it to ``heir``, all at once."""
    barrier = threading.Barrier(len(racers) + 1)
    won: dict[str, bool] = {}

    def claim(owner: AttemptOwner) -> None:
        barrier.wait()
        won[owner.member_id] = env.executions.claim_attempt(key, owner)

    def assign() -> None:
        barrier.wait()
        won["leader"] = env.store.run(lambda c: OwnershipRepository(c).assign(key, dead, heir))

    threads = [threading.Thread(target=claim, args=(r,)) for r in racers]
    threads.append(threading.Thread(target=assign))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return won


def test_two_members_racing_to_take_over_an_orphan_exactly_one_wins(env: Env) -> None:
    dead = _owner(f"dead-{env.project}")
    racers = [_owner(f"x-{env.project}"), _owner(f"y-{env.project}")]
    heir = f"z-{env.project}"  # the member the leader hands the orphan to
    for member_id in (*(r.member_id for r in racers), heir):
        _member(env.store, member_id)
    try:
        for round_ in range(5):
            start = _taken_start(env, f"r{round_}{env.project}", dead)
            env.executions.set_job_status(env.project, start.job_execution_id, JobStatus.STARTING)
            won = _race(env, start.job_execution_id, racers, dead.member_id, heir)
            assert sorted(won.values()) == [False, False, True], won
            winner = next(k for k, v in won.items() if v)
            owner = env.store.run(
                lambda c, k=start.job_execution_id: OwnershipRepository(c).owner(k)[0],
                write=False,
            )
            assert owner == (winner if winner != "leader" else heir)
    finally:
        for member_id in (*(r.member_id for r in racers), heir):
            env.store.run(lambda c, m=member_id: ClusterRepository(c).remove_member(m))
