"""Schema migrations, run programmatically from the scripts shipped inside the package.

Users never need an ``alembic.ini``: :func:`alembic_config` points Alembic at
``tideflow/store/migrations`` and hands it an open connection. A database is in one of four
states (:class:`SchemaState`); :class:`~tideflow.store.store.Store` migrates an empty one and
refuses a stale one, naming ``tideflow db upgrade``.

To add a migration after changing a ``*Row`` class (developers)::

    python -c "from tideflow.store.migration import make_revision; \
make_revision('sqlite:////tmp/dev.db', 'add a column')"

then review the generated file: it must not import Tideflow code, so later changes to the rows
cannot change what an old migration does; and set :data:`HEAD_REVISION` to its revision.

Alembic is imported only when it has work: a store already at :data:`HEAD_REVISION` (every
start but the first) is recognised by reading ``alembic_version`` directly, without loading
Alembic and the migration scripts (0.05-0.1 s of every server start).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from tideflow.errors import FailedPreconditionError
from tideflow.store.engine import display_url, make_engine
from tideflow.store.errors import translate
from tideflow.store.rows import Base

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"
"""Alembic's table holding a database's revision."""
HEAD_REVISION = "0015"
"""The newest shipped migration, what a current store is at (a test checks it is the scripts')."""


class SchemaState(StrEnum):
    """How a database's schema relates to this version of Tideflow."""

    EMPTY = "empty"
    """No Tideflow tables at all: safe to create the schema."""
    CURRENT = "current"
    """At the head revision: ready."""
    STALE = "stale"
    """At an older revision: ``tideflow db upgrade`` is needed."""
    NEWER = "newer"
    """At a revision this Tideflow does not know: written by a newer Tideflow."""
    FOREIGN = "foreign"
    """Holds tables but no Tideflow revision: not a Tideflow database."""


@dataclass(frozen=True)
class SchemaStatus:
    """A database's schema state with the revisions behind it."""

    state: SchemaState
    current: str | None
    head: str


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the shipped scripts, optionally bound to ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The revision this version of Tideflow expects, as the shipped scripts say."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError(f"no migrations found in {MIGRATIONS}")
    return head


def schema_status(connection: Connection) -> SchemaStatus:
    """Inspect the database behind ``connection`` (read only)."""
    if _at_head(connection):
        return SchemaStatus(SchemaState.CURRENT, HEAD_REVISION, HEAD_REVISION)
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = head_revision()
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
        state = SchemaState.FOREIGN if tables & set(Base.metadata.tables) else SchemaState.EMPTY
        return SchemaStatus(state, None, head)
    if current == head:
        return SchemaStatus(SchemaState.CURRENT, current, head)
    known = {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }
    state = SchemaState.STALE if current in known else SchemaState.NEWER
    return SchemaStatus(state, current, head)


def _at_head(connection: Connection) -> bool:
    """Whether the database holds exactly one revision, :data:`HEAD_REVISION` (read only).

    What Alembic's ``get_current_revision`` reads, without importing Alembic; anything else
    (no table, no row, several heads, another revision) is left to the full check.
    """
    if not connection.dialect.has_table(connection, VERSION_TABLE):
        return False
    rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    return [tuple(row) for row in rows] == [(HEAD_REVISION,)]


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database of ``engine`` to ``revision``, in one transaction where supported."""
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def schema_diff(engine: Engine) -> list[Any]:
    """What Alembic's autogenerate sees between the database and the ``*Row`` classes.

    Empty when the migrations produce exactly the schema the code declares.
    """
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def check_database(url: str) -> SchemaStatus:
    """The schema status of the database at ``url`` (for ``tideflow db check``).

    Raises:
        InvalidArgumentError: Unsupported URL.
        UnavailableError: The database cannot be reached.
    """
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return schema_status(connection)
    except SQLAlchemyError as e:
        raise translate(e, f"checking the database at {display_url(url)}") from e
    finally:
        engine.dispose()


def upgrade_database(url: str) -> SchemaStatus:
    """Migrate the database at ``url`` to the head revision (for ``tideflow db upgrade``).

    Raises:
        InvalidArgumentError: Unsupported URL.
        UnavailableError: The database cannot be reached.
        FailedPreconditionError: It holds a newer or a foreign schema.
    """
    status = check_database(url)
    if status.state in (SchemaState.NEWER, SchemaState.FOREIGN):
        raise FailedPreconditionError(
            f"cannot upgrade the database at {display_url(url)}: it is {status.state.value} "
            f"(revision {status.current}, this Tideflow's head is {status.head})"
        )
    engine = make_engine(url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            return schema_status(connection)
    except SQLAlchemyError as e:
        raise translate(e, f"upgrading the database at {display_url(url)}") from e
    finally:
        engine.dispose()


def make_revision(url: str, message: str) -> None:
    """Autogenerate a new migration script from the difference between ``url`` and the rows."""
    from alembic import command

    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            command.revision(alembic_config(connection), message=message, autogenerate=True)
    finally:
        engine.dispose()
