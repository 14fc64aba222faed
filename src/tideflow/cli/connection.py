"""How CLI commands reach Tideflow: one client from ``--server`` / ``--db``, ``--project``, ``--token``.

Which Tideflow a command talks to, first match wins:

1. ``--server URL`` (or ``$TIDEFLOW_SERVER``): that server, over gRPC (``--token`` /
   ``$TIDEFLOW_TOKEN`` sent; ``$TIDEFLOW_CA_FILE`` trusted for ``grpcs://``);
2. ``--db URL`` (or ``$TIDEFLOW_DB``): the services in this process on that store;
3. the local server of ``$TIDEFLOW_HOME``, when its ``server.json`` names a live one;
4. the default store ``$TIDEFLOW_HOME/tideflow.db``, in-process.
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


@contextmanager
def open_client(
    db: str | None, project: str, *, server: str | None = None, token: str | None = None
) -> Iterator[Client]:
    """A client of ``--server`` or ``--db`` (see the module), Tideflow errors made CLI failures."""
    from tideflow.client import connect
    from tideflow.errors import TideflowError

    try:
        with connect(resolve_target(db, server), project=project, token=token) as client:
            yield client
    except TideflowError as e:
        fail(str(e))
