"""Cron expressions: the 5-field syntax (minute hour day-of-month month day-of-week)."""

from __future__ import annotations


def cron_problem(expression: str) -> str | None:
    """Say what is wrong with a cron expression, or ``None`` when croniter accepts it."""
    from croniter import croniter  # imported on use: it is only needed by periodic rules

    fields = expression.split()
    if len(fields) != 5:
        return (
            f"cron {expression!r} has {len(fields)} fields; use 5 "
            "(minute hour day-of-month month day-of-week), e.g. '0 * * * *'"
        )
    if not croniter.is_valid(expression):
        return f"cron {expression!r} is not a valid expression, e.g. '*/15 * * * *'"
    return None
