"""A full disk is an error, not a hang: RESOURCE_EXHAUSTED for writes, reads go on, all resumes.

The real cases run a real server whose home is a small tmpfs (root and ``mount`` needed: they
are skipped with the reason outside CI, and fail in CI); the unit cases inject ``ENOSPC`` at
the filesystem boundary in-process.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from tideflow.cli.loader import load_workflows
from tideflow.client import Client
from tideflow.client.remote.channel import RpcChannel
from tideflow.domain.status import ExecutionStatus, JobStatus
from tideflow.errors import InvalidArgumentError, ResourceExhaustedError
from tideflow.rpc.v1 import blob_pb2 as b
from tideflow.rpc.v1 import blob_pb2_grpc as bg
from tideflow.store.blob import BlobStore
from tideflow.store.errors import translate
from tideflow.testing import TideflowTestServer, wait_until

MB = 1024 * 1024
DISK = "24m"
WAIT = 60.0


# -- in-process: ENOSPC injected -----------------------------------------------------------------


class _FullFile:
    """A writable file object whose second write fails as on a full disk."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self._writes = 0

    def write(self, data: bytes) -> int:
        self._writes += 1
        if self._writes > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return int(self._real.write(data))

    def __enter__(self) -> _FullFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._real.close()


def test_blob_store_on_a_full_disk_is_resource_exhausted_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BlobStore(str(tmp_path / "blobs"))
    real_open = store._fs.open

    def full_open(path: str, mode: str = "rb", **kwargs: Any) -> Any:
        handle = real_open(path, mode, **kwargs)
        return _FullFile(handle) if "w" in mode else handle

    monkeypatch.setattr(store._fs, "open", full_open)
    with pytest.raises(ResourceExhaustedError, match=f"no space left under {tmp_path / 'blobs'}"):
        store.put_stream("data", iter([b"a" * 100, b"b" * 100]))
    assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []
    monkeypatch.undo()  # space is back: the same upload works
    assert store.put_stream("data", iter([b"a" * 100, b"b" * 100])).size == 200


def test_a_failing_upload_stream_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "blobs"))

    def cancelled() -> Iterator[bytes]:
        yield b"x" * 1000
        raise RuntimeError("the client went away")

    with pytest.raises(RuntimeError, match="went away"):
        store.put_stream("data", cancelled())
    with pytest.raises(InvalidArgumentError, match=r"not 0+ as declared"):
        store.put_stream("data", iter([b"abc"]), sha256="0" * 64)
    assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []


def test_sqlite_disk_full_is_resource_exhausted_naming_the_folder() -> None:
    import sqlite3

    error = OperationalError("INSERT ...", {}, sqlite3.OperationalError("database or disk is full"))
    translated = translate(error, "appending an event", where="/srv/tideflow")
    assert isinstance(translated, ResourceExhaustedError)
    assert "no space left under /srv/tideflow" in str(translated)


# -- a real server on a small disk ---------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB tmpfs, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    problem = None
    if os.geteuid() != 0:
        problem = "not root"
    else:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0755", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            problem = result.stderr.strip() or f"mount exited {result.returncode}"
    if problem is not None:
        reason = f"the full-disk tests mount a {DISK} tmpfs, which is impossible here: {problem}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write zeros until the disk is full; remove the returned file to free it."""
    filler = disk / "filler"
    block = bytes(MB)
    with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as out:
        while True:  # until ENOSPC
            out.write(block)
    with contextlib.suppress(OSError), open(disk / "filler-tail", "wb", buffering=0) as out:
        while True:  # the last partial megabyte
            out.write(b"\0" * 4096)
    return filler


def top_up(disk: Path, leave: int) -> None:
    """Fill the disk again, leaving ``leave`` bytes (the stopped server freed its WAL)."""
    with open(disk / "filler-top", "ab", buffering=0) as out:
        while shutil.disk_usage(disk).free > leave:
            out.write(b"\0" * 4096)


def free(disk: Path) -> None:
    for name in ("filler", "filler-tail", "filler-top"):
        (disk / name).unlink(missing_ok=True)


def temporaries(home: Path) -> list[Path]:
    return [p for p in (home / "blobs").rglob("*.tmp")] if (home / "blobs").exists() else []


def upload_blob(server: TideflowTestServer, chunks: list[bytes], sha256: str) -> Any:
    channel = RpcChannel(server.url, project="demo")
    try:

        def requests() -> Iterator[b.UploadBlobRequest]:
            for index, chunk in enumerate(chunks):
                first = index == 0
                yield b.UploadBlobRequest(
                    kind="data" if first else "", sha256=sha256 if first else "", chunk=chunk
                )

        return channel.unary(
            lambda _, **kw: bg.BlobServiceStub(channel.channel).UploadBlob(requests(), **kw),
            None,
            mutating=True,
            timeout=60,
        )
    finally:
        channel.close()


