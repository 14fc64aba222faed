"""The blob store: immutable bytes addressed by their SHA-256, on any fsspec filesystem.

Code packages (and later models and artifacts) live here, not in the SQL store. A blob's key is
its content hash, so storing the same bytes twice is a no-op and two writers of one blob cannot
conflict. Reading verifies the hash: bytes changed after they were stored (a tampered or
corrupted package) are refused with :class:`~tideflow.errors.FailedPreconditionError`, which
names the blob, rather than handed to a job.

Writes are streamed (:meth:`BlobStore.put_stream`): chunks go straight to a temporary file
in the kind's directory of the store, hashed on the way, so memory stays flat whatever the
size; the file is moved to its final key only once whole and checked, so a crash never leaves a
half-written blob under its final key (on filesystems where a move is atomic, as local disks).
The temporary file is removed on every failure path (a wrong hash, a refused content, a client
that goes away, a full disk). A full disk (``ENOSPC``, or a quota: ``EDQUOT``) is
:class:`~tideflow.errors.ResourceExhaustedError` "no space left under <root>": reads go on, and
writes work again once space is freed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, NamedTuple

from tideflow.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
)

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_READ_BYTES = 1024 * 1024
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
TEMPORARY_SUFFIX = ".tmp"
STALE_UPLOAD_SECONDS = 3600.0
"""An upload file untouched this long belongs to no live upload (see ``sweep_uploads``)."""
"""Names ending so in a kind's directory are uploads in progress (or left by a crash)."""


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


class StoredBlob(NamedTuple):
    """What :meth:`BlobStore.put_stream` stored: its URI, SHA-256 and size in bytes."""

    uri: str
    sha256: str
    size: int


