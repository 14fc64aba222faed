"""A server's SQLite log is checkpointed by a thread of the store's own, not by a caller."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from tideflow.domain import Event
from tideflow.store import Store, append_events
from tideflow.store.checkpoint import SAFETY_NET_PAGES
from tideflow.testing import wait_until


def _autocheckpoint(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(text("PRAGMA wal_autocheckpoint")).scalar_one())


def _write(store: Store, count: int) -> None:
    for i in range(count):
        with store.transaction() as connection:
            append_events(connection, [Event("k", "x" * 4000 + str(i), namespace="p")])


def test_the_log_is_checkpointed_in_the_background_and_left_alone_when_idle(
    tmp_path: Path,
) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'c.db'}", checkpoint_every=0.02) as store:
        checkpointer = store.checkpointer
        assert checkpointer is not None
        # Commits no longer checkpoint below the safety net: the thread does.
        assert _autocheckpoint(store) == SAFETY_NET_PAGES
        _write(store, 50)
        wait_until(
            lambda: checkpointer.last is not None and checkpointer.last[1] > 0,
            timeout=30,
            what="a checkpoint of the written log",
        )
        busy, logged, copied = checkpointer.last or (1, 0, 0)
        assert (busy, copied) == (0, logged)  # nobody read meanwhile: all of it copied
        # Idle: looks go on, checkpoints do not.
        done, looked = checkpointer.checkpoints, checkpointer.looks
        wait_until(lambda: checkpointer.looks >= looked + 5, timeout=30, what="five more looks")
        assert checkpointer.checkpoints == done
    assert not checkpointer._thread.is_alive()  # closing the store stopped it


def test_without_it_sqlite_checkpoints_on_commit_as_usual(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'd.db'}") as store:
        assert store.checkpointer is None
        assert _autocheckpoint(store) == 1000  # SQLite's default


def test_server_databases_take_no_checkpointer(store_url: str) -> None:
    with Store.open(store_url, checkpoint_every=0.02) as store:
        assert (store.checkpointer is not None) == (store.dialect == "sqlite")
