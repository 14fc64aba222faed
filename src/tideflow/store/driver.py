"""Hot statements compiled once per dialect and run as driver SQL.

Through SQLAlchemy Core, a statement of the write path (``create_model_version``: claim the
request id, take the next version number, insert the version and its status change, bump the
event counter) cost 50-60 us of Python to build its parameters, run the hooks and wrap the
result, while SQLite ran it in 10-15 us. :class:`DriverStatement` keeps the Core statement as
the one definition, compiles it once per dialect (and set of insert columns), converts the
values with the column types' own bind processors, and hands the driver its SQL in the driver's
parameter style.

On SQLite -- whose write path runs on the server's event loop, one call at a time -- the SQL
goes straight to the transaction's DBAPI cursor: ``exec_driver_sql`` still cost ~6 us a
statement in hooks and result wrapping (a RETURNING statement more), ~40 us of a
``create_model_version``. A driver error is wrapped as SQLAlchemy wraps it, so the store
translates it like any other statement's. On PostgreSQL and MariaDB the statement runs through
``exec_driver_sql``, which also notices a dropped connection and invalidates it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql import ClauseElement

from tideflow.store.errors import driver_error


@dataclass(frozen=True)
class _Form:
    """One dialect's compiled statement and how its parameters are built."""

    sql: str
    names: tuple[str, ...]  # in the driver's order (positional styles) or as keys (pyformat)
    positional: bool
    constants: Mapping[str, Any]
    processors: Mapping[str, Callable[[Any], Any]]
    returns_rows: bool  # a RETURNING clause
    inserts: bool  # an INSERT (its new row id is asked for)

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        merged = {**self.constants, **values}
        processed = [
            self.processors[name](merged[name]) if name in self.processors else merged[name]
            for name in self.names
        ]
        if self.positional:
            return tuple(processed)
        return dict(zip(self.names, processed, strict=True))


class DriverStatement:
    """A Core statement run as driver SQL; see the module doc.

    Args:
        statement: The statement. For an ``INSERT`` the columns are the keys of the values
            given to :meth:`execute` (compiled once per set of keys).
    """

    def __init__(self, statement: ClauseElement) -> None:
        self._statement = statement
        self._forms: dict[tuple[str, frozenset[str]], _Form] = {}

    def execute(self, connection: Connection, values: Mapping[str, Any]) -> DriverResult:
        """Run the statement with ``values`` in ``connection``'s transaction."""
        form = self._form(connection.dialect, values)
        return _run(connection, form, form.parameters(values), many=False)

    def execute_many(
        self, connection: Connection, rows: Sequence[Mapping[str, Any]]
    ) -> DriverResult:
        """Run the statement once per row of ``rows`` (all with the same keys) in one call.

        The driver's ``executemany``: one call into the driver for a whole batch, where a loop
        of :meth:`execute` pays the per-statement work each time. Its ``rowcount`` is the
        total only where ``dialect.supports_sane_multi_rowcount`` says so.
        """
        if not rows:
            raise ValueError("execute_many needs at least one row")
        form = self._form(connection.dialect, rows[0])
        return _run(connection, form, [form.parameters(row) for row in rows], many=True)

    def _form(self, dialect: Dialect, values: Mapping[str, Any]) -> _Form:
        key = (dialect.name, frozenset(values))
        form = self._forms.get(key)
        if form is None:
            form = self._forms[key] = self._compile(dialect, list(values))
        return form

    def _compile(self, dialect: Dialect, keys: list[str]) -> _Form:
        compiled: Any = self._statement.compile(dialect=dialect, column_keys=keys)
        binds = compiled.binds
        if any(bind.expanding for bind in binds.values()) or compiled.post_compile_params:
            # An IN list or a value rendered into the SQL at execution: Core's job, not ours.
            raise ValueError(f"{self._statement} renders values at execution; run it with Core")
        positional = bool(compiled.positional)
        names = tuple(compiled.positiontup or ()) if positional else tuple(binds)
        constants = {
            name: bind.value
            for name, bind in binds.items()
            if name not in keys and not bind.required and bind.callable is None
        }
        missing = [name for name in names if name not in keys and name not in constants]
        if missing:  # a Python-side default or a callable: Core would have filled it in
            raise ValueError(f"no value for {', '.join(missing)} in {self._statement}")
        processors = {}
        for name in names:
            processor = binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        return _Form(
            str(compiled),
            names,
            positional,
            constants,
            processors,
            returns_rows=bool(compiled.effective_returning),
            inserts=bool(compiled.isinsert),
        )


@dataclass(frozen=True)
class DriverResult:
    """What a statement did: rows changed, the new row's id (an INSERT), rows returned."""

    rowcount: int
    lastrowid: int | None  # SQLite, and drivers without INSERT ... RETURNING
    rows: list[tuple[Any, ...]]

    def first(self) -> tuple[Any, ...] | None:
        """The first returned row, or ``None``."""
        return self.rows[0] if self.rows else None

    def scalar_one(self) -> Any:
        """The one returned row's first column.

        Raises:
            ValueError: Not exactly one row came back.
        """
        if len(self.rows) != 1:
            raise ValueError(f"expected one row, the statement returned {len(self.rows)}")
        return self.rows[0][0]


def _run(connection: Connection, form: _Form, parameters: Any, *, many: bool) -> DriverResult:
    # Only asked of a driver without INSERT ... RETURNING (psycopg has no lastrowid).
    lastrowid = form.inserts and not form.returns_rows and not connection.dialect.insert_returning
    return run_driver_sql(
        connection,
        form.sql,
        parameters,
        many=many,
        returns_rows=form.returns_rows,
        lastrowid=lastrowid,
    )


def run_driver_sql(
    connection: Connection,
    sql: str,
    parameters: Any,
    *,
    many: bool = False,
    returns_rows: bool = False,
    lastrowid: bool = False,
) -> DriverResult:
    """Run ``sql`` (in the driver's parameter style) in ``connection``'s transaction.

    On SQLite on the DBAPI cursor, elsewhere through ``exec_driver_sql`` (see the module
    doc). ``many``: ``parameters`` is a sequence, run as one ``executemany``.
    ``returns_rows``: fetch what the statement returns. ``lastrowid``: read the new row's id
    (SQLite always reports it).
    """
    if connection.dialect.name != "sqlite":
        result = connection.exec_driver_sql(sql, parameters)
        new_id = result.lastrowid if lastrowid else None
        rows = [tuple(row) for row in result] if returns_rows else []
        return DriverResult(result.rowcount, new_id, rows)
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
        returned = list(cursor.fetchall()) if returns_rows else []
        return DriverResult(cursor.rowcount, cursor.lastrowid, returned)
    except connection.dialect.loaded_dbapi.Error as e:
        # For the store's translation and the callers that tell a duplicate from a missing
        # foreign row.
        raise driver_error(e, sql, parameters, connection.dialect) from e
    finally:
        cursor.close()
