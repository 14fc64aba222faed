"""The Blob Service over gRPC: chunked uploads and downloads, verified at both ends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc

from tideflow.client.remote.channel import RpcChannel, translate
from tideflow.errors import FailedPreconditionError, InvalidArgumentError
from tideflow.metadata.blob import DEFAULT_KIND, BlobService, check_kind, check_size, parse_uri
from tideflow.rpc.servicers.scheduler import chunks
from tideflow.rpc.v1 import blob_pb2 as b
from tideflow.rpc.v1 import blob_pb2_grpc as g
from tideflow.store.blob import sha256_hex

TRANSFER_TIMEOUT = 300.0
"""Seconds an upload or download may take (blobs can be large)."""


class RemoteBlobService(BlobService):
    """:class:`BlobService`'s interface; the blob store is the server's."""

    def __init__(self, channel: RpcChannel) -> None:  # no blob store here: all remote
        self._rpc = channel
        self._stub = g.BlobServiceStub(channel.channel)

    def put(
        self, project: str, data: bytes, *, kind: str = DEFAULT_KIND, sha256: str | None = None
    ) -> str:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidArgumentError(
                f"blob data must be bytes, got {type(data).__name__}", field="data"
            )
        data = bytes(data)
        check_size(len(data))  # fail before sending anything the server would refuse
        check_kind(kind)
        declared = sha256 or sha256_hex(data)

        def requests() -> Iterator[b.UploadBlobRequest]:
            for index, chunk in enumerate(chunks(data)):
                first = index == 0
                yield b.UploadBlobRequest(
                    kind=kind if first else "", sha256=declared if first else "", chunk=chunk
                )

        def call(_: object, **kwargs: Any) -> b.UploadBlobResponse:
            # A fresh request stream per attempt: a retry after UNAVAILABLE resends everything.
            return self._stub.UploadBlob(requests(), **kwargs)  # type: ignore[no-any-return]

        response = self._rpc.unary(call, None, mutating=True, timeout=TRANSFER_TIMEOUT)
        return response.uri

    def get(self, project: str, uri: str) -> bytes:
        parse_uri(uri)  # a malformed URI fails here, without a call
        request = b.GetBlobRequest(uri=uri)
        delays = self._rpc.retry.delays()
        while True:
            try:
                stream = self._stub.GetBlob(
                    request, timeout=TRANSFER_TIMEOUT, metadata=self._rpc.metadata(mutating=False)
                )
                declared = ""
                parts: list[bytes] = []
                for message in stream:
                    declared = declared or message.sha256
                    parts.append(message.chunk)
                break
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.UNAVAILABLE:
                    delay = next(delays, None)
                    if delay is not None:
                        time.sleep(delay)
                        continue
                raise translate(error) from None
        data = b"".join(parts)
        actual = sha256_hex(data)
        expected = parse_uri(uri)[1]
        if actual != declared or actual != expected:  # damaged on the way: refuse it here too
            raise FailedPreconditionError(
                f"blob {uri} arrived with SHA-256 {actual}, not {expected}; refused"
            )
        return data

    def uri(self, kind: str, sha256: str) -> str:
        raise FailedPreconditionError("the blob store of a remote client is on the server")
