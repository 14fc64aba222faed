"""Auth edges from a hostile client's side (issue 15): raw gRPC stubs against real servers.

- ``authorization`` metadata that is not one ``Bearer <token>`` is refused even with auth
  optional; only a call without it counts as "no token";
- a ``Listen`` stream ends within about ``--token-recheck`` of its token's revocation;
- a request id is deduplicated per caller (project and token): reusing another caller's id
  gets a call of one's own, never the other's stored response.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import grpc
import pytest

from tests.auth.conftest import Issue, issuer
from tideflow.metadata import AccessService
from tideflow.rpc.call import ATTEMPT_KEY, AUTHORIZATION_KEY, PROJECT_KEY, REQUEST_ID_KEY
from tideflow.rpc.v1 import common_pb2 as pb
from tideflow.rpc.v1 import model_center_pb2 as mc
from tideflow.rpc.v1 import model_center_pb2_grpc as mcg
from tideflow.rpc.v1 import notification_pb2 as n
from tideflow.rpc.v1 import notification_pb2_grpc as ng
from tideflow.store import Store
from tideflow.testing import TideflowTestServer

RECHECK = 0.1
"""``--token-recheck`` of the optional-auth server here: a revoked stream ends within ~2x."""


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TideflowTestServer]:
    """A server with auth optional (as on loopback by default) and a short token re-check."""
    server = TideflowTestServer(
        home=tmp_path_factory.mktemp("home"),
        args=["--auth", "optional", "--token-recheck", str(RECHECK)],
        env={"TIDEFLOW_EXECUTORS": ""},
    )
    with server:
        yield server


def create_project(server: TideflowTestServer, name: str) -> str:
    with server.client(name):  # the client makes sure its project exists
        return name


@pytest.fixture
def project(open_server: TideflowTestServer) -> str:
    return create_project(open_server, f"p_{uuid.uuid4().hex[:10]}")


@pytest.fixture
def channel(open_server: TideflowTestServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(open_server.url.removeprefix("grpc://")) as opened:
        yield opened


def meta(project: str, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return ((PROJECT_KEY, project), *extra)


def revoke(db_url: str, project: str) -> None:
    """Revoke every live token of ``project``, as `tideflow token revoke` does."""
    with Store.open(db_url) as store:
        access = AccessService(store)
        for token in access.list_tokens(project):
            if not token.revoked:
                access.revoke_token(token.token_id)


# -- malformed authorization ---------------------------------------------------------------


MALFORMED = [
    pytest.param([("authorization", "tf_bogus")], id="bare-token"),
    pytest.param([("authorization", "Token tf_bogus")], id="token-scheme"),
    pytest.param([("authorization", "Basic dXNlcjpwYXNz")], id="basic"),
    pytest.param([("authorization", "Bearer")], id="bearer-alone"),
    pytest.param([("authorization", "Bearer   ")], id="bearer-blank"),
    pytest.param([("authorization", "")], id="empty"),
    pytest.param([("authorization", "Bearer tf_bogus"), ("authorization", "")], id="two-values"),
]


@pytest.mark.parametrize("authorization", MALFORMED)
def test_malformed_authorization_is_refused_even_with_auth_optional(
    channel: grpc.Channel, project: str, authorization: list[tuple[str, str]]
) -> None:
    stub = mcg.ModelCenterServiceStub(channel)
    # Anonymous is allowed on this server (and makes the project exist).
    stub.CreateModel(mc.CreateModelRequest(name="kept"), metadata=meta(project), timeout=10)
    calls = {
        "read": lambda m: stub.ListModels(mc.ListModelsRequest(), metadata=m, timeout=10),
        "write": lambda m: stub.CreateModel(
            mc.CreateModelRequest(name="planted"),
            metadata=(*m, (REQUEST_ID_KEY, uuid.uuid4().hex)),
            timeout=10,
        ),
        "stream": lambda m: next(
            ng.NotificationServiceStub(channel).Listen(n.ListenRequest(), metadata=m, timeout=10)
        ),
    }
    for kind, call in calls.items():
        with pytest.raises(grpc.RpcError) as refused:
            call(meta(project, *authorization))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, kind
        assert "authorization" in (refused.value.details() or ""), kind
        assert "tf_bogus" not in (refused.value.details() or "")  # never echoed
    listed = stub.ListModels(mc.ListModelsRequest(), metadata=meta(project), timeout=10)
    assert [m.name for m in listed.models] == ["kept"]


def test_an_unknown_bearer_token_is_refused_and_no_header_is_anonymous(
    open_server: TideflowTestServer, channel: grpc.Channel, project: str
) -> None:
    stub = mcg.ModelCenterServiceStub(channel)
    with pytest.raises(grpc.RpcError) as refused:
        stub.ListModels(
            mc.ListModelsRequest(),
            metadata=meta(project, (AUTHORIZATION_KEY, "Bearer tf_bogus")),
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert refused.value.details() == "invalid API token"
    # The scheme is case-insensitive, as HTTP's; no header at all is anonymous (admin).
    issue = issuer(open_server.db_url)
    token = issue(project, "reader")
    for scheme in ("Bearer", "bearer", "BEARER"):
        stub.ListModels(
            mc.ListModelsRequest(),
            metadata=meta(project, (AUTHORIZATION_KEY, f"{scheme} {token}")),
            timeout=10,
        )
    stub.CreateModel(mc.CreateModelRequest(name="anon"), metadata=meta(project), timeout=10)


# -- streams end when their token is revoked ------------------------------------------------


def _listen_until_refused(
    server: TideflowTestServer, project: str, token: str, *, within: float
) -> tuple[grpc.RpcError, float]:
    """Open a Listen stream with ``token``, see it deliver, revoke, and time its end."""
    with grpc.insecure_channel(server.url.removeprefix("grpc://")) as channel:
        stub = ng.NotificationServiceStub(channel)
        auth = meta(project, (AUTHORIZATION_KEY, f"Bearer {token}"))
        # A keepalive far longer than the wait: the stream must end for the revocation alone.
        stream = stub.Listen(n.ListenRequest(keepalive_seconds=60), metadata=auth, timeout=60)
        assert next(stream).events == []  # in place
        stub.SendEvent(
            n.SendEventRequest(event=pb.Event(key="k", value="before", event_type="UNDEFINED")),
            metadata=(*auth, (REQUEST_ID_KEY, uuid.uuid4().hex)),
            timeout=10,
        )
        assert [e.value for e in next(stream).events] == ["before"]
        revoke(server.db_url, project)
        revoked = time.monotonic()
        with pytest.raises(grpc.RpcError) as ended:
            _drain(stream, until=revoked + within)
        return ended.value, time.monotonic() - revoked


def _drain(stream: Iterator[n.ListenResponse], *, until: float) -> None:
    for response in stream:
        assert time.monotonic() < until, "still streaming"
        assert not response.events  # nothing more was sent


def _next_for(events: Iterator[object], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        next(events)


def test_a_listen_stream_ends_soon_after_its_token_is_revoked(
    open_server: TideflowTestServer, project: str
) -> None:
    token = issuer(open_server.db_url)(project, "writer")
    error, took = _listen_until_refused(open_server, project, token, within=3 * RECHECK + 1)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "was revoked" in (error.details() or "")
    assert took < 2 * RECHECK + 1.0


def test_with_the_default_recheck_a_stream_ends_within_two_seconds(
    auth_server: TideflowTestServer, issue: Issue, project: str
) -> None:
    error, took = _listen_until_refused(auth_server, project, issue(project, "writer"), within=5)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "was revoked" in (error.details() or "")
    assert took < 2.5


def test_the_client_listener_fails_with_unauthenticated_after_revocation(
    open_server: TideflowTestServer, project: str
) -> None:
    from tideflow.errors import UnauthenticatedError

    token = issuer(open_server.db_url)(project, "reader")
    with open_server.client(project, token=token) as client:
        events = iter(client.events.listen(after_offset=0))
        revoke(open_server.db_url, project)
        with pytest.raises(UnauthenticatedError, match="was revoked"):
            _next_for(events, 10)


# -- request ids are per caller --------------------------------------------------------------


@pytest.mark.parametrize("attempt", ["1", "2"], ids=["first-try", "retry"])
def test_another_projects_request_id_is_a_call_of_its_own(
    open_server: TideflowTestServer, channel: grpc.Channel, project: str, attempt: str
) -> None:
    stub = mcg.ModelCenterServiceStub(channel)
    other = create_project(open_server, f"{project}_b")
    request_id = uuid.uuid4().hex
    for name in (project, other):
        stub.CreateModel(mc.CreateModelRequest(name="ctr"), metadata=meta(name), timeout=10)
    request = mc.CreateModelVersionRequest(model="ctr", uri="s3://a/1")
    first = stub.CreateModelVersion(
        request, metadata=meta(project, (REQUEST_ID_KEY, request_id)), timeout=10
    )
    replayed = stub.CreateModelVersion(
        mc.CreateModelVersionRequest(model="ctr", uri="s3://b/1"),
        metadata=meta(other, (REQUEST_ID_KEY, request_id), (ATTEMPT_KEY, attempt)),
        timeout=10,
    )
    assert replayed.version.uri == "s3://b/1"  # applied for B, not A's stored answer
    listed = stub.ListModelVersions(
        mc.ListModelVersionsRequest(model="ctr"), metadata=meta(other), timeout=10
    )
    assert [v.uri for v in listed.versions] == ["s3://b/1"]
    # A's own retry is still answered from the log, and applied once.
    again = stub.CreateModelVersion(
        request,
        metadata=meta(project, (REQUEST_ID_KEY, request_id), (ATTEMPT_KEY, attempt)),
        timeout=10,
    )
    assert again == first
    mine = stub.ListModelVersions(
        mc.ListModelVersionsRequest(model="ctr"), metadata=meta(project), timeout=10
    )
    assert [v.uri for v in mine.versions] == ["s3://a/1"]


def test_another_tokens_request_id_is_a_call_of_its_own(
    open_server: TideflowTestServer, channel: grpc.Channel, project: str
) -> None:
    issue = issuer(open_server.db_url)
    alice, bob = issue(project, "writer"), issue(project, "writer")
    stub = ng.NotificationServiceStub(channel)
    request_id = uuid.uuid4().hex

    def send(token: str | None, value: str) -> n.SendEventResponse:
        auth = () if token is None else ((AUTHORIZATION_KEY, f"Bearer {token}"),)
        return stub.SendEvent(
            n.SendEventRequest(event=pb.Event(key="k", value=value, event_type="UNDEFINED")),
            metadata=meta(project, *auth, (REQUEST_ID_KEY, request_id), (ATTEMPT_KEY, "2")),
            timeout=10,
        )

    sent = [send(alice, "alice"), send(bob, "bob"), send(None, "anonymous")]
    offsets = [r.offset for r in sent]  # the compact answer: the offset each event got
    assert len(set(offsets)) == 3
    listed = ng.NotificationServiceStub(channel).ListEvents(
        n.ListEventsRequest(after_offset=min(offsets) - 1, limit=10),
        metadata=meta(project),
        timeout=10,
    )
    stored = {e.offset: e.value for e in listed.events}
    assert [stored[o] for o in offsets] == ["alice", "bob", "anonymous"]
    assert send(alice, "alice again") == sent[0]  # her retry: her first answer
