"""Command jobs: a program run as a job (``tide.command``), and its ``{placeholder}`` templates.

A command node keeps its program in its config: ``argv`` (a list of strings, the program
first; no shell parses it) and ``env`` (a mapping of extra environment variables). Every one of
those strings is a template, filled in when an attempt starts:

- ``{name}``: the execution's param ``name`` (a string as it is, any other value as JSON);
- ``{trigger.key}``, ``{trigger.value}``, ``{trigger.event_type}``, ``{trigger.sender}``,
  ``{trigger.offset}``: the newest event the attempt was started for (``ctx.trigger``);
- ``{{`` and ``}}``: a literal brace (``${{HOME}}`` in a ``bash -c`` string).

A placeholder is a name looked up in one flat mapping: no format specs, conversions, indexes
or attribute access, so a template can never reach into an object. The shape of a template is
checked at compile time and on the server (:func:`command_problems`); whether its names exist
is known only when the attempt starts, where a missing one fails the attempt naming it.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

from tideflow.domain.events import Event
from tideflow.domain.limits import MAX_TEXT_LENGTH
from tideflow.errors import InvalidArgumentError

ARGV = "argv"
"""The config key holding the command's argument vector."""
ENV = "env"
"""The config key holding the command's extra environment variables."""
MAX_ARGS = 1024
"""The most arguments a command may have."""
MAX_ENV = 256
"""The most environment variables a command may add."""
TRIGGER_FIELDS = ("key", "value", "event_type", "sender", "offset")
"""The fields of the triggering event a template may name as ``{trigger.<field>}``."""

_PLACEHOLDER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FORMATTER = string.Formatter()


def placeholders(text: str) -> list[str]:
    """The placeholder names of template ``text``, in order.

    Raises:
        ValueError: ``text`` is not a valid template (an unmatched brace, an empty
            placeholder, a conversion or format spec, a placeholder that is not a name).
    """
    names: list[str] = []
    try:
        fields = list(_FORMATTER.parse(text))
    except ValueError as exc:
        raise ValueError(f"{exc} (write {{{{ and }}}} for literal braces)") from exc
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if conversion is not None or spec:
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise ValueError(f"placeholder {{{shown}}} takes no conversion or format")
        if not _PLACEHOLDER.fullmatch(name):
            raise ValueError(
                f"placeholder {{{name}}} is not a param name or trigger.<field> "
                "(write {{ and }} for literal braces)"
            )
        names.append(name)
    return names


def render(text: str, values: Mapping[str, str]) -> str:
    """Fill in template ``text`` from ``values``.

    Raises:
        KeyError: A placeholder ``values`` lacks (the missing name).
        ValueError: ``text`` is not a valid template.
    """
    placeholders(text)
    parts: list[str] = []
    for literal, name, _, _ in _FORMATTER.parse(text):
        parts.append(literal)
        if name is not None:
            parts.append(values[name])
    return "".join(parts)


def command_problems(config: Mapping[str, Any]) -> list[str]:
    """What is wrong with a command node's config (its ``argv`` and ``env``), if anything."""
    problems: list[str] = []
    argv = config.get(ARGV)
    if isinstance(argv, str):
        problems.append(
            f"argv must be a list of strings such as ['bash', 'prepare.sh'], not the one string "
            f"{argv[:80]!r}: no shell splits it"
        )
    elif not isinstance(argv, list) or not argv:
        problems.append(f"argv must be a non-empty list of strings, got {_short(argv)}")
    elif len(argv) > MAX_ARGS:
        problems.append(f"argv has {len(argv)} items; the limit is {MAX_ARGS}")
    else:
        for index, item in enumerate(argv):
            problems += _text_problems(f"argv[{index}]", item, empty=index > 0)
    env = config.get(ENV, {})
    if not isinstance(env, dict):
        problems.append(f"env must be a mapping of names to strings, got {_short(env)}")
    elif len(env) > MAX_ENV:
        problems.append(f"env has {len(env)} variables; the limit is {MAX_ENV}")
    else:
        for name, value in env.items():
            if not isinstance(name, str) or not _ENV_NAME.fullmatch(name) or len(name) > 256:
                problems.append(
                    f"env name {_short(name)} is not valid: use letters, digits and '_', "
                    "starting with a letter or '_'"
                )
            else:
                problems += _text_problems(f"env[{name!r}]", value, empty=True)
    unknown = sorted(set(config) - {ARGV, ENV})
    if unknown:
        problems.append(f"unknown command settings {', '.join(map(repr, unknown))}")
    return problems


def _text_problems(label: str, value: object, *, empty: bool) -> list[str]:
    if not isinstance(value, str):
        return [f"{label} must be a string, got {_short(value)}"]
    if not value and not empty:
        return [f"{label} (the program) must not be empty"]
    if len(value) > MAX_TEXT_LENGTH:
        return [f"{label} is {len(value)} characters long; the limit is {MAX_TEXT_LENGTH}"]
    if "\x00" in value:
        return [f"{label} holds a NUL character"]
    try:
        placeholders(value)
    except ValueError as exc:
        return [f"{label} {value[:80]!r}: {exc}"]
    return []


def placeholder_values(
    params: Mapping[str, Any], triggers: Sequence[Event], context: str | None = None
) -> dict[str, str]:
    """What templates may name: params, the newest trigger's fields, the context.

    ``trigger.*`` are the newest trigger's fields; ``context`` is the execution's context in a
    ``per_context`` workflow (unless a param has that name).
    """
    values = {
        str(name): value if isinstance(value, str) else json.dumps(value)
        for name, value in params.items()
    }
    if context is not None:
        values.setdefault("context", context)
    if triggers:
        trigger = triggers[-1]
        for field in TRIGGER_FIELDS:
            values[f"trigger.{field}"] = str(getattr(trigger, field))
    return values


def render_command(
    config: Mapping[str, Any], values: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """The argv and extra environment of a command node, filled in from ``values``.

    Raises:
        InvalidArgumentError: Naming every placeholder ``values`` lacks (and the names it has).
    """
    missing: list[str] = []

    def fill(text: str) -> str:
        try:
            return render(text, values)
        except KeyError as exc:
            missing.append(str(exc.args[0]))
            return text

    argv = [fill(item) for item in config[ARGV]]
    env = {name: fill(value) for name, value in dict(config.get(ENV) or {}).items()}
    if missing:
        names = ", ".join(f"{{{name}}}" for name in dict.fromkeys(missing))
        known = ", ".join(sorted(values)) or "none"
        raise InvalidArgumentError(
            f"the command names {names}, which the execution does not have "
            f"(params and trigger fields: {known}); pass each in the params when starting "
            "the workflow, or write {{ and }} for literal braces",
            field="argv",
        )
    return argv, env


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
