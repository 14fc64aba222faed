"""The Blob Service: ``c.blobs.put(data) -> uri`` and ``c.blobs.get(uri) -> bytes``.

Models, artifacts and any other bytes a job wants to keep go to the same content-addressed
:class:`~tideflow.store.blob.BlobStore` as code packages, each *kind* in its own directory
(``models``, ``artifacts``, ``data``). The key is the SHA-256 of the content:

- putting the same bytes twice stores one copy and returns the same URI, so a retried upload
  (or two jobs saving one model) never conflicts;
- a read is verified against the hash; bytes changed after they were stored are refused.

A URI is the store's own URL of the blob (``<root>/<kind>/<xx>/<sha256>``), readable with
fsspec by anyone who can see the store. To read one through the service only its
``<kind>/<xx>/<sha256>`` tail matters, so a URI stays valid for remote clients, whose server
lays the store out under a root they cannot see. Blobs are shared by the projects of a store:
the hash is the capability (it names content, it does not grant access to a project's
metadata).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from tideflow.domain.limits import MAX_BLOB_BYTES
from tideflow.errors import InvalidArgumentError
from tideflow.store.blob import BlobStore, StoredBlob

BLOB_KINDS = ("models", "artifacts", "data")
"""The kinds of blob the service stores (code packages go through the workflow service)."""
DEFAULT_KIND = "data"

_TAIL = re.compile(r"(?:^|/)([a-z]+)/([0-9a-f]{2})/([0-9a-f]{64})$")


def check_kind(kind: str) -> str:
    """Return ``kind`` if the service stores that kind of blob, else raise InvalidArgumentError."""
    if kind not in BLOB_KINDS:
        raise InvalidArgumentError(
            f"blob kind must be one of {', '.join(BLOB_KINDS)}, got {kind!r}", field="kind"
        )
    return kind


def check_size(size: int) -> None:
    """Raise InvalidArgumentError if a blob of ``size`` bytes is over :data:`MAX_BLOB_BYTES`."""
    if size > MAX_BLOB_BYTES:
        raise InvalidArgumentError(
            f"blob of {size} bytes exceeds the limit of {MAX_BLOB_BYTES} bytes", field="data"
        )


def parse_uri(uri: str) -> tuple[str, str]:
    """The ``(kind, sha256)`` a blob URI names.

    Raises:
        InvalidArgumentError: ``uri`` does not end in ``<kind>/<xx>/<sha256>`` of a stored kind.
    """
    match = _TAIL.search(uri) if isinstance(uri, str) else None
    if match is None or match.group(3)[:2] != match.group(2):
        raise InvalidArgumentError(
            f"{uri!r} is not a blob URI (it must end in <kind>/<xx>/<sha256>)", field="uri"
        )
    return check_kind(match.group(1)), match.group(3)


class BlobService:
    """Put and get content-addressed blobs (see the module docstring).

    Args:
        blobs: The blob store (shared with code packages).
    """

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs

    def put(
        self, project: str, data: bytes, *, kind: str = DEFAULT_KIND, sha256: str | None = None
    ) -> str:
        """Store ``data`` and return its URI; storing the same bytes again is a no-op.

        Args:
            project: The caller's project (blobs are shared by a store's projects).
            data: The bytes.
            kind: ``models``, ``artifacts`` or ``data``.
            sha256: What the caller believes the hash is; checked when given.

        Raises:
            InvalidArgumentError: Unknown kind, too big, not bytes, or not hashing to ``sha256``.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidArgumentError(
                f"blob data must be bytes, got {type(data).__name__}", field="data"
            )
        check_size(len(data))
        return self._blobs.put(check_kind(kind), bytes(data), sha256=sha256)

    def put_stream(
        self,
        project: str,
        chunks: Iterable[bytes],
        *,
        kind: str = DEFAULT_KIND,
        sha256: str | None = None,
    ) -> StoredBlob:
        """:meth:`put` of bytes arriving in pieces: streamed to a temporary file, never joined.

        The size limit is checked as pieces arrive; on any failure (too big, wrong hash, a
        call cancelled, a full disk) the temporary file is removed.

        Raises:
            InvalidArgumentError: Unknown kind, too big, or not hashing to ``sha256``.
            ResourceExhaustedError: The blob store's disk is full.
        """
        check_kind(kind)

        def bounded() -> Iterator[bytes]:
            size = 0
            for chunk in chunks:
                size += len(chunk)
                check_size(size)  # refuse before writing more of it
                yield chunk

        return self._blobs.put_stream(kind, bounded(), sha256=sha256)

    def get(self, project: str, uri: str) -> bytes:
        """The bytes of the blob at ``uri``, verified against its hash.

        Raises:
            InvalidArgumentError: ``uri`` is not a blob URI.
            NotFoundError: No such blob.
            FailedPreconditionError: The stored bytes no longer hash to the URI's SHA-256.
        """
        kind, sha256 = parse_uri(uri)
        return self._blobs.get(kind, sha256, name=f"blob {uri}")

    def stream(self, project: str, uri: str) -> tuple[str, int, Iterator[bytes]]:
        """The SHA-256, size and pieces of the blob at ``uri`` (verified before the first piece).

        Raises:
            InvalidArgumentError: ``uri`` is not a blob URI.
            NotFoundError: No such blob.
            FailedPreconditionError: The stored bytes no longer hash to the URI's SHA-256.
        """
        kind, sha256 = parse_uri(uri)
        size, pieces = self._blobs.stream(kind, sha256, name=f"blob {uri}")
        return sha256, size, pieces

    def uri(self, kind: str, sha256: str) -> str:
        """The URI a blob of that kind and hash has (or would have)."""
        return self._blobs.uri(check_kind(kind), sha256)
