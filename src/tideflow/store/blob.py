"""The blob store: immutable bytes addressed by their SHA-256, on any fsspec filesystem.

Code packages (and later models and artifacts) live here, not in the SQL store. A blob's key is
its content hash, so storing the same bytes twice is a no-op and two writers of one blob cannot
conflict. Reading verifies the hash: bytes changed after they were stored (a tampered or
corrupted package) are refused with :class:`~tideflow.errors.FailedPreconditionError`, which
names the blob, rather than handed to a job.

Writes go to a temporary name first and are moved into place, so a crash never leaves a
half-written blob under its final key (on filesystems where a move is atomic, as local disks).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from tideflow.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError

_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data``, as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def check_sha256(value: str, what: str = "sha256") -> str:
    """Return ``value`` if it is 64 lowercase hex digits.

    Raises:
        InvalidArgumentError: It is not.
    """
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise InvalidArgumentError(
            f"{what} must be 64 lowercase hex digits, got {value!r}", field=what
        )
    return value


class BlobStore:
    """Content-addressed blobs under ``root`` (a local directory or any fsspec URL).

    Args:
        root: ``/path/to/blobs``, ``file:///...``, ``memory://...``, ``s3://bucket/prefix`` ...
        storage_options: Passed to the fsspec filesystem (credentials, endpoints).
    """

    def __init__(self, root: str, **storage_options: Any) -> None:
        # fsspec ships no type information; it is a core dependency, imported when used.
        from fsspec.core import url_to_fs  # type: ignore[import-untyped]

        self.root = root.rstrip("/")
        self._fs, self._path = url_to_fs(self.root, **storage_options)
        self._path = self._path.rstrip("/")

    def _key_path(self, kind: str, sha256: str) -> str:
        # Two-character fan-out keeps directories small on local disks.
        return f"{self._path}/{kind}/{sha256[:2]}/{sha256}"

    def uri(self, kind: str, sha256: str) -> str:
        """The URL a blob is (or would be) stored at."""
        return f"{self.root}/{kind}/{sha256[:2]}/{sha256}"

    def put(self, kind: str, data: bytes, *, sha256: str | None = None) -> str:
        """Store ``data`` under its SHA-256 and return its URI; storing it again is a no-op.

        Args:
            kind: The family of blob (``packages``, ``models``, ...): a directory under the root.
            data: The bytes.
            sha256: What the caller believes the hash is; checked when given.

        Raises:
            InvalidArgumentError: ``sha256`` is given and does not match ``data``.
        """
        actual = sha256_hex(data)
        if sha256 is not None and check_sha256(sha256) != actual:
            raise InvalidArgumentError(
                f"the {kind} blob's SHA-256 is {actual}, not {sha256} as declared "
                "(the upload was truncated or altered)",
                field="sha256",
            )
        path = self._key_path(kind, actual)
        if not self._intact(path, actual):
            parent = path.rsplit("/", 1)[0]
            self._fs.makedirs(parent, exist_ok=True)
            temporary = f"{parent}/.{actual}.{uuid.uuid4().hex}.tmp"
            with self._fs.open(temporary, "wb") as out:
                out.write(data)
            self._fs.mv(temporary, path)
        return self.uri(kind, actual)

    def _intact(self, path: str, sha256: str) -> bool:
        """Whether a blob is stored at ``path`` with the right content (a bad one is replaced)."""
        if not self._fs.exists(path):
            return False
        with self._fs.open(path, "rb") as blob:
            return sha256_hex(blob.read()) == sha256

    def exists(self, kind: str, sha256: str) -> bool:
        """Whether a blob with that hash is stored (its content is not checked)."""
        return bool(self._fs.exists(self._key_path(kind, check_sha256(sha256))))

    def get(self, kind: str, sha256: str, *, name: str | None = None) -> bytes:
        """The bytes of blob ``sha256``, verified against the hash.

        Args:
            kind: The family of blob.
            sha256: Its hash.
            name: How to name the blob in errors (``code package of snapshot 3``).

        Raises:
            NotFoundError: No such blob.
            FailedPreconditionError: The stored bytes do not hash to ``sha256`` (changed after
                they were stored); nothing is returned.
        """
        path = self._key_path(kind, check_sha256(sha256))
        label = name or f"{kind} blob {sha256}"
        try:
            with self._fs.open(path, "rb") as blob:
                data: bytes = blob.read()
        except FileNotFoundError:
            raise NotFoundError(
                kind, sha256, message=f"{label} is missing from the blob store at {self.root}"
            ) from None
        actual = sha256_hex(data)
        if actual != sha256:
            raise FailedPreconditionError(
                f"{label} at {self.uri(kind, sha256)} is refused: its content hashes to "
                f"{actual}, not {sha256}; it was modified after upload (submit the workflow "
                "again to store a good copy)"
            )
        return data

    def __repr__(self) -> str:
        return f"BlobStore({self.root!r})"
