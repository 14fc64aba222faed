"""Which scheduler action started, stopped or restarted each job attempt.

The scheduler records every action with the rule and the event offset behind it, per job but
not per attempt. The attempt is recovered from the order of the records: within one job the
n-th START or RESTART that was taken (not skipped) created attempt n. Attempt n ended by the
first STOP taken on its job (or on the whole execution, if it ended STOPPED) after that start
and before the next one, else by the RESTART that created attempt n + 1 (unless it had
FINISHED or FAILED by itself).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tideflow.domain.metadata import ExecutionAction, JobExecution
from tideflow.domain.status import JobAction, JobStatus


@dataclass(frozen=True)
class Triggers:
    """The actions behind one attempt."""

    started_by: ExecutionAction | None = None
    stopped_by: ExecutionAction | None = None


def attempt_triggers(
    attempts: Sequence[JobExecution],
    starts: Mapping[tuple[str, int], ExecutionAction],
    stops: Sequence[ExecutionAction],
) -> dict[int, Triggers]:
    """``job_execution_id -> Triggers`` for ``attempts``.

    Args:
        attempts: Attempts of one execution.
        starts: The n-th START / RESTART taken on each job, by ``(job, n)``, for every attempt
            number n and n + 1 of ``attempts``.
        stops: The STOP actions taken on their jobs or on the execution, oldest first.
    """
    result: dict[int, Triggers] = {}
    for a in attempts:
        started = starts.get((a.job, a.attempt))
        following = starts.get((a.job, a.attempt + 1))
        low = started.action_id if started is not None else 0
        high = following.action_id if following is not None else None
        stopped = next(
            (
                s
                for s in stops
                if s.action_id > low
                and (high is None or s.action_id < high)
                and (s.job == a.job or (s.job is None and a.status is JobStatus.STOPPED))
            ),
            None,
        )
        if (
            stopped is None
            and following is not None
            and following.action is JobAction.RESTART
            and a.status not in (JobStatus.FINISHED, JobStatus.FAILED)  # not ended on its own
        ):
            stopped = following
        result[a.job_execution_id] = Triggers(started_by=started, stopped_by=stopped)
    return result
