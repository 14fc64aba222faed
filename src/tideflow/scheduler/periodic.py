"""When periodic rules fire: 5-field cron in a time zone (croniter), or a fixed interval.

Catch-up policy: a timer fires **once** for all the periods it missed (the server was down, or
the clock jumped), then resumes on the schedule -- :func:`next_fire_after` always returns the
first fire time strictly after *now*, and intervals keep their phase (start + k x interval).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tideflow.domain.rules import Periodic
from tideflow.errors import FailedPreconditionError


def next_fire_after(
    periodic: Periodic, now: datetime, *, previous: datetime | None = None
) -> datetime:
    """The first fire time of ``periodic`` strictly after ``now`` (aware UTC).

    Args:
        periodic: The timer.
        now: The current time (aware).
        previous: The last scheduled fire time; intervals keep its phase. Without it the first
            firing is one interval after ``now``.

    Raises:
        FailedPreconditionError: The timer can never fire (a plan stored unchecked).
    """
    if periodic.cron is not None:
        from croniter import croniter  # imported on use: only periodic rules need it

        try:
            local = now.astimezone(ZoneInfo(periodic.timezone))
            fire: datetime = croniter(periodic.cron, local).get_next(datetime)
        except (ValueError, TypeError, KeyError, ZoneInfoNotFoundError) as exc:
            # Only a plan stored before the server checked plans gets here (submit refuses
            # these now): say which timer, not INTERNAL.
            raise FailedPreconditionError(
                f"periodic rule: cron {periodic.cron!r} in time zone {periodic.timezone!r} has "
                f"no next fire time ({exc}); correct it and submit the workflow again"
            ) from exc
        return fire.astimezone(UTC)
    if (
        not isinstance(periodic.interval_seconds, int | float)
        or not math.isfinite(periodic.interval_seconds)
        or periodic.interval_seconds <= 0
    ):
        raise FailedPreconditionError(
            f"periodic rule needs a cron or a positive interval, got {periodic!r}; correct it "
            "and submit the workflow again"
        )
    try:
        step = timedelta(seconds=periodic.interval_seconds)
        if previous is None:
            return now + step
        periods = max(1, math.floor((now - previous) / step) + 1)
        return previous + periods * step
    except OverflowError as exc:  # an interval of millennia, in a plan stored unchecked
        raise FailedPreconditionError(
            f"periodic rule: interval of {periodic.interval_seconds!r} seconds has no next fire "
            "time before year 9999; correct it and submit the workflow again"
        ) from exc
