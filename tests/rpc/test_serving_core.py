"""The gRPC serving core (``grpc.aio`` on a loop thread): streams are tasks, waits stay off it.

Real servers in their own processes; thread counts are read from ``/proc``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tideflow.rpc.aio_server import GRPC_CORE_LOGGER, quiet_client_hang_ups
from tideflow.rpc.call import PROJECT_KEY
from tideflow.rpc.inline import INLINE_METHODS
from tideflow.rpc.server_info import METHOD as SERVER_INFO
from tideflow.rpc.v1 import blob_pb2 as b
from tideflow.rpc.v1 import (
    blob_pb2_grpc,
    metadata_pb2,
    model_center_pb2,
    notification_pb2,
    scheduler_pb2,
)
from tideflow.testing import TideflowTestServer

DEADLINE = 60.0


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no thread count for pid {pid}")


def test_every_inline_method_is_a_unary_method_of_the_api() -> None:
    methods = {}
    for module in (notification_pb2, model_center_pb2, metadata_pb2, scheduler_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                methods[f"/{service.full_name}/{method.name}"] = method
    for name in INLINE_METHODS - {SERVER_INFO}:
        assert name in methods, f"{name} names no method"
        method = methods[name]
        assert not method.client_streaming, name
        assert not method.server_streaming, name
    # Calls that touch files, compile or reach clusters never run on the loop.
    for slow in ("UploadCodePackage", "SubmitWorkflow", "GetJobLogs", "StopJob", "DeleteProject"):
        assert not any(name.endswith("/" + slow) for name in INLINE_METHODS), slow


def test_listen_streams_are_tasks_not_threads(tmp_path: Path) -> None:
    count = 200
    with (
        TideflowTestServer(home=tmp_path / "home", env={"TIDEFLOW_EXECUTORS": ""}) as server,
        server.client("demo") as client,
    ):
        assert server.process is not None
        pid = server.process.pid
        before = _threads(pid)
        listeners = [client.events.listen(keys=["k"]) for _ in range(count)]
        try:
            sent = client.events.send("k", "to all")
            for listener in listeners:
                got = []
                deadline = time.monotonic() + DEADLINE
                while not got:
                    assert time.monotonic() < deadline, "an event did not reach a listener"
                    got = listener.poll(1)
                assert [e.offset for e in got] == [sent.offset]
            # 200 open streams: not one thread each (the thread-pool server had 200 more).
            assert _threads(pid) - before < 20
        finally:
            for listener in listeners:
                listener.close()


def test_a_stalled_upload_does_not_hold_up_calls_or_streams(tmp_path: Path) -> None:
    """An upload read on the pool waits for its client; the loop serves everyone else."""
    data = b"x" * 100_000
    release = threading.Event()

    def chunks() -> Iterator[b.UploadBlobRequest]:
        yield b.UploadBlobRequest(sha256=hashlib.sha256(data).hexdigest(), chunk=data[:50_000])
        release.wait(DEADLINE)  # the client stalls mid-upload
        yield b.UploadBlobRequest(chunk=data[50_000:])

    with (
        TideflowTestServer(home=tmp_path / "home", env={"TIDEFLOW_EXECUTORS": ""}) as server,
        server.client("demo") as client,
        grpc.insecure_channel(server.url.removeprefix("grpc://")) as channel,
    ):
        listener = client.events.listen(keys=["k"])
        stub = blob_pb2_grpc.BlobServiceStub(channel)
        upload = stub.UploadBlob.future(
            chunks(), metadata=[(PROJECT_KEY, "demo")], timeout=DEADLINE
        )
        try:
            for n in range(20):  # served while the upload waits for its next chunk
                sent = client.events.send("k", f"v{n}")
                got: list[int] = []
                deadline = time.monotonic() + DEADLINE
                while sent.offset not in got:
                    assert time.monotonic() < deadline
                    got += [e.offset for e in listener.poll(1)]
            assert not upload.done()
        finally:
            release.set()
            listener.close()
        answer = upload.result(DEADLINE)
        assert answer.size == len(data)
        assert answer.sha256 == hashlib.sha256(data).hexdigest()


def test_an_upload_cancelled_mid_stream_leaves_no_file_and_no_busy_thread(tmp_path: Path) -> None:
    """The pool thread reading a cancelled upload's messages is released, its file removed."""
    data = b"y" * 100_000
    release = threading.Event()

    def chunks() -> Iterator[b.UploadBlobRequest]:
        yield b.UploadBlobRequest(sha256=hashlib.sha256(data).hexdigest(), chunk=data[:50_000])
        release.wait(DEADLINE)

    home = tmp_path / "home"
    with (
        TideflowTestServer(home=home, env={"TIDEFLOW_EXECUTORS": ""}) as server,
        server.client("demo") as client,
        grpc.insecure_channel(server.url.removeprefix("grpc://")) as channel,
    ):
        stub = blob_pb2_grpc.BlobServiceStub(channel)
        try:
            upload = stub.UploadBlob.future(
                chunks(), metadata=[(PROJECT_KEY, "demo")], timeout=DEADLINE
            )
            deadline = time.monotonic() + DEADLINE
            while not list(home.rglob("*.tmp")):  # the first chunk is being written
                assert time.monotonic() < deadline, "the upload never started"
                time.sleep(0.02)
            upload.cancel()
            while list(home.rglob("*.tmp")):
                assert time.monotonic() < deadline, "the cancelled upload's file stayed"
                time.sleep(0.02)
        finally:
            release.set()
        # The server goes on: a whole upload after it is stored.
        assert client.blobs.get(client.blobs.put(data)) == data


def test_a_download_cancelled_mid_stream_leaves_the_server_serving(tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024)  # several chunks
    with (
        TideflowTestServer(home=tmp_path / "home", env={"TIDEFLOW_EXECUTORS": ""}) as server,
        server.client("demo") as client,
        grpc.insecure_channel(server.url.removeprefix("grpc://")) as channel,
    ):
        uri = client.blobs.put(data)
        stub = blob_pb2_grpc.BlobServiceStub(channel)
        for _ in range(5):
            stream = stub.GetBlob(
                b.GetBlobRequest(uri=uri), metadata=[(PROJECT_KEY, "demo")], timeout=DEADLINE
            )
            first = next(stream)
            assert first.size == len(data)
            assert len(first.chunk) < len(data)
            stream.cancel()
        assert client.blobs.get(uri) == data  # whole, after the cut-short ones
        assert client.events.send("k", "after").offset > 0
        log = (tmp_path / "home" / "logs").rglob("*.log")
        assert not any("Traceback" in p.read_text(errors="replace") for p in log)


def test_a_write_to_a_client_that_left_is_not_logged_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    quiet_client_hang_ups()
    core = logging.getLogger(GRPC_CORE_LOGGER)
    with caplog.at_level(logging.INFO, logger=GRPC_CORE_LOGGER):
        core.error("ExecuteBatchError raised in core by servicer method [%s]", "/a.B/C")
        core.error("Unexpected [ValueError] raised by servicer method [%s]", "/a.B/C")
    shown = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [r.getMessage() for r in shown] == [
        "Unexpected [ValueError] raised by servicer method [/a.B/C]"
    ]
