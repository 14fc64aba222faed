"""The Blob Service's RPCs over :class:`~tideflow.metadata.blob.BlobService`.

``UploadBlob`` streams the chunks to a temporary file of the blob store as they arrive (memory
stays flat whatever the size), counting bytes and refusing a blob over the limit before writing
more of it; the declared SHA-256 is checked by the store (a truncated upload is refused, not
stored under a wrong key), and the temporary file is removed on every failure. ``UploadBlob`` mutates, so a retried upload carrying the same
request id gets the stored answer (and would be harmless anyway: blobs are content-addressed).
``GetBlob`` verifies the whole blob before sending its first chunk, then sends it as it reads it
(memory stays at one chunk whatever the size).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tideflow.errors import InvalidArgumentError
from tideflow.metadata.blob import DEFAULT_KIND, BlobService, check_kind
from tideflow.rpc.call import project
from tideflow.rpc.v1 import blob_pb2 as b
from tideflow.rpc.v1 import blob_pb2_grpc as g


class BlobServicer(g.BlobServiceServicer):
    """Upload and download of blobs; errors are mapped by the interceptor."""

    def __init__(self, blobs: BlobService) -> None:
        self._blobs = blobs

    def UploadBlob(
        self, request_iterator: Iterator[b.UploadBlobRequest], context: Any
    ) -> b.UploadBlobResponse:
        messages = iter(request_iterator)
        first = next(messages, None)
        if first is None or not first.sha256:
            raise InvalidArgumentError(
                "the first UploadBlob message must carry the blob's kind and sha256",
                field="sha256",
            )

        def pieces() -> Iterator[bytes]:
            yield first.chunk
            for message in messages:
                yield message.chunk

        stored = self._blobs.put_stream(
            project(), pieces(), kind=check_kind(first.kind or DEFAULT_KIND), sha256=first.sha256
        )
        return b.UploadBlobResponse(uri=stored.uri, sha256=stored.sha256, size=stored.size)

    def GetBlob(self, request: b.GetBlobRequest, context: Any) -> Iterator[b.GetBlobResponse]:
        digest, size, pieces = self._blobs.stream(project(), request.uri)
        for index, chunk in enumerate(pieces):
            first = index == 0
            yield b.GetBlobResponse(
                sha256=digest if first else "", size=size if first else 0, chunk=chunk
            )
