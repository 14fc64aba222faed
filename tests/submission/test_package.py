import hashlib
import io
import os
import zipfile
from pathlib import Path

import pytest

from tests.submission.conftest import write_flow
from tideflow.cli.loader import load_workflows
from tideflow.client.identity import snapshot_identity
from tideflow.client.package import build_package, extract_package
from tideflow.compiler import compile
from tideflow.errors import InvalidArgumentError


def identity_of(flow: Path) -> str:
    wf = load_workflows(flow)[0]
    package = build_package(flow)
    processors = {n.name: n.processor for n in wf.graph.nodes if n.processor is not None}
    return snapshot_identity(compile(wf), package.files, processors)


def add_noise(root: Path) -> None:
    """Everything a package leaves out."""
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "steps.cpython-311.pyc").write_bytes(b"\x00cache")
    (root / "stale.pyc").write_bytes(b"\x00")
    for cache in (
        ".git",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tideflow",
        "node_modules",
    ):
        (root / cache).mkdir()
        (root / cache / "blob").write_text("x")
    for venv in (".venv", "venv"):
        (root / venv / "lib").mkdir(parents=True)
        (root / venv / "lib" / "site.py").write_text("x")
    (root / "env-by-another-name" / "lib").mkdir(parents=True)
    (root / "env-by-another-name" / "pyvenv.cfg").write_text("home = /usr\n")
    (root / "env-by-another-name" / "lib" / "mod.py").write_text("x")


def test_package_holds_code_and_requirements_but_no_caches_or_environments(flow_dir: Path) -> None:
    (flow_dir / "lib").mkdir()
    (flow_dir / "lib" / "features.py").write_text("A = 1\n")
    (flow_dir / "lib" / "__pycache__").mkdir()
    (flow_dir / "lib" / "__pycache__" / "features.pyc").write_bytes(b"\x00")
    add_noise(flow_dir)

    package = build_package(flow_dir / "flow.py")

    names = zipfile.ZipFile(io.BytesIO(package.data)).namelist()
    assert names == ["flow.py", "lib/features.py", "requirements.txt", "steps.py"]
    assert [path for path, _ in package.files] == names
    assert package.has_requirements
    assert package.sha256 == hashlib.sha256(package.data).hexdigest()
    assert (
        dict(package.files)["steps.py"]
        == hashlib.sha256((flow_dir / "steps.py").read_bytes()).hexdigest()
    )


def test_package_skips_symlinks(flow_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("do not ship")
    (flow_dir / "link.txt").symlink_to(outside)
    assert "link.txt" not in dict(build_package(flow_dir).files)


def test_zip_is_deterministic_whatever_the_timestamps(flow_dir: Path) -> None:
    first = build_package(flow_dir)
    for file in flow_dir.iterdir():
        os.utime(file, (1_000_000_000, 1_000_000_000))
    second = build_package(flow_dir)
    assert first.data == second.data
    assert first.sha256 == second.sha256


def test_package_round_trips_through_extract(flow_dir: Path, tmp_path: Path) -> None:
    target = extract_package(build_package(flow_dir).data, tmp_path / "out")
    assert (target / "steps.py").read_text() == (flow_dir / "steps.py").read_text()


def test_extract_refuses_entries_outside_the_target(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../evil.py", "x")
    with pytest.raises(InvalidArgumentError, match=r"'\.\./evil\.py' points outside"):
        extract_package(buffer.getvalue(), tmp_path / "out")


def test_a_package_over_the_limit_is_refused_naming_the_largest_files(flow_dir: Path) -> None:
    (flow_dir / "data.bin").write_bytes(os.urandom(200_000))
    with pytest.raises(
        InvalidArgumentError, match=r"exceeds 0\.1 MB; the largest files are data\.bin"
    ):
        build_package(flow_dir, max_bytes=100_000)


def test_missing_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        build_package(tmp_path / "nowhere")


def test_identity_ignores_caches_timestamps_and_the_working_directory(
    flow_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = flow_dir / "flow.py"
    before = identity_of(flow)
    add_noise(flow_dir)
    for file in flow_dir.iterdir():
        os.utime(file, (1_000_000_000, 1_000_000_000))
    monkeypatch.chdir(tmp_path)  # node locations are relative to the cwd
    assert identity_of(flow) == before
    monkeypatch.chdir(flow_dir)
    assert identity_of(Path("flow.py")) == before


def test_identity_changes_with_code(flow_dir: Path) -> None:
    flow = flow_dir / "flow.py"
    before = identity_of(flow)
    (flow_dir / "steps.py").write_text((flow_dir / "steps.py").read_text() + "\n# changed\n")
    assert identity_of(flow) != before


def test_identity_changes_with_a_new_file_or_requirements(flow_dir: Path) -> None:
    flow = flow_dir / "flow.py"
    before = identity_of(flow)
    (flow_dir / "requirements.txt").write_text("numpy>=2\n")
    changed = identity_of(flow)
    assert changed != before
    (flow_dir / "helpers.py").write_text("X = 1\n")
    assert identity_of(flow) != changed


def test_identity_changes_with_rules(flow_dir: Path, tmp_path: Path) -> None:
    before = identity_of(flow_dir / "flow.py")
    other = tmp_path / "other"
    flow = write_flow(other, rule='wf.with_start("report", "ingest")')
    assert identity_of(flow) != before


def test_identity_changes_with_processor_state_set_outside_the_files(flow_dir: Path) -> None:
    flow = flow_dir / "flow.py"
    wf = load_workflows(flow)[0]
    package = build_package(flow)
    plan = compile(wf)
    processors = {n.name: n.processor for n in wf.graph.nodes if n.processor is not None}
    before = snapshot_identity(plan, package.files, processors)
    processors["read_dataset_1"].threshold = 99  # e.g. read from an environment variable
    assert snapshot_identity(plan, package.files, processors) != before
