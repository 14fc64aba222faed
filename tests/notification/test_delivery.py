"""Replay, live delivery, resumption and ordering of the event log, on every backend."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable

from tideflow.client import Client, connect
from tideflow.domain import Event
from tideflow.notification.service import NotificationService
from tideflow.store import Store, append_events
from tideflow.testing import wait_until

DEADLINE = 30.0


def collect(listener, count: int, deadline: float = DEADLINE) -> list[Event]:
    """Take ``count`` events from ``listener`` or fail once the deadline passes."""
    got: list[Event] = []
    end = time.monotonic() + deadline
    while len(got) < count:
        assert time.monotonic() < end, f"only {len(got)} of {count} events arrived"
        got += listener.poll(0.5)
    return got


def in_thread(work: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_replay_then_live(client: Client) -> None:
    stored = [client.events.send("k", str(i)) for i in range(5)]
    with client.events.listen() as listener:
        assert collect(listener, 5) == stored
        sender = in_thread(lambda: [client.events.send("k", f"live{i}") for i in range(3)])
        live = collect(listener, 3)
        sender.join()
    assert [e.value for e in live] == ["live0", "live1", "live2"]
    assert listener.last_offset == live[-1].offset


def test_iteration_yields_events_one_by_one(client: Client) -> None:
    for i in range(3):
        client.events.send("k", str(i))
    with client.events.listen() as listener:
        values = [next(listener).value for _ in range(3)]
    assert values == ["0", "1", "2"]


def test_resume_after_last_offset_loses_and_repeats_nothing(client: Client) -> None:
    sent = [client.events.send("k", str(i)) for i in range(10)]
    with client.events.listen() as first:
        seen = [next(first) for _ in range(3)]
        resume_from = first.last_offset
    assert resume_from == seen[-1].offset
    with client.events.listen(after_offset=resume_from) as second:
        rest = collect(second, 7)
    assert seen + rest == sent


def test_listen_filters_in_the_store(client: Client) -> None:
    client.events.send("a", "1", event_type="T1", sender="s1")
    client.events.send("b", "2", event_type="T2", sender="s1")
    client.events.send("a", "3", event_type="T2", sender="s2")
    with client.events.listen(keys=["a"], event_types=["T2"]) as listener:
        assert [e.value for e in collect(listener, 1)] == ["3"]
        client.events.send("b", "4", event_type="T2")
        client.events.send("a", "5", event_type="T2")
        assert [e.value for e in collect(listener, 1)] == ["5"]
    with client.events.listen(sender="s1", keys=["*"]) as listener:
        assert [e.value for e in collect(listener, 2)] == ["1", "2"]


def test_projects_are_isolated(store_url: str, client: Client, project: str) -> None:
    with connect(store_url, project=f"{project}_other") as other:
        other.events.send("k", "theirs")
        mine = client.events.send("k", "mine")
        with client.events.listen() as listener:
            assert collect(listener, 1) == [mine]
            assert listener.poll(0.05) == []


def test_a_commit_wakes_the_listener_without_polling(store_url: str, project: str) -> None:
    """With a one-minute heartbeat and no watcher, only the commit hook can deliver in time."""
    with Store.open(store_url) as store:
        service = NotificationService(store, heartbeat=60.0, watch_other_writers=False)
        try:
            listener = service.listen(project, after_offset=service.latest_offset())
            received: list[Event] = []
            reader = in_thread(lambda: received.append(next(listener)))
            sent = service.send(project, "k", "wake")
            reader.join(DEADLINE)
            assert received == [sent]
        finally:
            service.close()


def test_close_unblocks_a_waiting_iterator(store_url: str, project: str) -> None:
    with Store.open(store_url) as store:
        service = NotificationService(store, heartbeat=0.05, watch_other_writers=False)
        listener = service.listen(project, after_offset=service.latest_offset())
        outcome: list[object] = []
        reader = in_thread(lambda: outcome.append(list(listener)))
        listener.close()
        reader.join(DEADLINE)
        assert outcome == [[]]
        assert service.listeners == 0
        service.close()


def test_concurrent_writers_are_delivered_in_offset_order_without_gaps(client: Client) -> None:
    """What the senders were given is exactly what the listener saw, in increasing order."""
    per_thread, threads = 150, 6
    sent: list[Event] = []
    lock = threading.Lock()
    start = client.events.latest_offset()

    def send(worker: int) -> None:
        for i in range(per_thread):
            event = client.events.send(f"w{worker}", str(i))
            with lock:
                sent.append(event)

    with client.events.listen(after_offset=start) as listener:
        workers = [in_thread(lambda w=w: send(w)) for w in range(threads)]
        received = collect(listener, per_thread * threads)
        for worker in workers:
            worker.join()
    offsets = [e.offset for e in received]
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == len(offsets)
    assert sorted(offsets) == sorted(e.offset for e in sent)


def test_a_late_commit_is_never_skipped(store_url: str, client: Client, project: str) -> None:
    """A transaction holding offset N makes the next writer wait, so N+1 cannot overtake it."""
    with Store.open(store_url) as store:
        holding, release = threading.Event(), threading.Event()
        slow: list[Event] = []

        def slow_writer() -> None:
            with store.transaction() as connection:
                slow.extend(append_events(connection, [Event("slow", "1", namespace=project)]))
                holding.set()
                release.wait(DEADLINE)

        fast: list[Event] = []
        with client.events.listen(after_offset=client.events.latest_offset()) as listener:
            writer = in_thread(slow_writer)
            assert holding.wait(DEADLINE)
            quick = in_thread(lambda: fast.append(client.events.send("fast", "2")))
            quick.join(0.3)
            assert fast == [], "a second writer committed while an earlier offset was pending"
            assert listener.poll(0.1) == []
            release.set()
            writer.join(DEADLINE)
            quick.join(DEADLINE)
            received = collect(listener, 2)
        assert [e.key for e in received] == ["slow", "fast"]
        assert received[0].offset == slow[0].offset < fast[0].offset


SENDER_SCRIPT = """
import sys
from tideflow.client import connect
url, project, worker, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with connect(url, project=project) as client:
    for i in range(count):
        print(client.events.send("proc" + worker, str(i)).offset, flush=True)
