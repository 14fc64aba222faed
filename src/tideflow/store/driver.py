"""Hot statements compiled once per dialect and run through ``exec_driver_sql``.

Through SQLAlchemy Core, a statement of the write path (``create_model_version``: claim the
request id, take the next version number, insert the version and its status change, bump the
event counter) cost 50-60 us of Python to build its parameters, run the hooks and wrap the
result, while SQLite ran it in 10-15 us. :class:`DriverStatement` keeps the Core statement as
the one definition, compiles it once per dialect (and set of insert columns), converts the
values with the column types' own bind processors, and hands the driver its SQL in the driver's
parameter style. ``exec_driver_sql`` still runs on the transaction's connection, so errors are
translated like any other statement's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, CursorResult
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql import ClauseElement


@dataclass(frozen=True)
class _Form:
    """One dialect's compiled statement and how its parameters are built."""

    sql: str
    names: tuple[str, ...]  # in the driver's order (positional styles) or as keys (pyformat)
    positional: bool
    constants: Mapping[str, Any]
    processors: Mapping[str, Callable[[Any], Any]]

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

    def execute(self, connection: Connection, values: Mapping[str, Any]) -> CursorResult[Any]:
        """Run the statement with ``values`` in ``connection``'s transaction."""
        dialect = connection.dialect
        key = (dialect.name, frozenset(values))
        form = self._forms.get(key)
        if form is None:
            form = self._forms[key] = self._compile(dialect, list(values))
        return connection.exec_driver_sql(form.sql, form.parameters(values))

    def execute_many(
        self, connection: Connection, rows: Sequence[Mapping[str, Any]]
    ) -> CursorResult[Any]:
        """Run the statement once per row of ``rows`` (all with the same keys) in one call.

        The driver's ``executemany``: one call into the driver for a whole batch, where a loop
        of :meth:`execute` pays SQLAlchemy's per-statement work each time. Its ``rowcount``
        is the total only where ``dialect.supports_sane_multi_rowcount`` says so.
        """
        if not rows:
            raise ValueError("execute_many needs at least one row")
        dialect = connection.dialect
        key = (dialect.name, frozenset(rows[0]))
        form = self._forms.get(key)
        if form is None:
            form = self._forms[key] = self._compile(dialect, list(rows[0]))
        return connection.exec_driver_sql(form.sql, [form.parameters(row) for row in rows])

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
        return _Form(str(compiled), names, positional, constants, processors)
