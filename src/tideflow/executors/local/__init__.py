"""The local executor: job attempts as processes on this host (:mod:`.platform`).

All of the attempt's lifecycle is the supervisor's (:mod:`tideflow.executors.supervisor`);
this package says only how a process is started warm (:mod:`.forkserver`), given its
requirements (:mod:`.environment`), watched and signalled.
"""

from __future__ import annotations

from tideflow.executors.local.environment import RequirementsEnvironments
from tideflow.executors.local.platform import LocalPlatform, LocalSettings
from tideflow.executors.supervisor import AttemptSupervisor

__all__ = ["LocalExecutor", "LocalPlatform", "LocalSettings"]


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
