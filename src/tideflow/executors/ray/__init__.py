"""The ray executor: Python-engine jobs (``platform="ray"``) as Ray jobs (:mod:`.platform`).

All of the attempt's lifecycle is the supervisor's (:mod:`tideflow.executors.supervisor`);
this package says only where the cluster is (a named one, or a local head: :mod:`.head`), how
an attempt is submitted, watched through its status and log, and stopped, and what runs inside
Ray (:mod:`.entry`). docs/engines.md tells users the same.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tideflow.domain.scheduling import JobCommand
from tideflow.executors.base import ExecutorContext
from tideflow.executors.ray.head import LocalRayHead
from tideflow.executors.ray.platform import RayPlatform, RaySettings
from tideflow.executors.supervisor import AttemptSupervisor

__all__ = ["RayExecutor", "RayPlatform", "RaySettings"]


class RayExecutor(AttemptSupervisor):
    """Job attempts as Ray jobs, watched over the Job Submission API, re-attached after restarts."""

    platform_class = RayPlatform
    platform: RayPlatform

    def __init__(self, context: ExecutorContext) -> None:
        super().__init__(context)
        with self._lock:
            self._pool_locked()  # a pool starts no thread before its first task

    def _pool(self) -> ThreadPoolExecutor:
        """The worker pool, made in ``__init__``: taken without the supervisor's lock.

        ``AttemptSupervisor.stop`` asks for it with that lock held (a STOP of an attempt it
        does not hold), and the lock is not re-entrant.
        """
        workers = self._workers
        assert workers is not None
        return workers

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
