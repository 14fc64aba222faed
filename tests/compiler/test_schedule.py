"""``wf.schedule``: in the plan JSON, and refused at compile and on the server when it cannot tick."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

import tideflow as tide
from tideflow.compiler import WorkflowPlan
from tideflow.compiler.check import check_plan
from tideflow.domain.schedule import Schedule
from tideflow.errors import GraphError, InvalidArgumentError


def noop(ctx, inputs):
    return None


def flow() -> tide.Workflow:
    with tide.workflow("flow") as wf, tide.job("a"):
        tide.user_node(processor=noop, name="n")
    return wf


def test_schedule_is_in_the_plan_and_reads_back() -> None:
    wf = flow()
    wf.schedule(interval=timedelta(hours=1), catchup=True)
    plan = tide.compile(wf)
    assert plan.schedule is not None
    assert plan.schedule.interval_seconds == 3600
    assert plan.schedule.catchup is True
    assert plan.schedule.location is not None
    assert "test_schedule.py:" in plan.schedule.location
    assert WorkflowPlan.from_json(plan.to_json()) == plan
    assert json.loads(plan.to_json())["schedule"]["interval_seconds"] == 3600


def test_a_plan_without_schedule_has_none() -> None:
    plan = tide.compile(flow())
    data = json.loads(plan.to_json())
    assert "schedule" not in data  # older plans read the same
    assert WorkflowPlan.from_json(plan.to_json()).schedule is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "0 0 31 2 *"}, "schedule: cron '0 0 31 2 \\*' never fires"),
        ({"cron": "0 * *"}, "schedule: cron '0 \\* \\*' has 3 fields"),
        ({"cron": "0 * * * *", "timezone": "Mars/Phobos"}, "schedule: unknown timezone"),
        ({"interval": 0}, "schedule: interval must be a positive duration"),
        ({"interval": timedelta(seconds=-5)}, "schedule: interval must be a positive duration"),
        ({}, "schedule: give exactly one of cron= or interval="),
        ({"cron": "0 * * * *", "interval": 60}, "schedule: give exactly one of cron= or interval="),
    ],
)
def test_a_schedule_that_cannot_tick_is_refused_at_compile(
    kwargs: dict[str, object], message: str
) -> None:
    wf = flow()
    wf.schedule(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(GraphError, match=message):
        tide.compile(wf)


def test_a_timer_in_start_on_points_to_schedule() -> None:
    from tideflow.domain.rules import Periodic

    wf = flow()
    wf.start_on(Periodic(cron="0 * * * *"))  # type: ignore[arg-type]
    with pytest.raises(GraphError, match=r"start_on takes an event condition.*wf\.schedule"):
        tide.compile(wf)


def test_two_schedules_are_refused() -> None:
    wf = flow()
    wf.schedule(cron="0 * * * *")
    wf.schedule(interval=60)
    with pytest.raises(GraphError, match="a workflow has one schedule"):
        tide.compile(wf)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (Schedule(cron="0 0 31 2 *"), "schedule: cron '0 0 31 2 \\*' never fires"),
        (Schedule(interval_seconds=-1), "schedule: interval must be a positive duration"),
        (Schedule(cron="0 * * * *", timezone="Nowhere/Land"), "schedule: unknown timezone"),
        (Schedule(cron="0 * * * *", catchup="yes"), "schedule: catchup must be True or False"),  # type: ignore[arg-type]
    ],
)
def test_the_server_refuses_a_hand_made_plan_whose_schedule_cannot_tick(
    schedule: Schedule, message: str
) -> None:
    plan = replace(tide.compile(flow()), schedule=schedule)
    with pytest.raises(GraphError, match=message):
        check_plan(plan)


def test_a_malformed_schedule_in_plan_json_names_the_field() -> None:
    data = json.loads(tide.compile(flow()).to_json())
    data["schedule"] = {"cron": 5}
    with pytest.raises(InvalidArgumentError, match=r"schedule\.cron must be str or null"):
        WorkflowPlan.from_json(json.dumps(data))
    data["schedule"] = "hourly"
    with pytest.raises(InvalidArgumentError, match="schedule must be an object"):
        WorkflowPlan.from_json(json.dumps(data))
