"""Code packages: the workflow's directory as a deterministic zip, with its SHA-256.

What goes in (docs/submission.md says the same to users): every regular file under the
package root, except

- directories named ``__pycache__``, ``.git``, ``.hg``, ``.svn``, ``.tideflow``,
  ``.mypy_cache``, ``.pytest_cache``, ``.ruff_cache``, ``node_modules``, ``.venv``, ``venv``,
  ``.tox``, ``.nox``, ``.ipynb_checkpoints``;
- any directory holding a ``pyvenv.cfg`` (a virtual environment, whatever its name);
- files ending in ``.pyc`` / ``.pyo``, and ``.DS_Store``;
- symbolic links (a link can point outside the root; its target's content would be a surprise).

The zip is deterministic -- entries sorted by path, a fixed timestamp (1980-01-01), fixed
permissions, DEFLATE at a fixed level -- so the same files give the same bytes on any machine.
Still, the *snapshot identity* is not taken over the zip bytes (zlib versions may differ): it
is computed from ``files`` (path -> content SHA-256), see :mod:`tideflow.client.identity`.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tideflow.domain.limits import MAX_PACKAGE_BYTES
from tideflow.errors import InvalidArgumentError
from tideflow.metadata.package import PackageLimits
from tideflow.metadata.package import extract_package as bounded_extract

EXCLUDED_DIRS = frozenset(
    {
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".tideflow",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "node_modules",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".ipynb_checkpoints",
    }
)
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
EXCLUDED_FILES = frozenset({".DS_Store"})
REQUIREMENTS = "requirements.txt"

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
_FILE_MODE = 0o644 << 16


@dataclass(frozen=True)
class CodePackage:
    """A built code package.

    Attributes:
        root: The directory that was packaged.
        data: The zip's bytes.
        sha256: The zip's SHA-256 (what the blob store keys and verifies it by).
        files: Each packaged file's path (relative, ``/``-separated) -> its content SHA-256,
            sorted by path.
    """

    root: Path
    data: bytes
    sha256: str
    files: tuple[tuple[str, str], ...]

    @property
    def has_requirements(self) -> bool:
        """Whether the package carries a top-level ``requirements.txt``."""
        return any(path == REQUIREMENTS for path, _ in self.files)


def package_files(root: Path) -> list[Path]:
    """The files under ``root`` that a package includes, sorted by their relative path."""
    found: list[Path] = []
    for directory, dirs, files in os.walk(root, followlinks=False):
        here = Path(directory)
        # Pruned in place, so os.walk never descends into excluded trees.
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in EXCLUDED_DIRS
            and not (here / d).is_symlink()
            and not (here / d / "pyvenv.cfg").exists()
        )
        for name in files:
            path = here / name
            if (
                name in EXCLUDED_FILES
                or name.endswith(EXCLUDED_SUFFIXES)
                or path.is_symlink()
                or not path.is_file()
            ):
                continue
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def build_package(source: str | Path, *, max_bytes: int = MAX_PACKAGE_BYTES) -> CodePackage:
    """Zip ``source`` (a directory, or a file whose directory is packaged).

    Raises:
        InvalidArgumentError: ``source`` does not exist, or the package would exceed
            ``max_bytes`` (the message names the largest files, to exclude or move).
    """
    path = Path(source).resolve()
    if not path.exists():
        raise InvalidArgumentError(f"{str(source)!r} does not exist", field="source")
    root = path if path.is_dir() else path.parent
    if (root / "pyvenv.cfg").exists():
        raise InvalidArgumentError(
            f"{str(root)!r} is a virtual environment, not a workflow directory", field="source"
        )
    files = package_files(root)
    buffer = io.BytesIO()
    digests: list[tuple[str, str]] = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for file in files:
            relative = file.relative_to(root).as_posix()
            content = file.read_bytes()
            digests.append((relative, hashlib.sha256(content).hexdigest()))
            info = zipfile.ZipInfo(relative, date_time=_ZIP_TIME)
            info.external_attr = _FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever machine builds it
            archive.writestr(info, content, compresslevel=6)
            if buffer.tell() > max_bytes:
                raise _too_large(root, files, max_bytes)
    data = buffer.getvalue()
    if len(data) > max_bytes:
        raise _too_large(root, files, max_bytes)
    return CodePackage(
        root=root,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        files=tuple(digests),
    )


def _too_large(root: Path, files: list[Path], max_bytes: int) -> InvalidArgumentError:
    largest = sorted(files, key=lambda f: f.stat().st_size, reverse=True)[:5]
    listed = ", ".join(
        f"{f.relative_to(root).as_posix()} ({f.stat().st_size / 1e6:.1f} MB)" for f in largest
    )
    return InvalidArgumentError(
        f"the code package of {str(root)!r} exceeds {max_bytes / 1e6:.1f} MB; the largest "
        f"files are {listed}. Keep data out of the workflow's directory (register it as a "
        "dataset) or submit a smaller directory",
        field="source",
    )


def extract_package(data: bytes, target: str | Path, limits: PackageLimits | None = None) -> Path:
    """Unpack a package's zip into ``target`` (for job runners); returns ``target``.

    The package is input: it is checked against ``limits`` (the defaults of
    :mod:`tideflow.domain.limits` when not given) before anything is written, and its bytes
    are counted while they are (:func:`tideflow.metadata.package.extract_package`).

    Raises:
        InvalidArgumentError: An entry would land outside ``target``, or the package is over
            a limit (the message names it).
        ResourceExhaustedError: The disk under ``target`` is full.
    """
    return bounded_extract(data, target, limits)
