"""The committed generated code and the dependency pins of pyproject.toml agree.

The ``*_pb2_grpc`` modules raise at import under a grpcio older than the grpcio-tools that
generated them, and protobuf warns (or refuses) when its runtime is older than the gencode or of
another major version; so the lower bounds must follow a regeneration.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tideflow.rpc.v1 import (
    common_pb2_grpc,
    metadata_pb2_grpc,
    model_center_pb2_grpc,
    notification_pb2_grpc,
    scheduler_pb2_grpc,
)

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "src" / "tideflow" / "rpc" / "v1"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _bounds(requirement: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    lower = re.search(r">=\s*([\d.]+)", requirement)
    upper = re.search(r"<\s*([\d.]+)", requirement)
    assert lower, f"{requirement!r} needs a lower bound"
    assert upper, f"{requirement!r} needs an upper bound"
    return _version(lower.group(1)), _version(upper.group(1))


def _requirement(name: str) -> str:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (found,) = [d for d in dependencies if re.match(rf"{name}\s*[<>=]", d)]
    return str(found)


def test_grpcio_pin_admits_only_versions_the_generated_code_imports_under() -> None:
    generated = {
        module.GRPC_GENERATED_VERSION
        for module in (
            common_pb2_grpc,
            metadata_pb2_grpc,
            model_center_pb2_grpc,
            notification_pb2_grpc,
            scheduler_pb2_grpc,
        )
    }
    (version,) = generated
    lower, upper = _bounds(_requirement("grpcio"))
    assert lower >= _version(version)
    assert upper[0] == _version(version)[0] + 1


def test_protobuf_pin_matches_the_gencode() -> None:
    gencode = {
        match.group(1)
        for path in GENERATED.glob("*_pb2.py")
        if (match := re.search(r"Protobuf Python Version: ([\d.]+)", path.read_text()))
    }
    (version,) = gencode
    lower, upper = _bounds(_requirement("protobuf"))
    assert lower >= _version(version)
    assert upper == (_version(version)[0] + 1,)


def test_generated_modules_import_without_warnings() -> None:
    modules = [f"tideflow.rpc.v1.{path.stem}" for path in sorted(GENERATED.glob("*_pb2*.py"))]
    script = "import importlib, sys\nfor name in sys.argv[1:]: importlib.import_module(name)"
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script, *modules],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
