"""Opaque page cursors.

A cursor is the position after the last item of a page, tagged with the listing it belongs to
and base64-encoded so callers treat it as a token. The tag makes a cursor from one listing fail
loudly in another instead of silently skipping items.
"""

from __future__ import annotations

import base64
import binascii

from tideflow.errors import InvalidArgumentError

MAX_PAGE_SIZE = 1000


def encode_cursor(listing: str, position: int) -> str:
    """The cursor pointing after ``position`` in ``listing``."""
    return base64.urlsafe_b64encode(f"{listing}:{position}".encode()).decode().rstrip("=")


def decode_cursor(listing: str, cursor: str | None) -> int | None:
    """The position inside ``cursor`` (``None`` for the first page).

    Raises:
        InvalidArgumentError: Not a cursor of ``listing``.
    """
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, _, position = text.partition(":")
        if tag == listing:
            return int(position)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        pass
    raise InvalidArgumentError(f"invalid cursor {cursor!r} for listing {listing}s", field="cursor")


def check_limit(limit: object) -> int:
    """``limit`` if it is a page size between 1 and :data:`MAX_PAGE_SIZE`, else raise."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidArgumentError(
            f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit!r}", field="limit"
        )
    return limit
