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
    stderr.print(f"[bold red]error:[/] {message}", markup=True)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    """Print ``data`` as one line of JSON on stdout (for scripts)."""
    typer.echo(json.dumps(data, sort_keys=True, default=str))
