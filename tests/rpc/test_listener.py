"""Remote listeners: pushed delivery that survives a server restart or crash."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.notification.test_delivery import collect
from tideflow.client import Client, connect
from tideflow.client.remote.notification import RemoteListener
from tideflow.domain import Event
from tideflow.errors import InvalidArgumentError
from tideflow.notification.filters import EventFilter
from tideflow.testing import TideflowTestServer

DEADLINE = 60.0


@pytest.fixture
def own_server() -> Iterator[TideflowTestServer]:
    """A server of this test's own: it is stopped, killed and restarted."""
    with TideflowTestServer() as running:
        yield running


def _until(listener: RemoteListener, last: Event) -> list[Event]:
    """Everything the listener delivers up to and including ``last``."""
    got: list[Event] = []
    end = time.monotonic() + DEADLINE
    while not got or got[-1].offset < last.offset:
        assert time.monotonic() < end, f"{last} never arrived; got {got}"
        got += listener.poll(0.5)
    return got


def test_listener_keeps_delivering_across_restart_and_crash(
    own_server: TideflowTestServer,
) -> None:
    project = f"p_{uuid.uuid4().hex[:10]}"
    with own_server.client(project) as client:
        sent = [client.events.send("k", f"before{i}") for i in range(5)]
        listener = client.events.listen(keys=["k"])
        assert isinstance(listener, RemoteListener)
        with listener:
            received = collect(listener, 5)

            # Graceful restart; events written while the server is down must still arrive.
            own_server.stop()
            with connect(own_server.db_url, project=project) as beside:
                sent += [beside.events.send("k", f"down{i}") for i in range(3)]
                beside.events.send("other", "filtered out")
            own_server.start()
            sent += [client.events.send("k", f"after{i}") for i in range(3)]
            received += _until(listener, sent[-1])

            # A crash (SIGKILL) mid-stream, then the same again.
            own_server.kill()
            with connect(own_server.db_url, project=project) as beside:
                sent += [beside.events.send("k", f"crashed{i}") for i in range(3)]
            own_server.start()
            sent += [client.events.send("k", f"back{i}") for i in range(3)]
            received += _until(listener, sent[-1])

            assert listener.reconnects >= 2
            assert listener.last_offset == sent[-1].offset
        listener.join(10)
        assert not listener._thread.is_alive()
    assert [e.offset for e in received] == [e.offset for e in sent]  # nothing lost or repeated
    assert [e.value for e in received] == [e.value for e in sent]


def test_the_server_refuses_a_bad_filter_at_listen(client: Client) -> None:
    unchecked = EventFilter(sender="x" * 10_000)  # past the client's own check
    with pytest.raises(InvalidArgumentError, match="sender is 10000 characters long"):
        client.services.notifications.listen(client.project, unchecked)
    assert client.services.notifications.listeners == 0


def test_close_ends_a_blocked_iteration(client: Client) -> None:
    listener = client.events.listen(after_offset=client.events.latest_offset())
    ended = threading.Event()

    def iterate() -> None:
        for _ in listener:
            pass
        ended.set()

    threading.Thread(target=iterate, daemon=True).start()
    listener.close()
    assert ended.wait(10)
    assert client.services.notifications.listeners == 0


def test_a_backlog_arrives_complete_and_in_order(client: Client) -> None:
    sent = client.events.send_many([Event("k", str(i)) for i in range(3000)])
    with client.events.listen() as listener:
        got = collect(listener, len(sent))
    assert [e.offset for e in got] == [e.offset for e in sent]
