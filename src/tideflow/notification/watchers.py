"""Learn about events committed by *other* processes, and publish their offsets.

Inside one process the store's commit hook publishes offsets directly. Other writers -- a second
server on the same PostgreSQL, a script using ``tide.connect("sqlite:///...")`` beside the
server -- are seen through a watcher:

* **PostgreSQL**: ``LISTEN tideflow_events``. Every appending transaction runs
  ``pg_notify('tideflow_events', <last offset>)``; PostgreSQL delivers it at commit, so a
  listener wakes within a millisecond or two of the commit and never before it.
* **SQLite and MariaDB** have no such channel, so the watcher polls the one-row offset counter
  (``event_sequence``) on a held connection: a primary-key read that costs microseconds on
  SQLite and one round trip on MariaDB. The default interval (2 ms on SQLite, 10 ms on MariaDB)
  bounds the extra delivery delay for cross-process writers; writers in the same process are
  not affected by it. On SQLite the watcher first looks at the database files (``stat`` of the
  file and its write-ahead log, which every commit changes) and reads the counter only when they
  changed, or at least every :data:`FULL_POLL_SECONDS`: a transaction 500 times a second kept
  an idle server at ~15 % of a core, a ``stat`` costs a few microseconds. After a second
  without any change the files are looked at every :data:`IDLE_POLL_SECONDS` instead, so an
  idle server's watchers cost next to nothing (and the counter is read once a second, not ten
  times); the first commit after a quiet spell is seen up to that much later. A change that this
  process's own commits explain (the signal moved since the last look) is not read either: a
  busy server would otherwise read the counter after each of its own writes. A commit of
  another process in the same moment is then seen by the next full poll. While this process's
  own commits keep changing the files, the looks space out to :data:`BUSY_POLL_SECONDS`: they
  could not tell a foreign commit from an own one anyway, and the 500 wake-ups a second took
  the GIL from the writers (``send_event`` through the server +4-10 %, measured interleaved).

A watcher only ever publishes a number; listeners then read the events themselves, so a lost or
late notification delays delivery but can never lose or reorder an event (the next poll or
notification covers it).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

from sqlalchemy import text

from tideflow.notification.signal import OffsetSignal
from tideflow.store.engine import WRITE_FLAG
from tideflow.store.store import Store

CHANNEL = "tideflow_events"
POLL_INTERVALS = {"sqlite": 0.002, "mysql": 0.010, "mariadb": 0.010}
FULL_POLL_SECONDS = 0.1
QUIET_AFTER_SECONDS = 1.0
IDLE_POLL_SECONDS = 0.05
BUSY_POLL_SECONDS = 0.02
QUIET_FULL_POLL_SECONDS = 1.0
"""On SQLite, the counter is read this often even when the files look unchanged (a commit within
the file system's timestamp granularity that leaves the log's size alone is not missed for
longer than this)."""
RECONNECT_DELAY = 1.0

log = logging.getLogger(__name__)


class CommitWatcher(ABC):
    """A background thread that publishes offsets committed by other processes."""

    def __init__(self, store: Store, signal: OffsetSignal) -> None:
        self._store = store
        self._signal = signal
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)

    def start(self) -> None:
        """Start watching."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching and wait for the thread to end."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._watch()
            except Exception:  # a thread edge: log, back off, reconnect
                if self._stop.is_set():  # stopped meanwhile (not waited for): nothing lost
                    return
                log.exception("event watcher lost its connection; reconnecting")
                self._stop.wait(RECONNECT_DELAY)

    @abstractmethod
    def _watch(self) -> None:
        """Watch until stopped or the connection fails (then raise)."""


class PollingWatcher(CommitWatcher):
    """Polls the offset counter (SQLite, MariaDB)."""

    def __init__(self, store: Store, signal: OffsetSignal, interval: float | None = None) -> None:
        super().__init__(store, signal)
        self.interval = (
            interval if interval is not None else POLL_INTERVALS.get(store.dialect, 0.01)
        )

    def _watch(self) -> None:
        query = text("SELECT last FROM event_sequence")
        probe = sqlite_probe(self._store)
        seen: object = None
        read_at = -FULL_POLL_SECONDS
        published = self._signal.latest
        changed_at = time.monotonic()
        with self._store.engine.connect() as connection:
            connection.info[WRITE_FLAG] = False
            while not self._stop.is_set():
                now = time.monotonic()
                state = probe() if probe is not None else None
                if state != seen:
                    changed_at = now
                quiet = probe is not None and now - changed_at > QUIET_AFTER_SECONDS
                full_poll = QUIET_FULL_POLL_SECONDS if quiet else FULL_POLL_SECONDS
                local, published = self._signal.latest != published, self._signal.latest
                own = False
                if state != seen and local and now - read_at < full_poll:
                    seen, own = state, True  # this process's own commits changed the files
                elif probe is None or state != seen or now - read_at >= full_poll:
                    seen, read_at = state, now
                    with connection.begin():
                        latest = connection.execute(query).scalar_one_or_none()
                    if latest is not None:
                        self._signal.publish(int(latest))
                    # What this watcher published itself is no commit of this process: taken
                    # for one, the next foreign change went unread for BUSY_POLL_SECONDS.
                    published = self._signal.latest
                # time.sleep: half the CPU of Event.wait at 500 wake-ups a second. A quiet
                # database is looked at less often (the first commit after a quiet spell is
                # seen within IDLE_POLL_SECONDS), so an idle server stays idle.
                if quiet:
                    time.sleep(max(self.interval, IDLE_POLL_SECONDS))
                else:
                    time.sleep(max(self.interval, BUSY_POLL_SECONDS) if own else self.interval)


def sqlite_probe(store: Store) -> Callable[[], object] | None:
    """What changes when any process commits to ``store``'s SQLite file (None: not a file)."""
    if store.dialect != "sqlite":
        return None
    database = store.engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    paths = (database, database + "-wal")

    def state() -> object:
        marks: list[tuple[int, int, int] | None] = []
        for path in paths:
            try:
                info = os.stat(path)
            except OSError:
                marks.append(None)
            else:
                marks.append((info.st_mtime_ns, info.st_size, info.st_ino))
        return tuple(marks)

    return state


class PostgresWatcher(CommitWatcher):
    """LISTENs on the commit channel (PostgreSQL)."""

    def _watch(self) -> None:
        import psycopg

        url = self._store.engine.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            # Catch up on anything committed before LISTEN took effect.
            row = connection.execute("SELECT last FROM event_sequence").fetchone()
            if row is not None:
                self._signal.publish(int(row[0]))
            while not self._stop.is_set():
                for notification in connection.notifies(timeout=0.5):
                    self._signal.publish(int(notification.payload))


def start_watcher(store: Store, signal: OffsetSignal) -> CommitWatcher:
    """Start the watcher that suits ``store``'s database."""
    watcher: CommitWatcher = (
        PostgresWatcher(store, signal)
        if store.dialect == "postgresql"
        else PollingWatcher(store, signal)
    )
    watcher.start()
    return watcher
