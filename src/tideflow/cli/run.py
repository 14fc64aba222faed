"""``tideflow run FILE``: submit a workflow, start it and follow it live until it ends.

The execution is followed through the event log, not by polling: the command listens for the
``JOB_STATUS_CHANGED`` events of the workflow's jobs and the ``EXECUTION_STATUS_CHANGED``
event of its end (both carry the execution id), from the log's head read *before* the start,
so no change is missed. On a terminal the jobs are shown in a Rich live table; otherwise each
change is printed as a line. At the end it prints every job's attempts and states and the
actions taken (rule and event offset each), and exits:

- 0 when the execution FINISHED;
- 1 when it FAILED (a job failed for good) or was STOPPED;
- 124 when ``--timeout`` passed first: the jobs still waiting are named with the rule each
  waits on, and the execution is stopped (DESIGN.md: an execution runs until it is stopped,
  a ``stop_on`` rule fires, or ``tideflow run --timeout`` passes);
- 130 on Ctrl-C (the execution is stopped too).

With no ``--server`` or ``--db`` it uses the local server of ``$TIDEFLOW_HOME``, starting it
first if none runs (as ``tide.init`` does): jobs need a server's executor to run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tideflow.cli.connection import ProjectOption, ServerOption, TokenOption, open_client
from tideflow.cli.db import DbOption
from tideflow.cli.execution import (
    ParamOption,
    action_dict,
    execution_dict,
    job_dict,
    parse_params,
    show_execution,
    styled,
    waiting_lines,
)
from tideflow.cli.output import JsonOption, OutputOption, fail, print_json, stderr, stdout
from tideflow.settings import DEFAULT_PROJECT

if TYPE_CHECKING:
    from rich.table import Table

    from tideflow.client import Client
    from tideflow.domain.events import Event
    from tideflow.domain.metadata import WorkflowExecution
    from tideflow.notification.listener import Listener

EXIT_FAILED = 1
EXIT_TIMEOUT = 124
EXIT_INTERRUPTED = 130


def _local_server_url() -> str:
    from tideflow.client.embedded import ensure_local_server
    from tideflow.errors import TideflowError
    from tideflow.settings import Settings

    try:
        return str(ensure_local_server(Settings.from_env().home)["url"])
    except TideflowError as e:
        fail(str(e))


class JobBoard:
    """The latest attempt and status of each job, fed by job status events."""

    def __init__(self, workflow: str, jobs: list[str]) -> None:
        self.workflow = workflow
        self.states: dict[str, tuple[int | None, str]] = {job: (None, "waiting") for job in jobs}

    def apply(self, event: Event) -> tuple[str, int | None, str]:
        """Record one ``JOB_STATUS_CHANGED`` event; return (job, attempt, status)."""
        job = event.key[len(self.workflow) + 1 :]
        raw = event.context.get("attempt")
        attempt = raw if isinstance(raw, int) else None
        known = self.states.get(job, (None, ""))[0]
        if known is None or attempt is None or attempt >= known:
            self.states[job] = (attempt, event.value)
        return job, attempt, event.value

    def table(self, title: str) -> Table:
        """The board as a Rich table."""
        from rich.table import Table

        table = Table("job", "attempt", "status", title=title, title_justify="left")
        for job, (attempt, status) in self.states.items():
            shown = styled(status) if status != "waiting" else "[dim]waiting[/]"
            table.add_row(job, "-" if attempt is None else str(attempt), shown)
        return table


def follow(
    listener: Listener,
    execution: WorkflowExecution,
    board: JobBoard,
    *,
    timeout: float | None,
    live: bool,
    quiet: bool,
) -> bool:
    """Follow the execution's events until it ends (True) or ``timeout`` passes (False)."""
    from tideflow.domain.events import EXECUTION_STATUS_CHANGED

    deadline = None if timeout is None else time.monotonic() + timeout
    title = f"execution {execution.execution_id} of {execution.workflow}"
    view: Any = None
    if live and not quiet:
        from rich.live import Live

        view = Live(board.table(title), console=stdout, refresh_per_second=8, transient=False)
        view.start()
    try:
        while True:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return False
            for event in listener.poll(min(left, 1.0)):
                if event.context.get("execution_id") != execution.execution_id:
                    continue
                if event.event_type == EXECUTION_STATUS_CHANGED:
                    return True
                job, attempt, status = board.apply(event)
                if view is not None:
                    view.update(board.table(title))
                elif not quiet:
                    when = event.create_time.strftime("%H:%M:%S") if event.create_time else ""
                    stdout.print(f"{when}  {job}  attempt {attempt}  {styled(status)}")
    finally:
        if view is not None:
            view.stop()


