"""An execution's jobs on a time axis: one row per job, one bar per attempt, one mark per action.

The scheduler records every action it takes (start, stop, restart) with the rule that fired and
the offset of the event behind it (:class:`~tideflow.domain.metadata.ExecutionAction`); attempts
are the job executions. Which action started and which ended each attempt is the JSON API's
answer (:func:`tideflow.web.api.triggers.attempt_triggers`), passed in, so page and API never
disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tideflow.domain.events import Event
from tideflow.domain.metadata import ExecutionAction, JobExecution, WorkflowExecution
from tideflow.web.api.triggers import Triggers

LABEL_WIDTH = 150.0
AXIS_WIDTH = 760.0
ROW_HEIGHT = 30.0
TOP = 28.0


@dataclass(frozen=True)
class Cause:
    """An action and, when an event made a rule fire, that event."""

    action: ExecutionAction
    event: Event | None = None

    @property
    def text(self) -> str:
        """``RESTART by rule ... (event DRIFT_DETECTED key=... from ..., offset 12)``."""
        text = f"{self.action.action} by {self.action.rule or 'the scheduler'}"
        if self.event is not None:
            e = self.event
            text += f" (event {e.event_type} key={e.key}"
            text += f" from {e.sender}" if e.sender else ""
            text += f", offset {e.offset})"
        elif self.action.event_offset is not None:
            text += f" (event offset {self.action.event_offset})"
        return text


@dataclass(frozen=True)
class Bar:
    """One attempt on its job's row."""

    attempt: JobExecution
    x: float
    y: float
    width: float
    duration: float | None
    started_by: Cause | None
    ended_by: Cause | None


@dataclass(frozen=True)
class Mark:
    """One action on its job's row."""

    cause: Cause
    x: float
    y: float


@dataclass
class Timeline:
    """What the timeline template draws, and the rows of its tables."""

    width: float
    height: float
    start: datetime
    end: datetime
    rows: list[tuple[str, float]] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    causes: list[Cause] = field(default_factory=list)
    total_attempts: int = 0
    total_actions: int = 0


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


TICK_STEPS = (
    0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30,
    60, 120, 300, 600, 900, 1800,
    3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
)  # fmt: skip
"""Seconds between axis ticks the axis may choose: round numbers on a clock."""
MAX_TICKS = 8


def time_ticks(start: datetime, span: float) -> list[tuple[datetime, str]]:
    """Ticks at round times over ``[start, start + span]``, each label distinct (UTC).

    The step is the smallest of :data:`TICK_STEPS` giving at most :data:`MAX_TICKS` ticks, and
    labels show as much as the step needs (tenths of seconds, seconds, minutes, days), so a
    three-second run gets ``10:00:01``, ``10:00:02`` ... rather than one time four times.
    """
    step = next((s for s in TICK_STEPS if span / s <= MAX_TICKS), TICK_STEPS[-1])
    epoch = start.timestamp()
    first = math.ceil(epoch / step - 1e-9) * step
    if step < 1:
        fmt = "%H:%M:%S.%f"
    elif step < 60:
        fmt = "%H:%M:%S"
    elif step < 86400:
        fmt = "%H:%M"
    else:
        fmt = "%Y-%m-%d"
    ticks: list[tuple[datetime, str]] = []
    at = first
    while at <= epoch + span + 1e-9:
        when = datetime.fromtimestamp(round(at, 3), tz=UTC)
        label = when.strftime(fmt)
        if step < 1:
            label = label[:-5]  # one decimal of the seconds
        ticks.append((when, label))
        at = round(at + step, 6)
    crosses_midnight = start.date() != (start + timedelta(seconds=span)).date()
    if crosses_midnight and step < 86400:  # say the day where it starts and changes
        days: set[object] = set()
        dated = []
        for when, label in ticks:
            new_day = when.date() not in days
            days.add(when.date())
            dated.append((when, f"{when:%m-%d} {label}" if new_day else label))
        ticks = dated
    return ticks


