"""c.blobs.put / get: content-addressed, verified, in-process and over gRPC."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tideflow.client import Client, connect
from tideflow.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from tideflow.testing import TideflowTestServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TideflowTestServer]:
    with TideflowTestServer(
        home=tmp_path_factory.mktemp("home"), env={"TIDEFLOW_EXECUTORS": ""}
    ) as running:
        yield running


@pytest.fixture(params=["local", "remote"])
def client(request: pytest.FixtureRequest, server: TideflowTestServer) -> Iterator[Client]:
    url = server.db_url if request.param == "local" else server.url
    with connect(url, project="blobs") as opened:
        yield opened


def _stored_path(server: TideflowTestServer, uri: str) -> Path:
    kind, prefix, digest = uri.rsplit("/", 3)[1:]
    return server.home / "blobs" / kind / prefix / digest


def test_put_then_get_returns_the_bytes_under_their_sha256(
    client: Client, server: TideflowTestServer
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks, the last one short
    uri = client.blobs.put(data)
    assert uri.endswith(hashlib.sha256(data).hexdigest())
    assert client.blobs.get(uri) == data
    assert _stored_path(server, uri).read_bytes() == data
    assert client.blobs.put(data) == uri  # content-addressed: the same bytes, the same URI


def test_kinds_and_empty_blobs(client: Client) -> None:
    uri = client.blobs.put(b"", kind="models")
    assert "/models/" in uri
    assert client.blobs.get(uri) == b""
    with pytest.raises(InvalidArgumentError, match="blob kind must be one of"):
        client.blobs.put(b"x", kind="packages")


def test_a_tampered_blob_is_refused(client: Client, server: TideflowTestServer) -> None:
    uri = client.blobs.put(b"original " + os.urandom(8))
    _stored_path(server, uri).write_bytes(b"changed")
    with pytest.raises(FailedPreconditionError, match="modified after upload"):
        client.blobs.get(uri)


def test_unknown_and_malformed_uris(client: Client) -> None:
    missing = "x/data/ab/" + "ab" + "0" * 62
    with pytest.raises(NotFoundError, match="missing from the blob store"):
        client.blobs.get(missing)
    with pytest.raises(InvalidArgumentError, match="is not a blob URI"):
        client.blobs.get("s3://bucket/model.pkl")
    with pytest.raises(InvalidArgumentError, match="must be bytes"):
        client.blobs.put("text")  # type: ignore[arg-type]


def test_blobs_over_the_limit_are_refused_before_they_are_sent(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tideflow.metadata.blob.MAX_BLOB_BYTES", 10)
    with pytest.raises(InvalidArgumentError, match="exceeds the limit of 10 bytes"):
        client.blobs.put(b"x" * 11)
