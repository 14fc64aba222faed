"""The flink executor's contract-suite harness: jobs on the session's local Flink cluster.

The PyFlink environment (``<repo>/.venv-flink``, built by ``tideflow engines setup flink``) and
the loopback cluster are the ones ``tests/engines/flink`` uses, started once per session.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

import tideflow as tide
from tests.engines.flink.cluster import JOBS, flink_address, flink_environment
from tests.executors.contract.harness import JOB, Harness


@pytest.fixture(scope="session")
def flink_harness() -> Iterator[Harness]:
    environment = flink_environment()
    address = flink_address()
    sys.path.insert(0, str(JOBS))
    import flinkjobs

    def workflow(kind: str) -> tide.Workflow:
        streaming = kind == "stream"
        with (
            tide.workflow(f"flink_contract_{kind}") as wf,
            tide.job(JOB, engine="flink", streaming=streaming),
        ):
            if kind == "finish":
                tide.user_node(processor=flinkjobs.ContractFinish(), name="finish")
            elif kind == "fail":
                tide.user_node(processor=flinkjobs.Broken(), name="fail")
            else:
                tide.user_node(processor=flinkjobs.Sql(flinkjobs.CONTRACT_STREAM), name="stream")
        return wf

    try:
        yield Harness(
            executor="flink",
            options={"flink_address": address, "venv": str(environment.path)},
            workflow=workflow,
            log_text="flink contract job ran",
            error_text="flink job broken on purpose",
            env={"TIDEFLOW_FLINK_ADDRESS": address, "TIDEFLOW_FLINK_VENV": str(environment.path)},
            source=JOBS,
            timeout=300.0,
        )
    finally:
        sys.path.remove(str(JOBS))
