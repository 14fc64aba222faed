"""The ``tideflow`` command: one Typer app with a sub-app per noun.

Sub-apps live in their own modules (``workflow.py``, ``model.py``, ...) and are mounted here;
heavy imports happen inside commands so ``tideflow --help`` stays fast. Shell completion is
Typer's (``tideflow --install-completion`` / ``--show-completion``).
"""

from __future__ import annotations

import typer

from tideflow._version import __version__
from tideflow.cli.db import db_app
from tideflow.cli.engines import engines_app
from tideflow.cli.event import event_app
from tideflow.cli.execution import execution_app
from tideflow.cli.job import job_app
from tideflow.cli.model import model_app
from tideflow.cli.monitor import monitor_app
from tideflow.cli.project import project_app
from tideflow.cli.quickstart import quickstart_command
from tideflow.cli.run import run_command
from tideflow.cli.serve import serve_command
from tideflow.cli.server import server_app
from tideflow.cli.token import token_app
from tideflow.cli.ui import ui_command
from tideflow.cli.workflow import workflow_app

app = typer.Typer(
    name="tideflow",
    help="Tideflow: event-driven lifecycle of batch and streaming ML pipelines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(workflow_app, name="workflow")
app.add_typer(db_app, name="db")
app.add_typer(model_app, name="model")
app.add_typer(event_app, name="event")
app.add_typer(server_app, name="server")
app.add_typer(token_app, name="token")
app.add_typer(execution_app, name="execution")
app.add_typer(job_app, name="job")
app.add_typer(monitor_app, name="monitor")
app.add_typer(engines_app, name="engines")
app.add_typer(project_app, name="project")
app.command("run")(run_command)
app.command("serve")(serve_command)
app.command("quickstart")(quickstart_command)
app.command("ui")(ui_command)


@app.command()
def version() -> None:
    """Print Tideflow's version."""
    typer.echo(__version__)


def main() -> None:
    """Entry point of the ``tideflow`` console script."""
    app()
