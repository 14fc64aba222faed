"""Checkpoints of a SQLite server's write-ahead log, taken off the request path.

A checkpoint copies the log's pages back into the database file and syncs both files. SQLite
runs one from whichever connection commits past ``wal_autocheckpoint`` pages (1,000 by
default): through a server that was one write call in every ~150, and that call waited the
3-20 ms of the copy and the two syncs (a send's p99 through the server went from ~1.5 to
~4.5 ms). The server instead raises that threshold on its own connections to a safety net and
checkpoints from a thread of its own with ``PRAGMA wal_checkpoint(PASSIVE)``, which never
waits for readers or writers and never blocks them (SQLite releases the GIL meanwhile).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading

log = logging.getLogger(__name__)

SAFETY_NET_PAGES = 20_000
"""``wal_autocheckpoint`` of the server's own connections: they checkpoint only if the
background thread falls this far behind (~80 MB of log at 4 KiB pages)."""


class WalCheckpointer:
    """A thread that checkpoints a SQLite database's log whenever it changed.

    Args:
        database: Path of the SQLite file (its log is ``<database>-wal``).
        interval: Seconds between looks; a look that finds the log unchanged since the last
            checkpoint does nothing (an idle server costs one ``stat`` per look).
    """

    def __init__(self, database: str, *, interval: float = 1.0) -> None:
        self._database = database
        self._wal = f"{database}-wal"
        self._interval = interval
        self._stopping = threading.Event()
        self._seen: tuple[int, int] | None = None
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self.looks = 0
        """How many times the thread looked at the log."""
        self.checkpoints = 0
        """How many checkpoints ran."""
        self.last: tuple[int, int, int] | None = None
        """What the last one answered: (busy, pages in the log, pages checkpointed)."""

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (a checkpoint in progress finishes first)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _changed(self) -> bool:
        try:
            info = os.stat(self._wal)
        except FileNotFoundError:
            return False
        seen = (info.st_mtime_ns, info.st_size)
        if seen == self._seen:
            return False
        self._seen = seen
        return True

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self._stopping.wait(self._interval):
                self.looks += 1
                if not self._changed():
                    continue
                try:
                    if connection is None:
                        connection = sqlite3.connect(self._database, isolation_level=None)
                    row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as e:  # the thread's edge: the next look tries again
                    log.warning("checkpoint of %s failed: %s", self._database, e)
                    continue
                self.last = (int(row[0]), int(row[1]), int(row[2]))
                self.checkpoints += 1
        finally:
            if connection is not None:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
