"""The ray executor's contract-suite harness, and the one local Ray head of a test session.

The head is a real ``ray start --head`` on loopback (:class:`~tideflow.executors.ray.head.
LocalRayHead`), started once per pytest session by whichever test needs it first and stopped
when the session ends (``tests/session_end.py``). Without Ray installed the tests skip, except
in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.executors.contract.harness import Harness
from tests.executors.contract.harness_local import python_workflows
from tests.session_end import at_session_end
from tideflow.executors.ray.head import LocalRayHead

_head: LocalRayHead | None = None
_address: str | None = None


def require_ray() -> None:
    """Skip (fail in CI) when Ray is not installed."""
    if importlib.util.find_spec("ray") is None:
        reason = "Ray is not installed (pip install -e '.[ray]')"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def shared_ray_address() -> str:
    """The session's local Ray head (started on first call), as a Job Submission address."""
    global _head, _address
    require_ray()
    if _address is None:
        directory = Path(tempfile.mkdtemp(prefix="tideflow-test-ray-"))
        _head = LocalRayHead(
            directory, num_cpus=2, stop_wait=10.0, start_timeout=180.0, startup_nice=-10
        )
        at_session_end(_head.stop)
        _address = _head.address()
    return _address


@pytest.fixture(scope="session")
def ray_address() -> str:
    """The session's local Ray head."""
    return shared_ray_address()


@pytest.fixture(scope="session")
def ray_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    address = shared_ray_address()
    source, workflows = python_workflows(tmp_path_factory.mktemp("contract-ray"), platform="ray")
    try:
        yield Harness(
            executor="ray",
            options={"address": address, "poll_interval": 0.2, "stop_wait": 10.0},
            workflow=workflows.__getitem__,
            log_text="recorded [40]",
            error_text="ValueError: bad input [7]",
            env={"RAY_AUTH_MODE": "disabled"},  # explicit, as on the head
            source=source,
            timeout=120.0,
        )
    finally:
        sys.path.remove(str(source))
