"""Code packages are input: bounded (unpacked size, entries, ratio) before anything is unpacked.

Bombs are built here, in the test: a zip of zeros (DEFLATE's ~1,000:1), a zip of many empty
files, a zip whose entries share compressed bytes, a zip that lies about its sizes.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tideflow.client.remote.channel import RpcChannel
from tideflow.client.remote.workflow import RemoteWorkflowService
from tideflow.errors import InvalidArgumentError
from tideflow.metadata.package import PackageLimits, check_package, extract_package
from tideflow.store.blob import BlobStore
from tideflow.testing import TideflowTestServer

MB = 1024 * 1024


def zip_of(files: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method, compresslevel=9) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def zip_bomb(unpacked: int = 40 * MB) -> bytes:
    """One entry of zeros: a few tens of kB that unpack to ``unpacked`` bytes."""
    return zip_of({"flow.py": b"x = 1\n", "zeros.bin": bytes(unpacked)})


def file_count_bomb(count: int) -> bytes:
    return zip_of({f"f{i:06}.py": b"" for i in range(count)}, method=zipfile.ZIP_STORED)


def overlapping(copies: int) -> bytes:
    """``copies`` central-directory entries that all point at one compressed entry."""
    data = bytearray(zip_of({"a.bin": bytes(512 * 1024)}))
    eocd = data.rindex(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack_from("<II", data, eocd + 12)
    record = bytes(data[cd_offset : cd_offset + cd_size])
    name_at = 46  # a.bin -> b.bin, c.bin ...: same length, another name
    records = b"".join(
        record[:name_at] + bytes([ord("a") + i]) + record[name_at + 1 :] for i in range(copies)
    )
    eocd_record = bytearray(data[eocd:])
    struct.pack_into("<HHI", eocd_record, 8, copies, copies, len(records))
    return bytes(data[:cd_offset]) + records + bytes(eocd_record)


def understated(real: bytes, declared: int) -> bytes:
    """The zip of one entry ``real``, whose headers declare ``declared`` bytes instead."""
    data = bytearray(zip_of({"big.bin": real}))
    local = data.index(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, declared)
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, declared)
    return bytes(data)


# -- the checks, in-process ----------------------------------------------------------------------


def with_symlink(name: str, target: str) -> bytes:
    """A zip whose entry ``name`` is a symbolic link to ``target`` (as ``zip -y`` stores it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(name)
        info.create_system = 3  # Unix: the mode is in the high bits
        info.external_attr = (0o120777 << 16) & 0xFFFF0000
        archive.writestr(info, target)
    return buffer.getvalue()


def test_an_entry_that_clashes_with_another_is_refused_naming_it(tmp_path: Path) -> None:
    data = zip_of({"lib": b"a file", "lib/x.py": b"a file under a file"})
    with pytest.raises(InvalidArgumentError, match=r"entry 'lib/x\.py' clashes with another"):
        extract_package(data, tmp_path / "out")


def test_a_zip_bomb_is_refused_by_its_ratio_naming_the_limit(tmp_path: Path) -> None:
    bomb = zip_bomb()
    assert len(bomb) < 100_000
    with pytest.raises(
        InvalidArgumentError, match=r"'zeros\.bin' .* the limit is 100 .*--max-package-ratio"
    ):
        check_package(bomb, PackageLimits())
    with pytest.raises(InvalidArgumentError, match="--max-package-ratio"):
        extract_package(bomb, tmp_path / "out")
    assert not (tmp_path / "out" / "zeros.bin").exists()  # refused before writing


def test_total_unpacked_size_is_bounded(tmp_path: Path) -> None:
    package = zip_of({"a.bin": bytes(3 * MB), "b.bin": bytes(3 * MB)})
    limits = PackageLimits(max_unpacked_bytes=5 * MB, max_ratio=10_000)
    with pytest.raises(
        InvalidArgumentError,
        match=r"unpacks to 6291456 bytes; the limit is 5242880 bytes .*--max-package-unpacked",
    ):
        check_package(package, limits)
    summary = check_package(package, PackageLimits(max_ratio=10_000))
    assert (summary.files, summary.unpacked_bytes) == (2, 6 * MB)


def test_a_file_count_bomb_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        InvalidArgumentError, match=r"holds 10001 entries; the limit is 10000 .*--max-package-files"
    ):
        check_package(file_count_bomb(10_001), PackageLimits())
    assert check_package(file_count_bomb(10), PackageLimits(max_files=10)).files == 10


