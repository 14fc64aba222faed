"""How CLI commands reach Tideflow: one client from ``--server`` / ``--db``, ``--project``, ``--token``.

Which Tideflow a command talks to, first match wins:

1. ``--server URL`` (or ``$TIDEFLOW_SERVER``): that server, over gRPC (``--token`` /
   ``$TIDEFLOW_TOKEN`` sent; ``$TIDEFLOW_CA_FILE`` trusted for ``grpcs://``);
2. ``--db URL`` (or ``$TIDEFLOW_DB``): the services in this process on that store;
3. the local server of ``$TIDEFLOW_HOME``, when its ``server.json`` names a live one;
4. the default store ``$TIDEFLOW_HOME/tideflow.db``, in-process.

A server gets one connection attempt of ``$TIDEFLOW_CONNECT_TIMEOUT`` seconds (default 2):
when it is down the command says so at once, with what to do, instead of retrying for
seconds and printing gRPC's own words. Commands that only read (or act on what exists) pass
``create_store=False``: a SQLite store that is not there is then an error, never a new file
-- a mistyped ``$TIDEFLOW_HOME`` or a stopped server must not look like an empty Tideflow.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from tideflow.cli.db import resolve_db
from tideflow.cli.output import fail
from tideflow.settings import PROJECT_VARIABLE, SERVER_VARIABLE, TOKEN_VARIABLE

if TYPE_CHECKING:
    from tideflow.client import Client

ProjectOption = Annotated[
    str, typer.Option("--project", "-p", help="Project.", envvar=PROJECT_VARIABLE)
]


ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        # Parentheses, not brackets: Typer's help is Rich markup, where [...] is a style tag.
        help="Server URL, grpc://HOST:PORT or grpcs://HOST:PORT (default: the local server of "
        "$TIDEFLOW_HOME if running, else --db in-process).",
        envvar=SERVER_VARIABLE,
        show_default=False,
    ),
]
"""The ``--server`` option of every command that talks to a server."""
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="API token, for a server that requires one (`tideflow token create`).",
        envvar=TOKEN_VARIABLE,
        show_default=False,
    ),
]
"""The ``--token`` option of every command that talks to a server."""


def resolve_target(db: str | None, server: str | None) -> str:
    """The URL a command connects to: ``--server``, ``--db``, the local server, the default store."""
    from tideflow.client.embedded import running_server, server_url
    from tideflow.settings import Settings

    if server is not None and db is not None:
        fail("give --server or --db, not both", code=2)
    if server is not None:
        return server_url(server)
    if db is not None:
        return db
    info = running_server(Settings.from_env().home)
    return str(info["url"]) if info is not None else resolve_db(None)


def refuse_missing_store(target: str) -> None:
    """Fail if ``target`` is a SQLite store whose file does not exist (see the module)."""
    if not target.startswith("sqlite:"):
        return
    from pathlib import Path

    from sqlalchemy.engine import make_url

    database = make_url(target).database
    path = Path(database) if database else None
    if path is not None and not path.exists():
        fail(
            f"no Tideflow store at {path} and no local server running: start one with "
            "`tideflow server start`, or name one with --server URL or --db URL"
        )


@contextmanager
def open_client(
    db: str | None,
    project: str,
    *,
    server: str | None = None,
    token: str | None = None,
    create_store: bool = True,
) -> Iterator[Client]:
    """A client of ``--server`` or ``--db`` (see the module), Tideflow errors made CLI failures.

    Args:
        db: ``--db``.
        project: ``--project``.
        server: ``--server``.
        token: ``--token``.
        create_store: Whether a SQLite store that does not exist yet may be created.
    """
    from tideflow.client import connect
    from tideflow.errors import TideflowError
    from tideflow.settings import connect_timeout

    try:
        timeout = connect_timeout()
    except ValueError as e:
        fail(str(e), code=2)
    target = resolve_target(db, server)
    if not create_store:
        refuse_missing_store(target)
    try:
        with connect(target, project=project, token=token, connect_timeout=timeout) as client:
            yield client
    except TideflowError as e:
        fail(str(e))
