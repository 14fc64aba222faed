"""``per_context=`` / ``once_per_context=``: the SDK shapes, the plan JSON (schema 3) and the
server-side checks of a hand-made plan's ``per_context`` (hostile input)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import tideflow as tide
from tideflow.compiler.check import check_plan
from tideflow.compiler.plan import SCHEMA_VERSION, WorkflowPlan
from tideflow.domain.contexts import (
    ALL_CONTEXTS,
    MAX_CONTEXTS_PER_EVENT,
    ContextFrom,
    ContextSource,
)
from tideflow.domain.events import Event
from tideflow.domain.limits import MAX_KEY_LENGTH


def plan_of(echo: Any, **options: Any) -> WorkflowPlan:
    with tide.workflow("hourly", **options) as wf, tide.job("report"):
        tide.user_node(processor=echo)
    wf.start_on(tide.EventMatch(key="hour_closed"))
    return tide.compile(wf)


@pytest.mark.parametrize(
    ("per_context", "expected"),
    [
        (True, ContextFrom(ContextSource.FIELD, "context")),
        (tide.context_from(field="hour"), ContextFrom(ContextSource.FIELD, "hour")),
        (tide.context_from(key=True), ContextFrom(ContextSource.KEY, None)),
        (tide.context_from(value=True), ContextFrom(ContextSource.VALUE, None)),
    ],
    ids=["true", "field", "key", "value"],
)
def test_each_shape_compiles_and_round_trips_through_json(
    echo: Any, per_context: Any, expected: ContextFrom
) -> None:
    plan = plan_of(echo, per_context=per_context)
    assert plan.per_context == expected
    data = json.loads(plan.to_json())
    assert data["schema_version"] == SCHEMA_VERSION == 3
    assert data["per_context"] == {
        "source": expected.source.value,
        "field": expected.field,
        "once": False,
    }
    assert WorkflowPlan.from_json(plan.to_json()) == plan
    once = plan_of(echo, per_context=per_context, once_per_context=True)
    assert once.per_context == ContextFrom(expected.source, expected.field, once=True)
    assert WorkflowPlan.from_json(once.to_json()) == once


def test_a_shared_workflow_has_no_per_context(echo: Any) -> None:
    plan = plan_of(echo)
    assert plan.per_context is None
    assert json.loads(plan.to_json())["per_context"] is None


@pytest.mark.parametrize("old", [1, 2])
def test_an_older_plans_boolean_reads_as_before(echo: Any, old: int) -> None:
    data = json.loads(plan_of(echo).to_json())
    data["schema_version"] = old
    data["per_context"] = True
    assert WorkflowPlan.from_dict(data).per_context == ContextFrom()
    data["per_context"] = False
    assert WorkflowPlan.from_dict(data).per_context is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of"),
        ({"field": "hour", "key": True}, "exactly one of"),
        ({"key": True, "value": True}, "exactly one of"),
        ({"key": "yes"}, "exactly one of"),
    ],
)
def test_context_from_takes_exactly_one_source(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(tide.GraphError, match=match):
        tide.context_from(**kwargs)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"per_context": "hour"}, "per_context must be True, False or tide.context_from"),
        ({"once_per_context": True}, "once_per_context needs per_context"),
        ({"per_context": True, "once_per_context": "yes"}, "once_per_context must be True"),
        ({"per_context": tide.context_from(field="")}, "per_context field must be a non-empty"),
        (
            {"per_context": tide.context_from(field="execution_id")},
            "'execution_id' cannot name contexts",
        ),
    ],
    ids=["a string", "once alone", "once not bool", "empty field", "execution_id"],
)
def test_sdk_mistakes_are_graph_errors_naming_the_setting(
    echo: Any, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(tide.GraphError, match=match):
        plan_of(echo, **options)


def hostile(echo: Any, per_context: Any) -> str:
    data = json.loads(plan_of(echo, per_context=tide.context_from(field="hour")).to_json())
    data["per_context"] = per_context
    return json.dumps(data)


@pytest.mark.parametrize(
    ("per_context", "match"),
    [
        (True, r"per_context must be dict or null, got bool"),
        ([], r"per_context must be dict or null, got list"),
        ({"field": "hour"}, r"per_context.source is missing"),
        ({"source": 3, "field": "hour"}, r"per_context.source must be str"),
        ({"source": "../etc", "field": None}, r"per_context.source '../etc' is not one of"),
        ({"source": "field", "field": ["a"]}, r"per_context.field must be str or null"),
        ({"source": "field", "field": "h", "once": 1}, r"per_context.once must be bool"),
    ],
)
def test_a_malformed_per_context_is_invalid_argument_naming_the_field(
    echo: Any, per_context: Any, match: str
) -> None:
    with pytest.raises(tide.InvalidArgumentError, match=match) as caught:
        WorkflowPlan.from_json(hostile(echo, per_context))
    assert caught.value.field is not None
    assert caught.value.field.startswith("per_context")


@pytest.mark.parametrize(
    ("per_context", "match"),
    [
        ({"source": "field", "field": None}, "per_context field must be a non-empty name"),
        ({"source": "field", "field": "x" * 300}, "per_context field must be a non-empty name"),
        ({"source": "field", "field": "h\x00"}, "must not contain NUL"),
        ({"source": "field", "field": "execution_id"}, "cannot name contexts"),
        ({"source": "key", "field": "hour"}, "from the event key takes no field"),
        ({"source": "value", "field": "hour"}, "from the event value takes no field"),
    ],
)
def test_the_server_checks_refuse_a_wrong_per_context(
    echo: Any, per_context: Any, match: str
) -> None:
    plan = WorkflowPlan.from_json(hostile(echo, per_context))
    with pytest.raises(tide.GraphError, match=match) as caught:
        check_plan(plan, engines=["python"], platforms=["local"])
    assert isinstance(caught.value, tide.InvalidArgumentError)


def event(key: str = "k", value: str = "v", **context: Any) -> Event:
    return Event(key=key, value=value, context=context)


@pytest.mark.parametrize(
    ("source", "sent", "expected"),
    [
        (ContextFrom(), event(context="c1"), ("c1",)),
        (ContextFrom(), event(hour="h1"), ()),
        (ContextFrom(field="hour"), event(hour="h1"), ("h1",)),
        (ContextFrom(field="hour"), event(hour=13), ("13",)),
        (ContextFrom(field="hour"), event(hour=["h1", "h2", "h1", 7]), ("h1", "h2", "7")),
        (ContextFrom(field="hour"), event(hour=["h1", "*"]), (ALL_CONTEXTS,)),
        (ContextFrom(field="hour"), event(hour=True), ()),
        (ContextFrom(field="hour"), event(hour={"a": 1}), ()),
        (ContextFrom(field="hour"), event(hour=["", "x" * (MAX_KEY_LENGTH + 1), None]), ()),
        (ContextFrom(ContextSource.KEY, None), event(key="eu-west"), ("eu-west",)),
        (ContextFrom(ContextSource.VALUE, None), event(value="customer-7"), ("customer-7",)),
        (ContextFrom(ContextSource.VALUE, None), event(value=""), ()),
    ],
)
def test_the_contexts_an_event_names(
    source: ContextFrom, sent: Event, expected: tuple[str, ...]
) -> None:
    assert source.contexts(sent) == expected


def test_an_event_names_at_most_a_bounded_number_of_contexts() -> None:
    many = event(hour=[f"h{i}" for i in range(MAX_CONTEXTS_PER_EVENT + 50)])
    assert len(ContextFrom(field="hour").contexts(many)) == MAX_CONTEXTS_PER_EVENT


def test_workflow_compile_and_show_say_where_contexts_come_from(echo: Any) -> None:
    from rich.console import Console

    from tideflow.cli.workflow import plan_tree

    plan = plan_of(echo, per_context=tide.context_from(field="hour"), once_per_context=True)
    console = Console(record=True, width=200)
    console.print(plan_tree(plan))
    assert "(per context: context field 'hour', once per context)" in console.export_text()
