"""``tideflow job list|logs|stop|restart``: the jobs of one workflow execution."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tideflow.cli.connection import ProjectOption, ServerOption, TokenOption, open_client
from tideflow.cli.db import DbOption
from tideflow.cli.execution import job_dict, jobs_table, plan_job_names, styled
from tideflow.cli.output import JsonOption, OutputOption, print_json, stdout
from tideflow.settings import DEFAULT_PROJECT

job_app = typer.Typer(
    help="List, stop and restart the jobs of an execution; print their logs.",
    no_args_is_help=True,
)

ExecutionArgument = Annotated[int, typer.Argument(help="Execution id.")]
JobArgument = Annotated[str, typer.Argument(help="Job name.")]


@job_app.command("list")
def list_command(
    execution_id: ExecutionArgument,
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """List every attempt of every job of an execution (jobs not started yet too)."""
    with open_client(db, project, server=server, token=token, create_store=False) as client:
        jobs = client.jobs.list(execution_id)
        plan_jobs = plan_job_names(client, client.executions.get(execution_id).snapshot_id)
    if json_output:
        print_json([job_dict(j) for j in jobs])
        return
    stdout.print(jobs_table(jobs, plan_jobs))


@job_app.command("logs")
def logs_command(
    execution_id: ExecutionArgument,
    job: JobArgument,
    attempt: Annotated[
        int | None, typer.Option("--attempt", "-a", help="This attempt (default: the latest).")
    ] = None,
    tail: Annotated[int | None, typer.Option("--tail", "-n", help="Only the last N lines.")] = None,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep printing as the log grows, until the job ends."),
    ] = False,
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print a job attempt's log (stdout and stderr of the job process).

    With --follow, print new output as it is written and return once the attempt has ended;
    --json then prints one object per piece ({"text": ...}).
    """
    with open_client(db, project, server=server, token=token, create_store=False) as client:
        if follow:
            try:
                for text in client.jobs.follow_logs(execution_id, job, attempt=attempt, tail=tail):
                    if json_output:
                        print_json({"text": text})
                    else:
                        sys.stdout.write(text)
                        sys.stdout.flush()
            except KeyboardInterrupt:
                raise typer.Exit(130) from None
            return
        log = client.jobs.read_log(execution_id, job, attempt=attempt, tail=tail)
        text = log.text
        if log.after < log.size:  # longer than one read
            text = client.jobs.logs(execution_id, job, attempt=log.attempt, tail=tail)
    if json_output:
        print_json(
            {
                "execution_id": execution_id,
                "job": job,
                "attempt": log.attempt,
                "status": log.status.value,
                "text": text,
            }
        )
        return
    sys.stdout.write(text)
    sys.stdout.flush()


@job_app.command("stop")
def stop_command(
    execution_id: ExecutionArgument,
    job: JobArgument,
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Stop a job's live attempts (the execution goes on; a rule may start the job again)."""
    with open_client(db, project, server=server, token=token, create_store=False) as client:
        latest = client.jobs.stop(execution_id, job)
    if json_output:
        print_json(None if latest is None else job_dict(latest))
    elif latest is None:
        stdout.print(f"job [bold]{job}[/] of execution {execution_id} has not run: nothing to stop")
    else:
        stdout.print(
            f"stopping job [bold]{job}[/] of execution {execution_id} "
            f"(attempt {latest.attempt}: {styled(latest.status.value)})"
        )


@job_app.command("restart")
def restart_command(
    execution_id: ExecutionArgument,
    job: JobArgument,
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Stop a job's live attempts and start its next attempt once they have stopped."""
    with open_client(db, project, server=server, token=token, create_store=False) as client:
        attempt = client.jobs.restart(execution_id, job)
    if json_output:
        print_json(job_dict(attempt))
    else:
        stdout.print(
            f"restarting job [bold]{job}[/] of execution {execution_id}: attempt {attempt.attempt}"
        )
