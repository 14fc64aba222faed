"""``tideflow workflow ...``: compile, submit, list, show, delete, start, stop, pause, resume."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.tree import Tree

from tideflow.cli.connection import ProjectOption, ServerOption, TokenOption, open_client
from tideflow.cli.db import DbOption
from tideflow.cli.execution import ParamOption, parse_params
from tideflow.cli.output import (
    JsonOption,
    OutputOption,
    YesOption,
    confirm,
    fail,
    print_json,
    stderr,
    stdout,
)
from tideflow.settings import DEFAULT_PROJECT

workflow_app = typer.Typer(help="Compile, submit and run workflows.", no_args_is_help=True)


@workflow_app.command("compile")
def compile_command(
    file: Path = typer.Argument(..., help="A Python file that declares workflows."),
    workflow: str | None = typer.Option(None, "--workflow", "-w", help="Only this workflow."),
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Validate FILE's workflows and show the jobs, nodes and rules they compile to."""
    from tideflow.cli.loader import load_workflows, select_workflow
    from tideflow.compiler import compile
    from tideflow.errors import GraphError, TideflowError, UserCodeError

    try:
        workflows = select_workflow(load_workflows(file), workflow)
    except UserCodeError as exc:
        stderr.print(exc.user_traceback, markup=False)
        fail(str(exc))
    except TideflowError as exc:
        fail(str(exc), code=2)
    failed = False
    for wf in workflows:
        try:
            plan = compile(wf)
        except GraphError as exc:
            failed = True
            stderr.print(f"[bold red]error:[/] workflow '{wf.name}' does not compile")
            stderr.print(str(exc), markup=False)
            continue
        if json_output:
            print_json(json.loads(plan.to_json()))
        else:
            stdout.print(plan_tree(plan))
    if failed:
        raise typer.Exit(1)


def plan_tree(plan: object) -> Tree:
    """A Rich tree: workflow -> jobs (engine, mode) -> nodes, then the rules of each job."""
    from tideflow.compiler import WorkflowPlan
    from tideflow.domain.rules import describe_rule

    assert isinstance(plan, WorkflowPlan)
    title = f"[bold]workflow {plan.workflow}[/]"
    if plan.per_context is not None:
        title += f" (per context: {plan.per_context.describe()})"
    tree = Tree(title)
    for job in plan.jobs:
        mode = "streaming" if job.streaming else "batch"
        branch = tree.add(
            f"[bold cyan]job {job.name}[/] [dim]{job.engine}/{job.platform}, {mode}[/]"
        )
        for node in job.nodes:
            detail = [str(node.kind)]
            if node.model:
                detail.append(f"model={node.model}")
            if node.dataset:
                detail.append(f"dataset={node.dataset}")
            if node.inputs:
                detail.append("<- " + ", ".join(ref.node for ref in node.inputs))
            branch.add(f"{node.name} [dim]({'; '.join(detail)})[/]")
        for rule in plan.rules_for(job.name):
            branch.add(f"[yellow]{rule.action}[/] {describe_rule(rule)}")
    workflow_rules = plan.rules_for(None)
    if workflow_rules:
        rules = tree.add("[bold]workflow rules[/]")
        for rule in workflow_rules:
            rules.add(f"[yellow]{rule.action} execution[/] {describe_rule(rule)}")
    return tree


def _load_one(file: Path, workflow: str | None) -> list[Any]:
    """The workflows of FILE (or the one named), user errors turned into CLI failures."""
    from tideflow.cli.loader import load_workflows, select_workflow
    from tideflow.errors import TideflowError, UserCodeError

    try:
        return select_workflow(load_workflows(file), workflow)
    except UserCodeError as exc:
        stderr.print(exc.user_traceback, markup=False)
        fail(str(exc))
    except TideflowError as exc:
        fail(str(exc), code=2)


