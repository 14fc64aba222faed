"""The executor contract suite: every executor, one set of tests.

Each executor contributes a session fixture ``<name>_harness`` in ``harness_<name>.py``
(imported below, and named in ``EXECUTORS``); the ``harness`` fixture is parametrised over
them, and each parameter carries the executor's marker (``ray``, ``flink``, ``spark``) so
``-m 'not ray'`` and friends select as everywhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.executors.contract.harness import ContractRig, Harness
from tests.executors.contract.harness_flink import flink_harness  # noqa: F401
from tests.executors.contract.harness_local import local_harness  # noqa: F401
from tests.executors.contract.harness_ray import ray_harness  # noqa: F401
from tests.executors.contract.harness_spark import spark_harness  # noqa: F401
from tideflow.testing import TideflowTestServer

EXECUTORS = [
    pytest.param("local", id="local"),
    pytest.param("ray", id="ray", marks=[pytest.mark.ray, pytest.mark.slow]),
    pytest.param("flink", id="flink", marks=[pytest.mark.flink, pytest.mark.slow]),
    # A spark-submit takes ~30 s here, minutes on a loaded machine: more than the default 120 s.
    pytest.param(
        "spark", id="spark", marks=[pytest.mark.spark, pytest.mark.slow, pytest.mark.timeout(1800)]
    ),
]


@pytest.fixture(params=EXECUTORS)
def harness(request: pytest.FixtureRequest) -> Harness:
    """The harness of each executor in turn."""
    return request.getfixturevalue(f"{request.param}_harness")


@pytest.fixture
def contract_rig(
    harness: Harness,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    job_server: TideflowTestServer,
) -> Iterator[ContractRig]:
    """A rig running ``harness``'s executor, with the harness's environment set."""
    for name, value in harness.env.items():
        monkeypatch.setenv(name, value)
    rig = ContractRig(tmp_path, harness, job_server)
    try:
        yield rig
    finally:
        rig.close()
