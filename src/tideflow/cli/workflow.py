"""``tideflow workflow ...``: compile (and, as the server lands, submit and run) workflows."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.tree import Tree

from tideflow.cli.output import fail, stderr, stdout

workflow_app = typer.Typer(help="Compile, submit and run workflows.", no_args_is_help=True)


@workflow_app.command("compile")
def compile_command(
    file: Path = typer.Argument(..., help="A Python file that declares workflows."),
    workflow: str | None = typer.Option(None, "--workflow", "-w", help="Only this workflow."),
    json_output: bool = typer.Option(
        False, "--json", help="Print each plan as one line of JSON (payloads included)."
    ),
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
            typer.echo(plan.to_json())
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
    if plan.per_context:
        title += " (per context)"
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
