"""SQLite is single-server: a second server on the same SQLite file is refused at start.

Several servers on one database need a database that several machines can reach and that
locks rows (PostgreSQL, MariaDB): there they form a cluster with one leader
(:mod:`tideflow.scheduler.leadership`). On SQLite two servers would both dispatch, both run
timers and both re-offer commands. The first server therefore holds an exclusive ``flock`` on
``<database>.server.lock`` beside the file for as long as it runs; the kernel releases it when
the process ends, however it ends (``kill -9`` included), so a stale lock never blocks a
restart. (Scripts using ``tide.connect("sqlite:///...")`` beside the server take no lock:
they run no scheduler.)
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from sqlalchemy.engine import make_url

from tideflow.errors import FailedPreconditionError

LOCK_SUFFIX = ".server.lock"


class SqliteServerLock:
    """The lock of one server on one SQLite file; :meth:`release` it at stop."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def claim(cls, db_url: str, *, url: str) -> SqliteServerLock | None:
        """Take the lock of the SQLite file of ``db_url`` (``None`` for other databases).

        Args:
            db_url: The server's store.
            url: Where this server will answer, written into the lock file for the message
                another server gets.

        Raises:
            FailedPreconditionError: Another server holds it.
        """
        parsed = make_url(db_url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        path = Path(os.path.abspath(parsed.database) + LOCK_SUFFIX)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:
                holder = {}
            os.close(fd)
            who = f" (pid {holder['pid']}, {holder.get('url', '?')})" if "pid" in holder else ""
            raise FailedPreconditionError(
                f"another Tideflow server{who} already serves the SQLite store "
                f"{parsed.database}: SQLite is single-server. Stop that server, or run several "
                "servers on one PostgreSQL or MariaDB database (see docs/ha.md)"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        lock = cls(fd, path)
        lock.describe(url)
        return lock

    def describe(self, url: str) -> None:
        """Write this server's pid and address into the lock file."""
        if self._fd is None:
            return
        data = json.dumps({"pid": os.getpid(), "url": url}).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        """Let another server start on the file."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
