"""``tideflow token create|list|revoke``: API tokens, managed on the store (``--db``).

Managing tokens needs the database itself (whoever can open it is the administrator), so these
commands run in-process and take ``--db`` rather than ``--server``. The new token is printed
once, as the last word of the last line, so scripts can take it with ``awk '{print $NF}'``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tideflow.cli.db import DbOption, resolve_db
from tideflow.cli.output import (
    JsonOption,
    OutputOption,
    YesOption,
    confirm,
    fail,
    print_json,
    stdout,
)
from tideflow.settings import PROJECT_VARIABLE

if TYPE_CHECKING:
    from tideflow.domain.access import ApiToken
    from tideflow.metadata import AccessService

token_app = typer.Typer(help="API tokens (stored hashed).", no_args_is_help=True)


@contextmanager
def _access(db: str | None, *, create_store: bool = True) -> Iterator[AccessService]:
    from tideflow.cli.connection import refuse_missing_store
    from tideflow.errors import TideflowError
    from tideflow.metadata import AccessService
    from tideflow.store import Store

    url = resolve_db(db)
    if not create_store:
        refuse_missing_store(url)
    try:
        with Store.open(url) as store:
            yield AccessService(store)
    except TideflowError as e:
        fail(str(e))


def _token_dict(token: ApiToken) -> dict[str, Any]:
    return {
        "token_id": token.token_id,
        "name": token.name,
        "project": token.project,
        "role": token.role.value,
        "create_time": token.create_time.isoformat() if token.create_time else None,
        "revoke_time": token.revoke_time.isoformat() if token.revoke_time else None,
    }


@token_app.command("create")
def create(
    project: Annotated[
        str, typer.Option("--project", "-p", help="The project it grants access to.")
    ],
    role: Annotated[str, typer.Option(help="reader | writer | admin.")],
    name: Annotated[str, typer.Option(help="A label: who or what uses it.")] = "",
    db: DbOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a token; it is shown once, as the last word of the last line."""
    with _access(db) as access:
        created, secret = access.create_token(project, role, name=name)
    if json_output:
        print_json({**_token_dict(created), "token": secret})
        return
    stdout.print(
        f"created API token {created.token_id} ({created.role.value} of project "
        f"'{created.project}'); it is not shown again:",
        markup=False,
    )
    typer.echo(secret)


@token_app.command("list")
def list_tokens(
    project: Annotated[
        str | None,
        typer.Option(
            "--project", "-p", help="Only this project's tokens.", envvar=PROJECT_VARIABLE
        ),
    ] = None,
    db: DbOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """List tokens (never the tokens themselves), revoked ones included."""
    with _access(db, create_store=False) as access:
        tokens = access.list_tokens(project)
    if json_output:
        print_json([_token_dict(t) for t in tokens])
        return
    from rich.table import Table

    table = Table("id", "project", "role", "name", "created (UTC)", "revoked (UTC)")
    for t in tokens:
        created = t.create_time.strftime("%Y-%m-%d %H:%M:%S") if t.create_time else ""
        revoked = t.revoke_time.strftime("%Y-%m-%d %H:%M:%S") if t.revoke_time else ""
        table.add_row(str(t.token_id), t.project, t.role.value, t.name, created, revoked)
    stdout.print(table)


@token_app.command("revoke")
def revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (see `tideflow token list`).")],
    db: DbOption = None,
    yes: YesOption = False,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Revoke a token: servers refuse it from its next call on (asks first unless --yes)."""
    confirm(f"Revoke API token {token_id}? Jobs and scripts using it stop working.", yes=yes)
    with _access(db) as access:
        revoked = access.revoke_token(token_id)
    if json_output:
        print_json(_token_dict(revoked))
    else:
        stdout.print(f"revoked API token {revoked.token_id} ({revoked.name or 'no name'})")