"""


def test_two_processes_deliver_to_a_third_in_order(
    store_url: str, client: Client, project: str
) -> None:
    """Writers in other processes reach a listener through the watcher (LISTEN or polling)."""
    count = 120
    start = client.events.latest_offset()
    with client.events.listen(after_offset=start) as listener:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", SENDER_SCRIPT, store_url, project, str(w), str(count)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for w in range(2)
        ]
        received = collect(listener, 2 * count, deadline=120)
        outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    sent = sorted(int(line) for out in outputs for line in out.split())
    offsets = [e.offset for e in received]
    assert offsets == sorted(offsets)
    assert offsets == sent


def test_another_process_commit_is_seen_while_this_process_keeps_committing(
    store_url: str, client: Client, project: str
) -> None:
    """The watcher spaces its looks out while its own commits change the files (SQLite); a
    foreign commit in that time still reaches the listener (by the full poll at the latest)."""
    stop = threading.Event()

    def own_writes() -> None:
        while not stop.is_set():
            client.events.send("own", "x")

    start = client.events.latest_offset()
    with client.events.listen(keys=["proc7"], after_offset=start) as listener:
        writer = in_thread(own_writes)
        try:
            wait_until(
                lambda: client.events.latest_offset() > start + 50, timeout=30, what="own writes"
            )
            sent = subprocess.run(
                [sys.executable, "-c", SENDER_SCRIPT, store_url, project, "7", "1"],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            received = collect(listener, 1)
            assert writer.is_alive(), "this process's writes stopped before the event arrived"
        finally:
            stop.set()
            writer.join(30)
    assert [e.offset for e in received] == [int(sent.stdout.split()[0])]


def test_the_watcher_stops_when_the_last_listener_closes(store_url: str, project: str) -> None:
    with Store.open(store_url) as store:
        service = NotificationService(store, heartbeat=0.05)
        try:
            first = service.listen(project)
            second = service.listen(project)
            watcher = service._watcher
            assert watcher is not None
            first.close()
            assert service._watcher is watcher  # one listener still waits
            second.close()  # stops the watcher without waiting out its current wait
            assert service._watcher is None
            wait_until(lambda: not watcher._thread.is_alive(), timeout=10, what="watcher ends")
            with service.listen(project):
                assert service._watcher is not None  # a new listener starts a fresh one
        finally:
            service.close()


def test_the_sqlite_probe_changes_when_another_connection_commits(tmp_path) -> None:
    """The watcher reads the counter only when the probe moves: a commit must move it."""
    from tideflow.notification.watchers import sqlite_probe

    url = f"sqlite:///{tmp_path / 'probe.db'}"
    with Store.open(url) as watched, Store.open(url) as writer:
        probe = sqlite_probe(watched)
        assert probe is not None
        for i in range(5):
            before = probe()
            with writer.transaction() as connection:
                append_events(connection, [Event("k", str(i), namespace="default")])
            assert probe() != before, f"commit {i} left the files unchanged"


def test_a_watcher_reads_every_foreign_commit_of_a_process_that_does_not_commit(
    tmp_path, monkeypatch
) -> None:
    """Its own publishes are not taken for this process's commits.

    They once were: the change after each publish counted as "own", went unread, and the
    watcher slowed to BUSY_POLL_SECONDS, so a listener in another process than the writers
    waited ~10 ms for an event instead of ~2.
    """
    from types import SimpleNamespace

    from tideflow.notification import watchers
    from tideflow.notification.signal import OffsetSignal

    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(0.001)

    monkeypatch.setattr(watchers, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep))
    url = f"sqlite:///{tmp_path / 'watched.db'}"
    with Store.open(url) as watched, Store.open(url) as writer:
        signal = OffsetSignal()
        watcher = watchers.PollingWatcher(watched, signal, interval=0.001)
        watcher.start()
        try:
            offset = 0
            for i in range(300):  # commits keep coming, as from a busy writer elsewhere
                with writer.transaction() as connection:  # no hook of this signal: foreign
                    stored = append_events(connection, [Event("k", str(i), namespace="d")])
                offset = stored[0].offset
            wait_until(lambda: signal.latest >= offset, timeout=10)
        finally:
            watcher.stop()
    assert slept, "the watcher never slept"
    assert watchers.BUSY_POLL_SECONDS not in slept, (
        "a foreign commit was taken for this process's own and not read"
    )
