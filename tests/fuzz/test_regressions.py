"""What the fuzz suite found, each kept as a plain test of its own."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

import tideflow as tide
from tests.fuzz.conftest import FuzzServer
from tideflow.compiler import WorkflowPlan
from tideflow.compiler.check import check_plan
from tideflow.domain.checks import MAX_INTERVAL_SECONDS
from tideflow.domain.rules import Periodic
from tideflow.errors import FailedPreconditionError, GraphError, InvalidArgumentError
from tideflow.rpc import convert
from tideflow.rpc.v1 import common_pb2 as pb
from tideflow.rpc.v1 import metadata_pb2 as m
from tideflow.rpc.v1 import metadata_pb2_grpc as mg
from tideflow.rpc.v1 import notification_pb2 as n
from tideflow.rpc.v1 import notification_pb2_grpc as ng
from tideflow.rpc.v1 import scheduler_pb2 as s
from tideflow.rpc.v1 import scheduler_pb2_grpc as sg
from tideflow.scheduler.periodic import next_fire_after


@pytest.mark.parametrize(
    ("stamp", "shown"),
    [
        (Timestamp(nanos=-1), "seconds=0, nanos=-1"),
        (Timestamp(nanos=1_000_000_000), "nanos=1000000000"),
        (Timestamp(seconds=2**62), f"seconds={2**62}"),
        (Timestamp(seconds=-(2**62)), f"seconds={-(2**62)}"),
    ],
    ids=["negative-nanos", "nanos-overflow", "year-after-9999", "year-before-1"],
)
def test_an_invalid_timestamp_is_invalid_argument_naming_the_field(
    stamp: Timestamp, shown: str
) -> None:
    message = pb.Metric(name="auc", time=stamp)
    with pytest.raises(InvalidArgumentError, match=f"time is not a valid timestamp .*{shown}"):
        convert.from_timestamp(message, "time")


def test_listing_events_until_an_invalid_time_is_invalid_argument_not_internal(
    fuzz_server: FuzzServer,
) -> None:
    channel = fuzz_server.channel
    stub = ng.NotificationServiceStub(channel.channel)
    request = n.ListEventsRequest(filter=n.EventFilter(until=Timestamp(nanos=-1)))
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListEvents(request, metadata=channel.metadata(mutating=False), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "until is not a valid timestamp" in (caught.value.details() or "")


def test_a_metric_at_an_invalid_time_is_invalid_argument_not_internal(
    fuzz_server: FuzzServer,
) -> None:
    channel = fuzz_server.channel
    stub = mg.MetadataServiceStub(channel.channel)
    request = m.LogMetricRequest(name="auc", value=0.5, time=Timestamp(seconds=2**62))
    with pytest.raises(grpc.RpcError) as caught:
        stub.LogMetric(request, metadata=channel.metadata(mutating=True), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "time is not a valid timestamp" in (caught.value.details() or "")


@pytest.mark.parametrize("seconds", [1e12, 1e308])
def test_an_interval_of_millennia_is_refused_by_compile(seconds: float) -> None:
    with tide.workflow("w") as wf:
        with tide.job("a"):
            tide.read_dataset("d", processor=lambda ctx, inputs: inputs)
        wf.periodic("a", interval=timedelta(days=1))
    plan = tide.compile(wf).to_dict()
    plan["rules"][0]["condition"]["periodic"]["interval_seconds"] = seconds
    with pytest.raises(GraphError, match=re.escape(f"interval of {seconds!r} seconds never fires")):
        check_plan(WorkflowPlan.from_dict(plan))


def test_the_longest_interval_still_has_a_next_fire_time() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    fire = next_fire_after(Periodic(interval_seconds=MAX_INTERVAL_SECONDS), now)
    assert fire.year == 3023


def test_a_stored_interval_of_millennia_is_failed_precondition_not_overflow() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(FailedPreconditionError, match="has no next fire time before year 9999"):
        next_fire_after(Periodic(interval_seconds=1e12), now)
    with pytest.raises(FailedPreconditionError, match="has no next fire time before year 9999"):
        next_fire_after(Periodic(interval_seconds=1e308), now, previous=now)


@pytest.mark.parametrize("location", [[], {"file": "x"}, 3])
def test_a_rule_location_that_is_not_text_is_invalid_argument_not_internal(
    fuzz_server: FuzzServer, location: object
) -> None:
    with tide.workflow("w") as wf:
        with tide.job("a"):
            tide.read_dataset("d", processor=lambda ctx, inputs: inputs)
        wf.periodic("a", cron="0 * * * *")
    plan = tide.compile(wf).to_dict()
    rule = plan["rules"][0]
    rule["condition"]["periodic"]["cron"] = ""  # a problem about the rule, which carries
    rule["location"] = location  # its location: problems are hashed to deduplicate them
    expected = "malformed workflow plan: rules[0].location must be str or null"
    with pytest.raises(InvalidArgumentError, match=re.escape(expected)):
        WorkflowPlan.from_dict(plan)
    channel = fuzz_server.channel
    stub = sg.SchedulerServiceStub(channel.channel)
    request = s.SubmitWorkflowRequest(
        workflow="w", plan_json=json.dumps(plan), code_sha256="a" * 64, identity="a" * 64
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.SubmitWorkflow(request, metadata=channel.metadata(mutating=True), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expected in (caught.value.details() or "")
