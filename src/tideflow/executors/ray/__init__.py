"""The ray executor: Python-engine jobs (``platform="ray"``) as Ray jobs (:mod:`.platform`).

All of the attempt's lifecycle is the supervisor's (:mod:`tideflow.executors.supervisor`);
this package says only where the cluster is (a named one, or a local head: :mod:`.head`), how
an attempt is submitted, watched through its status and log, and stopped, and what runs inside
Ray (:mod:`.entry`). docs/engines.md tells users the same.
"""

from __future__ import annotations

from tideflow.domain.scheduling import JobCommand
from tideflow.executors.ray.head import LocalRayHead
from tideflow.executors.ray.platform import RayPlatform, RaySettings
from tideflow.executors.supervisor import AttemptSupervisor

__all__ = ["RayExecutor", "RayPlatform", "RaySettings"]


class RayExecutor(AttemptSupervisor):
    """Job attempts as Ray jobs, watched over the Job Submission API, re-attached after restarts."""

    platform_class = RayPlatform
    platform: RayPlatform

    @property
    def settings(self) -> RaySettings:
        """Its options."""
        return self.platform.settings

    @property
    def local_head(self) -> LocalRayHead:
        """The local head jobs run on when no cluster is named (started on first need)."""
        return self.platform.local_head

    def submission_id(self, command: JobCommand) -> str:
        """The attempt's Ray submission id: unique per home and job execution, and stable."""
        return self.platform.submission_id(command)
