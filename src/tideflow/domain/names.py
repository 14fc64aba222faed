"""Rules for user-chosen names (workflows, jobs, nodes, projects, models, datasets).

Names travel inside event keys (``<workflow>.<job>``), file paths and URLs, so they are kept to a
portable alphabet: a letter or underscore first, then letters, digits, ``_`` and ``-``; at most
:data:`MAX_NAME_LENGTH` characters. The dot is reserved as the key separator.
"""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 128

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def name_problem(name: object, what: str) -> str | None:
    """Say what is wrong with ``name``, or return ``None`` when it is a valid name.

    Args:
        name: The candidate name.
        what: What the name is for (``"job name"``), used in the message.
    """
    if not isinstance(name, str):
        return f"{what} must be a string, got {type(name).__name__}"
    if not name:
        return f"{what} must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"{what} {name[:20]!r}... is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
    if not _NAME.fullmatch(name):
        return (
            f"{what} {name!r} is not valid: use letters, digits, '_' and '-', "
            "starting with a letter or '_'"
        )
    return None
