"""Engines for the three supported databases, configured so they behave alike.

* **SQLite** (embedded default): WAL so readers never block the writer, foreign keys on (off by
  default in SQLite), a busy timeout so a writer waits for the lock instead of failing, and
  ``synchronous=NORMAL`` (durable across application crashes; WAL makes it safe). Write
  transactions start with ``BEGIN IMMEDIATE``: a deferred ``BEGIN`` that later tries to write can
  fail at once with "database is locked" when another writer got in first, whatever the timeout.
* **PostgreSQL** (``postgresql+psycopg``): its default READ COMMITTED isolation.
* **MariaDB / MySQL** (``mysql+pymysql``): READ COMMITTED too (InnoDB defaults to REPEATABLE
  READ), so reads after taking a row lock see what the lock holder before us committed, as on
  PostgreSQL; and ``utf8mb4``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from tideflow.errors import InvalidArgumentError
from tideflow.store.errors import driver_error

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_FLAG = "tideflow_write"
"""Key in ``Connection.info`` telling the SQLite ``begin`` hook which ``BEGIN`` to emit."""
APPENDED_OFFSET = "tideflow_appended_offset"
"""Key in ``Connection.info`` where :func:`~tideflow.store.event.append_events` leaves the last
offset it appended, for the store to announce once the transaction has committed."""

_DEFAULT_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}
SUPPORTED = "sqlite:///PATH, postgresql+psycopg://USER@HOST/DB or mysql+pymysql://USER@HOST/DB"


def parse_url(url: str | URL) -> URL:
    """Parse and normalise a database URL (a missing driver gets the supported one).

    Raises:
        InvalidArgumentError: Not a URL, an unsupported database, or an in-memory SQLite URL
            (each connection would see its own empty database).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise InvalidArgumentError(
            f"not a database URL: {url!r}; use {SUPPORTED}", field="db"
        ) from e
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:") or parsed.database.startswith("file::memory:"):
            raise InvalidArgumentError(
                "in-memory SQLite is not supported (every connection would see a different "
                "database); use a file, e.g. sqlite:////tmp/tideflow.db",
                field="db",
            )
        return parsed
    if backend not in _DEFAULT_DRIVERS:
        raise InvalidArgumentError(f"unsupported database {backend!r}; use {SUPPORTED}", field="db")
    if "+" not in parsed.drivername:
        parsed = parsed.set(drivername=_DEFAULT_DRIVERS[backend])
    return parsed


def display_url(url: str | URL) -> str:
    """``url`` with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return str(url)


def make_engine(url: str | URL, *, wal_autocheckpoint: int | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the per-backend settings of this module's docstring.

    Args:
        url: The database URL.
        wal_autocheckpoint: SQLite only: the log size in pages past which a commit of this
            engine's connections checkpoints (SQLite's own default, 1,000, when ``None``).
        kwargs: Passed to :func:`sqlalchemy.create_engine`.
    """
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        assert parsed.database is not None  # checked by parse_url
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # The connection used last comes back first: SQLite keeps a page cache per connection
        # and a write through another connection empties it, so handing connections round in
        # turn (the pool's default) had every transaction start on a cold cache (+10 %
        # create_model_version through the server, measured interleaved).
        kwargs.setdefault("pool_use_lifo", True)
        engine = create_engine(parsed, **kwargs)
        _configure_sqlite(engine, wal_autocheckpoint)
        return engine
    if backend in ("mysql", "mariadb"):
        if "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        kwargs.setdefault("isolation_level", "READ COMMITTED")
        kwargs.setdefault("pool_recycle", 3600)
    return create_engine(parsed, **kwargs)


def _configure_sqlite(engine: Engine, wal_autocheckpoint: int | None) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Take transaction control away from the sqlite3 module: _on_begin emits BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            if wal_autocheckpoint is not None:
                cursor.execute(f"PRAGMA wal_autocheckpoint={int(wal_autocheckpoint)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        sql = "BEGIN IMMEDIATE" if conn.info.get(WRITE_FLAG, True) else "BEGIN"
        # Straight to the driver: through exec_driver_sql this statement cost each
        # transaction ~10 us of hooks and result wrapping. This hook runs outside SQLAlchemy's
        # own error handling, so a driver error (the lock not granted within the busy
        # timeout) is wrapped here as SQLAlchemy would wrap it, for the store's translation.
        try:
            conn.connection.dbapi_connection.execute(sql)
        except conn.dialect.loaded_dbapi.Error as e:
            raise driver_error(e, sql, (), conn.dialect) from e
