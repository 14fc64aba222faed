"""``tideflow model list|versions|set-status|deploy|rollback`` on a store opened in-process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from tideflow.cli.connection import ProjectOption, ServerOption, TokenOption, open_client
from tideflow.cli.db import DbOption
from tideflow.cli.output import JsonOption, OutputOption, print_json, stdout
from tideflow.settings import DEFAULT_PROJECT

if TYPE_CHECKING:
    from tideflow.domain import ModelVersion, RegisteredModel

model_app = typer.Typer(help="Registered models and their versions.", no_args_is_help=True)


def _version_dict(v: ModelVersion) -> dict[str, Any]:
    return {
        "model": v.model,
        "version": v.version,
        "status": v.status.value,
        "uri": v.uri,
        "flavour": v.flavour,
        "metrics": dict(v.metrics),
        "create_time": v.create_time.isoformat() if v.create_time else None,
        "update_time": v.update_time.isoformat() if v.update_time else None,
    }


def _print_versions(versions: list[ModelVersion], json_output: bool) -> None:
    if json_output:
        print_json([_version_dict(v) for v in versions])
        return
    from rich.table import Table

    table = Table("version", "status", "flavour", "uri", "metrics", "updated (UTC)")
    for v in versions:
        metrics = ", ".join(f"{k}={val:g}" for k, val in sorted(v.metrics.items()))
        updated = v.update_time.strftime("%Y-%m-%d %H:%M:%S") if v.update_time else ""
        table.add_row(str(v.version), v.status.value, v.flavour, v.uri, metrics, updated)
    stdout.print(table)


@model_app.command("list")
def list_models(
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the project's registered models."""
    with open_client(db, project, server=server, token=token, create_store=False) as client:
        models: list[RegisteredModel] = []
        cursor: str | None = None
        while True:
            page = client.models.list(limit=1000, cursor=cursor)
            models += page.items
            if (cursor := page.next_cursor) is None:
                break
    if json_output:
        print_json(
            [
                {"name": m.name, "description": m.description, "last_version": m.last_version}
                for m in models
            ]
        )
        return
    from rich.table import Table

    table = Table("model", "versions", "description")
    for m in models:
        table.add_row(m.name, str(m.last_version), m.description)
    stdout.print(table)


@model_app.command()
def versions(
    model: str = typer.Argument(..., help="Model name."),
    status: str | None = typer.Option(None, help="Only versions in this status."),
    limit: int = typer.Option(100, help="At most this many versions (1-1000)."),
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """List a model's versions, oldest first."""
    with open_client(db, project, server=server, token=token, create_store=False) as client:
        page = client.models.list_versions(model, status=status, limit=limit)
    _print_versions(list(page.items), json_output)


@model_app.command("set-status")
def set_status(
    model: str = typer.Argument(..., help="Model name."),
    version: int = typer.Argument(..., help="Version number."),
    status: str = typer.Argument(..., help="VALIDATED, REJECTED, DEPLOYED, DEPRECATED or DELETED."),
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Move a version to another status (illegal moves are refused)."""
    with open_client(db, project, server=server, token=token, create_store=False) as client:
        changed = client.models.set_status(model, version, status)
    _print_versions([changed], json_output)


@model_app.command()
def deploy(
    model: str = typer.Argument(..., help="Model name."),
    version: int = typer.Argument(..., help="Version number."),
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Deploy a version; the previously deployed one becomes DEPRECATED."""
    with open_client(db, project, server=server, token=token, create_store=False) as client:
        deployed = client.models.deploy(model, version)
    _print_versions([deployed], json_output)


@model_app.command()
def rollback(
    model: str = typer.Argument(..., help="Model name."),
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Redeploy the most recently deprecated version."""
    with open_client(db, project, server=server, token=token, create_store=False) as client:
        deployed = client.models.rollback(model)
    _print_versions([deployed], json_output)
