"""``tideflow monitor report MODEL [--out DIR]``: what the Example and Model Monitors found.

Prints a table of the Model Monitor's windows (AUC, log loss, calibration, samples), one of the
Example Monitor's windows (drift score per feature, breaches highlighted) and the
``DRIFT_DETECTED`` / ``MODEL_DEGRADED`` events of the model; ``--out DIR`` also writes
``quality.png``, ``drift.png`` and a self-contained ``report.html`` (see
:mod:`tideflow.cli.monitor_plot`).

Exit status: 0 with a report; 1 when the model is unknown or has no monitor metrics yet (nothing
to report is a failure for a script waiting on a monitor); 2 when ``--out`` is given and
matplotlib (the ``ml`` extra) is missing -- checked before anything is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tideflow.cli.connection import ProjectOption, ServerOption, TokenOption, open_client
from tideflow.cli.db import DbOption
from tideflow.cli.monitor_data import MonitorReport, gather
from tideflow.cli.monitor_table import Cell, drift_rows, event_rows, quality_rows
from tideflow.cli.output import JsonOption, OutputOption, fail, print_json, stderr, stdout
from tideflow.settings import DEFAULT_PROJECT

monitor_app = typer.Typer(
    help="Example and Model Monitors: drift and quality.", no_args_is_help=True
)


@monitor_app.command()
def report(
    model: str = typer.Argument(..., help="Model name."),
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write quality.png, drift.png and report.html here."),
    ] = None,
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show the monitors' windows and events for MODEL (and write plots with --out)."""
    from tideflow.errors import NotFoundError

    if out is not None:
        from tideflow.cli.monitor_plot import check_matplotlib

        try:
            check_matplotlib()
        except ImportError as e:
            fail(str(e), code=2)
    with open_client(db, project, server=server, token=token, create_store=False) as client:
        try:
            found = gather(client, model)
        except NotFoundError:
            fail(f"model {model!r} not found in project {project!r}")
    if not found.drift and not found.quality:
        fail(
            f"no monitor metrics for model {model!r} yet (drift.* / quality.* metrics appear "
            "once an Example or Model Monitor has closed a window; see docs/monitor.md)"
        )
    files: list[Path] = []
    if out is not None:
        from tideflow.cli.monitor_plot import write_report

        files = write_report(found, out)
    if json_output:
        print_json(_as_json(found, files))
        return
    _print(found)
    for path in files:
        stderr.print(f"wrote {path}")


def _as_json(found: MonitorReport, files: list[Path]) -> dict[str, object]:
    return {
        "model": found.model,
        "drift": [w.as_dict() for w in found.drift],
        "quality": [w.as_dict() for w in found.quality],
        "events": [
            {
                "offset": e.offset,
                "event_type": e.event_type,
                "sender": e.sender,
                "value": e.value,
                "time": e.create_time.isoformat() if e.create_time else None,
            }
            for e in found.events
        ],
        "truncated": found.truncated,
        "files": [str(p) for p in files],
    }


def _rich_table(title: str, headers: list[str], rows: list[list[Cell]]) -> object:
    from rich.table import Table
    from rich.text import Text

    table = Table(*headers, title=title)
    for row in rows:
        table.add_row(*(Text(text, style="bold red" if hot else "") for text, hot in row))
    return table


def _print(found: MonitorReport) -> None:
    if found.quality:
        stdout.print(_rich_table(f"{found.model}: model quality per window", *quality_rows(found)))
    if found.drift:
        title = f"{found.model}: drift score per feature (bold red: over its threshold)"
        stdout.print(_rich_table(title, *drift_rows(found)))
    headers, rows = event_rows(found)
    if rows:
        stdout.print(_rich_table(f"{found.model}: monitor events", headers, rows))
    else:
        stdout.print(f"no DRIFT_DETECTED or MODEL_DEGRADED events for {found.model}")
    for name in found.truncated:
        stderr.print(f"note: only the first 1000 values of {name} are shown")