@contextlib.contextmanager
def no_space_is_exhaustion(where: str) -> Iterator[None]:
    """Turn a full disk (``ENOSPC`` / ``EDQUOT``) inside the block into ResourceExhaustedError."""
    try:
        yield
    except OSError as e:
        if e.errno in _FULL:
            raise ResourceExhaustedError(f"no space left under {where}") from e
        raise


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
            ResourceExhaustedError: The disk is full.
        """
        return self.put_stream(kind, (data,), sha256=sha256).uri

    def put_stream(
        self,
        kind: str,
        chunks: Iterable[bytes],
        *,
        sha256: str | None = None,
        check: Callable[[IO[bytes]], object] | None = None,
    ) -> StoredBlob:
        """Store the concatenation of ``chunks`` under its SHA-256, holding one chunk at a time.

        Args:
            kind: The family of blob: a directory under the root.
            chunks: The bytes, in pieces (an upload's messages); whatever the iterator raises
                (a size limit, a cancelled call) ends the upload and is raised again.
            sha256: What the caller believes the hash is; checked when given.
            check: Called with the whole blob, open for reading, before it is moved into place
                (a code package's members are checked there); what it raises is raised again.

        Raises:
            InvalidArgumentError: ``sha256`` is malformed or does not match the bytes.
            ResourceExhaustedError: The disk is full (nothing of the blob is left behind).
        """
        if sha256 is not None:
            check_sha256(sha256)
        directory = f"{self._path}/{kind}"
        temporary = f"{directory}/.upload.{uuid.uuid4().hex}{TEMPORARY_SUFFIX}"
        digest = hashlib.sha256()
        size = 0
        try:
            with no_space_is_exhaustion(self.root):
                self._fs.makedirs(directory, exist_ok=True)
                with self._fs.open(temporary, "wb") as out:
                    for chunk in chunks:
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
            actual = digest.hexdigest()
            if sha256 is not None and sha256 != actual:
                raise InvalidArgumentError(
                    f"the {kind} blob's SHA-256 is {actual}, not {sha256} as declared "
                    "(the upload was truncated or altered)",
                    field="sha256",
                )
            if check is not None:
                with self._fs.open(temporary, "rb") as stored:
                    check(stored)
            path = self._key_path(kind, actual)
            if not self._intact(path, actual):
                with no_space_is_exhaustion(self.root):
                    self._fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
                    self._fs.mv(temporary, path)
        finally:
            self._discard(temporary)
        return StoredBlob(self.uri(kind, actual), actual, size)

    def sweep_uploads(self, older_than: float = STALE_UPLOAD_SECONDS) -> int:
        """Remove upload files a killed server left behind; how many were removed.

        An upload writes ``<kind>/.upload.<uuid>.tmp`` and removes it on every failure, but a
        server killed mid-upload cannot. Only files untouched for ``older_than`` seconds go:
        servers that share the blob store (a cluster) may be writing theirs right now.
        """
        removed = 0
        cutoff = time.time() - older_than
        try:
            leftovers = self._fs.glob(f"{self._path}/*/.upload.*{TEMPORARY_SUFFIX}")
        except OSError:
            log.warning("could not look for stale uploads under %s", self.root, exc_info=True)
            return 0
        for path in leftovers:
            try:
                if self._fs.modified(path).timestamp() > cutoff:
                    continue
                self._fs.rm(path)
                removed += 1
            except (OSError, NotImplementedError):  # gone meanwhile, or no mtime on this store
                continue
        if removed:
            log.info("removed %d stale upload file(s) under %s", removed, self.root)
        return removed

    def _discard(self, temporary: str) -> None:
        """Remove an upload's temporary file, if it is still there (moved into place: not)."""
        try:
            if self._fs.exists(temporary):
                self._fs.rm(temporary)
        except OSError:  # never hides the upload's own error; a later sweep may remove it
            log.warning("could not remove the temporary blob %s", temporary, exc_info=True)

    def _intact(self, path: str, sha256: str) -> bool:
        """Whether a blob is stored at ``path`` with the right content (a bad one is replaced)."""
        if not self._fs.exists(path):
            return False
        digest = hashlib.sha256()
        with self._fs.open(path, "rb") as blob:
            while block := blob.read(_READ_BYTES):
                digest.update(block)
        return digest.hexdigest() == sha256

    def exists(self, kind: str, sha256: str) -> bool:
        """Whether a blob with that hash is stored (its content is not checked)."""
        return bool(self._fs.exists(self._key_path(kind, check_sha256(sha256))))

    def stream(
        self, kind: str, sha256: str, *, name: str | None = None, chunk_bytes: int = _READ_BYTES
    ) -> tuple[int, Iterator[bytes]]:
        """The size of blob ``sha256`` and its bytes in pieces, verified before the first piece.

        The blob is read twice -- once to check its hash, once to hand it out -- so memory
        stays at one piece whatever its size (a download of a 500 MB model held 500 MB), and a
        changed blob is still refused before anything of it is sent. The pieces are read from
        the store as they are taken; a blob is immutable once stored under its hash.

        Raises:
            NotFoundError: No such blob.
            FailedPreconditionError: The stored bytes do not hash to ``sha256``.
        """
        path = self._key_path(kind, check_sha256(sha256))
        label = name or f"{kind} blob {sha256}"
        digest = hashlib.sha256()
        size = 0
        try:
            with self._fs.open(path, "rb") as blob:
                while block := blob.read(_READ_BYTES):
                    digest.update(block)
                    size += len(block)
        except FileNotFoundError:
            raise NotFoundError(
                kind, sha256, message=f"{label} is missing from the blob store at {self.root}"
            ) from None
        actual = digest.hexdigest()
        if actual != sha256:
            raise FailedPreconditionError(
                f"{label} at {self.uri(kind, sha256)} is refused: its content hashes to "
                f"{actual}, not {sha256}; it was modified after upload (submit the workflow "
                "again to store a good copy)"
            )

        def pieces() -> Iterator[bytes]:
            with self._fs.open(path, "rb") as blob:
                first = True
                while (block := blob.read(chunk_bytes)) or first:
                    first = False
                    yield block

        return size, pieces()

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