@workflow_app.command("submit")
def submit_command(
    file: Path = typer.Argument(..., help="A Python file that declares workflows."),
    workflow: str | None = typer.Option(None, "--workflow", "-w", help="Only this workflow."),
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Compile FILE's workflows, package FILE's directory and register a snapshot of each.

    Unchanged code and rules reuse the workflow's existing snapshot (see docs/submission.md).
    """
    from tideflow.errors import GraphError

    workflows = _load_one(file, workflow)
    results: list[dict[str, Any]] = []
    failed = False
    with open_client(db, project, server=server, token=token) as client:
        for wf in workflows:
            try:
                submission = client.workflows.submit(wf, source=file)
            except GraphError as exc:
                failed = True
                stderr.print(f"[bold red]error:[/] workflow '{wf.name}' does not compile")
                stderr.print(str(exc), markup=False)
                continue
            snapshot = submission.snapshot
            results.append(
                {
                    "workflow": snapshot.workflow,
                    "snapshot_id": snapshot.snapshot_id,
                    "reused": submission.reused,
                    "identity": snapshot.identity,
                    "code_sha256": snapshot.code_sha256,
                    "code_uri": snapshot.code_uri,
                }
            )
            if not json_output:
                what = "unchanged, reused snapshot" if submission.reused else "new snapshot"
                stdout.print(
                    f"workflow [bold]{snapshot.workflow}[/]: {what} {snapshot.snapshot_id} "
                    f"[dim](code {snapshot.code_sha256[:12]}, identity {snapshot.identity[:12]})[/]"
                )
    if json_output:
        print_json(results)
    if failed:
        raise typer.Exit(1)


@workflow_app.command("list")
def list_command(
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the project's submitted workflows: name, latest snapshot, submitted, updated.

    Talks to --server (or the local server, or --db in-process; see docs/server.md) in
    --project. `workflow show NAME` gives one workflow's plan and code package.
    """
    with open_client(db, project, server=server, token=token, create_store=False) as client:
        workflows = client.workflows.list()
    if json_output:
        print_json(
            [
                {
                    "name": w.name,
                    "latest_snapshot_id": w.latest_snapshot_id,
                    "create_time": _time(w.create_time),
                    "update_time": _time(w.update_time),
                }
                for w in workflows
            ]
        )
        return
    from rich.table import Table

    table = Table("workflow", "latest snapshot", "submitted", "updated")
    for w in workflows:
        table.add_row(
            w.name, str(w.latest_snapshot_id or "-"), _time(w.create_time), _time(w.update_time)
        )
    stdout.print(table)


@workflow_app.command("show")
def show_command(
    name: str = typer.Argument(..., help="Workflow name."),
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a workflow's latest snapshot: its code package and its plan as a tree.

    Prints the snapshot id (and how many the workflow has), the code package's URI and SHA-256,
    the snapshot identity, its schedule and next run time (if it has one; ticks while paused
    are skipped), then the jobs, nodes and rules of its plan. --json prints the same as one
    object, the plan without engine payloads. Unknown NAME: exits 1 naming it.
    """
    from tideflow.compiler import WorkflowPlan

    with open_client(db, project, server=server, token=token, create_store=False) as client:
        snapshot = client.workflows.latest_snapshot(name)
        count = len(client.workflows.snapshots(name))
        plan = WorkflowPlan.from_json(snapshot.plan)
        paused = plan.schedule is not None and client.workflows.settings(name).paused
    next_run = _next_run(plan)
    if json_output:
        print_json(
            {
                "workflow": snapshot.workflow,
                "snapshot_id": snapshot.snapshot_id,
                "snapshots": count,
                "identity": snapshot.identity,
                "code_uri": snapshot.code_uri,
                "code_sha256": snapshot.code_sha256,
                "create_time": _time(snapshot.create_time),
                "next_run_time": None if next_run is None else next_run.isoformat(),
                "plan": plan.to_dict(include_payloads=False),
            }
        )
        return
    stdout.print(
        f"snapshot {snapshot.snapshot_id} of {count}, submitted {_time(snapshot.create_time)}\n"
        f"code {snapshot.code_uri} [dim](sha256 {snapshot.code_sha256})[/]\n"
        f"identity {snapshot.identity}"
    )
    if plan.schedule is not None:
        note = " [yellow](paused: ticks are skipped)[/]" if paused else ""
        stdout.print(
            f"schedule {plan.schedule.describe()}, next run {_time(next_run) or 'never'}{note}",
            highlight=False,
        )
    stdout.print(plan_tree(plan))


@workflow_app.command("delete")
def delete_command(
    name: str = typer.Argument(..., help="Workflow name."),
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    yes: YesOption = False,
) -> None:
    """Delete workflow NAME with all its snapshots and executions (no undo).

    Asks first unless --yes is given (without a terminal to ask on, --yes is required).
    Its code packages stay in the blob store (they are content-addressed and may be shared).
    Submitting the workflow again registers it anew. Unknown NAME: exits 1 naming it.
    """
    with open_client(db, project, server=server, token=token, create_store=False) as client:
        client.workflows.get(name)  # an unknown name fails here, before anything is asked
        confirm(
            f"Delete workflow {name!r} of project {project!r} with all its snapshots and "
            "executions?",
            yes=yes,
        )
        client.workflows.delete(name)
    stdout.print(f"deleted workflow [bold]{name}[/]")


@workflow_app.command("start")
def start_command(
    name: str = typer.Argument(..., help="Workflow name."),
    param: ParamOption = None,
    context: str | None = typer.Option(
        None, "--context", help="For per_context workflows: the context string it serves."
    ),
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Start an execution of NAME on its latest snapshot; print its id.

    Jobs no START rule targets start at once; `execution show ID` follows it, and
    `tideflow run FILE` submits, starts and follows in one go. A paused workflow, or one at
    its max active executions, refuses (exit 1, saying why).
    """
    from tideflow.cli.execution import execution_dict

    params = parse_params(param)
    with open_client(db, project, server=server, token=token) as client:
        execution = client.workflows.start(name, params=params, context=context)
    if json_output:
        print_json(execution_dict(execution))
    else:
        stdout.print(
            f"started execution [bold]{execution.execution_id}[/] of workflow [bold]{name}[/] "
            f"(snapshot {execution.snapshot_id})"
        )


@workflow_app.command("backfill")
def backfill_command(
    name: str = typer.Argument(..., help="Workflow name."),
    start: str = typer.Option(..., "--from", help="First tick time, ISO 8601 (no offset: UTC)."),
    end: str = typer.Option(..., "--to", help="Last tick time, ISO 8601 (no offset: UTC)."),
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Start one execution per tick of NAME's schedule from --from to --to (both included).

    Each execution gets its tick as the param schedule_time. A tick already handled (by the
    schedule or an earlier backfill) is left alone, so running the same backfill again starts
    nothing new; a tick while the workflow is paused or at its max active executions is
    recorded as skipped. Prints one line per tick as it goes (--json: one object at the end).
    """
    from tideflow.compiler import WorkflowPlan
    from tideflow.scheduler.schedule import MAX_BACKFILL_TICKS, ticks_between

    first, last = _instant(start, "--from"), _instant(end, "--to")
    done = []
    with open_client(db, project, server=server, token=token) as client:
        plan = WorkflowPlan.from_json(client.workflows.latest_snapshot(name).plan)
        if plan.schedule is None:
            fail(f"workflow {name!r} has no schedule to backfill: declare one with wf.schedule")
        ticks = ticks_between(
            plan.schedule, first, last, limit=MAX_BACKFILL_TICKS + 1, newest=False
        )
        if len(ticks) > MAX_BACKFILL_TICKS:
            fail(f"the range holds more than {MAX_BACKFILL_TICKS} ticks; split it")
        for number, tick in enumerate(ticks, start=1):
            # One call per tick: progress shows, and an interrupted backfill resumes as is.
            results = client.workflows.backfill(name, tick, tick)
            done += results
            if json_output:
                continue
            what = "already handled"
            for result in results:
                what = (
                    f"started execution {result.execution_id}"
                    if result.execution_id is not None
                    else f"skipped: {result.reason}"
                )
            stdout.print(f"tick {number}/{len(ticks)} {_time(tick)}: {what}", highlight=False)
    if json_output:
        print_json(
            [
                {
                    "tick_time": _time(r.tick_time),
                    "status": r.status,
                    "execution_id": r.execution_id,
                    "reason": r.reason,
                }
                for r in done
            ]
        )
    else:
        started = sum(r.execution_id is not None for r in done)
        stdout.print(f"backfill of {name}: {started} started, {len(ticks) - started} not")


def _instant(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r} is not an ISO 8601 time, e.g. 2024-01-31T00:00:00Z")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@workflow_app.command("stop")
def stop_command(
    execution_id: int = typer.Argument(..., help="Execution id."),
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Stop execution EXECUTION_ID: its live jobs are stopped and it ends as STOPPED.

    An execution that has already ended cannot be stopped (exit 1, naming its status).
    """
    from tideflow.cli.execution import execution_dict

    with open_client(db, project, server=server, token=token, create_store=False) as client:
        execution = client.executions.stop(execution_id)
    if json_output:
        print_json(execution_dict(execution))
    else:
        stdout.print(
            f"stopped execution [bold]{execution_id}[/] of workflow [bold]{execution.workflow}[/]"
        )


def _settings_command(name: str, pause: bool, **connection: Any) -> None:
    json_output = connection.pop("json_output")
    with open_client(**connection, create_store=False) as client:
        settings = client.workflows.pause(name) if pause else client.workflows.resume(name)
    if json_output:
        print_json(
            {
                "workflow": name,
                "paused": settings.paused,
                "max_active_executions": settings.max_active_executions,
            }
        )
    elif pause:
        stdout.print(f"paused workflow [bold]{name}[/]: it starts no new executions")
    else:
        stdout.print(f"resumed workflow [bold]{name}[/]")


@workflow_app.command("pause")
def pause_command(
    name: str = typer.Argument(..., help="Workflow name."),
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Pause NAME: no new executions start (by hand or by start_on rules); running ones go on."""
    _settings_command(
        name, True, db=db, project=project, server=server, token=token, json_output=json_output
    )


@workflow_app.command("resume")
def resume_command(
    name: str = typer.Argument(..., help="Workflow name."),
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Resume NAME: executions may start again."""
    _settings_command(
        name, False, db=db, project=project, server=server, token=token, json_output=json_output
    )


def _time(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")


def _next_run(plan: Any) -> datetime | None:
    """The next tick of the plan's schedule after now (``None``: no schedule, or none left)."""
    from tideflow.errors import FailedPreconditionError
    from tideflow.scheduler.periodic import next_fire_after

    if plan.schedule is None:
        return None
    try:
        return next_fire_after(plan.schedule.timer, datetime.now(UTC))
    except FailedPreconditionError:  # a plan stored unchecked: it never ticks
        return None
