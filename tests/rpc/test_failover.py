"""A client given several members uses one and moves to the next when it goes away.

``tide.connect("grpc://a:50051,b:50051")``: one gRPC channel over both addresses
(``pick_first``), so a call that fails with UNAVAILABLE when its member dies is retried on the
next by the channel's ordinary retries, and a ``Listen`` stream reopens there after its last
offset. Exercised on two real server processes sharing one PostgreSQL database.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

import tideflow as tide
from tests.databases import server_database
from tideflow.client.remote.channel import MAX_ADDRESSES, parse_addresses, parse_target
from tideflow.errors import InvalidArgumentError
from tideflow.testing import TideflowTestServer, wait_until


def test_one_address_is_the_target_it_always_was() -> None:
    assert parse_target("grpc://127.0.0.1:50051") == "127.0.0.1:50051"
    assert parse_target("grpc://localhost:50051/") == "localhost:50051"
    assert parse_target("grpc://[::1]:50051") == "[::1]:50051"


def test_several_addresses_are_one_target_of_resolved_members() -> None:
    assert parse_target("grpc://127.0.0.1:1,127.0.0.2:2") == "ipv4:127.0.0.1:1,127.0.0.2:2"
    assert parse_target("grpc://localhost:7,127.0.0.1:8").startswith(("ipv4:", "ipv6:"))
    assert parse_addresses("grpcs://a:1, b:2") == [("a", 1), ("b", 2)]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("grpc://127.0.0.1:1,127.0.0.1:1", "twice"),
        ("grpc://127.0.0.1:1,127.0.0.1", "needs a host and a port"),
        ("grpc://127.0.0.1:1,:2", "needs a host and a port"),
        ("grpc://127.0.0.1:0", "needs a host and a port"),
        ("grpc://127.0.0.1:65536", "needs a host and a port"),
        ("grpc://127.0.0.1:1,,127.0.0.1:2", "needs a host and a port"),
        ("grpc://127.0.0.1:1,[::1]:2", "mixes IPv4 and IPv6"),
        ("grpc://no-such-host.invalid:1,127.0.0.1:2", "does not resolve"),
        (
            "grpc://" + ",".join(f"127.0.0.1:{p}" for p in range(1, MAX_ADDRESSES + 2)),
            f"at most {MAX_ADDRESSES}",
        ),
        ("http://127.0.0.1:1,127.0.0.1:2", "not a server URL"),
    ],
)
def test_bad_member_lists_are_refused_naming_the_problem(url: str, says: str) -> None:
    with pytest.raises(InvalidArgumentError, match=says) as raised:
        parse_target(url)
    assert raised.value.field == "server"


def served_sends(server: TideflowTestServer) -> float:
    """How many SendEvent calls ``server`` answered (its /metrics)."""
    text = httpx.get(f"{server.http_url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("tideflow_rpc_calls_total") and '/SendEvent"' in line
    )


@pytest.mark.postgres
def test_a_client_of_two_members_fails_over_and_its_listener_resumes_without_gap_or_repeat() -> (
    None
):
    with (
        server_database("postgres") as db_url,
        TideflowTestServer(db_url=db_url) as first,
        TideflowTestServer(db_url=db_url) as second,
    ):
        members = f"{first.url},{second.url.removeprefix('grpc://')}"
        with tide.connect(members, project="failover") as client:
            sent = [client.events.send("k", "1")]
            seen: list[Any] = []
            listener = client.events.listen(keys=["k"], after_offset=0)

            def follow() -> None:
                for event in listener:
                    seen.append(event)

            reader = threading.Thread(target=follow, daemon=True)
            reader.start()
            wait_until(lambda: len(seen) == 1, timeout=30, what="the first event")
            assert served_sends(first) == 1  # the client is on the first member ...
            assert served_sends(second) == 0
            first.kill()  # kill -9 the member both the calls and the stream use
            sent += [client.events.send("k", str(n)) for n in range(2, 6)]
            wait_until(lambda: len(seen) >= 5, timeout=60, what="the events sent after the kill")
            listener.close()
            reader.join(10)
        assert served_sends(second) >= 4  # ... and moved to the second when it died
        assert [e.value for e in seen] == ["1", "2", "3", "4", "5"]
        assert [e.offset for e in seen] == [e.offset for e in sent]  # no gap, no repeat
        with second.client("failover") as direct:  # every acknowledged send is stored
            assert [e.value for e in direct.events.list(key="k").items] == [
                "1",
                "2",
                "3",
                "4",
                "5",
            ]
