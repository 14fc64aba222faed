"""Retried mutating calls are applied once; many client threads at once see no errors."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest

from tideflow.client import Client
from tideflow.client.remote.channel import RetryPolicy, RpcChannel, new_request_id
from tideflow.domain.events import Event
from tideflow.errors import InvalidArgumentError
from tideflow.rpc.v1 import common_pb2 as pb
from tideflow.rpc.v1 import model_center_pb2 as mc
from tideflow.rpc.v1 import model_center_pb2_grpc as mcg
from tideflow.rpc.v1 import notification_pb2 as n
from tideflow.rpc.v1 import notification_pb2_grpc as ng
from tideflow.testing import TideflowTestServer


@pytest.fixture
def channel(server: TideflowTestServer, client: Client) -> Iterator[RpcChannel]:
    opened = RpcChannel(server.url, project=client.project)
    yield opened
    opened.close()


def test_a_retried_create_version_is_applied_once(client: Client, channel: RpcChannel) -> None:
    client.models.create("ctr")
    stub = mcg.ModelCenterServiceStub(channel.channel)
    request = mc.CreateModelVersionRequest(model="ctr", uri="s3://m/1")
    metadata = channel.metadata(mutating=True)  # one logical call: its retries share the id
    first = stub.CreateModelVersion(request, metadata=metadata, timeout=10)
    retried = stub.CreateModelVersion(request, metadata=metadata, timeout=10)
    assert retried == first
    assert first.version.version == 1
    assert [v.version for v in client.models.list_versions("ctr")] == [1]
    assert len(client.events.list(key="ctr")) == 1
    # A new logical call (a fresh id) is a new version.
    again = stub.CreateModelVersion(request, metadata=channel.metadata(mutating=True), timeout=10)
    assert again.version.version == 2


def test_racing_retries_of_a_send_store_one_event(client: Client, channel: RpcChannel) -> None:
    stub = ng.NotificationServiceStub(channel.channel)
    request = n.SendEventRequest(event=pb.Event(key="k", value="once", event_type="UNDEFINED"))
    metadata = channel.metadata(mutating=True)
    responses: list[n.SendEventResponse] = []
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def send() -> None:
        try:
            start.wait(10)
            responses.append(stub.SendEvent(request, metadata=metadata, timeout=10))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert len(responses) == 8
    assert all(r == responses[0] for r in responses)
    assert [e.value for e in client.events.list(key="k")] == ["once"]


def test_a_request_id_is_bound_to_its_method(client: Client, channel: RpcChannel) -> None:
    metadata = channel.metadata(mutating=True)
    events = ng.NotificationServiceStub(channel.channel)
    events.SendEvent(
        n.SendEventRequest(event=pb.Event(key="k", event_type="UNDEFINED")),
        metadata=metadata,
        timeout=10,
    )
    models = mcg.ModelCenterServiceStub(channel.channel)
    with pytest.raises(grpc.RpcError) as caught:
        models.CreateModel(mc.CreateModelRequest(name="m"), metadata=metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "already used for /tideflow.v1.NotificationService/SendEvent" in (
        caught.value.details() or ""
    )


THREADS = 16
CALLS = 200


def test_many_client_threads_see_no_errors(server: TideflowTestServer, client: Client) -> None:
    client.datasets.register("clicks")
    client.models.create("ctr")
    client.models.create_version("ctr")
    errors: list[BaseException] = []
    sent: list[int] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        try:
            with server.client(client.project) as mine:
                for i in range(CALLS):
                    match i % 4:
                        case 0:
                            offset = mine.events.send(f"w{worker}", str(i)).offset
                            with lock:
                                sent.append(offset)
                        case 1:
                            assert mine.datasets.get("clicks").version == 1
                        case 2:
                            assert mine.models.get_version("ctr", version=1).version == 1
                        case _:
                            mine.metrics.log("loss", float(i), step=i)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert len(set(sent)) == THREADS * CALLS // 4
    assert len(client.events.list(limit=10_000, after_offset=min(sent) - 1)) == len(sent)
    assert len(client.metrics.list(name="loss", limit=1000)) == THREADS * CALLS // 4  # 800


def test_a_retry_after_a_server_restart_is_answered_from_the_store(tmp_path) -> None:
    """The request id is committed with the change; the response survives a restart."""
    from tideflow.rpc.call import ATTEMPT_KEY

    with TideflowTestServer(home=tmp_path / "home") as server, server.client("dedup") as client:
        client.models.create("ctr")
        with _channel(server) as channel:
            stub = mcg.ModelCenterServiceStub(channel.channel)
            request = mc.CreateModelVersionRequest(model="ctr", uri="s3://m/1")
            metadata = channel.metadata(mutating=True)
            first = stub.CreateModelVersion(request, metadata=metadata, timeout=10)
        server.restart()
        with _channel(server) as channel:
            stub = mcg.ModelCenterServiceStub(channel.channel)
            retried = stub.CreateModelVersion(
                request, metadata=(*metadata, (ATTEMPT_KEY, "2")), timeout=10
            )
        assert retried == first
        with server.client("dedup") as fresh:
            assert [v.version for v in fresh.models.list_versions("ctr")] == [1]


def test_a_claimed_request_without_a_response_is_not_applied_again(store_url: str) -> None:
    """What a crash between commit and storing the response leaves: the marker alone."""
    from tideflow.store import Store
    from tideflow.store.request_log import RequestClaim, RequestKey, current_claim, find_response

    key = RequestKey("crash", 0, "r-crash-1")
    with Store.open(store_url) as store:
        token = current_claim.set(RequestClaim(key, "/tideflow.v1.X/Do"))
        try:
            with store.transaction():
                pass  # the call's change would be here
        finally:
            current_claim.reset(token)
        assert store.run(lambda c: find_response(c, key), write=False) == (
            "/tideflow.v1.X/Do",
            None,
        )
        # Only its caller finds it: another project, or a token, with the same id does not.
        for other in (RequestKey("other", 0, "r-crash-1"), RequestKey("crash", 7, "r-crash-1")):
            assert store.run(lambda c, k=other: find_response(c, k), write=False) is None


@contextmanager
def _channel(server: TideflowTestServer) -> Iterator[RpcChannel]:
    opened = RpcChannel(server.url, project="dedup")
    try:
        yield opened
    finally:
        opened.close()


def test_retries_outlast_the_channels_reconnect_backoff() -> None:
    # The channel waits up to 1 s between reconnects (channel.py options): a call's retries
    # must span longer, or a call right after a server restart fails while the server is up.
    for _ in range(20):
        assert sum(RetryPolicy().delays()) >= 2.5
    assert max(RetryPolicy().delays()) <= RetryPolicy().max_backoff


@pytest.mark.parametrize("seconds", [0.1, 2.5, 30.0, 120.0])
def test_a_lasting_policy_retries_for_at_least_its_time(seconds: float) -> None:
    # Jobs connect with RetryPolicy.lasting(120): their calls must ride over a server restart.
    policy = RetryPolicy.lasting(seconds)
    for _ in range(20):
        assert sum(policy.delays()) >= seconds
    assert sum(RetryPolicy.lasting(seconds).delays()) < 2 * seconds + 2 * policy.max_backoff


def test_a_lasting_policy_needs_a_positive_time() -> None:
    with pytest.raises(InvalidArgumentError, match="retry time"):
        RetryPolicy.lasting(0)


def test_sends_are_answered_compactly_yet_return_the_events_as_stored(
    client: Client, channel: RpcChannel
) -> None:
    """The server answers offsets and the commit time; the client rebuilds what was stored."""
    one = client.events.send("k", "v1", event_type="T", context={"a": 1})
    batch = client.events.send_many(
        [
            Event(
                key="k", value=f"b{i}", event_type="T", sender="s", context={"i": [i]} if i else {}
            )
            for i in range(3)
        ]
    )
    stored = {e.offset: e for e in client.events.list(after_offset=one.offset - 1).items}
    assert [one, *batch] == [stored[e.offset] for e in [one, *batch]]
    assert [e.offset for e in batch] == [one.offset + 1, one.offset + 2, one.offset + 3]
    # On the wire: no event echoed back, only the first offset and the commit time.
    stub = ng.NotificationServiceStub(channel.channel)
    answer = stub.SendEvents(
        n.SendEventsRequest(events=[pb.Event(key="k", value="w", event_type="T")] * 2),
        metadata=channel.metadata(mutating=True),
    )
    assert not answer.events
    assert answer.first_offset == batch[-1].offset + 1
    assert answer.HasField("create_time")
    # A known idempotency key gets the stored event back, whole, not a new offset.
    first = client.events.send("k", "once", idempotency_key="key-1")
    again = client.events.send("k", "other value", idempotency_key="key-1")
    assert again == first
    mixed = client.events.send_many(
        [
            Event(key="k", value="new", idempotency_key="key-2"),
            Event(key="k", value="ignored", idempotency_key="key-1"),
        ]
    )
    assert mixed[1] == first
    assert mixed[0].offset > first.offset
    assert mixed[0].value == "new"


def test_request_ids_are_unique_and_sort_by_time() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)  # fits the 64-character limit
    # An id of a later millisecond sorts after every id of an earlier one.
    last = new_request_id()
    stamp = int(last[:12], 16)
    while time.time_ns() // 1_000_000 <= stamp:  # into the next millisecond
        pass
    later = new_request_id()
    assert int(later[:12], 16) > stamp
    assert later > max(*ids, last)
