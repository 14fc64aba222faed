"""Several servers on one PostgreSQL / MariaDB database: members, one leader, fencing.

The process test runs two real servers (``--lease-seconds 1 --heartbeat-seconds 0.2``, no
executors: the test reads the scheduler's decisions -- attempts and actions -- from the store)
and kill or pause the leader. The in-process test drives two members' heartbeats by hand to
show the fence refusing a deposed leader's write, whatever the timing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import tideflow as tide
from tests.scheduler.conftest import jobs_workflow
from tideflow.cli.main import app
from tideflow.errors import FailedPreconditionError, NotLeaderError, UnavailableError
from tideflow.metadata import ProjectService, WorkflowService
from tideflow.notification.service import NotificationService
from tideflow.scheduler.actions import CONSUMER, PlanCache, SchedulerConfig
from tideflow.scheduler.clock import ManualClock
from tideflow.scheduler.dispatcher import Dispatcher
from tideflow.scheduler.leadership import Leadership, LeaseSettings, cluster_view
from tideflow.scheduler.service import SchedulerService
from tideflow.server.single import SqliteServerLock
from tideflow.store import ALL_NAMESPACES, Store, committed_offset
from tideflow.store.repositories.cluster import ClusterRepository
from tideflow.testing import TideflowTestCluster, TideflowTestServer, wait_until

LEASE = 1.0
HEARTBEAT = 0.2
NO_EXECUTORS = {"TIDEFLOW_EXECUTORS": ""}
T0 = datetime(2024, 1, 1, tzinfo=UTC)
PROJECT = "ha"


def reacting_execution(store: Store) -> tuple[SchedulerService, int]:
    """An execution whose job ``react`` starts on each event with key ``go``."""
    ProjectService(store).ensure_project(PROJECT)
    wf = jobs_workflow("flow", "main", "react", streaming=True)
    wf.on_event("react", key="go")
    WorkflowService(store).create_snapshot(PROJECT, "flow", plan=tide.compile(wf).to_json())
    service = SchedulerService(store, clock=ManualClock(T0))
    return service, service.start_execution(PROJECT, "flow").execution_id


def reactions(service: SchedulerService, run: int) -> list[int | None]:
    """The offsets of the events the scheduler's actions on ``react`` answered, in order."""
    return [a.event_offset for a in service.list_actions(PROJECT, run) if a.job == "react"]


def dispatched(store: Store, offset: int) -> bool:
    """Whether the scheduler committed its offset at or past ``offset``."""
    return store.run(lambda c: committed_offset(c, ALL_NAMESPACES, CONSUMER), write=False) >= offset


def leads(server: TideflowTestServer) -> float:
    """The server's ``tideflow_leader`` gauge."""
    text = httpx.get(f"{server.http_url}/metrics", timeout=30).text
    return float(re.search(r"^tideflow_leader (\S+)$", text, flags=re.MULTILINE)[1])  # type: ignore[index]


def says(server: TideflowTestServer, text: str) -> bool:
    """Whether the server's log holds ``text``."""
    return server.log_file.exists() and text in server.log_file.read_text(errors="replace")


