"""``tideflow project list``: the projects of a server or store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from tideflow.cli.connection import ServerOption, TokenOption, open_client
from tideflow.cli.db import DbOption
from tideflow.cli.output import JsonOption, OutputOption, print_json, stdout
from tideflow.settings import DEFAULT_PROJECT

if TYPE_CHECKING:
    from tideflow.domain import Project

project_app = typer.Typer(help="Projects: the namespaces of workflows, models and events.")


def project_dict(project: Project) -> dict[str, Any]:
    """The JSON form of a project, as ``--json`` prints it."""
    return {
        "name": project.name,
        "description": project.description,
        "create_time": project.create_time.isoformat() if project.create_time else None,
    }


@project_app.command("list")
def list_command(
    db: DbOption = None,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the projects, by name."""
    with open_client(db, DEFAULT_PROJECT, server=server, token=token, create_store=False) as client:
        projects = client.services.projects.list_projects()
    if json_output:
        print_json([project_dict(p) for p in projects])
        return
    from rich.table import Table

    table = Table("project", "description", "created (UTC)")
    for p in projects:
        created = p.create_time.strftime("%Y-%m-%d %H:%M:%S") if p.create_time else ""
        table.add_row(p.name, p.description, created)
    stdout.print(table)
