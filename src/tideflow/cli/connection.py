"""How CLI commands reach Tideflow: one client from ``--db`` / ``--project`` options."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from tideflow.cli.db import resolve_db
from tideflow.cli.output import fail
from tideflow.settings import PROJECT_VARIABLE

if TYPE_CHECKING:
    from tideflow.client import Client

ProjectOption = Annotated[
    str, typer.Option("--project", "-p", help="Project.", envvar=PROJECT_VARIABLE)
]


@contextmanager
def open_client(db: str | None, project: str) -> Iterator[Client]:
    """A client on the store, with every Tideflow error turned into a clean CLI failure."""
    from tideflow.client import connect
    from tideflow.errors import TideflowError

    try:
        with connect(resolve_db(db), project=project) as client:
            yield client
    except TideflowError as e:
        fail(str(e))
