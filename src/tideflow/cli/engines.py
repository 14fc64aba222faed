"""``tideflow engines setup|status|stop``: the environments and clusters of external engines.

Engines whose libraries cannot share Tideflow's own environment get one of their own, created by
the project's own command so users never assemble it by hand (docs/engines.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tideflow.cli.output import JsonOption, OutputOption, fail, print_json, stderr

engines_app = typer.Typer(help="Set up and inspect external engines (Flink).", no_args_is_help=True)

_ENGINES = ("flink",)


def _check_engine(engine: str) -> None:
    if engine not in _ENGINES:
        fail(f"unknown engine {engine!r}: `engines setup` knows {', '.join(_ENGINES)}", code=2)


@engines_app.command("setup")
def setup_command(
    engine: Annotated[str, typer.Argument(help="The engine: flink.")],
    path: Annotated[
        Path | None,
        typer.Option(
            help="Where to create the environment (default $TIDEFLOW_FLINK_VENV, else "
            "$TIDEFLOW_HOME/engines/flink/venv)."
        ),
    ] = None,
    requirement: Annotated[
        str | None, typer.Option(help="What to install for PyFlink (a pip requirement).")
    ] = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create the engine's own virtual environment (PyFlink), or check that it is complete.

    PyFlink pins old pandas / pyarrow / protobuf, so it never lives in Tideflow's environment.
    A second run that finds the environment complete returns at once.
    """
    _check_engine(engine)
    from tideflow.executors.flink.environment import (
        PYFLINK_REQUIREMENT,
        FlinkEnvironment,
        FlinkEnvironmentError,
        default_venv,
    )

    target = path.expanduser().resolve() if path is not None else default_venv()
    environment = FlinkEnvironment(target)
    try:
        info = environment.setup(
            requirement=requirement or PYFLINK_REQUIREMENT,
            progress=lambda line: stderr.print(line, markup=False, highlight=False),
        )
    except FlinkEnvironmentError as exc:
        fail(str(exc))
    if json_output:
        print_json({"engine": engine, "path": str(target), **info})
    else:
        typer.echo(f"flink environment ready: {target} (pyflink {info['pyflink']})")
        if path is not None:
            typer.echo(f"point Tideflow at it with: export TIDEFLOW_FLINK_VENV={target}")


@engines_app.command("stop")
def stop_command(
    engine: Annotated[str, typer.Argument(help="The engine: flink.")],
) -> None:
    """Stop the local cluster the executor started under $TIDEFLOW_HOME (its jobs end too)."""
    _check_engine(engine)
    from tideflow.executors.flink.cluster import LocalFlinkCluster
    from tideflow.executors.flink.environment import FlinkEnvironment, default_venv
    from tideflow.settings import Settings

    home = Settings.from_env().home
    cluster = LocalFlinkCluster(
        home / "engines" / "flink" / "cluster", FlinkEnvironment(default_venv())
    )
    address = cluster.running_address()
    cluster.stop()
    typer.echo(
        f"stopped the local Flink cluster at {address}"
        if address
        else "no local Flink cluster was running"
    )
