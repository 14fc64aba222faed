"""Listener and listing filters, checked before they reach the store.

Filtering happens in the database (``WHERE key IN (...)`` on an index), never by shipping every
event to the reader; this module only makes sure a filter means what the caller thinks.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tideflow.domain.events import WILDCARD
from tideflow.domain.limits import MAX_KEY_LENGTH, MAX_TYPE_LENGTH, check_text
from tideflow.errors import InvalidArgumentError


@dataclass(frozen=True)
class EventFilter:
    """Which events a listener or listing wants (``None`` means any).

    Attributes:
        keys: One of these keys.
        event_types: One of these types.
        sender: This sender.
        since: Created at or after this time.
        until: Created before this time.
    """

    keys: tuple[str, ...] | None = None
    event_types: tuple[str, ...] | None = None
    sender: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def make_filter(
    *,
    key: str | None = None,
    keys: Sequence[str] | None = None,
    event_type: str | None = None,
    event_types: Sequence[str] | None = None,
    sender: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> EventFilter:
    """Merge the singular and plural forms and validate everything.

    ``"*"`` anywhere in a list (or as ``sender``) means "any", as in rules.

    Raises:
        InvalidArgumentError: A filter value that cannot match what the caller meant.
    """
    return EventFilter(
        keys=_values(key, keys, "key", MAX_KEY_LENGTH),
        event_types=_values(event_type, event_types, "event type", MAX_TYPE_LENGTH),
        sender=None if sender in (None, WILDCARD) else check_text(sender, "sender", MAX_KEY_LENGTH),
        since=_aware(since, "since"),
        until=_check_range(_aware(since, "since"), _aware(until, "until")),
    )


def _values(
    one: str | None, many: Sequence[str] | None, what: str, limit: int
) -> tuple[str, ...] | None:
    if many is not None and (isinstance(many, str) or not isinstance(many, Sequence)):
        raise InvalidArgumentError(
            f"{what}s must be a list of strings, got {type(many).__name__}", field=f"{what}s"
        )
    if one is None and many is None:
        return None
    values = [*([] if one is None else [one]), *(many or [])]
    if not values:
        raise InvalidArgumentError(
            f"{what}s is an empty list, which matches nothing; pass None for any {what}",
            field=f"{what}s",
        )
    checked = [check_text(value, what, limit, empty=False) for value in values]
    return None if WILDCARD in checked else tuple(dict.fromkeys(checked))


def _aware(value: datetime | None, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidArgumentError(
            f"{what} must be a datetime, got {type(value).__name__}", field=what
        )
    if value.tzinfo is None:
        raise InvalidArgumentError(
            f"{what} must be timezone-aware (e.g. datetime.now(UTC)), got a naive datetime",
            field=what,
        )
    return value


def _check_range(since: datetime | None, until: datetime | None) -> datetime | None:
    if since is not None and until is not None and until <= since:
        raise InvalidArgumentError(f"until ({until}) must be after since ({since})", field="until")
    return until


_CURSOR_PREFIX = "ev1:"


def encode_cursor(offset: int) -> str:
    """An opaque cursor that resumes a listing after ``offset``."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{offset}".encode()).decode("ascii")


def decode_cursor(cursor: str) -> int:
    """The offset inside a cursor from :func:`encode_cursor`.

    Raises:
        InvalidArgumentError: Not a cursor this service handed out.
    """
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
        if text.startswith(_CURSOR_PREFIX):
            return int(text[len(_CURSOR_PREFIX) :])
    except (binascii.Error, UnicodeError, ValueError, AttributeError):
        pass
    raise InvalidArgumentError(
        f"invalid cursor {cursor!r}: pass back a next_cursor you were given", field="cursor"
    )
