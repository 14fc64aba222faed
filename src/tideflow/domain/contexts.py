"""Where a ``per_context`` workflow reads an event's contexts from: :class:`ContextFrom`.

A ``per_context`` workflow runs one execution per *context* (an hour, a customer, a region):
an event that names contexts reaches only the running executions serving them, and its
``start_on`` rules start an execution for each named context no running execution serves.
Where the contexts come from is data in the plan, never code:

* ``source="field"`` (the default, ``field="context"``, what ``per_context=True`` meant
  before): a field of the event's ``context`` -- a string, an integer, or a list of them (an
  event naming several contexts);
* ``source="key"``: the event's key;
* ``source="value"``: the event's whole value.

The context :data:`ALL_CONTEXTS` (``"*"``, the wildcard of event matches) reaches every running
execution of the workflow and starts none. Contexts that are empty, longer than
:data:`~tideflow.domain.limits.MAX_KEY_LENGTH` (an execution's context column) or beyond the
first :data:`MAX_CONTEXTS_PER_EVENT` of one event are not contexts: they reach nothing -- an
event cannot make the scheduler start an unbounded number of executions.

``once`` (``once_per_context=True``) makes each context run at most once: a ``start_on``
firing for a context whose execution already ended is refused and recorded as skipped on that
execution, so the refusal shows in ``tideflow execution show``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tideflow.domain.events import WILDCARD, Event
from tideflow.domain.limits import MAX_KEY_LENGTH

DEFAULT_CONTEXT_FIELD = "context"
"""The field of an event's context that ``per_context=True`` reads."""
ALL_CONTEXTS = WILDCARD
"""The context meaning "every running execution of the workflow" (it starts none)."""
MAX_CONTEXTS_PER_EVENT = 100
"""How many contexts one event may name; more are ignored."""
RESERVED_FIELDS = frozenset({"execution_id"})
"""Context fields that cannot name contexts: an event with ``execution_id`` goes to that
execution only, whatever its other fields say."""


class ContextSource(StrEnum):
    """Which part of an event names its contexts."""

    FIELD = "field"
    KEY = "key"
    VALUE = "value"


@dataclass(frozen=True)
class ContextFrom:
    """Where a ``per_context`` workflow takes an event's contexts from (see the module).

    Attributes:
        source: A field of the event's context, its key or its value.
        field: The context field, for ``source="field"`` (``None`` otherwise).
        once: A context whose execution ended never gets another one (``once_per_context``).
    """

    source: ContextSource = ContextSource.FIELD
    field: str | None = DEFAULT_CONTEXT_FIELD
    once: bool = False

    def contexts(self, event: Event) -> tuple[str, ...]:
        """The contexts ``event`` names, distinct, in order; ``(ALL_CONTEXTS,)`` for all."""
        if self.source is ContextSource.KEY:
            raw: Any = event.key
        elif self.source is ContextSource.VALUE:
            raw = event.value
        else:
            raw = event.context.get(self.field) if self.field is not None else None
        items = raw if isinstance(raw, list) else [raw]
        found: dict[str, None] = {}
        for item in items:
            text = _context_text(item)
            if text is None:
                continue
            if text == ALL_CONTEXTS:
                return (ALL_CONTEXTS,)
            if len(found) < MAX_CONTEXTS_PER_EVENT:
                found[text] = None
        return tuple(found)

    def describe(self) -> str:
        """``context field 'hour'``, ``the event key`` or ``the event value``, plus once."""
        where = {
            ContextSource.FIELD: f"context field {self.field!r}",
            ContextSource.KEY: "the event key",
            ContextSource.VALUE: "the event value",
        }.get(self.source, repr(self.source))
        return f"{where}, once per context" if self.once else where


def _context_text(item: object) -> str | None:
    """A context as text, or ``None`` when ``item`` cannot be one."""
    if isinstance(item, bool) or not isinstance(item, str | int):
        return None
    text = str(item)
    if not text or len(text) > MAX_KEY_LENGTH or "\x00" in text:
        return None
    return text


def serves(execution_context: str | None, contexts: tuple[str, ...]) -> bool:
    """Whether an execution serving ``execution_context`` is reached by ``contexts``."""
    if not contexts:
        return False
    return contexts == (ALL_CONTEXTS,) or execution_context in contexts


def context_from_to_dict(value: ContextFrom) -> dict[str, object]:
    """The plan JSON form."""
    return {"source": str(value.source), "field": value.field, "once": value.once}


def context_from_problems(value: object) -> list[str]:
    """What is wrong with a ``per_context`` setting, as read from a plan or the SDK."""
    if not isinstance(value, ContextFrom):
        return [
            "per_context must be True, False or tide.context_from(field=... | key=True | "
            f"value=True), got {value!r:.80}"
        ]
    problems: list[str] = []
    if not isinstance(value.once, bool):
        problems.append(f"once_per_context must be True or False, got {value.once!r:.40}")
    if value.source not in tuple(ContextSource):
        choices = ", ".join(source.value for source in ContextSource)
        problems.append(f"per_context source {value.source!r:.40} is not one of {choices}")
    elif value.source is ContextSource.FIELD:
        field = value.field
        if not isinstance(field, str) or not field or len(field) > MAX_KEY_LENGTH:
            problems.append(
                f"per_context field must be a non-empty name of at most {MAX_KEY_LENGTH} "
                f"characters, got {field!r:.80}"
            )
        elif "\x00" in field:
            problems.append("per_context field must not contain NUL")
        elif field in RESERVED_FIELDS:
            problems.append(
                f"per_context field {field!r} cannot name contexts: an event with it goes to "
                "that execution alone"
            )
    elif value.field is not None:
        problems.append(
            f"per_context from the event {value.source} takes no field, got {value.field!r:.80}"
        )
    return problems
