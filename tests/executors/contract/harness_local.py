"""The local executor's contract-suite harness: processors from ``tests/executors/steps.py``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import tideflow as tide
from tests.executors.contract.harness import JOB, Harness, copy_source

STEPS = Path(__file__).parent.parent / "steps.py"


def python_workflows(
    tmp: Path, *, platform: str = "local"
) -> tuple[Path, dict[str, tide.Workflow]]:
    """A code directory holding ``tfsteps.py``, and the three contract workflows using it.

    Shared by the Python-engine executors (local, ray): the processors are pickled by
    reference, so the jobs import them from their code package, as users' jobs do.
    """
    source = copy_source({"tfsteps.py": STEPS}, tmp / "code")
    sys.path.insert(0, str(source))
    steps = importlib.import_module("tfsteps")
    started, closed = tmp / "started", tmp / "closed"
    workflows: dict[str, tide.Workflow] = {}
    with tide.workflow("finish") as wf, tide.job(JOB, platform=platform):
        value = tide.read_dataset("raw", processor=steps.Emit(40), name="source")
        tide.transform(value, processor=steps.Record(str(tmp / "record.txt")), name="rec")
    workflows["finish"] = wf
    with tide.workflow("fail") as wf, tide.job(JOB, platform=platform):
        tide.transform(tide.read_dataset("raw", processor=steps.Emit(7)), processor=steps.Fail())
    workflows["fail"] = wf
    with tide.workflow("stream") as wf, tide.job(JOB, platform=platform, streaming=True):
        tide.read_dataset("live", processor=steps.Stream(str(started), str(closed)))
    workflows["stream"] = wf
    return source, workflows


@pytest.fixture(scope="session")
def local_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    source, workflows = python_workflows(tmp_path_factory.mktemp("contract-local"))
    try:
        yield Harness(
            executor="local",
            options={"heartbeat_interval": 0.2, "stop_grace": 10.0},
            workflow=workflows.__getitem__,
            log_text="recorded [40]",
            error_text="ValueError: bad input [7]",
            source=source,
            timeout=60.0,
        )
    finally:
        sys.path.remove(str(source))
