"""``client.blobs``: content-addressed bytes in the blob store (models, artifacts, data)."""

from __future__ import annotations

from tideflow.errors import FailedPreconditionError
from tideflow.metadata.blob import DEFAULT_KIND, BlobService


class Blobs:
    """Put bytes, get them back by URI (see :mod:`tideflow.metadata.blob`).

    ``put`` of the same bytes returns the same URI; ``get`` verifies the SHA-256 (in-process
    against the stored file, remotely on the server and again on arrival).
    """

    def __init__(self, service: BlobService | None, project: str) -> None:
        self._service = service
        self._project = project

    @property
    def _blobs(self) -> BlobService:
        if self._service is None:
            raise FailedPreconditionError("this client has no blob store")
        return self._service

    def put(self, data: bytes, *, kind: str = DEFAULT_KIND) -> str:
        """Store ``data`` (``kind``: ``models``, ``artifacts`` or ``data``) and return its URI.

        Raises:
            InvalidArgumentError: Not bytes, an unknown kind, or over the size limit.
        """
        return self._blobs.put(self._project, data, kind=kind)

    def get(self, uri: str) -> bytes:
        """The bytes stored at ``uri``, verified against their SHA-256.

        Raises:
            InvalidArgumentError: Not a blob URI.
            NotFoundError: No such blob.
            FailedPreconditionError: The stored bytes were changed after they were put.
        """
        return self._blobs.get(self._project, uri)
