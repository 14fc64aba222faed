"""The store: one engine, one place where transactions begin, commit, roll back and fail.

Every service runs its work through :meth:`Store.transaction` (or :meth:`Store.run`, which also
retries deadlocks): the block gets a Core :class:`~sqlalchemy.Connection` inside a transaction,
commits when it ends and rolls back when it raises. Driver errors that escape the block are
translated into :class:`~tideflow.errors.TideflowError` subclasses and chained, so no SQLAlchemy
exception leaves this package.

Opening a store checks the schema: an empty database is migrated, a stale one is refused with
the command that upgrades it (upgrading silently could surprise another, older server sharing
the database).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from tideflow.errors import FailedPreconditionError, StoreError, UnavailableError
from tideflow.store.checkpoint import SAFETY_NET_PAGES, WalCheckpointer
from tideflow.store.engine import (
    APPENDED_OFFSET,
    WRITE_FLAG,
    display_url,
    make_engine,
    parse_url,
)
from tideflow.store.errors import is_retryable, translate
from tideflow.store.migration import SchemaState, schema_status, upgrade
from tideflow.store.request_log import claim_in, current_claim

T = TypeVar("T")

RETRIES = 5
"""How often :meth:`Store.run` runs a transaction that lost a deadlock before giving up."""


class Store:
    """Tideflow's database: SQLite, PostgreSQL or MariaDB behind one interface.

    Use :meth:`open` rather than the constructor; close it (or use it as a context manager) so
    its connections are released.
    """

    def __init__(self, engine: Engine, url: str) -> None:
        self._engine = engine
        self.url = url
        self.dialect = engine.dialect.name
        self._closed = False
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
        # SQLite's busy handler (in steps up to 100 ms) instead of being woken. Queueing this
        # process's writers on a Python lock first hands the database over without those sleeps;
        # other processes still wait through the busy timeout.
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        # Where a full disk is reported: a SQLite file's folder, or the server's address.
        database = engine.url.database if self.dialect == "sqlite" else None
        self._where = (
            os.path.dirname(os.path.abspath(database))
            if database and database != ":memory:"
            else display_url(url)
        )
        self._checkpointer: WalCheckpointer | None = None
        self._commit_listeners: list[Callable[[int], None]] = []
        self._offset_flushers: list[Callable[[], None]] = []

    def add_commit_listener(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(last_offset)`` after every commit that appended events.

        The call comes after the commit, never before, so whoever it wakes reads the events.
        This is how listeners in this process are woken without polling.
        """
        self._commit_listeners.append(listener)

    def remove_commit_listener(self, listener: Callable[[int], None]) -> None:
        """Stop calling ``listener``."""
        self._commit_listeners.remove(listener)

    def add_offset_flusher(self, flusher: Callable[[], None]) -> None:
        """Register a consumer of this process that holds its offset in memory for a while.

        The scheduler's dispatcher commits the offset of events that reached nothing lazily;
        :meth:`flush_offsets` (called before compaction, which keeps what consumers still
        need) has it commit now.
        """
        self._offset_flushers.append(flusher)

    def remove_offset_flusher(self, flusher: Callable[[], None]) -> None:
        """Stop calling ``flusher``."""
        self._offset_flushers.remove(flusher)

    def flush_offsets(self) -> None:
        """Have every registered consumer commit the offset it holds."""
        for flusher in list(self._offset_flushers):
            flusher()

    @classmethod
    def open(
        cls, url: str, *, migrate: bool = True, checkpoint_every: float | None = None
    ) -> Store:
        """Connect to ``url`` and make sure its schema is the one this Tideflow needs.

        Args:
            url: ``sqlite:///PATH``, ``postgresql+psycopg://...`` or ``mysql+pymysql://...``.
            migrate: Create the schema in an empty database (the default); when false an empty
                database is refused like a stale one.
            checkpoint_every: SQLite only: checkpoint the write-ahead log from a thread of
                the store's own, looking every this many seconds, instead of from the commit
                that crosses SQLite's threshold (see :mod:`tideflow.store.checkpoint`); for a
                server, whose writes are its callers' latency.

        Raises:
            InvalidArgumentError: ``url`` is not a supported database URL.
            UnavailableError: The database cannot be reached.
            FailedPreconditionError: The schema is stale, newer than this Tideflow, or the
                database holds tables that are not Tideflow's.
        """
        background = checkpoint_every is not None and parse_url(url).get_backend_name() == "sqlite"
        engine = make_engine(url, wal_autocheckpoint=SAFETY_NET_PAGES if background else None)
        shown = display_url(url)
        try:
            with engine.connect() as connection:
                status = schema_status(connection)
            if status.state is SchemaState.EMPTY and migrate:
                upgrade(engine)
                return cls(engine, url)._checkpointing(checkpoint_every if background else None)
        except SQLAlchemyError as e:
            engine.dispose()
            raise translate(e, f"opening the store at {shown}") from e
        if status.state is SchemaState.CURRENT:
            return cls(engine, url)._checkpointing(checkpoint_every if background else None)
        engine.dispose()
        command = f"tideflow db upgrade --db {shown}"
        messages = {
            SchemaState.EMPTY: f"the database at {shown} has no Tideflow schema; run `{command}`",
            SchemaState.STALE: (
                f"the database at {shown} has schema revision {status.current} but this "
                f"Tideflow needs {status.head}; run `{command}`"
            ),
            SchemaState.NEWER: (
                f"the database at {shown} has schema revision {status.current}, written by a "
                "newer Tideflow; upgrade Tideflow to use it"
            ),
            SchemaState.FOREIGN: (
                f"the database at {shown} holds tables but no Tideflow schema revision; "
                "point --db at an empty database or a Tideflow one"
            ),
        }
        raise FailedPreconditionError(messages[status.state])

    def _checkpointing(self, every: float | None) -> Store:
        """Start the background checkpoints of :meth:`open`'s ``checkpoint_every``."""
        database = self._engine.url.database
        if every is not None and database:
            self._checkpointer = WalCheckpointer(os.path.abspath(database), interval=every)
            self._checkpointer.start()
        return self

    @property
    def checkpointer(self) -> WalCheckpointer | None:
        """The background checkpoint thread, if this store runs one."""
        return self._checkpointer

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for migrations and tests; services use transactions)."""
        return self._engine

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """A connection inside a transaction that commits on exit and rolls back on error.

        Args:
            write: Whether the block writes. On SQLite a write transaction takes the write
                lock up front (``BEGIN IMMEDIATE``), so it waits for other writers instead of
                failing half-way; read-only blocks pass ``False`` and never wait.

        Raises:
            UnavailableError: The database cannot be reached, or a lock was not granted.
            StoreError: Any other database failure.
        """
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        lock = self._write_lock if write else None
        appended: int | None = None
        # The first write of a deduplicated RPC records its request id in the same
        # transaction as the change (see tideflow.store.request_log).
        claim = current_claim.get() if write else None
        if claim is not None and claim.claimed:
            claim = None
        try:
            with lock or nullcontext(), self._engine.connect() as connection:
                connection.info[WRITE_FLAG] = write
                connection.info.pop(APPENDED_OFFSET, None)  # left by a rolled-back use
                with connection.begin():
                    if claim is not None:
                        claim_in(connection, claim)
                    yield connection
                appended = connection.info.pop(APPENDED_OFFSET, None)
            if claim is not None:
                claim.claimed = True
        except SQLAlchemyError as e:
            raise translate(e, where=self._where) from e
        if appended is not None:
            later = _deferred_hooks.get()
            if later is None:
                self._announce(appended)
            else:
                later.pending.append((self, appended))

    def _announce(self, appended: int) -> None:
        for listener in self._commit_listeners:
            listener(appended)

    def run(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        """Run ``work`` in a transaction, again if the database made it a deadlock victim.

        ``work`` may therefore run more than once: it must not have effects outside the
        transaction.

        Returns:
            What ``work`` returned.
        """
        for attempt in range(RETRIES):
            try:
                with self.transaction(write=write) as connection:
                    return work(connection)
            except UnavailableError as e:
                if attempt == RETRIES - 1 or not is_retryable(e.__cause__):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Release every connection of the store (call it once no thread uses the store)."""
        self._closed = True
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({display_url(self.url)!r})"


_deferred_hooks: ContextVar[DeferredCommitHooks | None] = ContextVar(
    "tideflow_deferred_commit_hooks", default=None
)


@contextmanager
def deferred_commit_hooks() -> Iterator[DeferredCommitHooks]:
    """Within the block, commits of this context keep their listeners' calls for later.

    For a call served on the RPC event loop: the listeners (the dispatcher's wake-up, the
    ``Listen`` streams') then run after the answer has been handed to gRPC, not between the
    commit and the answer, where the threads they wake took the GIL from the loop while it
    was still answering. The caller must :meth:`~DeferredCommitHooks.run` what is kept.
    """
    hooks = DeferredCommitHooks()
    token = _deferred_hooks.set(hooks)
    try:
        yield hooks
    finally:
        _deferred_hooks.reset(token)


class DeferredCommitHooks:
    """The commits whose listeners :func:`deferred_commit_hooks` kept back."""

    def __init__(self) -> None:
        self.pending: list[tuple[Store, int]] = []

    def run(self) -> None:
        """Call the kept listeners, in commit order (each commit once)."""
        pending, self.pending = self.pending, []
        for store, appended in pending:
            store._announce(appended)
