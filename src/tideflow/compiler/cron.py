"""Cron expressions: the 5-field syntax (minute hour day-of-month month day-of-week).

A valid expression must also be able to fire: ``0 0 31 2 *`` (February 31st) passes croniter's
syntax check, and the scheduler would then fail every start computing its first fire time.
croniter itself gives up when no fire time lies within 50 years of the start, so asking it for
the next fire after a fixed reference time is a bounded check (about a millisecond for an
expression that never fires); any date that exists at all recurs well within that window
(February 29th every 8 years at most).
"""

from __future__ import annotations

from datetime import UTC, datetime

MAX_CRON_LENGTH = 256
"""Characters of a cron expression; real ones are under 50."""

_REFERENCE = datetime(2000, 1, 1, tzinfo=UTC)
"""Where the can-it-fire check starts: fixed, so the answer never depends on today's date."""


def cron_problem(expression: str) -> str | None:
    """Say what is wrong with a cron expression, or ``None`` when it is valid and can fire."""
    from croniter import CroniterError, croniter  # imported on use: only periodic rules need it

    if len(expression) > MAX_CRON_LENGTH:
        return f"cron {expression[:20]!r}... is {len(expression)} characters long; the limit is {MAX_CRON_LENGTH}"
    fields = expression.split()
    if len(fields) != 5:
        return (
            f"cron {expression!r} has {len(fields)} fields; use 5 "
            "(minute hour day-of-month month day-of-week), e.g. '0 * * * *'"
        )
    if not croniter.is_valid(expression):
        return f"cron {expression!r} is not a valid expression, e.g. '*/15 * * * *'"
    try:
        croniter(expression, _REFERENCE).get_next(datetime)
    except (CroniterError, ValueError, KeyError, IndexError, OverflowError):
        return (
            f"cron {expression!r} never fires: no date matches it (e.g. February 31st); "
            "check its day-of-month and month fields"
        )
    return None
