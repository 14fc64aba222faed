"""The Blob Service's RPCs over :class:`~tideflow.metadata.blob.BlobService`.

``UploadBlob`` counts bytes as chunks arrive and refuses a blob over the limit before holding
more of it; the declared SHA-256 is checked by the store (a truncated upload is refused, not
stored under a wrong key). ``UploadBlob`` mutates, so a retried upload carrying the same
request id gets the stored answer (and would be harmless anyway: blobs are content-addressed).
``GetBlob`` reads and verifies the whole blob before sending its first chunk.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tideflow.errors import InvalidArgumentError
from tideflow.metadata.blob import DEFAULT_KIND, BlobService, check_kind, check_size
from tideflow.rpc.call import project
from tideflow.rpc.servicers.scheduler import chunks
from tideflow.rpc.v1 import blob_pb2 as b
from tideflow.rpc.v1 import blob_pb2_grpc as g
from tideflow.store.blob import sha256_hex


class BlobServicer(g.BlobServiceServicer):
    """Upload and download of blobs; errors are mapped by the interceptor."""

    def __init__(self, blobs: BlobService) -> None:
        self._blobs = blobs

    def UploadBlob(
        self, request_iterator: Iterator[b.UploadBlobRequest], context: Any
    ) -> b.UploadBlobResponse:
        kind = declared = ""
        parts: list[bytes] = []
        size = 0
        for index, message in enumerate(request_iterator):
            if index == 0:
                kind = check_kind(message.kind or DEFAULT_KIND)
                declared = message.sha256
            size += len(message.chunk)
            check_size(size)  # refuse before holding more of it in memory
            parts.append(message.chunk)
        if not declared:
            raise InvalidArgumentError(
                "the first UploadBlob message must carry the blob's kind and sha256",
                field="sha256",
            )
        data = b"".join(parts)
        uri = self._blobs.put(project(), data, kind=kind, sha256=declared)
        return b.UploadBlobResponse(uri=uri, sha256=declared, size=len(data))

    def GetBlob(self, request: b.GetBlobRequest, context: Any) -> Iterator[b.GetBlobResponse]:
        data = self._blobs.get(project(), request.uri)
        digest = sha256_hex(data)
        for index, chunk in enumerate(chunks(data)):
            first = index == 0
            yield b.GetBlobResponse(
                sha256=digest if first else "", size=len(data) if first else 0, chunk=chunk
            )
