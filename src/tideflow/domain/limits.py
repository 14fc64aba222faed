"""Size limits of stored fields, checked before anything is written.

The limits are the column sizes of the store, so a value that passes here fits on SQLite,
PostgreSQL and MariaDB alike; checking first turns what would be a driver error half-way through
a transaction (or, on SQLite, silent acceptance) into one clear :class:`InvalidArgumentError`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from itertools import accumulate
from typing import Any

from tideflow.domain.names import name_problem
from tideflow.errors import InvalidArgumentError

MAX_KEY_LENGTH = 256
"""Event keys, senders and idempotency keys."""
MAX_TYPE_LENGTH = 128
"""Event types, formats, flavours, artifact kinds, aliases, metric names."""
MAX_URI_LENGTH = 2048
"""URIs of models, datasets, artifacts, code packages and logs."""
MAX_TEXT_LENGTH = 16_383
"""Descriptions, rules, error messages.

MariaDB's ``TEXT`` holds 65,535 bytes, and a character takes up to 4 bytes in ``utf8mb4``:
16,383 characters always fit, 16,384 emoji would not.
"""
MAX_JSON_LENGTH = 1_048_576
"""Serialised JSON documents (schemas, params, tags, properties, contexts)."""
MAX_PLAN_LENGTH = 16_777_215
"""A serialised workflow plan."""
MAX_JSON_DEPTH = 64
"""How deeply arrays and objects may nest in a JSON document (params, contexts, configs ...).

Python's ``json`` recurses once per level and has no depth option, so a 200,000-deep document
would end in ``RecursionError``; checking the text first (:func:`json_depth`) refuses it with
:class:`InvalidArgumentError` instead. 64 levels is far beyond any real configuration.
"""
MAX_PLAN_DEPTH = 100
"""How deeply a serialised workflow plan may nest: its own structure (about 6 levels above a
job's or node's config) plus configs up to :data:`MAX_JSON_DEPTH`, and ``all_of`` / ``any_of``
conditions about 45 levels deep."""
MAX_PACKAGE_BYTES = 100 * 1024 * 1024
"""A code package (the zip of a workflow's directory), checked by the packager and the server."""
MAX_PACKAGE_UNPACKED_BYTES = 1024 * 1024 * 1024
"""What a code package may unpack to, in all (``--max-package-unpacked``); declared sizes are
checked before anything is written, and bytes are counted while extracting."""
MAX_PACKAGE_FILES = 10_000
"""Entries (files and folders) a code package may hold (``--max-package-files``)."""
MAX_PACKAGE_RATIO = 100
"""How many times larger than its compressed bytes an entry over
:data:`PACKAGE_RATIO_FLOOR` may unpack (``--max-package-ratio``). Source code and ordinary data
compress 2-20 times; DEFLATE's ceiling, what a zip bomb uses, is about 1,030 times."""
PACKAGE_RATIO_FLOOR = 1024 * 1024
"""Entries that unpack to at most this many bytes are never refused for their ratio (a small
file of blanks compresses a thousand times and harms nobody)."""
MAX_BLOB_BYTES = 512 * 1024 * 1024
"""A blob of the Blob Service (a serialised model, an artifact), checked by client and server."""


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of JSON ``text`` nest (0 for a scalar).

    A linear scan that never recurses, so it is safe on any input: strings are dropped first
    (brackets inside them do not count), then the brackets left are summed. Invalid JSON gets
    an upper bound, which is all a limit needs.
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets.encode("ascii"))), default=0)


def check_json_depth(text: str, what: str, limit: int = MAX_JSON_DEPTH) -> str:
    """Return ``text`` if its arrays and objects nest at most ``limit`` deep, else raise.

    Raises:
        InvalidArgumentError: It nests deeper, naming ``what``.
    """
    depth = json_depth(text)
    if depth > limit:
        raise InvalidArgumentError(
            f"{what} nests arrays and objects {depth} levels deep; the limit is {limit}",
            field=what,
        )
    return text


def load_json(text: str, what: str, limit: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON ``text`` that came from outside, its depth checked before parsing.

    Raises:
        InvalidArgumentError: Too deep, or not JSON; naming ``what``.
    """
    check_json_depth(text, what, limit)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgumentError(f"{what} is not valid JSON: {exc}", field=what) from exc


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it is a valid name (see :mod:`tideflow.domain.names`), else raise.

    Raises:
        InvalidArgumentError: It is not a valid name; the message says why.
    """
    problem = name_problem(value, what)
    if problem is not None or not isinstance(value, str):
        raise InvalidArgumentError(problem or f"{what} must be a string", field=what)
    return value


def check_text(value: object, what: str, limit: int, *, empty: bool = True) -> str:
    """Return ``value`` if it is a string of at most ``limit`` characters, else raise.

    Raises:
        InvalidArgumentError: Not a string, empty when ``empty`` is false, too long, or
            holding a NUL character.
    """
    if not isinstance(value, str):
        raise InvalidArgumentError(
            f"{what} must be a string, got {type(value).__name__}", field=what
        )
    if not empty and not value:
        raise InvalidArgumentError(f"{what} must not be empty", field=what)
    if len(value) > limit:
        raise InvalidArgumentError(
            f"{what} is {len(value)} characters long; the limit is {limit}", field=what
        )
    if "\x00" in value:
        # PostgreSQL refuses NUL in text; refusing it everywhere keeps the backends alike.
        raise InvalidArgumentError(f"{what} must not contain NUL characters", field=what)
    return value


def check_optional_text(value: object, what: str, limit: int) -> str | None:
    """Like :func:`check_text`, but ``None`` passes through."""
    return None if value is None else check_text(value, what, limit)


def check_positive_int(value: object, what: str) -> int:
    """Return ``value`` if it is an ``int`` >= 1 (not a bool), else raise."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgumentError(f"{what} must be a whole number >= 1, got {value!r}", field=what)
    return value


def check_number(value: object, what: str) -> float:
    """Return ``value`` as a float if it is a finite real number (not a bool), else raise."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgumentError(f"{what} must be a finite number, got {value!r}", field=what)
    return float(value)


def dump_json(value: Mapping[str, Any] | None, what: str, limit: int = MAX_JSON_LENGTH) -> str:
    """Serialise a mapping to canonical JSON text (sorted keys), checking type and size.

    Raises:
        InvalidArgumentError: Not a mapping with string keys, not JSON-serialisable, too big,
            or nesting deeper than :data:`MAX_JSON_DEPTH`.
    """
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(
            f"{what} must be a mapping, got {type(value).__name__}", field=what
        )
    if not value:  # most events' context: 6 us of encoder and depth check per event saved
        return "{}"
    try:
        text = json.dumps(dict(value), sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as e:
        raise InvalidArgumentError(f"{what} is not JSON-serialisable: {e}", field=what) from e
    if len(text) > limit:
        raise InvalidArgumentError(
            f"{what} is {len(text)} characters as JSON; the limit is {limit}", field=what
        )
    # What is stored must read back through :func:`load_json` (a remote client's too).
    return check_json_depth(text, what)
