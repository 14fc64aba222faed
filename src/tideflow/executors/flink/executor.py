"""The ``flink`` executor: each attempt is one PyFlink program submitted to a Flink cluster.

The attempt's lifecycle -- queueing, its working directory, STARTING / RUNNING / its end,
stops, timeouts, re-attaching after a restart -- is the supervisor's
(:mod:`tideflow.executors.supervisor`), the same as every executor's, so a Flink job behaves
like any other towards the scheduler. What only Flink does (its environment and local cluster,
the client that submits, savepoints, the REST API, metrics and lineage) is the platform's
(:mod:`tideflow.executors.flink.platform`); docs/engines.md tells users both.

This module stays the executor's entry point (``tideflow.executors.flink.executor:FlinkExecutor``)
and keeps the helpers tests and tools reach through the executor.
"""

from __future__ import annotations

from pathlib import Path

from tideflow.executors.flink.cluster import LocalFlinkCluster
from tideflow.executors.flink.environment import FlinkEnvironment
from tideflow.executors.flink.platform import FlinkPlatform, FlinkSettings
from tideflow.executors.supervisor import AttemptSupervisor

__all__ = ["FlinkExecutor", "FlinkPlatform", "FlinkSettings"]


class FlinkExecutor(AttemptSupervisor):
    """Job attempts as PyFlink programs on a Flink cluster (local by default)."""

    platform_class = FlinkPlatform
    platform: FlinkPlatform

    @property
    def settings(self) -> FlinkSettings:
        """Its options."""
        return self.platform.settings

    def environment(self) -> FlinkEnvironment:
        """The PyFlink environment jobs are built in."""
        return self.platform.environment()

    def local_cluster(self) -> LocalFlinkCluster:
        """The local cluster the executor starts when no address is configured."""
        return self.platform.local_cluster()

    def savepoint_dir(self, execution_id: int, job: str, attempt: int) -> Path:
        """Where a STOP puts an attempt's savepoint."""
        return self.platform.savepoint_dir(execution_id, job, attempt)
