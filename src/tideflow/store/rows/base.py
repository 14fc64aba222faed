"""The declarative base of every table, with a naming convention for constraints.

Named constraints make migrations reproducible across SQLite, PostgreSQL and MariaDB (each would
otherwise invent its own names), which is what lets Alembic's autogenerate find no difference.

Rows are mapped classes for two reasons only: they define the schema (for Alembic), and they are
the one seam between stored columns and domain dataclasses (``to_domain`` / ``values``). The
repositories read and write them with Core statements on ``Row.__table__``, not ORM sessions,
because a session per operation is several times slower on the hot paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import BigInteger, Integer, MetaData, Table
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")
"""Surrogate keys: 64-bit on servers, ``INTEGER`` on SQLite so they alias the rowid."""

RowData = Mapping[Any, Any]
"""A result row's mapping (``row._mapping``) or a dict of column values, as ``to_domain`` takes."""

NAME_LENGTH = 128
"""Column size of names (see :data:`tideflow.domain.names.MAX_NAME_LENGTH`)."""

STATUS_LENGTH = 16


class Base(DeclarativeBase):
    """Base of every ``*Row`` class."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table_of(row_class: type[Base]) -> Table:
    """The Core :class:`~sqlalchemy.Table` of a row class (what repositories query)."""
    return cast(Table, row_class.__table__)
