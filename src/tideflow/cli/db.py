"""``tideflow db upgrade|check``: create or upgrade the store's schema, or report on it."""

from __future__ import annotations

from typing import Annotated

import typer

from tideflow.cli.output import JsonOption, OutputOption, fail, print_json, stdout
from tideflow.settings import DB_VARIABLE

db_app = typer.Typer(help="The store's schema: upgrade it or check it.", no_args_is_help=True)

DB_HELP = (
    "Store URL: sqlite:///PATH, postgresql+psycopg://USER@HOST/DB or mysql+pymysql://USER@HOST/DB "
    "(default: $TIDEFLOW_HOME/tideflow.db)"
)


DbOption = Annotated[
    str | None,
    typer.Option("--db", help=DB_HELP, envvar=DB_VARIABLE, show_default=False),
]
"""The ``--db`` option of every command that opens the store in-process."""


def resolve_db(db: str | None) -> str:
    """``db`` or the default store URL."""
    from tideflow.settings import default_db_url

    return db or default_db_url()


@db_app.command()
def upgrade(
    db: DbOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create the schema in an empty database or upgrade it to this Tideflow's revision."""
    from tideflow.errors import TideflowError
    from tideflow.store.engine import display_url
    from tideflow.store.migration import upgrade_database

    url = resolve_db(db)
    try:
        status = upgrade_database(url)
    except TideflowError as e:
        fail(str(e))
    if json_output:
        print_json(
            {"db": display_url(url), "state": status.state.value, "revision": status.current}
        )
    else:
        stdout.print(f"{display_url(url)}: schema at revision {status.current} (head)")


@db_app.command()
def check(
    db: DbOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Say whether the schema is current; exit 1 (naming the command to run) when it is not."""
    from tideflow.errors import TideflowError
    from tideflow.store import SchemaState
    from tideflow.store.engine import display_url
    from tideflow.store.migration import check_database

    url = resolve_db(db)
    try:
        status = check_database(url)
    except TideflowError as e:
        fail(str(e))
    shown = display_url(url)
    if json_output:
        print_json(
            {
                "db": shown,
                "state": status.state.value,
                "revision": status.current,
                "head": status.head,
            }
        )
    else:
        stdout.print(
            f"{shown}: {status.state.value} (revision {status.current}, head {status.head})"
        )
    if status.state is not SchemaState.CURRENT:
        if not json_output and status.state in (SchemaState.EMPTY, SchemaState.STALE):
            stdout.print(f"run: tideflow db upgrade --db {shown}")
        raise typer.Exit(1)
