"""DriverStatement writes what the same Core statement writes, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, insert, select, update

from tideflow.errors import AlreadyExistsError
from tideflow.store import Store
from tideflow.store.driver import DriverStatement
from tideflow.store.rows.access import RpcRequestRow
from tideflow.store.rows.base import table_of

REQUEST = table_of(RpcRequestRow)


def _row(request_id: str, when: datetime) -> dict[str, object]:
    return {
        "project": "p",
        "token_id": 7,
        "request_id": request_id,
        "method": "/m",
        "response": b"\x00answer",
        "size": 7,
        "create_time": when,
    }


def test_a_driver_insert_reads_back_like_a_core_insert(store: Store) -> None:
    when = datetime(2026, 12, 7, 15, 4, 5, 123456, tzinfo=UTC)
    statement = DriverStatement(insert(REQUEST))
    with store.transaction() as c:
        c.execute(insert(REQUEST), _row("core", when))
        statement.execute(c, _row("driver", when))
    with store.transaction(write=False) as c:
        rows = {r.request_id: r for r in c.execute(select(REQUEST).where(REQUEST.c.project == "p"))}
        c.execute(REQUEST.delete().where(REQUEST.c.project == "p"))
    core, driver = rows["core"], rows["driver"]
    # The column types' processors ran: the time and the bytes come back as they went in.
    assert driver.create_time == core.create_time == when
    assert bytes(driver.response) == bytes(core.response) == b"\x00answer"


def test_constants_and_returning_come_through(store: Store) -> None:
    if not store.engine.dialect.update_returning:
        pytest.skip(f"{store.dialect} cannot return what an UPDATE wrote")
    when = datetime(2026, 1, 1, tzinfo=UTC)
    with store.transaction() as c:
        c.execute(insert(REQUEST), _row("r", when))
    bump = DriverStatement(
        update(REQUEST)
        .where(REQUEST.c.project == "p", REQUEST.c.request_id == bindparam("rid"))
        .values(size=REQUEST.c.size + bindparam("n", type_=REQUEST.c.size.type))
        .returning(REQUEST.c.size)
    )
    with store.transaction() as c:
        assert bump.execute(c, {"rid": "r", "n": 5}).scalar_one() == 12
        assert bump.execute(c, {"rid": "nothing", "n": 5}).first() is None
        with pytest.raises(ValueError, match="expected one row, the statement returned 0"):
            bump.execute(c, {"rid": "nothing", "n": 5}).scalar_one()
    with store.transaction() as c:
        c.execute(REQUEST.delete().where(REQUEST.c.project == "p"))


def test_a_driver_error_is_translated_like_any_other(store: Store) -> None:
    statement = DriverStatement(insert(REQUEST))
    when = datetime(2026, 1, 1, tzinfo=UTC)
    with store.transaction() as c:
        statement.execute(c, _row("twice", when))
    with pytest.raises(AlreadyExistsError), store.transaction() as c:
        statement.execute(c, _row("twice", when))
    with store.transaction() as c:
        assert c.execute(select(REQUEST.c.size).where(REQUEST.c.project == "p")).all() == [(7,)]
        c.execute(REQUEST.delete().where(REQUEST.c.project == "p"))


def test_a_value_the_statement_needs_is_asked_for_by_name(store: Store) -> None:
    statement = DriverStatement(update(REQUEST).values(size=bindparam("n")))
    with pytest.raises(ValueError, match="no value for n"), store.transaction() as c:
        statement.execute(c, {})


def test_a_statement_that_renders_values_at_execution_is_refused(store: Store) -> None:
    statement = DriverStatement(
        select(REQUEST.c.size).where(REQUEST.c.request_id.in_(bindparam("ids", expanding=True)))
    )
    with pytest.raises(ValueError, match="run it with Core"), store.transaction() as c:
        statement.execute(c, {"ids": ["a", "b"]})


def test_execute_many_runs_once_per_row_and_counts_them_all(store: Store) -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    with store.transaction() as c:
        for name in ("a", "b", "c"):
            c.execute(insert(REQUEST), _row(name, when))
    resize = DriverStatement(
        update(REQUEST)
        .where(REQUEST.c.project == "p", REQUEST.c.request_id == bindparam("rid"))
        .values(size=bindparam("n"))
    )
    with store.transaction() as c:
        result = resize.execute_many(
            c, [{"rid": "a", "n": 1}, {"rid": "c", "n": 3}, {"rid": "missing", "n": 9}]
        )
        if store.engine.dialect.supports_sane_multi_rowcount:
            assert result.rowcount == 2
    with store.transaction() as c:
        rows = c.execute(select(REQUEST).where(REQUEST.c.project == "p"))
        sizes = {row.request_id: row.size for row in rows}
        c.execute(REQUEST.delete().where(REQUEST.c.project == "p"))
    assert sizes == {"a": 1, "b": 7, "c": 3}


def test_execute_many_needs_rows(store: Store) -> None:
    statement = DriverStatement(insert(REQUEST))
    with pytest.raises(ValueError, match="at least one row"), store.transaction() as c:
        statement.execute_many(c, [])
