"""``tideflow serve MODEL``: the online predictor of a model, over HTTP, until interrupted."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tideflow.cli.connection import ProjectOption, ServerOption, TokenOption, open_client
from tideflow.cli.output import fail

if TYPE_CHECKING:
    from tideflow.client import Client


def serve_command(
    model: Annotated[str, typer.Argument(help="The registered model to serve.")],
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port (0 picks a free one).")] = 8000,
    server: ServerOption = None,
    project: ProjectOption = "default",
    token: TokenOption = None,
    db: Annotated[
        str | None, typer.Option(help="Store URL, for in-process use instead of a server.")
    ] = None,
    predictions: Annotated[
        Path | None,
        typer.Option(
            help="Where every prediction is written: a local stream directory (default "
            "$TIDEFLOW_HOME/predictions/PROJECT/MODEL), or a JSON Lines file if it ends in .jsonl."
        ),
    ] = None,
    max_batch: Annotated[int, typer.Option(help="Most records per model call.")] = 256,
    max_wait_ms: Annotated[
        float, typer.Option(help="Longest a request waits for a batch to fill, in ms.")
    ] = 1.0,
) -> None:
    """Serve MODEL's DEPLOYED version on POST /predict, swapping to each new deploy.

    The same predictor answers MLflow scoring (POST /invocations, GET /ping) and the Open
    Inference Protocol v2 (/v2/health/*, /v2/models/MODEL[/infer]); docs/serving.md.

    MODEL must be registered in the project (an unknown name is refused with the list of
    models); a registered model with no deployed version yet is served from its first deploy.
    """
    from tideflow.serving.http import PredictorServer
    from tideflow.serving.predictor import Predictor
    from tideflow.serving.sink import JsonLinesSink, PredictionSink
    from tideflow.settings import Settings

    with open_client(db, project, server=server, token=token) as client:
        _require_model(client, model, project)
        path = predictions or Settings.from_env().home / "predictions" / project / model
        if path.suffix == ".jsonl":
            sink: PredictionSink = JsonLinesSink(path)
        else:
            from tideflow.errors import TideflowError
            from tideflow.io.local_stream import LocalStreamWriter

            try:
                sink = LocalStreamWriter(path, dataset=f"predictions_{model}")
            except TideflowError as e:
                fail(f"cannot write predictions to {path}: {e}")
        predictor = Predictor(
            client,
            model,
            sink=sink,
            max_batch=max_batch,
            max_wait=max_wait_ms / 1000,
        )
        http = PredictorServer(predictor, host=host, port=port)
        try:
            http.start()
        except OSError as e:
            predictor.stop()
            fail(f"cannot serve on {host}:{port}: {e.strerror}")
        stopped = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopped.set())
        served = predictor.holder.current
        typer.echo(
            f"serving model {model!r} of project {project!r} on {http.url} "
            f"(version {served.version.version if served else 'none deployed yet'}); "
            f"predictions to {path}",
            err=True,
        )
        try:
            stopped.wait()
        finally:
            http.stop()


def _require_model(client: Client, model: str, project: str) -> None:
    """Refuse a model the project does not have, naming the ones it has.

    Without this check the predictor would wait forever for a deploy of a model that may
    never exist (a typo in the name).
    """
    from tideflow.errors import NotFoundError

    try:
        client.models.get(model)
    except NotFoundError:
        names = sorted(m.name for m in client.models.list(limit=1000))
        known = ", ".join(names) if names else "none registered yet"
        fail(f"no model {model!r} in project {project!r}; its models: {known}")