def test_entries_sharing_compressed_bytes_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="share compressed bytes"):
        check_package(overlapping(20), PackageLimits())


def test_small_very_compressible_files_are_fine(tmp_path: Path) -> None:
    package = zip_of({"blank.txt": bytes(MB), "flow.py": b"x = 1\n"})
    extract_package(package, tmp_path / "out")
    assert (tmp_path / "out" / "blank.txt").stat().st_size == MB


def test_declared_sizes_are_not_trusted_while_extracting(tmp_path: Path) -> None:
    package = understated(bytes(4 * MB), declared=1000)
    assert check_package(package, PackageLimits()).unpacked_bytes == 1000  # the list lies
    with pytest.raises(
        InvalidArgumentError,
        match=r"'big\.bin' (unpacks to more than its declared 1000 bytes|cannot be unpacked)",
    ):
        extract_package(package, tmp_path / "out")
    written = tmp_path / "out" / "big.bin"
    assert not written.exists() or written.stat().st_size <= 1000


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a zip at all", "not a readable zip archive"),
        (b"", "not a readable zip archive"),
        (zip_of({"/etc/passwd": b"x"}), "an absolute path"),
        (zip_of({"a/../../up.py": b"x"}), r"a \.\. part"),
    ],
)
def test_malformed_packages_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        check_package(data, PackageLimits())


def test_limits_must_be_positive() -> None:
    with pytest.raises(InvalidArgumentError, match="max_files must be > 0"):
        PackageLimits(max_files=0)


# -- at submit, on a real server -----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TideflowTestServer]:
    home = tmp_path_factory.mktemp("home")
    with TideflowTestServer(home=home, args=["--max-package-files", "50"]) as running:
        yield running


def upload(server: TideflowTestServer, data: bytes) -> str:
    channel = RpcChannel(server.url, project="demo")
    try:
        return RemoteWorkflowService(channel).upload_package("demo", data)
    finally:
        channel.close()


def stored_packages(server: TideflowTestServer) -> list[Path]:
    root = server.home / "blobs" / "packages"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize(
    ("package", "message"),
    [
        (
            zip_bomb(),
            r"code package refused: entry 'zeros\.bin' unpacks from \d+ to 41943040 bytes",
        ),
        (
            file_count_bomb(51),
            r"holds 51 entries; the limit is 50 \(the server's --max-package-files\)",
        ),
        (overlapping(20), "share compressed bytes"),
        (b"PK\x03\x04 garbage", "not a readable zip archive"),
        (with_symlink("flow.py", "/etc/passwd"), "entry 'flow.py' is a symbolic link"),
    ],
    ids=["zip-bomb", "file-count-bomb", "overlapping", "not-a-zip", "symlink"],
)
def test_a_bad_package_is_refused_at_upload_and_nothing_stays(
    server: TideflowTestServer, package: bytes, message: str
) -> None:
    before = stored_packages(server)
    with pytest.raises(InvalidArgumentError, match=message):
        upload(server, package)
    assert stored_packages(server) == before  # neither the package nor a temporary file


def test_a_good_package_is_kept(server: TideflowTestServer) -> None:
    package = zip_of({"flow.py": b"x = 1\n"})
    uri = upload(server, package)
    digest = hashlib.sha256(package).hexdigest()
    assert uri.endswith(digest)
    assert BlobStore(str(server.home / "blobs")).get("packages", digest) == package
    assert not [p for p in stored_packages(server) if p.name.endswith(".tmp")]


def test_server_options_are_checked(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "tideflow", "server", "start", "--max-package-unpacked", "lots"],
        capture_output=True,
        text=True,
        env={"TIDEFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--max-package-unpacked must be a size such as" in result.stderr
