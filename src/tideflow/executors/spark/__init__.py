"""The spark executor: each attempt of a ``spark`` job is one ``spark-submit`` on this host.

All of the attempt's lifecycle is the supervisor's (:mod:`tideflow.executors.supervisor`);
:mod:`.platform` says only how ``spark-submit`` is started, read through its log, and stopped
(docs/engines.md tells users the same).
"""

from __future__ import annotations

from tideflow.executors.spark.platform import SparkPlatform, SparkSettings
from tideflow.executors.supervisor import AttemptSupervisor

__all__ = ["SparkExecutor", "SparkPlatform", "SparkSettings"]


class SparkExecutor(AttemptSupervisor):
    """Spark jobs as ``spark-submit`` processes: supervised, stoppable, re-attached."""

    platform_class = SparkPlatform
    platform: SparkPlatform

    @property
    def settings(self) -> SparkSettings:
        """Its options."""
        return self.platform.settings

    def application_id(self, job_execution_id: int) -> str | None:
        """The Spark application id of an attempt this executor watches, once reported."""
        return self.platform.application_id(job_execution_id)
