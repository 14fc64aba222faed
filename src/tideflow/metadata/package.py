"""Code packages from the wire: checked before anything is unpacked, unpacked within bounds.

A code package is a zip a client built (:mod:`tideflow.client.package`) or crafted. The server
reads it as untrusted input, twice:

- **At upload** (:func:`check_package`, before the package is moved into the blob store): its
  member list -- the zip's central directory, no member is decompressed -- must describe at
  most :attr:`PackageLimits.max_files` entries, at most :attr:`PackageLimits.max_unpacked_bytes`
  in all, no entry over :data:`~tideflow.domain.limits.PACKAGE_RATIO_FLOOR` unpacking more
  than :attr:`PackageLimits.max_ratio` times its compressed size, no entry whose path leaves
  the package (absolute, ``..``, a drive, NUL), no encrypted entry, and no entries sharing
  compressed bytes (the overlapping-entries bomb: their compressed sizes add up to more than
  the archive). A refused package is :class:`~tideflow.errors.InvalidArgumentError` naming the
  limit: it is the client's input that is wrong, and sending it again cannot succeed.
- **At extraction** (:func:`extract_package`, for each attempt): the same checks, then the
  declared sizes are not trusted -- bytes are counted as they are written, and extraction stops
  at an entry's declared size or at the total limit, whichever comes first. A full disk is
  :class:`~tideflow.errors.ResourceExhaustedError` "no space left under <target>".

The limits are the server's (``tideflow server start --max-package-unpacked / --max-package-files
/ --max-package-ratio``); the defaults are in :mod:`tideflow.domain.limits`.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tideflow.domain.limits import (
    MAX_PACKAGE_FILES,
    MAX_PACKAGE_RATIO,
    MAX_PACKAGE_UNPACKED_BYTES,
    PACKAGE_RATIO_FLOOR,
)
from tideflow.errors import InvalidArgumentError
from tideflow.store.blob import no_space_is_exhaustion

_COPY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class PackageLimits:
    """What a code package may unpack to (see the module docstring).

    Attributes:
        max_unpacked_bytes: All entries together, uncompressed.
        max_files: Entries (files and folders).
        max_ratio: Uncompressed / compressed size of one entry over the ratio floor.
    """

    max_unpacked_bytes: int = MAX_PACKAGE_UNPACKED_BYTES
    max_files: int = MAX_PACKAGE_FILES
    max_ratio: float = MAX_PACKAGE_RATIO

    def __post_init__(self) -> None:
        for name in ("max_unpacked_bytes", "max_files", "max_ratio"):
            if getattr(self, name) <= 0:
                raise InvalidArgumentError(f"{name} must be > 0", field=name)


@dataclass(frozen=True)
class PackageSummary:
    """What a checked package declares: its entries and their total uncompressed size."""

    files: int
    unpacked_bytes: int


def _refuse(message: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"code package refused: {message}", field="package")


def _open(archive: IO[bytes] | bytes) -> zipfile.ZipFile:
    source = io.BytesIO(archive) if isinstance(archive, bytes | bytearray) else archive
    try:
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise _refuse(f"it is not a readable zip archive ({exc})") from None


def _archive_size(zipped: zipfile.ZipFile) -> int:
    source = zipped.fp
    assert source is not None
    position = source.tell()
    size = source.seek(0, os.SEEK_END)
    source.seek(position)
    return size


def _path_problem(name: str) -> str | None:
    if "\x00" in name:
        return "holds a NUL character"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "points outside the package (an absolute path)"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "points outside the package (a .. part)"
    return None


def _check(zipped: zipfile.ZipFile, limits: PackageLimits) -> PackageSummary:
    members = zipped.infolist()
    if len(members) > limits.max_files:
        raise _refuse(
            f"it holds {len(members)} entries; the limit is {limits.max_files} "
            "(the server's --max-package-files)"
        )
    total = compressed = 0
    for info in members:
        problem = _path_problem(info.filename)
        if problem is not None:
            raise _refuse(f"entry {info.filename!r} {problem}")
        if info.flag_bits & 0x1:
            raise _refuse(f"entry {info.filename!r} is encrypted")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise _refuse(
                f"entry {info.filename!r} is a symbolic link: a package holds regular files "
                "and folders only"
            )
        if info.file_size > PACKAGE_RATIO_FLOOR and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            raise _refuse(
                f"entry {info.filename!r} unpacks from {info.compress_size} to "
                f"{info.file_size} bytes, over {limits.max_ratio:g} times; the limit is "
                f"{limits.max_ratio:g} (the server's --max-package-ratio)"
            )
        total += info.file_size
        compressed += info.compress_size
    if total > limits.max_unpacked_bytes:
        raise _refuse(
            f"it unpacks to {total} bytes; the limit is {limits.max_unpacked_bytes} bytes "
            "(the server's --max-package-unpacked)"
        )
    if compressed > _archive_size(zipped):
        raise _refuse("its entries share compressed bytes (an overlapping-entries zip bomb)")
    return PackageSummary(files=len(members), unpacked_bytes=total)


def check_package(archive: IO[bytes] | bytes, limits: PackageLimits) -> PackageSummary:
    """Check a package's member list against ``limits``, decompressing nothing.

    Args:
        archive: The zip: bytes, or a seekable binary file open for reading.
        limits: The server's limits.

    Raises:
        InvalidArgumentError: Not a zip, or over a limit (the message names it).
    """
    with _open(archive) as zipped:
        return _check(zipped, limits)


def extract_package(
    archive: IO[bytes] | bytes, target: str | Path, limits: PackageLimits | None = None
) -> Path:
    """Unpack a package into ``target`` within ``limits``; returns ``target`` (resolved).

    What was unpacked before a refusal or a full disk stays: the caller removes ``target``
    (the attempt supervisor removes the attempt's working directory).

    Raises:
        InvalidArgumentError: Not a zip, over a limit, an entry outside ``target``, or an entry
            whose bytes do not match its declared size or checksum.
        ResourceExhaustedError: The disk under ``target`` is full.
    """
    limits = limits or PackageLimits()
    destination = Path(target).resolve()
    with _open(archive) as zipped:
        _check(zipped, limits)
        written = 0
        for info in zipped.infolist():
            path = (destination / info.filename).resolve()
            if not path.is_relative_to(destination):
                raise _refuse(f"entry {info.filename!r} points outside the target directory")
            with no_space_is_exhaustion(str(destination)):
                try:
                    if info.is_dir():
                        path.mkdir(parents=True, exist_ok=True)
                        continue
                    path.parent.mkdir(parents=True, exist_ok=True)
                    written += _copy(zipped, info, path, limits.max_unpacked_bytes - written)
                except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
                    raise _refuse(
                        f"entry {info.filename!r} clashes with another entry (a file where a "
                        f"folder is, or the other way round): {exc.strerror}"
                    ) from exc
    return destination


def _copy(zipped: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, room: int) -> int:
    """Write one entry, counting its bytes; return how many were written."""
    allowed = min(info.file_size, room)
    count = 0
    try:
        with zipped.open(info) as source, open(path, "wb") as out:
            while block := source.read(_COPY_BYTES):
                count += len(block)
                if count > allowed:
                    raise _refuse(
                        f"entry {info.filename!r} unpacks to more than "
                        + (
                            f"its declared {info.file_size} bytes"
                            if allowed == info.file_size
                            else "the room left under the server's --max-package-unpacked"
                        )
                    )
                out.write(block)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise _refuse(f"entry {info.filename!r} cannot be unpacked ({exc})") from None
    return count
