"""The local executor: the attempt supervisor with the local platform."""

from __future__ import annotations

from tideflow.executors.local.environment import RequirementsEnvironments
from tideflow.executors.local.platform import LocalPlatform, LocalSettings
from tideflow.executors.supervisor import AttemptSupervisor


class LocalExecutor(AttemptSupervisor):
    """Job attempts as local processes, started warm, supervised, re-attached after restarts."""

    platform_class = LocalPlatform
    platform: LocalPlatform

    @property
    def settings(self) -> LocalSettings:
        """Its options."""
        return self.platform.settings

    @property
    def environments(self) -> RequirementsEnvironments:
        """The requirements environments of its jobs."""
        return self.platform.environments
