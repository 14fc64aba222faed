"""A piece of one job attempt's log, as ``c.jobs.logs`` and ``GetJobLogs`` return it."""

from __future__ import annotations

from dataclasses import dataclass

from tideflow.domain.status import JobStatus


@dataclass(frozen=True)
class JobLog:
    """Text read from the log of one attempt of a job.

    Offsets count bytes of the log file, so a follower asks for ``after`` next and never
    sees a line twice (text is decoded as UTF-8, undecodable bytes replaced).

    Attributes:
        execution_id: The workflow execution.
        job: The job.
        attempt: The attempt the log belongs to.
        status: The attempt's status when the log was read.
        text: What was read.
        start: The byte offset ``text`` starts at.
        after: The byte offset just after ``text``: where to read next.
        size: The log file's size when read (0 when it does not exist yet).
        complete: The attempt had ended before the log was read and ``text`` reaches its end:
            nothing more will be written.
    """

    execution_id: int
    job: str
    attempt: int
    status: JobStatus
    text: str = ""
    start: int = 0
    after: int = 0
    size: int = 0
    complete: bool = False
