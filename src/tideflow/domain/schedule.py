"""Workflow schedules: one execution per tick of a cron or an interval.

A schedule belongs to the workflow, not to a job (a periodic rule, :class:`Periodic`, acts on a
job of a running execution). Its ticks are computed like a periodic rule's fire times, so it is
checked the same way (cron that can fire, IANA time zone, positive interval), plus the catch-up
policy: after downtime ``catchup=False`` starts only the latest missed tick, ``catchup=True``
every missed tick, at most :data:`MAX_CATCHUP_TICKS` of them (the oldest beyond are recorded as
skipped).
"""

from __future__ import annotations

from dataclasses import dataclass

from tideflow.domain.rules import Periodic

MAX_CATCHUP_TICKS = 100
"""How many missed ticks ``catchup=True`` starts after downtime; older ones are skipped."""

SCHEDULE_TIME_PARAM = "schedule_time"
"""The param every scheduled execution gets: its tick time, an ISO 8601 UTC string."""


@dataclass(frozen=True)
class Schedule:
    """When a workflow starts executions by itself.

    Attributes:
        cron: A 5-field cron expression in ``timezone`` (or ``None`` with an interval).
        interval_seconds: A fixed interval (or ``None`` with a cron).
        timezone: The IANA time zone of the cron.
        catchup: After downtime, start every missed tick (bounded) rather than only the latest.
        location: ``file:line`` where the user declared it.
    """

    cron: str | None = None
    interval_seconds: float | None = None
    timezone: str = "UTC"
    catchup: bool = False
    location: str | None = None

    @property
    def timer(self) -> Periodic:
        """The ticks as a timer (the same fire-time arithmetic as periodic rules)."""
        return Periodic(
            cron=self.cron, interval_seconds=self.interval_seconds, timezone=self.timezone
        )

    def describe(self) -> str:
        """``cron '0 * * * *' (UTC)`` or ``every 3600s``, plus the catch-up policy."""
        when = (
            f"cron {self.cron!r} ({self.timezone})"
            if self.cron is not None
            else f"every {self.interval_seconds:g}s"
        )
        return f"{when}, catchup={self.catchup}"


def schedule_to_dict(schedule: Schedule) -> dict[str, object]:
    """The plan JSON form."""
    return {
        "cron": schedule.cron,
        "interval_seconds": schedule.interval_seconds,
        "timezone": schedule.timezone,
        "catchup": schedule.catchup,
        "location": schedule.location,
    }