def write_until_full(client: Client) -> int:
    """Send events until the store refuses one; return how many were stored."""
    value = "v" * 8000
    sent = 0
    with pytest.raises(ResourceExhaustedError, match="no space left under"):  # noqa: PT012
        while sent < 5000:
            client.events.send("k", value, event_type="FILL")
            sent += 1
    return sent


def test_full_disk_writes_are_resource_exhausted_reads_go_on_and_all_resumes(
    small_disk: Path, tmp_path: Path
) -> None:
    import hashlib

    home = small_disk / "home"
    server = TideflowTestServer(home=home, ready_file=tmp_path / "ready.json").start()
    try:
        with server.client("demo") as client:
            client.models.create("ctr")
            first = client.events.send("k", "before", event_type="FILL")
            filler = fill(small_disk)
            assert shutil.disk_usage(small_disk).free < 64 * 1024

            # A blob upload: RESOURCE_EXHAUSTED naming the store, no temporary file left.
            chunks = [os.urandom(MB) for _ in range(4)]
            digest = hashlib.sha256(b"".join(chunks)).hexdigest()
            with pytest.raises(
                ResourceExhaustedError, match=f"no space left under {home / 'blobs'}"
            ):
                upload_blob(server, chunks, digest)
            assert temporaries(home) == []

            # Store writes: RESOURCE_EXHAUSTED too (once SQLite's WAL has no room left).
            stored = write_until_full(client)
            assert stored < 5000
            # Reads go on.
            assert client.models.get("ctr").name == "ctr"
            assert (
                len(client.events.list(key="k", after_offset=first.offset - 1, limit=10_000))
                == stored + 1
            )

            # A restart on the full disk: server.json cannot be written, the server serves.
            assert server.stop() == 0
            # A clean stop checkpoints and removes SQLite's WAL, freeing what it held: fill that
            # again, leaving only room for the shared-memory file SQLite maps at start.
            top_up(small_disk, leave=32 * 1024)
            server.start()
            assert not (home / "server.json").exists()  # could not be written: a warning
            assert client.models.get("ctr").name == "ctr"
            assert (
                len(client.events.list(key="k", after_offset=first.offset - 1, limit=10_000))
                == stored + 1
            )
            write_until_full(client)  # still refused, as RESOURCE_EXHAUSTED

            # Space returns: everything works again, nothing was lost, no offset gap.
            filler.unlink()
            free(small_disk)
            assert upload_blob(server, chunks, digest).sha256 == digest
            assert temporaries(home) == []
            last = client.events.send("k", "after", event_type="FILL")
            events = client.events.list(key="k", after_offset=first.offset - 1, limit=10_000)
            assert [e.offset for e in events] == list(range(first.offset, last.offset + 1))
            assert events[-1].value == "after"
    finally:
        server.close()


FLOW = """
import tideflow as tide


def ingest(ctx, inputs):
    return 1


with tide.workflow("unpacked") as wf:
    with tide.job("ingest"):
        tide.user_node(processor=ingest, name="ingest_step")
"""


def test_an_attempt_whose_package_fills_the_disk_fails_with_the_reason_and_leaves_nothing(
    small_disk: Path, tmp_path: Path
) -> None:
    """The package passes the (loosened) checks but unpacks to more than the disk holds: the
    attempt is FAILED "no space left under <dir>" (never stuck INIT), its work directory is
    removed, and the execution ends FAILED."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "flow.py").write_text(textwrap.dedent(FLOW))
    (code / "zeros.bin").write_bytes(bytes(40 * MB))  # ~40 kB compressed
    home = small_disk / "home"
    server = TideflowTestServer(
        home=home, ready_file=tmp_path / "ready.json", args=["--max-package-ratio", "5000"]
    ).start()
    try:
        with server.client("demo") as client:
            (wf,) = load_workflows(code / "flow.py")
            client.workflows.submit(wf, source=code)
            run = client.workflows.start("unpacked")
            execution = wait_until(
                lambda: (
                    (e := client.executions.get(run.execution_id)).status
                    is not ExecutionStatus.RUNNING
                    and e
                ),
                what="the execution to end",
                timeout=WAIT,
                interval=0.2,
            )
            assert execution.status is ExecutionStatus.FAILED
            (job,) = client.jobs.list(run.execution_id)
            assert job.status is JobStatus.FAILED
            assert "no space left under" in (job.error or ""), job.error
            assert not list((home / "work").rglob("zeros.bin"))
            assert not (home / "work" / str(run.execution_id) / "ingest" / "1").exists()
    finally:
        server.close()
