"""``tideflow execution list|show``: workflow executions, their jobs, actions and waits.

Also the renderings (JSON dicts, Rich tables) that ``job``, ``workflow start`` and ``run``
share, and the parsing of ``--param k=v``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tideflow.cli.connection import ProjectOption, ServerOption, TokenOption, open_client
from tideflow.cli.db import DbOption
from tideflow.cli.output import JsonOption, OutputOption, fail, print_json, stdout
from tideflow.settings import DEFAULT_PROJECT

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from tideflow.client import Client
    from tideflow.domain.metadata import ExecutionAction, JobExecution, WorkflowExecution

execution_app = typer.Typer(
    help="List workflow executions and show their jobs, actions and waits.", no_args_is_help=True
)

ParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        help="A parameter k=v for ctx.params (repeatable); v is read as JSON if it parses "
        "(42, 0.5, true, [1,2]), else taken as text.",
    ),
]

STATUS_STYLE = {
    "FINISHED": "green",
    "RUNNING": "cyan",
    "STARTING": "cyan",
    "INIT": "dim",
    "FAILED": "bold red",
    "STOPPED": "yellow",
}


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """``["k=v", ...]`` as a dict; values that parse as JSON are JSON, others text."""
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            fail(f"--param wants KEY=VALUE, got {pair!r}", code=2)
        try:
            params[key] = json.loads(text)
        except ValueError:
            params[key] = text
    return params


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _clock(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _hms(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%H:%M:%S.%f")[:-3]


def styled(status: str) -> str:
    """``status`` with its colour, as Rich markup."""
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def execution_dict(execution: WorkflowExecution) -> dict[str, Any]:
    """The JSON form of an execution."""
    return {
        "execution_id": execution.execution_id,
        "workflow": execution.workflow,
        "snapshot_id": execution.snapshot_id,
        "status": execution.status.value,
        "params": dict(execution.params),
        "context": execution.context,
        "start_time": _time(execution.start_time),
        "end_time": _time(execution.end_time),
    }


def job_dict(job: JobExecution) -> dict[str, Any]:
    """The JSON form of one job attempt."""
    return {
        "job_execution_id": job.job_execution_id,
        "execution_id": job.execution_id,
        "job": job.job,
        "attempt": job.attempt,
        "status": job.status.value,
        "start_time": _time(job.start_time),
        "end_time": _time(job.end_time),
        "exit_code": job.exit_code,
        "error": job.error,
        "log_uri": job.log_uri,
    }


def action_dict(action: ExecutionAction) -> dict[str, Any]:
    """The JSON form of an action the scheduler (or a user) took."""
    return {
        "action_id": action.action_id,
        "job": action.job,
        "action": action.action.value,
        "rule": action.rule,
        "event_offset": action.event_offset,
        "time": _time(action.time),
    }


def jobs_table(jobs: list[JobExecution], plan_jobs: list[str] | None = None) -> Table:
    """Every attempt of every job; plan jobs that never ran as ``not started``."""
    from rich.table import Table

    table = Table("job", "attempt", "status", "started (UTC)", "ended", "exit", "error")
    for job in jobs:
        error = (job.error or "").strip().splitlines()
        table.add_row(
            job.job,
            str(job.attempt),
            styled(job.status.value),
            _hms(job.start_time),
            _hms(job.end_time),
            "" if job.exit_code is None else str(job.exit_code),
            error[-1] if error else "",
        )
    ran = {j.job for j in jobs}
    for name in plan_jobs or []:
        if name not in ran:
            table.add_row(name, "-", "[dim]not started[/]", "", "", "", "")
    return table


def actions_table(actions: list[ExecutionAction]) -> Table:
    """The actions taken: when, on which job, what, by which rule, after which event."""
    from rich.table import Table

    table = Table("time (UTC)", "job", "action", "rule", "event offset")
    for action in actions:
        table.add_row(
            _hms(action.time),
            action.job or "(execution)",
            action.action.value,
            action.rule,
            "-" if action.event_offset is None else str(action.event_offset),
        )
    return table


def waiting_lines(waiting: dict[str, list[str]]) -> list[str]:
    """``job waits on: rule`` lines (markup-free)."""
    return [f"{job} waits on: {rule}" for job, rules in sorted(waiting.items()) for rule in rules]


def plan_job_names(client: Client, snapshot_id: int) -> list[str]:
    """The job names of a snapshot's plan, in plan order."""
    from tideflow.compiler import WorkflowPlan

    plan = WorkflowPlan.from_json(client.workflows.snapshot(snapshot_id).plan)
    return [job.name for job in plan.jobs]


def show_execution(
    execution: WorkflowExecution,
    jobs: list[JobExecution],
    actions: list[ExecutionAction],
    waiting: dict[str, list[str]],
    plan_jobs: list[str] | None = None,
) -> list[RenderableType]:
    """What ``execution show`` and ``run`` print: header, jobs, actions, waits."""
    from rich.text import Text

    ended = f", ended {_clock(execution.end_time)}" if execution.end_time else ""
    params = json.dumps(dict(execution.params), sort_keys=True)
    parts: list[RenderableType] = [
        f"execution [bold]{execution.execution_id}[/] of workflow [bold]{execution.workflow}"
        f"[/] (snapshot {execution.snapshot_id}): {styled(execution.status.value)}",
        Text(
            f"started {_clock(execution.start_time)}{ended}; params {params}"
            + ("" if execution.context is None else f"; context {execution.context!r}")
        ),
        jobs_table(jobs, plan_jobs),
        actions_table(actions),
    ]
    if waiting:
        parts.append("[bold]waiting[/]")
        parts.extend(Text("  " + line) for line in waiting_lines(waiting))
    return parts


@execution_app.command("list")
def list_command(
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", help="Only this workflow.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option("--status", "-s", help="Only this status: RUNNING|FINISHED|FAILED|STOPPED."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.")] = 100,
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """List executions, newest first: id, workflow, status, start and end."""
    with open_client(db, project, server=server, token=token, create_store=False) as client:
        executions = client.executions.list(workflow=workflow, status=status, limit=limit)
    if json_output:
        print_json([execution_dict(e) for e in executions])
        return
    from rich.table import Table

    table = Table("execution", "workflow", "status", "snapshot", "started", "ended")
    for e in executions:
        table.add_row(
            str(e.execution_id),
            e.workflow,
            styled(e.status.value),
            str(e.snapshot_id),
            _clock(e.start_time),
            _clock(e.end_time),
        )
    stdout.print(table)


@execution_app.command("show")
def show_command(
    execution_id: Annotated[int, typer.Argument(help="Execution id.")],
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show an execution: each job's attempts and states, the actions taken and why, waits.

    Every action names the rule that took it and the offset of the event behind it (none for
    the start of the execution and for users' requests). While the execution runs, each idle
    job is listed with the rule it waits on and the events still missing.
    """
    with open_client(db, project, server=server, token=token, create_store=False) as client:
        execution = client.executions.get(execution_id)
        jobs = client.jobs.list(execution_id)
        actions = client.executions.actions(execution_id)
        waiting = client.executions.waiting_on(execution_id)
        plan_jobs = plan_job_names(client, execution.snapshot_id)
    if json_output:
        print_json(
            {
                "execution": execution_dict(execution),
                "jobs": [job_dict(j) for j in jobs],
                "actions": [action_dict(a) for a in actions],
                "waiting_on": waiting,
            }
        )
        return
    for part in show_execution(execution, jobs, actions, waiting, plan_jobs):
        stdout.print(part)
