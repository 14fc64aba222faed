"""When periodic rules fire: 5-field cron in a time zone (croniter), or a fixed interval.

Catch-up policy: a timer fires **once** for all the periods it missed (the server was down, or
the clock jumped), then resumes on the schedule -- :func:`next_fire_after` always returns the
first fire time strictly after *now*, and intervals keep their phase (start + k x interval).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tideflow.domain.rules import Periodic


def next_fire_after(
    periodic: Periodic, now: datetime, *, previous: datetime | None = None
) -> datetime:
    """The first fire time of ``periodic`` strictly after ``now`` (aware UTC).

    Args:
        periodic: The timer.
        now: The current time (aware).
        previous: The last scheduled fire time; intervals keep its phase. Without it the first
            firing is one interval after ``now``.
    """
    if periodic.cron is not None:
        from croniter import croniter  # imported on use: only periodic rules need it

        local = now.astimezone(ZoneInfo(periodic.timezone))
        fire: datetime = croniter(periodic.cron, local).get_next(datetime)
        return fire.astimezone(UTC)
    if not periodic.interval_seconds or periodic.interval_seconds <= 0:
        raise ValueError(f"periodic rule needs a cron or a positive interval: {periodic!r}")
    step = timedelta(seconds=periodic.interval_seconds)
    if previous is None:
        return now + step
    periods = max(1, math.floor((now - previous) / step) + 1)
    return previous + periods * step