def build_timeline(
    execution: WorkflowExecution,
    attempts: Sequence[JobExecution],
    actions: Sequence[ExecutionAction],
    events: Mapping[int, Event],
    triggers: Mapping[int, Triggers],
    *,
    jobs: Sequence[str] = (),
    now: datetime | None = None,
    limit: int | None = None,
    total_attempts: int | None = None,
) -> Timeline:
    """Lay out ``attempts`` and ``actions`` of ``execution`` on one time axis.

    Args:
        execution: The workflow execution.
        attempts: Its job executions.
        actions: The scheduler's actions in it, oldest first.
        events: The events behind the actions, by offset (missing ones are shown by offset).
        triggers: The actions that started and ended each attempt, by job execution id.
        jobs: Job names in the order to show them (the plan's); jobs not listed follow.
        now: The end of the axis for what still runs (the current time by default).
        limit: Draw and list only the newest ``limit`` attempts and actions (a long-running
            execution has thousands; the JSON API pages through all of them).
        total_attempts: How many attempts the execution has (when ``attempts`` are only the
            newest of them).
    """
    now = _aware(now or datetime.now(UTC))
    total_actions = len(actions)
    total_attempts = len(attempts) if total_attempts is None else total_attempts
    if limit is not None:
        attempts = sorted(attempts, key=lambda a: a.job_execution_id)[-limit:]
        actions = list(actions)[-limit:]

    def cause_of(action: ExecutionAction) -> Cause:
        offset = action.event_offset
        return Cause(action, events.get(offset) if offset is not None else None)

    causes = [cause_of(a) for a in actions]
    times = [_aware(t) for t in (execution.start_time, execution.end_time) if t is not None]
    for attempt in attempts:
        times.extend(
            _aware(t)
            for t in (attempt.create_time, attempt.start_time, attempt.end_time)
            if t is not None
        )
    times.extend(_aware(c.action.time) for c in causes if c.action.time is not None)
    start = min(times, default=now)
    end = max([*times, now] if execution.end_time is None else times, default=now)
    span = max((end - start).total_seconds(), 1.0)

    def x_of(when: datetime | None) -> float:
        if when is None:
            return LABEL_WIDTH
        return round(LABEL_WIDTH + AXIS_WIDTH * (_aware(when) - start).total_seconds() / span, 1)

    order = list(
        dict.fromkeys(
            [*jobs, *(a.job for a in attempts), *(c.action.job for c in causes if c.action.job)]
        )
    )
    row_y = {job: TOP + i * ROW_HEIGHT for i, job in enumerate(order)}
    timeline = Timeline(
        width=LABEL_WIDTH + AXIS_WIDTH + 20,
        height=TOP + ROW_HEIGHT * max(len(order), 1) + 10,
        start=start,
        end=end,
        rows=list(row_y.items()),
        causes=causes,
        total_attempts=total_attempts,
        total_actions=total_actions,
    )
    for when, label in time_ticks(start, span):
        fraction = (when - start).total_seconds() / span
        timeline.ticks.append((round(LABEL_WIDTH + AXIS_WIDTH * fraction, 1), label))
    for attempt in attempts:
        began = attempt.start_time or attempt.create_time
        finished = attempt.end_time
        x1 = x_of(began)
        x2 = x_of(finished or (now if execution.end_time is None else end))
        t = triggers.get(attempt.job_execution_id, Triggers())
        duration = (
            (_aware(finished) - _aware(began)).total_seconds() if began and finished else None
        )
        timeline.bars.append(
            Bar(
                attempt,
                x1,
                row_y[attempt.job] + 5,
                round(max(x2 - x1, 3.0), 1),
                duration,
                cause_of(t.started_by) if t.started_by is not None else None,
                cause_of(t.stopped_by) if t.stopped_by is not None else None,
            )
        )
    for cause in causes:
        if cause.action.job is not None and cause.action.time is not None:
            timeline.marks.append(Mark(cause, x_of(cause.action.time), row_y[cause.action.job]))
    return timeline
