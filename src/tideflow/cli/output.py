"""How the CLI talks to people: Rich on stderr for errors, stdout for results.

Output formats: every command that prints data takes ``--output table|json|yaml`` (``-o``),
and ``--json`` stays as the short form of ``--output json``. The two options meet in the
command's Click context (``ctx.meta``, shared by nested contexts): ``--output`` is eager, so
its choice is known when ``--json`` is resolved, and the command's ``json_output`` flag is
true for either structured format. :func:`print_json` then writes what was asked for, so a
command's body says only "structured or table", never which structure.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, NoReturn

import click
import typer
from rich.console import Console

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)

_FORMAT_KEY = "tideflow.output"


class OutputFormat(StrEnum):
    """What a command prints: a human table (the default), JSON or YAML."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


def _remember_format(ctx: typer.Context, value: OutputFormat | None) -> OutputFormat | None:
    if value is not None:
        ctx.meta[_FORMAT_KEY] = OutputFormat(value)
    return value


def _json_alias(ctx: typer.Context, value: bool) -> bool:
    # ``--json`` alone means JSON; with ``--output`` too, ``--output`` decides.
    if value:
        ctx.meta.setdefault(_FORMAT_KEY, OutputFormat.JSON)
        return ctx.meta[_FORMAT_KEY] is not OutputFormat.TABLE
    return ctx.meta.get(_FORMAT_KEY, OutputFormat.TABLE) is not OutputFormat.TABLE


OutputOption = Annotated[
    OutputFormat | None,
    typer.Option(
        "--output",
        "-o",
        help="Output format: table (default, for people), json or yaml (for scripts).",
        case_sensitive=False,
        is_eager=True,
        callback=_remember_format,
        show_default=False,
    ),
]
"""The ``--output`` option; a command declaring it also declares :data:`JsonOption`."""
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Same as --output json.", callback=_json_alias),
]
"""The ``--json`` option: true for ``--json``, ``--output json`` and ``--output yaml``."""


def output_format() -> OutputFormat:
    """The format the running command was asked for (JSON outside a command)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return OutputFormat.JSON
    return OutputFormat(ctx.meta.get(_FORMAT_KEY, OutputFormat.JSON))


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print ``message`` as an error and leave with exit status ``code``."""
    from rich.text import Text

    # The message is plain text: brackets in it (paths, lists) must not be read as markup.
    stderr.print(Text.assemble(("error:", "bold red"), " ", message))
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    """Print ``data`` for scripts: one line of JSON, or one YAML document with ``-o yaml``.

    Each call is one JSON line or one ``---``-started YAML document, so commands that print
    as they go (``event watch``, ``job logs --follow``) stay parseable in both formats.
    """
    text = json.dumps(data, sort_keys=True, default=str)
    if output_format() is OutputFormat.YAML:
        import yaml

        # Through JSON first: the same plain types (dates as strings) in both formats.
        typer.echo(yaml.safe_dump(json.loads(text), sort_keys=True, explicit_start=True), nl=False)
        return
    typer.echo(text)


YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Do it without asking first (for scripts).")
]
"""The ``--yes`` option of commands that delete or revoke."""


def confirm(question: str, *, yes: bool) -> None:
    """Ask ``question`` on stderr (default no) unless ``yes``; leave with status 1 on no.

    With no terminal to answer on (end of input), the answer is no: a script that deletes
    must say ``--yes``.
    """
    if yes:
        return
    try:
        agreed = typer.confirm(question, default=False, err=True)
    except click.Abort:
        agreed = False
    if not agreed:
        fail("cancelled, nothing changed (pass --yes to skip the question)")