def test_the_leader_fails_over_fenced_and_each_event_is_decided_once(
    shared_url: str, tmp_path: Path
) -> None:
    pair = TideflowTestCluster(
        shared_url, size=2, root=tmp_path, lease=LEASE, heartbeat=HEARTBEAT, env=NO_EXECUTORS
    )
    a, b = pair.start().members  # the first migrates the database and leads
    pid_a, pid_b = a.process.pid, b.process.pid  # type: ignore[union-attr]
    try:
        with Store.open(shared_url) as store:
            members, lease = cluster_view(store)
            assert {m.pid for m in members} == {pid_a, pid_b}
            assert lease is not None
            assert pair.leader() is a  # the first to start leads
            first_epoch = lease.epoch
            shown = CliRunner().invoke(app, ["server", "status", "--db", shared_url, "--json"])
            assert shown.exit_code == 0, shown.output
            cluster = json.loads(shown.stdout)
            assert {m["pid"]: m["leader"] for m in cluster["members"]} == {
                pid_a: True,
                pid_b: False,
            }
            assert cluster["epoch"] == first_epoch
            assert (leads(a), leads(b)) == (1.0, 0.0)
            service, run = reacting_execution(store)

            # Every member serves: a listener on A hears, live, an event sent through B.
            with a.client(PROJECT).events.listen(keys=["hello"]) as heard:
                stream = iter(heard)
                own = a.client(PROJECT).events.send("hello", "via a")
                assert next(stream).offset == own.offset  # the stream is live from here
                other = b.client(PROJECT).events.send("hello", "via b")
                assert next(stream).offset == other.offset

            # 1. A pauses; B takes over and decides on an event committed meanwhile. When A
            # wakes, its dispatcher and heartbeat see that event and a newer epoch: A steps
            # down, and its fence keeps it from committing a decision in between.
            os.kill(pid_a, signal.SIGSTOP)
            try:
                go = b.client(PROJECT).events.send("go", "1")
                wait_until(lambda: pair.leader() is b, timeout=15, what="B leads")
                wait_until(lambda: dispatched(store, go.offset), timeout=15, what="dispatched")
            finally:
                os.kill(pid_a, signal.SIGCONT)
            wait_until(lambda: says(a, "stopped leading"), timeout=15, what="A steps down")
            _, lease = cluster_view(store)
            assert lease is not None
            assert lease.epoch == first_epoch + 1
            wait_until(lambda: (leads(a), leads(b)) == (0.0, 1.0), what="the leader gauges")

            # 2. kill -9 the leader (B): A takes over within the lease and decides next.
            b.kill()
            killed = time.monotonic()
            wait_until(lambda: pair.leader() is a, timeout=15, what="A leads again")
            took = time.monotonic() - killed
            assert took < LEASE + HEARTBEAT + 3.0, f"failover took {took:.2f} s"
            again = a.client(PROJECT).events.send("go", "2")
            wait_until(lambda: dispatched(store, again.offset), timeout=15, what="dispatched")

            # Each event was decided on exactly once, by whichever member led.
            assert reactions(service, run) == [go.offset, again.offset]
            assert pair.leader() is a

            # A timer another process adds (this one: no server wakes the leader's timer
            # thread) fires on the leader within a heartbeat or so.
            ticking = jobs_workflow("ticking", "tick", streaming=True)
            ticking.periodic("tick", interval=60)  # due: the leader's clock is past T0 + 60 s
            WorkflowService(store).create_snapshot(
                PROJECT, "ticking", plan=tide.compile(ticking).to_json()
            )
            ticks = service.start_execution(PROJECT, "ticking").execution_id
            wait_until(
                lambda: [j.job for j in service.list_job_executions(PROJECT, ticks)] == ["tick"],
                timeout=15,
                what="the periodic job started by the leader",
            )
            service.close()
    finally:
        pair.close()


def _bare_members(store: Store, settings: LeaseSettings) -> tuple[Leadership, Leadership]:
    """Two members that only beat (no leader work): the tests drive their heartbeats."""

    def member() -> Leadership:
        return Leadership(
            store, settings, addresses={}, on_elected=lambda e: None, on_deposed=lambda: None
        )

    return member(), member()


