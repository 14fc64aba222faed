"""Transactions: commit listeners (now or when told), and a BEGIN that cannot be granted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tideflow.domain import Event
from tideflow.errors import UnavailableError
from tideflow.store import Store, append_events
from tideflow.store.store import deferred_commit_hooks


def _send(store: Store, project: str, count: int = 1) -> int:
    with store.transaction() as c:
        stored = append_events(
            c, [Event(key="k", value=str(i), namespace=project) for i in range(count)]
        )
    return stored[-1].offset


def _send_then_fail(store: Store, project: str) -> None:
    with store.transaction() as c:
        append_events(c, [Event(key="k", value="v", namespace=project)])
        raise RuntimeError("rolled back")


def test_a_listener_hears_each_commit_at_once(store: Store, project: str) -> None:
    heard: list[int] = []
    store.add_commit_listener(heard.append)
    try:
        last = _send(store, project, 3)
        assert heard == [last]
    finally:
        store.remove_commit_listener(heard.append)


def test_deferred_listeners_wait_until_run_then_hear_every_commit_once(
    store: Store, project: str
) -> None:
    heard: list[int] = []
    store.add_commit_listener(heard.append)
    try:
        with deferred_commit_hooks() as hooks:
            first = _send(store, project)
            second = _send(store, project, 2)
            assert heard == []  # committed, but nobody told yet
        hooks.run()
        assert heard == [first, second]
        hooks.run()  # what ran is not kept
        assert heard == [first, second]
        # Outside the block, commits are announced at once again.
        third = _send(store, project)
        assert heard == [first, second, third]
    finally:
        store.remove_commit_listener(heard.append)


def test_a_rolled_back_transaction_leaves_nothing_to_announce(store: Store, project: str) -> None:
    heard: list[int] = []
    store.add_commit_listener(heard.append)
    try:
        with deferred_commit_hooks() as hooks:
            with pytest.raises(RuntimeError, match="rolled back"):
                _send_then_fail(store, project)
            assert hooks.pending == []
        hooks.run()
        assert heard == []
    finally:
        store.remove_commit_listener(heard.append)


def test_a_write_lock_held_elsewhere_is_unavailable_not_an_internal_error(tmp_path: Path) -> None:
    """SQLite's BEGIN runs straight on the driver: its failure still becomes a store error."""
    path = tmp_path / "locked.db"
    with Store.open(f"sqlite:///{path}") as store:
        with store.engine.connect() as c:  # the pool hands this connection out next (LIFO)
            c.exec_driver_sql("PRAGMA busy_timeout=50")
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # another process's writer, as SQLite sees it
            with pytest.raises(UnavailableError, match="locked"):
                _send(store, "default")
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        with store.transaction(write=False) as c:  # the failed BEGIN left nothing open
            assert c.exec_driver_sql("SELECT 1").scalar_one() == 1