def run_command(
    file: Annotated[Path, typer.Argument(help="A Python file that declares the workflow.")],
    workflow: Annotated[
        str | None,
        typer.Option("--workflow", "-w", help="The workflow to run, if FILE declares several."),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            "-t",
            help="Stop following (and stop the execution) after this many seconds.",
        ),
    ] = None,
    param: ParamOption = None,
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Submit FILE's workflow, start it and follow it live until it ends or --timeout passes.

    Then print every job's attempts and states and the actions taken, with the rule and the
    event offset behind each. Exit status: 0 FINISHED; 1 FAILED or STOPPED; 124 when the
    timeout passed (the jobs still waiting are named with the rule each waits on, and the
    execution is stopped); 130 on Ctrl-C. With neither --server nor --db, the local server of
    $TIDEFLOW_HOME is used, started first if it is not running.
    """
    from tideflow.cli.workflow import _load_one
    from tideflow.compiler import compile
    from tideflow.domain.events import EXECUTION_STATUS_CHANGED, JOB_STATUS_CHANGED, job_event_key
    from tideflow.errors import GraphError

    if timeout is not None and timeout <= 0:
        fail("--timeout must be > 0 seconds", code=2)
    params = parse_params(param)
    workflows = _load_one(file, workflow)
    if len(workflows) > 1:
        names = ", ".join(wf.name for wf in workflows)
        fail(f"{file} declares several workflows ({names}): choose one with --workflow", code=2)
    (wf,) = workflows
    try:
        plan = compile(wf)
    except GraphError as exc:
        stderr.print(f"[bold red]error:[/] workflow '{wf.name}' does not compile")
        stderr.print(str(exc), markup=False)
        raise typer.Exit(EXIT_FAILED) from None
    if server is None and db is None:
        server = _local_server_url()
    jobs = [job.name for job in plan.jobs]
    with open_client(db, project, server=server, token=token) as client:
        submission = client.workflows.submit(wf, source=file)
        head = client.events.latest_offset()
        listener = client.events.listen(
            keys=[*(job_event_key(wf.name, job) for job in jobs), wf.name],
            event_types=[JOB_STATUS_CHANGED, EXECUTION_STATUS_CHANGED],
            after_offset=head,
        )
        with listener:
            execution = client.workflows.start(wf.name, params=params)
            if not json_output:
                what = "reused" if submission.reused else "new"
                stdout.print(
                    f"started execution [bold]{execution.execution_id}[/] of workflow "
                    f"[bold]{wf.name}[/] (snapshot {execution.snapshot_id}, {what}) on "
                    f"{client.url}"
                )
            board = JobBoard(wf.name, jobs)
            try:
                ended = follow(
                    listener,
                    execution,
                    board,
                    timeout=timeout,
                    live=stdout.is_terminal,
                    quiet=json_output,
                )
            except KeyboardInterrupt:
                _stop_quietly(client, execution.execution_id)
                stderr.print(f"interrupted: stopped execution {execution.execution_id}")
                raise typer.Exit(EXIT_INTERRUPTED) from None
        code = _report(client, execution.execution_id, jobs, timeout, ended, json_output)
    raise typer.Exit(code)


def _stop_quietly(client: Client, execution_id: int) -> None:
    import contextlib

    from tideflow.errors import IllegalTransitionError

    with contextlib.suppress(IllegalTransitionError):  # it ended meanwhile
        client.executions.stop(execution_id)


def _report(
    client: Client,
    execution_id: int,
    plan_jobs: list[str],
    timeout: float | None,
    ended: bool,
    json_output: bool,
) -> int:
    """Print the outcome; return the exit status."""
    from tideflow.domain.status import ExecutionStatus

    execution = client.executions.get(execution_id)
    timed_out = execution.status is ExecutionStatus.RUNNING
    waiting: dict[str, list[str]] = {}
    live: list[str] = []
    if timed_out:
        waiting = client.executions.waiting_on(execution_id)
        live = sorted({j.job for j in client.jobs.list(execution_id) if not j.status.is_terminal})
        _stop_quietly(client, execution_id)
        execution = client.executions.get(execution_id)
    jobs = client.jobs.list(execution_id)
    actions = client.executions.actions(execution_id)
    if timed_out:
        code = EXIT_TIMEOUT
    elif execution.status is ExecutionStatus.FINISHED:
        code = 0
    else:
        code = EXIT_FAILED
    if json_output:
        print_json(
            {
                "execution": execution_dict(execution),
                "jobs": [job_dict(j) for j in jobs],
                "actions": [action_dict(a) for a in actions],
                "waiting_on": waiting,
                "still_running": live,
                "timed_out": timed_out,
                "exit_code": code,
            }
        )
        return code
    for part in show_execution(execution, jobs, actions, {}, plan_jobs):
        stdout.print(part)
    from rich.text import Text

    if timed_out:
        stderr.print(
            f"[bold red]timed out[/] after {timeout:g} s with the execution still running; "
            f"stopped execution {execution_id}"
        )
        for name in live:
            stderr.print(Text(f"  {name} was still running"))
        for line in waiting_lines(waiting):
            stderr.print(Text("  " + line))
    for job in jobs:
        if job.status.value == "FAILED":
            error = (job.error or "").strip().splitlines()
            stderr.print(
                Text(
                    f"job {job.job} attempt {job.attempt} FAILED"
                    + (f": {error[-1]}" if error else "")
                    + f" (log: tideflow job logs {execution_id} {job.job} "
                    f"--attempt {job.attempt})"
                )
            )
    return code
