"""Migrations: upgrade from empty, no autogenerate diff, stale and foreign schemas refused."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tideflow.errors import FailedPreconditionError, InvalidArgumentError, UnavailableError
from tideflow.store import SchemaState, Store
from tideflow.store.engine import make_engine
from tideflow.store.migration import (
    head_revision,
    schema_diff,
    schema_status,
    upgrade,
    upgrade_database,
)


def test_empty_database_is_migrated_on_open_and_matches_the_rows(empty_url: str) -> None:
    with Store.open(empty_url) as store:
        with store.engine.connect() as connection:
            assert schema_status(connection).state is SchemaState.CURRENT
        assert schema_diff(store.engine) == []


def test_explicit_upgrade_then_open(empty_url: str) -> None:
    engine = make_engine(empty_url)
    try:
        upgrade(engine)
        upgrade(engine)  # idempotent at head
    finally:
        engine.dispose()
    Store.open(empty_url, migrate=False).close()


def test_empty_database_is_refused_when_migration_is_off(empty_url: str) -> None:
    with pytest.raises(FailedPreconditionError, match="tideflow db upgrade --db"):
        Store.open(empty_url, migrate=False)


def test_stale_schema_is_refused_naming_the_upgrade_command(empty_url: str) -> None:
    # A database left at the first revision by an older Tideflow.
    engine = make_engine(empty_url)
    try:
        upgrade(engine, "0001")
    finally:
        engine.dispose()
    with pytest.raises(
        FailedPreconditionError,
        match=rf"revision 0001 but this Tideflow needs {head_revision()}; run `tideflow db upgrade --db ",
    ):
        Store.open(empty_url)
    upgrade_database(empty_url)
    Store.open(empty_url).close()


def test_unknown_revision_is_refused_as_newer(empty_url: str) -> None:
    Store.open(empty_url).close()
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
        with pytest.raises(FailedPreconditionError, match="newer Tideflow"):
            Store.open(empty_url)
    finally:
        engine.dispose()


def test_foreign_database_is_refused(empty_url: str) -> None:
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE project (id INTEGER PRIMARY KEY)"))
        with pytest.raises(FailedPreconditionError, match="no Tideflow schema revision"):
            Store.open(empty_url)
    finally:
        engine.dispose()


def test_head_revision_is_the_newest_shipped_migration() -> None:
    from pathlib import Path

    import tideflow.store

    versions = Path(tideflow.store.__file__).parent / "migrations" / "versions"
    newest = max(path.name.split("_", 1)[0] for path in versions.glob("[0-9]*.py"))
    assert head_revision() == newest


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "in-memory SQLite is not supported"),
        ("sqlite:///:memory:", "in-memory SQLite is not supported"),
        ("oracle://scott@db/x", "unsupported database 'oracle'"),
        ("not a url", "not a database URL"),
    ],
)
def test_unsupported_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        Store.open(url)


def test_unreachable_server_is_unavailable() -> None:
    with pytest.raises(UnavailableError, match="opening the store at postgresql"):
        Store.open("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
