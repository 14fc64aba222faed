"""The ray executor's contract-suite harness (filled in with the ray executor)."""

from __future__ import annotations

import pytest

from tests.executors.contract.harness import Harness


@pytest.fixture(scope="session")
def ray_harness() -> Harness:
    pytest.skip("the ray executor is not built yet")
