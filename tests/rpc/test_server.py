"""The server process itself: health and metrics over HTTP, first start on an empty database,
graceful shutdown on SIGTERM, the cap on listen streams, message size limits, and
``tideflow server stop`` refusing a pid that is not a Tideflow server."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tideflow.client import Client
from tideflow.client.remote.channel import RpcChannel
from tideflow.domain import Event
from tideflow.errors import InvalidArgumentError, ResourceExhaustedError, UnavailableError
from tideflow.rpc.v1 import scheduler_pb2 as s
from tideflow.rpc.v1 import scheduler_pb2_grpc as sg
from tideflow.server.app import TideflowServer
from tideflow.server.config import DEFAULT_MAX_LISTENERS, ServerConfig
from tideflow.store import SchemaState
from tideflow.store.blob import BlobStore
from tideflow.store.migration import check_database
from tideflow.testing import TideflowTestServer


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _samples(http_url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, text = _get(f"{http_url}/metrics")
    assert status == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_healthz_and_metrics_through_a_real_server(
    server: TideflowTestServer, client: Client
) -> None:
    status, body = _get(f"{server.http_url}/healthz")
    assert (status, json.loads(body)) == (200, {"status": "serving"})
    before = _samples(server.http_url)
    create = "/tideflow.v1.ModelCenterService/CreateModel"
    client.models.create("ctr")
    for i in range(3):
        client.events.send("k", str(i))
    with client.events.listen(keys=["k"]):
        after = _samples(server.http_url)
        assert _value(after, "tideflow_listeners") >= 1
    assert _value(after, "tideflow_listeners_max") == DEFAULT_MAX_LISTENERS
    assert _value(after, "tideflow_rpc_calls_total", method=create, code="OK") == (
        _value(before, "tideflow_rpc_calls_total", method=create, code="OK") + 1
    )
    assert _value(after, "tideflow_rpc_seconds_count", method=create) >= 1
    assert _value(after, "tideflow_rpc_seconds_bucket", method=create, le="+Inf") >= 1
    # 3 sends and the model's creation event... at least: other tests share the server.
    assert _value(after, "tideflow_events_appended_total") >= (
        _value(before, "tideflow_events_appended_total") + 3
    )


def test_an_empty_database_is_migrated_at_first_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'new.db'}"
    (tmp_path / "fresh").mkdir()
    with TideflowTestServer(db_url=url, home=tmp_path / "home") as fresh:
        with fresh.client("demo") as client:
            client.models.create("ctr")
            assert client.models.create_version("ctr").version == 1
        assert check_database(url).state is SchemaState.CURRENT


def test_sigterm_lets_in_flight_calls_finish_then_cleans_up(tmp_path: Path) -> None:
    """SIGTERM mid-upload: the upload still completes, then the server exits 0, its
    ``server.json`` is gone and its log (under ``$TIDEFLOW_HOME/logs``) says it stopped."""
    running = TideflowTestServer(home=tmp_path / "home").start()
    try:
        assert (running.home / "server.json").exists()
        channel = RpcChannel(running.url, project="demo")
        stub = sg.SchedulerServiceStub(channel.channel)
        package = _zip({"flow.py": b"a" * 1000, "steps.py": b"b" * 1000})
        first, second = package[:1000], package[1000:]
        digest = hashlib.sha256(package).hexdigest()
        assert running.process is not None
        pid = running.process.pid

        def upload() -> Iterator[s.UploadCodePackageRequest]:
            yield s.UploadCodePackageRequest(sha256=digest, chunk=first)
            time.sleep(0.5)  # let the first half reach the server: the call is in flight
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while _get(f"{running.http_url}/healthz")[0] == 200:  # shutdown has begun
                assert time.monotonic() < deadline, (running.home / "server.out").read_text()
                time.sleep(0.02)
            yield s.UploadCodePackageRequest(chunk=second)

        response = stub.UploadCodePackage(
            upload(), metadata=channel.metadata(mutating=True), timeout=30
        )
        assert response.uri
        channel.close()
        assert running.process.wait(30) == 0
        running.process = None
        assert not (running.home / "server.json").exists()
        log = running.log_file.read_text()
        assert running.log_file.parent == running.home / "logs"
        assert "Tideflow server serving" in log
        assert "Tideflow server stopped" in log
        # The package arrived whole.
        assert BlobStore(str(running.home / "blobs")).get("packages", digest) == package
    finally:
        running.close()


def test_listen_streams_are_capped_and_unary_calls_still_served(tmp_path: Path) -> None:
    with (
        TideflowTestServer(home=tmp_path / "home", args=["--max-listeners", "2"]) as capped,
        capped.client("demo") as client,
    ):
        first = client.events.listen()
        second = client.events.listen()
        with pytest.raises(ResourceExhaustedError, match="maximum of 2 listen streams"):
            client.events.listen()
        # Unary calls have threads of their own.
        assert client.events.send("k", "v").offset > 0
        assert len(client.events.list()) == 1
        second.close()
        deadline = time.monotonic() + 10
        while True:  # the server frees the slot once it sees the stream cancelled
            try:
                third = client.events.listen()
                break
            except ResourceExhaustedError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        sent = client.events.send("k", "after")
        for listener in (third, first):
            got: list[Event] = []
            while not got or got[-1].offset < sent.offset:
                assert time.monotonic() < deadline + 20
                got += listener.poll(1)
            assert [e.value for e in got] == ["v", "after"]
        assert _value(_samples(capped.http_url), "tideflow_listeners") == 2
        first.close()
        third.close()


def test_a_message_over_the_size_limit_is_a_clear_error(
    server: TideflowTestServer, client: Client
) -> None:
    big = [Event(key="k", value="x" * 1_000_000) for _ in range(70)]  # 70 MB > 64 MiB
    with pytest.raises(InvalidArgumentError, match="exceeds the size limit") as on_client:
        client.events.send_many(big)
    assert on_client.value.field == "message"
    # A client allowed to send more is refused by the server's own limit, just as clearly.
    channel = RpcChannel(server.url, project=client.project, max_message_bytes=128 * 1024 * 1024)
    try:
        from tideflow.client.remote.notification import RemoteNotificationService

        generous = RemoteNotificationService(channel)
        with pytest.raises(InvalidArgumentError, match="Received message larger than max"):
            generous.send_many(client.project, big)
    finally:
        channel.close()
    assert client.events.list().items == ()
    assert client.events.send("k", "small").offset > 0


def test_server_stop_refuses_a_pid_that_is_no_tideflow_server(tmp_path: Path) -> None:
    """A stale ``server.json`` whose pid now belongs to another program: nothing is signalled."""
    home = tmp_path / "home"
    home.mkdir()
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        info: dict[str, Any] = {
            "url": "grpc://127.0.0.1:1",
            "http_url": "http://127.0.0.1:1",
            "pid": bystander.pid,
            "db": "sqlite:///x",
        }
        (home / "server.json").write_text(json.dumps(info))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEFLOW_")}
        env["TIDEFLOW_HOME"] = str(home)
        status = subprocess.run(
            [sys.executable, "-m", "tideflow", "server", "status"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 1, status.stdout
        stopped = subprocess.run(
            [sys.executable, "-m", "tideflow", "server", "stop"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert stopped.returncode == 0, stopped.stderr
        assert "no Tideflow server is running" in stopped.stdout
        assert bystander.poll() is None  # not signalled
        assert not (home / "server.json").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_listen_streams_have_deadlines_and_are_renewed_without_loss(client: Client) -> None:
    service: Any = client.services.notifications
    service.stream_deadline = 0.3
    opened: list[int] = []
    listen = service._stub.Listen
    lock = threading.Lock()

    def counting_listen(request: Any, **kwargs: Any) -> Any:
        assert kwargs["timeout"] == 0.3
        with lock:
            opened.append(request.after_offset)
        return listen(request, **kwargs)

    service._stub.Listen = counting_listen
    with client.events.listen(keys=["k"]) as listener:
        sent = []
        got: list[Event] = []
        for i in range(10):  # over ~2 s: several stream deadlines pass meanwhile
            sent.append(client.events.send("k", str(i)))
            got += listener.poll(0.1)
            time.sleep(0.1)
        deadline = time.monotonic() + 30
        while len(got) < len(sent):
            assert time.monotonic() < deadline
            got += listener.poll(0.5)
        assert listener.reconnects == 0  # a renewal is no reconnect after a failure
    assert [e.offset for e in got] == [e.offset for e in sent]
    assert len(opened) >= 3  # renewed, each time after the last offset received
    assert opened == sorted(opened)


def test_every_rpc_survives_garbage_and_empty_requests(server: TideflowTestServer) -> None:
    """Undecodable bytes and all-default messages to every method: errors, never a crash."""
    import grpc

    from tideflow.rpc.v1 import (
        metadata_pb2,
        model_center_pb2,
        notification_pb2,
        scheduler_pb2,
    )

    project = f"p_{uuid.uuid4().hex[:10]}"
    channel = RpcChannel(server.url, project=project)
    internal: list[str] = []
    try:
        for module in (metadata_pb2, model_center_pb2, notification_pb2, scheduler_pb2):
            for service in module.DESCRIPTOR.services_by_name.values():
                for method in service.methods:
                    path = f"/{service.full_name}/{method.name}"
                    for payload in (b"\xff\xff\xff\xff", b""):
                        metadata = channel.metadata(mutating=True)
                        try:
                            if method.server_streaming:
                                call = channel.channel.unary_stream(path)(
                                    payload, metadata=metadata, timeout=5
                                )
                                next(iter(call), None)
                                call.cancel()
                            elif method.client_streaming:
                                channel.channel.stream_unary(path)(
                                    iter([payload]), metadata=metadata, timeout=5
                                )
                            else:
                                channel.channel.unary_unary(path)(
                                    payload, metadata=metadata, timeout=5
                                )
                        except grpc.RpcError as error:
                            if payload == b"" and error.code() in (
                                grpc.StatusCode.INTERNAL,
                                grpc.StatusCode.UNKNOWN,
                            ):
                                internal.append(f"{path}: {error.code()} {error.details()}")
    finally:
        channel.close()
    assert internal == []  # a well-formed but empty request is refused as the caller's fault
    assert server.process is not None
    assert server.process.poll() is None
    with server.client(project) as client:
        assert client.events.send("k", "still serving").offset > 0


def test_a_listener_receives_a_backlog_larger_than_one_message(client: Client) -> None:
    """500 events of ~1 MB in one fetch would pass the 64 MiB limit as a single response."""
    value = "x" * 1_000_000
    sent: list[Event] = []
    for _ in range(3):
        sent += client.events.send_many([Event(key="big", value=value) for _ in range(30)])
    with client.events.listen(keys=["big"]) as listener:
        got: list[Event] = []
        deadline = time.monotonic() + 60
        while len(got) < len(sent):
            assert time.monotonic() < deadline
            got += listener.poll(1)
        assert listener.reconnects == 0
    assert [e.offset for e in got] == [e.offset for e in sent]


def _in_process_config(tmp_path: Path) -> ServerConfig:
    return ServerConfig(
        db_url=f"sqlite:///{tmp_path / 'tideflow.db'}", home=tmp_path, port=0, http_port=0
    )


def test_the_http_port_is_bound_when_start_returns_and_released_by_stop(tmp_path: Path) -> None:
    """The app is built after start returns (a faster start): the port is bound before, and a
    stop that comes at once (the app perhaps not built yet) still releases it."""
    server = TideflowServer(_in_process_config(tmp_path), executors=[])
    server.start()
    try:
        port = server.http_port
        with socket.socket() as taken, pytest.raises(OSError, match="in use"):
            taken.bind(("127.0.0.1", port))  # bound (and listening) already
    finally:
        server.stop()
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))
    assert server.http_error is None


def test_a_server_whose_http_app_cannot_be_built_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: TideflowServer) -> Any:
        raise ImportError("no module named 'fastapi'")

    monkeypatch.setattr(TideflowServer, "_build_http", broken)
    server = TideflowServer(_in_process_config(tmp_path), executors=[])
    server.start()
    try:
        assert server.wait_http_built() is False
        waiter = threading.Thread(target=server.wait)
        waiter.start()
        waiter.join(30)
        assert not waiter.is_alive()  # the failure asked the server to stop
        assert isinstance(server.http_error, ImportError)
    finally:
        server.stop()


def test_http_answers_a_request_made_the_moment_the_server_is_ready(tmp_path: Path) -> None:
    server = TideflowServer(_in_process_config(tmp_path), executors=[])
    server.start()
    try:
        status, body = _get(f"http://127.0.0.1:{server.http_port}/healthz")
        assert (status, json.loads(body)) == (200, {"status": "serving"})
    finally:
        server.stop()


def test_http_keep_alive_connections_have_nagle_off(tmp_path: Path) -> None:
    """With Nagle on, every keep-alive request after the first waited ~40 ms for a delayed ACK
    (tideflow.net): the UI and JSON API answered in ~44 ms what took 3."""
    server = TideflowServer(_in_process_config(tmp_path), executors=[])
    server.start()
    try:
        assert server.wait_http_built()
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=30) as client:
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            assert client.recv(65536).startswith(b"HTTP/1.1 ")
            connections = server._http.server_state.connections  # uvicorn's open connections
            sockets = [c.transport.get_extra_info("socket") for c in connections]
            assert len(sockets) == 1
            assert sockets[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.stop()


def test_a_grpc_port_in_use_fails_the_start_and_leaves_no_loop_thread(tmp_path: Path) -> None:
    def loops() -> int:
        return sum(t.name == "rpc-loop" and t.is_alive() for t in threading.enumerate())

    before = loops()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = ServerConfig(
            db_url=f"sqlite:///{tmp_path / 'tideflow.db'}", home=tmp_path, port=port, http_port=0
        )
        server = TideflowServer(config, executors=[])
        try:
            with pytest.raises(UnavailableError, match=f"cannot bind gRPC to 127.0.0.1:{port}"):
                server.start()
            assert loops() == before
        finally:
            server.stop()
