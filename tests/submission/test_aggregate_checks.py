"""Aggregate conditions are checked by ``tide.compile`` and again by the server, naming the rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

import tideflow as tide
from tests.submission.test_plan_checks import base_plan, submit_raw
from tideflow.client import Client
from tideflow.client.remote.channel import RpcChannel
from tideflow.compiler.check import check_plan
from tideflow.compiler.plan import WorkflowPlan
from tideflow.errors import GraphError
from tideflow.testing import TideflowTestServer


def read(ctx: Any, inputs: Any) -> Any:
    return inputs


def aggregate(**changes: Any) -> tide.Aggregate:
    fields: dict[str, Any] = {
        "match": tide.EventMatch(key="samples"),
        "op": "sum",
        "over": tide.last(10),
        "threshold": 100,
    }
    fields.update(changes)
    return tide.Aggregate(**fields)


BAD = [
    ({"op": "median"}, "unknown Aggregate op 'median'; use one of count, sum, min, max, mean"),
    ({"compare": "=>"}, "unknown Aggregate compare '=>'"),
    ({"over": tide.last(0)}, "Aggregate over last(N) needs N from 1 to 10000, got 0"),
    ({"over": tide.last(10_001)}, "needs N from 1 to 10000, got 10001"),
    ({"over": tide.window(0)}, "Aggregate window must be a positive duration, got 0 seconds"),
    ({"over": 5}, "Aggregate over must be tide.last(N) or tide.window(duration), got 5"),
    ({"threshold": float("nan")}, "Aggregate threshold must be a finite number, got nan"),
    ({"threshold": "100"}, "Aggregate threshold must be a finite number, got '100'"),
    ({"match": tide.EventMatch(key="")}, "Aggregate match: EventMatch key must be a non-empty"),
]


@pytest.mark.parametrize(("change", "expected"), BAD)
def test_compile_refuses_a_bad_aggregate_naming_the_rule(
    change: dict[str, Any], expected: str
) -> None:
    with tide.workflow("agg") as wf:
        with tide.job("report"):
            tide.read_dataset("summary", processor=read)
        wf.on_events("report", tide.any_of(tide.EventMatch(key="now"), aggregate(**change)))
    with pytest.raises(GraphError, match="report") as caught:
        tide.compile(wf)
    assert expected in str(caught.value)
    assert [(p.workflow, p.job) for p in caught.value.problems] == [("agg", "report")]


def test_a_good_aggregate_compiles_and_round_trips() -> None:
    with tide.workflow("agg") as wf:
        with tide.job("report"):
            tide.read_dataset("summary", processor=read)
        condition = tide.all_of(
            aggregate(op="mean", over=tide.window(300), compare="<", threshold=0.5),
            tide.EventMatch(key="go"),
        )
        wf.on_events("report", condition)
    plan = tide.compile(wf)
    again = WorkflowPlan.from_json(plan.to_json())
    assert again.rules[-1].condition == condition
    assert check_plan(again) is again


def with_aggregate(body: dict[str, Any]) -> str:
    plan = base_plan()
    plan["rules"].append(
        {
            "job": "train",
            "condition": {"aggregate": body},
            "action": "START",
            "kind": "event",
            "upstreams": [],
            "location": None,
        }
    )
    return json.dumps(plan)


GOOD_BODY: dict[str, Any] = {
    "match": {"key": "s", "event_type": "*", "sender": "*", "value": None, "life": "once"},
    "op": "sum",
    "over": {"last": 10},
    "compare": ">=",
    "threshold": 100,
}


@pytest.fixture(scope="module")
def server() -> Iterator[TideflowTestServer]:
    with TideflowTestServer() as running:
        yield running


@pytest.fixture
def client(server: TideflowTestServer, project: str) -> Iterator[Client]:
    with server.client(project) as opened:
        yield opened


@pytest.fixture
def channel(server: TideflowTestServer, client: Client) -> Iterator[RpcChannel]:
    opened = RpcChannel(server.url, project=client.project)
    yield opened
    opened.close()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"over": {"last": 0}}, "Aggregate over last(N) needs N from 1 to 10000, got 0"),
        ({"over": {"window_seconds": -1}}, "Aggregate window must be a positive duration"),
        ({"threshold": float("inf")}, "Aggregate threshold must be a finite number, got inf"),
        ({"op": "median"}, "unknown Aggregate op 'median'"),
        ({"compare": "~"}, "unknown Aggregate compare '~'"),
    ],
)
def test_the_server_refuses_a_bad_aggregate(
    channel: RpcChannel, client: Client, change: dict[str, Any], expected: str
) -> None:
    error = submit_raw(channel, with_aggregate({**GOOD_BODY, **change}))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    details = error.details() or ""
    assert expected in details, details
    assert "train" in details
    assert client.workflows.list() == []


def test_the_server_accepts_a_good_aggregate_as_far_as_its_package(channel: RpcChannel) -> None:
    error = submit_raw(channel, with_aggregate(GOOD_BODY))
    assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
    assert "was not uploaded" in (error.details() or "")
