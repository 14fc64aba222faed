"""Times given on the command line (``--since``, ``--until``): ISO 8601 or a time ago.

``2026-01-31``, ``2026-01-31T08:00``, ``2026-01-31T08:00:00+01:00`` (UTC when no zone is
given), or an age such as ``90s``, ``30m``, ``3h``, ``2d``, ``1w`` (or ``1d12h``) before now.
Anything else is refused with this list and an example, not with a parser's bare complaint.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_AGE = re.compile(r"(?:(\d+)([smhdw]))+")
_PART = re.compile(r"(\d+)([smhdw])")


def parse_instant(text: str, *, now: datetime | None = None) -> datetime:
    """``text`` as a timezone-aware UTC time (see the module for the forms).

    Raises:
        typer.BadParameter: Neither form; the message shows both with examples.
    """
    value = text.strip()
    if _AGE.fullmatch(value):
        age = timedelta()
        for amount, unit in _PART.findall(value):
            age += timedelta(**{_UNITS[unit]: int(amount)})
        return (now or datetime.now(UTC)) - age
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a time: give an ISO 8601 time such as 2026-01-31 or "
            "2026-01-31T08:00:00Z (UTC when no zone is given), or an age such as 30m, 3h or 1d "
            "(e.g. --since 1d for the last 24 hours)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


SinceOption = Annotated[
    datetime | None,
    typer.Option(
        "--since",
        parser=parse_instant,
        metavar="TIME",
        help="Only those created at or after TIME: ISO 8601 (2026-01-31T08:00, UTC if no zone) "
        "or an age (30m, 3h, 1d).",
        show_default=False,
    ),
]
"""The ``--since`` option of listings."""
UntilOption = Annotated[
    datetime | None,
    typer.Option(
        "--until",
        parser=parse_instant,
        metavar="TIME",
        help="Only those created before TIME (same forms as --since).",
        show_default=False,
    ),
]
"""The ``--until`` option of listings."""
