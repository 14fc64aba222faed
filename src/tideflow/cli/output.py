"""How the CLI talks to people: Rich on stderr for errors, stdout for results."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import typer
from rich.console import Console

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print ``message`` as an error and leave with exit status ``code``."""
    from rich.text import Text

    # The message is plain text: brackets in it (paths, lists) must not be read as markup.
    stderr.print(Text.assemble(("error:", "bold red"), " ", message))
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    """Print ``data`` as one line of JSON on stdout (for scripts)."""
    typer.echo(json.dumps(data, sort_keys=True, default=str))