def test_the_fence_refuses_a_deposed_leaders_write(shared_url: str) -> None:
    settings = LeaseSettings(lease=0.3, heartbeat=0.1)
    with Store.open(shared_url) as store:
        a, b = _bare_members(store, settings)
        assert a.beat()
        assert not b.beat()
        assert a.epoch is not None
        # A's dispatcher, fenced by A's token, passes over an event (a read)...
        dispatcher = Dispatcher(
            store, ManualClock(T0), PlanCache(), SchedulerConfig(), fence=a.fence
        )
        NotificationService(store).send(PROJECT, "k", "v")
        assert dispatcher.run_once() == 1
        # ... then A stalls past its lease and B takes over.
        wait_until(b.beat, timeout=10, what="B takes the expired lease")
        assert b.epoch == a.epoch + 1
        assert a.leading  # A has not noticed yet: only its fence stops it
        with pytest.raises(NotLeaderError, match=rf"epoch {a.epoch}, the lease is epoch {b.epoch}"):
            dispatcher.commit_passed()
        assert not dispatched(store, 1)  # nothing A wrote was committed
        assert not a.beat()  # its next heartbeat finds the lease taken
        assert not a.leading


def test_a_heartbeat_paused_before_its_commit_holds_up_the_others_for_a_lease_at_most(
    shared_url: str,
) -> None:
    # Found by CI: tests/cluster/test_attempt_owners.py SIGSTOPs a member, and when the stop
    # fell inside its heartbeat (which locks the lease row first), the other member's
    # heartbeats queued on that lock until the paused one woke: no election, no hand-over.
    settings = LeaseSettings(lease=1.0, heartbeat=0.1)
    with Store.open(shared_url) as store:
        a, b = _bare_members(store, settings)
        assert a.beat()
        paused = store.engine.connect()  # A's next heartbeat, stopped before its commit
        try:
            paused.begin()
            assert ClusterRepository(paused).acquire(a.member_id, settings.lease) is not None
            beats: list[bool] = []
            other = threading.Thread(target=lambda: beats.append(b.beat()), daemon=True)
            other.start()
            other.join(timeout=20)
            assert beats, "B's heartbeat still waits for the paused member's lock"
        finally:
            with contextlib.suppress(Exception):  # the database may have ended it already
                paused.close()
        wait_until(b.beat, timeout=10, what="B takes the lease A could not renew")
        assert b.epoch == (a.epoch or 0) + 1


def test_a_leader_whose_work_fails_to_start_steps_down_and_keeps_beating(
    shared_url: str,
) -> None:
    # Found by tests/cluster/test_failover_suite.py on a loaded machine: the lease moved on
    # between a beat and the new leader's first fenced transaction (the re-offering), the
    # NotLeaderError ended the heartbeat thread, and the member never beat or led again.
    elected: list[int] = []
    deposed: list[int] = []

    def lead(epoch: int) -> None:
        elected.append(epoch)
        if len(elected) == 1:
            raise NotLeaderError("the lease moved on before the leader's work started")

    settings = LeaseSettings(lease=1.0, heartbeat=0.1)
    with Store.open(shared_url) as store:
        member = Leadership(
            store, settings, addresses={}, on_elected=lead, on_deposed=lambda: deposed.append(1)
        )
        member.start()  # the first beat takes the lease, but starting to lead fails
        try:
            assert elected == [1]
            assert deposed == [1]
            # the heartbeat thread lives on: its next beat renews the lease and leads
            wait_until(lambda: member.leading, timeout=15, what="the member to lead")
            assert elected == [1, 1]
            _, lease = cluster_view(store)
            assert lease is not None
            assert (lease.holder, lease.epoch) == (member.member_id, 1)
        finally:
            member.stop()


def test_a_second_server_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tideflow.db'}"
    with TideflowTestServer(home=tmp_path / "a", db_url=url, env=NO_EXECUTORS) as first:
        with pytest.raises(FailedPreconditionError, match="SQLite is single-server"):
            SqliteServerLock.claim(url, url="grpc://elsewhere")
        second = TideflowTestServer(home=tmp_path / "b", db_url=url, env=NO_EXECUTORS)
        with pytest.raises(
            UnavailableError, match=rf"pid {first.process.pid}.*SQLite is single-server"
        ):  # type: ignore[union-attr]
            second.start()
    lock = SqliteServerLock.claim(url, url="grpc://here")  # released when the first stopped
    assert lock is not None
    lock.release()
