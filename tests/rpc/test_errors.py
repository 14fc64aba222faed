"""Errors over the wire: each raised on the server arrives as the same class with its fields;
malformed requests get INVALID_ARGUMENT and the server keeps serving."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from tideflow.client import Client, connect
from tideflow.client.remote.channel import RpcChannel
from tideflow.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    IllegalTransitionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    TideflowError,
    UnavailableError,
)
from tideflow.rpc.v1 import common_pb2 as pb
from tideflow.rpc.v1 import metadata_pb2 as m
from tideflow.rpc.v1 import metadata_pb2_grpc as mg
from tideflow.rpc.v1 import model_center_pb2 as mc
from tideflow.rpc.v1 import model_center_pb2_grpc as mcg
from tideflow.rpc.v1 import notification_pb2 as n
from tideflow.rpc.v1 import notification_pb2_grpc as ng
from tideflow.testing import TideflowTestServer


@pytest.fixture
def local(store_url: str, client: Client) -> Iterator[Client]:
    """An in-process client on the server's own store, in the same project."""
    with connect(store_url, project=client.project) as opened:
        yield opened


def _setup(c: Client) -> None:
    c.datasets.register("clicks")
    c.models.create("ctr")
    c.models.create_version("ctr")


SCENARIOS: dict[str, tuple[type[TideflowError], Callable[[Client], Any]]] = {
    "unknown dataset": (NotFoundError, lambda c: c.datasets.get("nope")),
    "unknown version": (NotFoundError, lambda c: c.models.get_version("ctr", version=9)),
    "duplicate dataset": (AlreadyExistsError, lambda c: c.datasets.register("clicks")),
    "illegal transition": (
        IllegalTransitionError,
        lambda c: c.models.set_status("ctr", 1, "DEPRECATED"),
    ),
    "bad name": (InvalidArgumentError, lambda c: c.artifacts.register("no spaces allowed")),
    "bad limit": (InvalidArgumentError, lambda c: c.events.list(limit=100_000)),
    "nothing to roll back": (FailedPreconditionError, lambda c: c.models.rollback("ctr")),
    "unknown model": (NotFoundError, lambda c: c.models.get("nope")),
    "unknown workflow": (NotFoundError, lambda c: c.workflows.get("nope")),
    "delete an unknown workflow": (NotFoundError, lambda c: c.workflows.delete("nope")),
    "unknown snapshot": (
        NotFoundError,
        lambda c: c.services.workflows.get_snapshot(c.project, 987_654),
    ),
    "package of an unknown snapshot": (
        NotFoundError,
        lambda c: c.services.workflows.get_package(c.project, 987_654),
    ),
    "lineage of an unknown job execution": (
        NotFoundError,
        lambda c: c.lineage.record(987_654, inputs=["clicks"], outputs=[]),
    ),
    "bad model name": (InvalidArgumentError, lambda c: c.models.create("x" * 300)),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_errors_arrive_as_the_class_raised_with_its_fields(
    client: Client, local: Client, scenario: str
) -> None:
    expected, action = SCENARIOS[scenario]
    _setup(local)
    with pytest.raises(expected) as in_process:
        action(local)
    with pytest.raises(expected) as remote:
        action(client)
    assert type(remote.value) is type(in_process.value)
    assert str(remote.value) == str(in_process.value)
    assert vars(remote.value) == vars(in_process.value)


def test_structured_fields_survive(client: Client) -> None:
    client.models.create("ctr")
    client.models.create_version("ctr")
    with pytest.raises(NotFoundError) as missing:
        client.datasets.get("nope")
    assert (missing.value.entity, missing.value.key) == ("dataset", "nope")
    with pytest.raises(IllegalTransitionError) as illegal:
        client.models.set_status("ctr", 1, "DEPRECATED")
    assert (illegal.value.current, illegal.value.requested) == ("GENERATED", "DEPRECATED")
    with pytest.raises(InvalidArgumentError) as invalid:
        client.datasets.register("clicks", format="f" * 1000)
    assert invalid.value.field == "format"
    with pytest.raises(NotFoundError, match="workflow 'nope' not found") as workflow:
        client.workflows.get("nope")
    assert (workflow.value.entity, workflow.value.key) == ("workflow", "nope")
    with pytest.raises(NotFoundError, match="snapshot 987654 not found") as snapshot:
        client.services.workflows.get_snapshot(client.project, 987_654)
    assert (snapshot.value.entity, snapshot.value.key) == ("snapshot", 987_654)


def test_another_projects_name_is_refused(client: Client) -> None:
    with pytest.raises(PermissionDeniedError, match="scoped to project"):
        client.services.projects.get_project(f"{client.project}_other")
    assert client.services.projects.get_project(client.project).name == client.project


def test_an_unreachable_server_is_unavailable(server: TideflowTestServer) -> None:
    with TideflowTestServer() as doomed:
        url = doomed.url
    with pytest.raises(UnavailableError, match="unavailable"):
        connect(url, project="p")


@pytest.fixture
def channel(server: TideflowTestServer, client: Client) -> Iterator[RpcChannel]:
    opened = RpcChannel(server.url, project=client.project)
    yield opened
    opened.close()


def _raw_call(channel: RpcChannel, method: Callable[..., Any], request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        method(request, metadata=channel.metadata(mutating=True), timeout=10)
    return caught.value


def test_malformed_requests_are_invalid_arguments(client: Client, channel: RpcChannel) -> None:
    client.models.create("ctr")
    client.models.create_version("ctr")
    models = mcg.ModelCenterServiceStub(channel.channel)
    metadata = mg.MetadataServiceStub(channel.channel)
    events = ng.NotificationServiceStub(channel.channel)
    cases = [
        (
            models.SetModelVersionStatus,
            mc.SetModelVersionStatusRequest(model="ctr", version=1, status=99),
            "unknown model_status 99",
        ),
        (
            metadata.RegisterDataset,
            m.RegisterDatasetRequest(name="d", schema_json="{not json"),
            "schema is not valid JSON",
        ),
        (models.CreateModel, mc.CreateModelRequest(name="x" * 100_000), "model name"),
        (
            metadata.RecordLineage,
            m.RecordLineageRequest(
                job_execution_id=1, inputs=[pb.LineageRef(kind=42, name="clicks")]
            ),
            "unknown lineage_kind 42",
        ),
        (
            events.SendEvent,
            n.SendEventRequest(event=pb.Event(key="k", value="v", context_json="[1]")),
            "event context must be a JSON object",
        ),
        (
            metadata.LogMetric,
            m.LogMetricRequest(name="auc", value=float("nan")),
            "must be a finite number",
        ),
    ]
    for method, request, message in cases:
        error = _raw_call(channel, method, request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (request, error.details())
        assert message in (error.details() or ""), error.details()
    stream = events.Listen(
        n.ListenRequest(keepalive_seconds=-1), metadata=channel.metadata(mutating=False)
    )
    with pytest.raises(grpc.RpcError) as bad_listen:
        next(stream)
    assert bad_listen.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "keepalive_seconds" in (bad_listen.value.details() or "")
    # Bytes that are no message at all: gRPC refuses them before any handler runs.
    garbage = channel.channel.unary_unary("/tideflow.v1.MetadataService/GetDataset")
    with pytest.raises(grpc.RpcError) as undecodable:
        garbage(b"\xff\xff\xff\xff", metadata=channel.metadata(mutating=False), timeout=10)
    assert undecodable.value.code() != grpc.StatusCode.OK
    # ... and the server keeps serving, with nothing written by the refused calls.
    assert client.models.get_version("ctr", version=1).status == "GENERATED"
    assert [d.name for d in client.datasets.list()] == []
    assert [e.key for e in client.events.list()] == ["ctr"]
