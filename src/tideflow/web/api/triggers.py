"""Which scheduler action started, stopped or restarted each job attempt.

The scheduler records every action with the rule and the event offset behind it, per job but
not per attempt. The attempt is recovered from the order of the records: within one job each
START that was not skipped, and each RESTART, created the next attempt (in attempt order); a
job STOP, or a RESTART, ended the attempt that was current then; an execution STOP ended the
current attempt of every job that ended STOPPED.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tideflow.domain.metadata import ExecutionAction, JobExecution
from tideflow.domain.status import JobAction, JobStatus

SKIPPED = "(skipped"
"""What the scheduler appends to the rule of an action it did not take."""


@dataclass
class Triggers:
    """The actions behind one attempt."""

    started_by: ExecutionAction | None = None
    stopped_by: ExecutionAction | None = None


@dataclass
class _JobState:
    attempts: dict[int, JobExecution] = field(default_factory=dict)
    current: int = 0


def attempt_triggers(
    attempts: list[JobExecution], actions: list[ExecutionAction]
) -> dict[int, Triggers]:
    """``job_execution_id -> Triggers`` for every attempt of one execution."""
    jobs: dict[str, _JobState] = {}
    result: dict[int, Triggers] = {}
    for a in attempts:
        jobs.setdefault(a.job, _JobState()).attempts[a.attempt] = a
        result[a.job_execution_id] = Triggers()

    def current(state: _JobState) -> Triggers | None:
        found = state.attempts.get(state.current)
        return None if found is None else result[found.job_execution_id]

    for action in sorted(actions, key=lambda x: x.action_id):
        if SKIPPED in action.rule:
            continue
        if action.job is None:
            if action.action is JobAction.STOP:
                for state in jobs.values():
                    attempt = state.attempts.get(state.current)
                    if attempt is not None and attempt.status is JobStatus.STOPPED:
                        t = result[attempt.job_execution_id]
                        t.stopped_by = t.stopped_by or action
            continue
        found = jobs.get(action.job)
        if found is None:
            continue
        state = found
        now = current(state)
        if action.action in (JobAction.STOP, JobAction.RESTART) and now is not None:
            now.stopped_by = now.stopped_by or action
        if action.action in (JobAction.START, JobAction.RESTART):
            state.current += 1
            started = current(state)
            if started is not None:
                started.started_by = action
    return result
