"""Translation of driver errors into Tideflow's error tree.

This is the only place that knows SQLSTATEs and MySQL error numbers. Repositories catch
``IntegrityError`` themselves where they can name the entity; everything else that escapes a
transaction comes through :func:`translate`, chained to the original.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)

from tideflow.errors import (
    AlreadyExistsError,
    ResourceExhaustedError,
    StoreError,
    TideflowError,
    UnavailableError,
)

_PG_UNIQUE = "23505"
_PG_RETRYABLE = frozenset({"40001", "40P01"})  # serialization failure, deadlock
_MYSQL_UNIQUE = 1062
_MYSQL_RETRYABLE = frozenset({1213})  # deadlock found when trying to get lock
_PG_DISK_FULL = "53100"
_MYSQL_DISK_FULL = frozenset({1021, 1114})  # disk full, table is full


def _sqlstate(e: DBAPIError) -> str | None:
    state = getattr(e.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def _mysql_errno(e: DBAPIError) -> int | None:
    args = getattr(e.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_unique_violation(e: IntegrityError) -> bool:
    """Whether ``e`` is a unique-key violation (rather than a foreign key or NOT NULL one)."""
    if _sqlstate(e) == _PG_UNIQUE or _mysql_errno(e) == _MYSQL_UNIQUE:
        return True
    return "UNIQUE constraint failed" in str(e.orig)


def is_retryable(e: BaseException | None) -> bool:
    """Whether a transaction that failed with ``e`` may succeed if simply run again."""
    if not isinstance(e, DBAPIError):
        return False
    if _sqlstate(e) in _PG_RETRYABLE or _mysql_errno(e) in _MYSQL_RETRYABLE:
        return True
    return "database is locked" in str(e.orig)


def is_disk_full(e: BaseException | None) -> bool:
    """Whether the database refused a write because its disk (or its quota) is full."""
    if not isinstance(e, DBAPIError):
        return False
    if _sqlstate(e) == _PG_DISK_FULL or _mysql_errno(e) in _MYSQL_DISK_FULL:
        return True
    return "database or disk is full" in str(e.orig)  # SQLITE_FULL


def _detail(e: SQLAlchemyError) -> str:
    orig = getattr(e, "orig", None) or e
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def driver_error(
    error: Exception, statement: str, parameters: Any, dialect: Dialect
) -> StatementError:
    """Driver error ``error`` wrapped as SQLAlchemy wraps it (``IntegrityError``, ...).

    For the few places that call the driver themselves (SQLite's hot statements and its
    ``BEGIN``): what they raise is then translated and told apart like any other statement's.
    """
    dbapi_error = dialect.loaded_dbapi.Error
    return DBAPIError.instance(statement, parameters, error, dbapi_error, dialect=dialect)


def translate(
    e: SQLAlchemyError, what: str = "database operation", *, where: str = "the database"
) -> TideflowError:
    """The :class:`TideflowError` that stands for driver error ``e`` (the caller chains it).

    Unique violations become :class:`AlreadyExistsError`; a full disk
    :class:`ResourceExhaustedError` ("no space left under ``where``": writes work again once
    space is freed, reads go on meanwhile); connection failures, lock timeouts and deadlocks
    :class:`UnavailableError` (retrying later may work); the rest :class:`StoreError`.
    """
    if isinstance(e, IntegrityError) and is_unique_violation(e):
        return AlreadyExistsError("record", _detail(e), message=f"{what}: {_detail(e)}")
    if is_disk_full(e):
        return ResourceExhaustedError(f"{what} failed: no space left under {where} ({_detail(e)})")
    if isinstance(e, OperationalError) or (isinstance(e, DBAPIError) and e.connection_invalidated):
        return UnavailableError(f"{what} failed, the database is unavailable or busy: {_detail(e)}")
    return StoreError(f"{what} failed: {_detail(e)}")
