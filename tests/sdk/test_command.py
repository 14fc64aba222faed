"""``tide.command``: the node it declares, what compiles, and the problems compile reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tideflow as tide
from tideflow.compiler.check import check_plan
from tideflow.compiler.plan import WorkflowPlan
from tideflow.domain import NodeKind
from tideflow.domain.command import placeholder_values, placeholders, render, render_command
from tideflow.domain.events import Event
from tideflow.errors import InvalidArgumentError


def test_a_command_is_a_node_of_its_own_kind_holding_argv_and_env() -> None:
    with tide.workflow("w") as wf, tide.job("prepare"):
        result = tide.command(["bash", Path("prepare.sh"), "{date}"], env={"MODE": "{mode}"})
    assert result is None
    (node,) = wf.graph.nodes
    assert (node.name, node.kind, node.job) == ("command_1", NodeKind.COMMAND, "prepare")
    assert node.config == {"argv": ["bash", "prepare.sh", "{date}"], "env": {"MODE": "{mode}"}}
    assert node.processor is None
    assert node.location is not None
    assert "test_command.py:" in node.location


def test_commands_compile_to_python_jobs_that_pass_the_server_checks() -> None:
    with tide.workflow("w") as wf:
        with tide.job("prepare", retries=2):
            tide.command(["bash", "prepare.sh", "{date}"], name="prep")
        with tide.job("remote", platform="ray"):
            tide.command(["python", "-c", "print('hi')"])
        tide.command(["echo", "{trigger.value}", "{{literal}}"], name="shout")
        wf.after("shout", "prepare")
    plan = tide.compile(wf)

    assert [(job.name, job.engine, job.platform) for job in plan.jobs] == [
        ("prepare", "python", "local"),
        ("remote", "python", "ray"),
        ("shout", "python", "local"),
    ]
    assert plan.job("prepare").nodes[0].config == {"argv": ["bash", "prepare.sh", "{date}"]}
    assert plan.payloads == {}
    read_back = WorkflowPlan.from_json(plan.to_json())
    assert read_back == plan
    assert check_plan(read_back) is read_back


BAD: dict[str, tuple[Any, dict[str, Any], str]] = {
    "one string": ("bash prepare.sh", {}, "argv must be a list of strings such as"),
    "empty": ([], {}, "argv must be a non-empty list of strings, got []"),
    "not a list": (None, {}, "argv must be a non-empty list of strings, got None"),
    "empty program": (["", "x"], {}, "argv[0] (the program) must not be empty"),
    "not a string": (["echo", 3], {}, "argv[1] must be a string, got 3"),
    "nul": (["echo", "a\x00b"], {}, "argv[1] holds a NUL character"),
    "unmatched brace": (["echo", "{date"], {}, "argv[1] '{date': expected '}' before end"),
    "format spec": (["echo", "{n:>3}"], {}, "placeholder {n:>3} takes no conversion or format"),
    "index": (["echo", "{a[0]}"], {}, "placeholder {a[0]} is not a param name"),
    "empty placeholder": (["echo", "{}"], {}, "placeholder {} is not a param name"),
    "env name": (["true"], {"env": {"A-B": "x"}}, "env name 'A-B' is not valid"),
    "env value": (["true"], {"env": {"A": 1}}, "env['A'] must be a string, got 1"),
    "env template": (["true"], {"env": {"A": "{a b}"}}, "env['A'] '{a b}': placeholder {a b}"),
    "env not a mapping": (["true"], {"env": ["A=1"]}, "env must be a mapping of names"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_argv_or_env_is_a_graph_error_naming_the_node(case: str) -> None:
    argv, extra, expected = BAD[case]
    with tide.workflow("w") as wf, tide.job("prepare"):
        tide.command(argv, name="prep", **extra)
    with pytest.raises(tide.GraphError) as caught:
        tide.compile(wf)
    assert expected in str(caught.value)
    assert "job 'prepare', node 'prep'" in str(caught.value)


def test_a_command_shares_its_job_with_nothing_and_runs_on_the_python_engine() -> None:
    with tide.workflow("w") as wf:
        with tide.job("mixed"):
            tide.command(["true"], name="cmd")
            tide.read_dataset("d", processor=lambda ctx, inputs: 1, name="reader")
        with tide.job("on_flink", engine="flink"):
            tide.command(["true"], name="cmd2")
        with tide.job("on_spark", platform="spark"):
            tide.command(["true"], name="cmd3")
    with pytest.raises(tide.GraphError) as caught:
        tide.compile(wf)
    text = str(caught.value)
    assert (
        "job 'mixed', node 'cmd': a command is its job's only node, but job 'mixed' also holds "
        "'reader': declare it in a job of its own" in text
    )
    assert "node 'cmd2': a command runs in a python job (its runtime starts the program), " in text
    assert "not on engine 'flink'" in text
    assert "node 'cmd3': a command job runs on platform 'local' or 'ray', not 'spark'" in text


def test_command_outside_a_workflow_is_an_error() -> None:
    with pytest.raises(tide.GraphError, match=r"tide.command\(\) must be called inside"):
        tide.command(["true"])


def test_templates_fill_in_params_and_the_newest_trigger() -> None:
    first = Event(key="a", value="old", event_type="GO", sender="s", namespace="p", offset=4)
    newest = Event(key="b", value="new", event_type="GO", sender="s", namespace="p", offset=9)
    values = placeholder_values({"date": "2024-05-01", "n": 3, "on": True}, (first, newest))

    argv, env = render_command(
        {
            "argv": ["run", "{date}", "{n}/{on}", "{trigger.value}@{trigger.offset}", "{{x}}"],
            "env": {"KEY": "{trigger.key}"},
        },
        values,
    )

    assert argv == ["run", "2024-05-01", "3/true", "new@9", "{x}"]
    assert env == {"KEY": "b"}
    assert placeholders("a {b} {{c}} {trigger.value}") == ["b", "trigger.value"]
    assert render("plain", {}) == "plain"


def test_missing_placeholders_are_named_together() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        render_command({"argv": ["run", "{date}", "{trigger.value}"]}, {"n": "1"})
    assert str(caught.value).startswith(
        "the command names {date}, {trigger.value}, which the execution does not have "
        "(params and trigger fields: n)"
    )
