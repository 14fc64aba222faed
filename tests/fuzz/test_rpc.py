"""Every RPC, fuzzed through its raw generated stub: a client's mistake is never INTERNAL.

The RPCs come from the generated descriptors (:func:`tests.fuzz.strategies.rpc_methods`), so
a new one is fuzzed the day it lands. Each example is one call with a request built from the
input message's descriptor, a project header and maybe a malformed ``authorization``; client
streams get a few messages, server streams are read for a moment and then dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import FuzzServer
from tests.fuzz.strategies import (
    AUTHORIZATIONS,
    PROJECTS,
    Rpc,
    fuzz_settings,
    message_strategy,
    rpc_methods,
)
from tideflow.rpc.call import AUTHORIZATION_KEY, PROJECT_KEY, REQUEST_ID_KEY, is_mutating

RPCS = rpc_methods()
UNARY_TIMEOUT = 30.0
STREAM_SECONDS = 0.5
"""How long a server stream is read: a ``Listen`` with nothing to send waits for events."""
STREAM_MESSAGES = 5

CLIENT_STATUSES = frozenset(
    {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)
"""What a client's mistake may get; INTERNAL, UNKNOWN or UNAVAILABLE never."""
STREAM_STATUSES = CLIENT_STATUSES | {grpc.StatusCode.DEADLINE_EXCEEDED}
"""A live server stream may also outlast the client's deadline (its own choice)."""


def metadata(rpc: Rpc, project: str, authorization: str | None, n: int) -> list[tuple[str, str]]:
    sent = [(PROJECT_KEY, project)]
    if authorization is not None:
        sent.append((AUTHORIZATION_KEY, authorization))
    if is_mutating(rpc.path):
        sent.append((REQUEST_ID_KEY, f"fuzz-{rpc.method.name}-{n}"))
    return sent


def call(rpc: Rpc, channel: grpc.Channel, request: Any, sent: Sequence[tuple[str, str]]) -> Any:
    """Send one request (or stream of them); return the status code and details."""
    method = rpc.stub_method(channel)
    streaming_out = rpc.method.server_streaming
    if rpc.method.client_streaming:
        request = iter(request)
    timeout = STREAM_SECONDS if streaming_out else UNARY_TIMEOUT
    try:
        response = method(request, metadata=sent, timeout=timeout)
        if streaming_out:
            for count, _ in enumerate(response, start=1):
                if count >= STREAM_MESSAGES:
                    response.cancel()
                    break
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.CANCELLED and streaming_out:
            return grpc.StatusCode.OK, ""  # our own cancel after enough messages
        return error.code(), error.details()
    return grpc.StatusCode.OK, ""


def server_log_tail(fuzz_server: FuzzServer) -> str:
    log = fuzz_server.server.log_file
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


@pytest.mark.parametrize("rpc", RPCS, ids=[rpc.name for rpc in RPCS])
def test_a_client_mistake_never_gets_internal(fuzz_server: FuzzServer, rpc: Rpc) -> None:
    requests: st.SearchStrategy[Any] = message_strategy(rpc.method.input_type)
    if rpc.method.client_streaming:
        requests = st.lists(requests, max_size=3)
    allowed = STREAM_STATUSES if rpc.method.server_streaming else CLIENT_STATUSES
    counter = iter(range(1_000_000))

    @fuzz_settings()
    @given(
        request=requests,
        project=st.sampled_from(PROJECTS),
        authorization=st.sampled_from(AUTHORIZATIONS),
    )
    def check(request: Any, project: str, authorization: str | None) -> None:
        sent = metadata(rpc, project, authorization, next(counter))
        code, details = call(rpc, fuzz_server.channel.channel, request, sent)
        assert code in allowed, (
            f"{rpc.name} answered {code.name}: {details}\n"
            f"request: {str(request)[:2000]!r}\nmetadata: {sent}\n"
            f"server log:\n{server_log_tail(fuzz_server)}"
        )

    check()


def test_every_service_is_fuzzed() -> None:
    services = {rpc.method.containing_service.name for rpc in RPCS}
    assert services == {
        "BlobService",
        "MetadataService",
        "ModelCenterService",
        "NotificationService",
        "SchedulerService",
    }
    assert len(RPCS) >= 66  # the count the issue found; new RPCs only add to it
