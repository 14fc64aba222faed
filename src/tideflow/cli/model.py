"""``tideflow model list|versions|set-status|deploy|rollback|export|import``.

``versions`` shows each version's signature (``name:type``, ``?`` for optional fields) and, in
JSON, its signature, library versions and origin (``imported``); ``export`` and ``import`` are
:mod:`tideflow.client.model_export` and :mod:`tideflow.client.model_import`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from tideflow.cli.connection import ProjectOption, ServerOption, TokenOption, open_client
from tideflow.cli.db import DbOption
from tideflow.cli.output import JsonOption, OutputOption, print_json, stdout
from tideflow.settings import DEFAULT_PROJECT

if TYPE_CHECKING:
    from tideflow.domain import ModelVersion, RegisteredModel

model_app = typer.Typer(help="Registered models and their versions.", no_args_is_help=True)


def _signature(v: ModelVersion) -> Any:
    from tideflow.domain.signature import Signature
    from tideflow.errors import InvalidArgumentError

    try:
        return Signature.of(v.tags)
    except InvalidArgumentError:
        return None


def _version_dict(v: ModelVersion) -> dict[str, Any]:
    from tideflow.domain.signature import LIBRARIES_TAG, ORIGIN_TAG

    signature = _signature(v)
    try:
        libraries = json.loads(v.tags.get(LIBRARIES_TAG, "null"))
    except ValueError:
        libraries = None
    return {
        "model": v.model,
        "version": v.version,
        "status": v.status.value,
        "uri": v.uri,
        "flavour": v.flavour,
        "metrics": dict(v.metrics),
        "signature": None
        if signature is None
        else [
            {"name": f.name, "type": f.type.value, "required": f.required} for f in signature.inputs
        ],
        "libraries": libraries,
        "origin": v.tags.get(ORIGIN_TAG, "logged"),
        "create_time": v.create_time.isoformat() if v.create_time else None,
        "update_time": v.update_time.isoformat() if v.update_time else None,
    }


def _print_versions(versions: list[ModelVersion], json_output: bool) -> None:
    if json_output:
        print_json([_version_dict(v) for v in versions])
        return
    from rich.table import Table

    table = Table("version", "status", "flavour", "uri", "metrics", "signature", "updated (UTC)")
    for v in versions:
        metrics = ", ".join(f"{k}={val:g}" for k, val in sorted(v.metrics.items()))
        updated = v.update_time.strftime("%Y-%m-%d %H:%M:%S") if v.update_time else ""
        signature = _signature(v)
        described = "" if signature is None else signature.describe()
        table.add_row(str(v.version), v.status.value, v.flavour, v.uri, metrics, described, updated)
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


@model_app.command("export")
def export(
    model: str = typer.Argument(..., help="Model name."),
    version: int = typer.Argument(..., help="Version number."),
    format: str = typer.Option("mlflow", "--format", help="mlflow or onnx."),
    out: Path = typer.Option(..., "--out", help="The directory to write (new or empty)."),
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Write a version as an MLflow model directory or an ONNX model (scikit-learn only)."""
    with open_client(db, project, server=server, token=token, create_store=False) as client:
        written = client.models.export(model, version, format=format, out=out)
    if json_output:
        print_json({"model": model, "version": version, "format": format, "out": str(written)})
        return
    stdout.print(f"version {version} of {model!r} written as {format} to {written}")


@model_app.command("import")
def import_(
    path: Path = typer.Argument(..., help="An MLflow model directory or a joblib/pickle file."),
    name: str = typer.Option(..., "--name", help="The model to add a version to."),
    description: str = typer.Option("", help="Free text for the version."),
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Register a model made elsewhere as a new GENERATED version (tagged as imported)."""
    with open_client(db, project, server=server, token=token) as client:
        imported = client.models.import_model(path, name=name, description=description)
    _print_versions([imported], json_output)
