"""The rules engine: a pure function from (rules, their states, one event) to actions.

No I/O, no clock, no user code: the dispatcher loads states from the store, calls
:func:`evaluate`, and commits the new states with the actions in one transaction -- which is
what makes scheduling exactly-once across crashes, and what lets this module be tested
exhaustively on its own.

Semantics (DESIGN.md "Rules are data, not code"):

* A rule keeps, for each :class:`EventMatch` leaf of its condition, the **latest** event per
  ``(event_type, sender, key)`` that matched the leaf's key / type / sender patterns. The leaf
  holds when such a latest event has the wanted value (any value when ``value`` is ``None``)
  and -- for ``life="once"`` -- has not fired the rule yet. So ``after(job, a)`` stops holding
  when ``a`` is restarted (its latest status is no longer FINISHED), and a ``once`` event fires
  a rule at most once.
* ``AllOf`` holds when every part holds, ``AnyOf`` when one does.
* When a rule fires, every ``once`` event it was holding on is consumed.
* Separate rules on one job are alternatives, checked in declaration order: on one event, the
  first that fires wins and the others keep their state untouched.
* An :class:`Aggregate` leaf keeps the samples ``(offset, create time, value)`` of its matching
  events since the rule last fired: the last N, or those inside the window before the event
  being handled (every event the rule sees prunes the window, by create times, so a replay
  prunes alike; at most :data:`MAX_AGGREGATE_SAMPLES`). A value that is not a finite number is
  not a sample (``count`` reads no value). It holds while the aggregate passes its threshold;
  when the rule fires, every aggregate of it starts again from nothing. The samples are part of
  :class:`RuleState`, saved with the actions in one transaction: exactly once across crashes.
* A :class:`Periodic` rule fires on its own timer event (:func:`timer_event_key`), which the
  timer service appends when the rule is due.
* A decision names the events the rule fired on (:attr:`Decision.trigger_offsets`): for each
  leaf that holds, the newest event that makes it hold -- so an ``all_of`` names one event per
  part, and ``after(job, a, b)`` the FINISHED events of ``a`` and ``b``. They are what the
  attempt it starts receives as ``ctx.triggers`` (``ctx.trigger`` is the newest: the event
  being handled, whenever that event is one the rule holds on).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tideflow.domain.events import PERIODIC, Event, job_event_key
from tideflow.domain.rules import (
    MAX_AGGREGATE_SAMPLES,
    Aggregate,
    AggregateOp,
    AllOf,
    Condition,
    EventMatch,
    Last,
    Life,
    Periodic,
    Rule,
)
from tideflow.domain.status import JobAction

TIMER_SENDER = "scheduler"


def timer_event_key(workflow: str, job: str | None) -> str:
    """The key of the PERIODIC events of a rule on ``job`` (``<workflow>.<job>``)."""
    return job_event_key(workflow, job or "*")


@dataclass(frozen=True)
class Seen:
    """The latest event a leaf saw for one ``(event_type, sender, key)``."""

    offset: int
    value: str
    consumed: bool = False


@dataclass(frozen=True)
class Sample:
    """One matching event an :class:`Aggregate` leaf counts."""

    offset: int
    time: float
    """The event's create time, in seconds since the epoch."""
    value: float


_AGGREGATES = "aggregates"


@dataclass(frozen=True)
class RuleState:
    """What one rule remembers, per leaf (depth-first index).

    Attributes:
        leaves: For :class:`EventMatch` leaves, the latest events they matched.
        aggregates: For :class:`Aggregate` leaves, their samples, oldest first.
    """

    leaves: Mapping[int, Mapping[tuple[str, str, str], Seen]] = field(default_factory=dict)
    aggregates: Mapping[int, tuple[Sample, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for the store."""
        data: dict[str, Any] = {
            str(leaf): [
                [*origin, s.offset, s.value, s.consumed] for origin, s in sorted(seen.items())
            ]
            for leaf, seen in sorted(self.leaves.items())
        }
        if self.aggregates:
            # A key no leaf index can take; states saved before aggregates existed lack it.
            data[_AGGREGATES] = {
                str(leaf): [[s.offset, s.time, s.value] for s in samples]
                for leaf, samples in sorted(self.aggregates.items())
            }
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleState:
        """The inverse of :meth:`to_dict`."""
        return cls(
            {
                int(leaf): {
                    (event_type, sender, key): Seen(offset, value, consumed)
                    for event_type, sender, key, offset, value, consumed in items
                }
                for leaf, items in data.items()
                if leaf != _AGGREGATES
            },
            {
                int(leaf): tuple(Sample(offset, time, value) for offset, time, value in samples)
                for leaf, samples in data.get(_AGGREGATES, {}).items()
            },
        )


@dataclass(frozen=True)
class Decision:
    """A rule fired: do ``action`` to ``job`` (``None``: to the execution itself).

    Attributes:
        rule_index: The rule's position in the plan's rules.
        job: The job acted on, or ``None`` for a workflow-level rule.
        action: What to do.
        event_offset: The event being handled when it fired.
        trigger_offsets: The events the rule held on when it fired, oldest first (see the
            module docstring); just ``event_offset`` for a timer.
    """

    rule_index: int
    job: str | None
    action: JobAction
    event_offset: int
    trigger_offsets: tuple[int, ...] = ()


def evaluate(
    workflow: str,
    rules: Sequence[Rule],
    states: Mapping[int, RuleState],
    event: Event,
) -> tuple[dict[int, RuleState], list[Decision]]:
    """Feed one event to a workflow execution's rules.

    Args:
        workflow: The workflow's name (timer events are keyed by it).
        rules: The plan's rules, in declaration order.
        states: Each rule's state by rule index (missing: empty).
        event: The event, already routed to this execution.

    Returns:
        The states that changed, by rule index, and the decisions, in rule order (at most one
        per job, and at most one per workflow-level action).
    """
    changed: dict[int, RuleState] = {}
    fired_targets: set[tuple[str | None, JobAction | None]] = set()
    decisions: list[Decision] = []
    for index, rule in enumerate(rules):
        state = states.get(index, RuleState())
        if isinstance(rule.condition, Periodic):
            if _is_own_timer_event(workflow, rule, index, event):
                target = _target(rule)
                if target not in fired_targets:
                    fired_targets.add(target)
                    decisions.append(
                        Decision(index, rule.job, rule.action, event.offset, (event.offset,))
                    )
            continue
        updated = _observe(rule.condition, state, event)
        if updated is state:
            continue
        target = _target(rule)
        if target not in fired_targets and _holds(rule.condition, updated, [0]):
            fired_targets.add(target)
            held = _held_offsets(rule.condition, updated)
            decisions.append(Decision(index, rule.job, rule.action, event.offset, held))
            updated = _consume(updated)
        changed[index] = updated
    return changed, decisions


def _target(rule: Rule) -> tuple[str | None, JobAction | None]:
    # Job rules compete per job; workflow rules per action (start_on vs stop_on are separate).
    return (rule.job, None) if rule.job is not None else (None, rule.action)


def _is_own_timer_event(workflow: str, rule: Rule, index: int, event: Event) -> bool:
    return (
        event.event_type == PERIODIC
        and event.sender == TIMER_SENDER
        and event.key == timer_event_key(workflow, rule.job)
        and event.value == str(index)
    )


Leaf = EventMatch | Aggregate


def _leaves(condition: Condition) -> list[Leaf]:
    if isinstance(condition, EventMatch | Aggregate):
        return [condition]
    return [leaf for sub in condition.conditions for leaf in _leaves(sub)]


def _observe(condition: Condition, state: RuleState, event: Event) -> RuleState:
    """Record ``event`` in every leaf it concerns (for aggregates: prune their windows)."""
    leaves = dict(state.leaves)
    aggregates = dict(state.aggregates)
    touched = False
    for position, leaf in enumerate(_leaves(condition)):
        if isinstance(leaf, Aggregate):
            before = aggregates.get(position, ())
            after = _sampled(leaf, before, event)
            if after != before:
                aggregates[position] = after
                touched = True
        elif _matches_ignoring_value(leaf, event):
            seen = dict(leaves.get(position, {}))
            seen[(event.event_type, event.sender, event.key)] = Seen(event.offset, event.value)
            leaves[position] = seen
            touched = True
    return RuleState(leaves, aggregates) if touched else state


def _sampled(leaf: Aggregate, samples: tuple[Sample, ...], event: Event) -> tuple[Sample, ...]:
    """``samples`` with ``event`` added (when it matches and has a value) and the span pruned."""
    now = event.create_time.timestamp() if event.create_time is not None else 0.0
    out = list(samples)
    if leaf.match.matches(event):
        value = 1.0 if leaf.op is AggregateOp.COUNT else _number(event.value)
        if value is not None:
            out.append(Sample(event.offset, now, value))
    if isinstance(leaf.over, Last):
        out = out[-leaf.over.count :]
    else:
        start = now - leaf.over.seconds
        out = [s for s in out if s.time > start]
    return tuple(out[-MAX_AGGREGATE_SAMPLES:])


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _aggregate_holds(leaf: Aggregate, samples: tuple[Sample, ...]) -> bool:
    return leaf.holds([s.value for s in samples])


def _matches_ignoring_value(leaf: EventMatch, event: Event) -> bool:
    return (
        leaf.matches(replace(event, value=leaf.value))
        if leaf.value is not None
        else leaf.matches(event)
    )


def _seen_holds(leaf: EventMatch, seen: Seen) -> bool:
    return (leaf.value is None or seen.value == leaf.value) and (
        leaf.life == Life.REPEATED or not seen.consumed
    )


def _leaf_holds(leaf: EventMatch, seen: Mapping[tuple[str, str, str], Seen]) -> bool:
    return any(_seen_holds(leaf, s) for s in seen.values())


def _holds(condition: Condition, state: RuleState, counter: list[int]) -> bool:
    """Whether ``condition`` holds; ``counter`` walks the leaves depth-first, as indexed."""
    if isinstance(condition, EventMatch | Aggregate):
        position = counter[0]
        counter[0] += 1
        if isinstance(condition, Aggregate):
            return _aggregate_holds(condition, state.aggregates.get(position, ()))
        return _leaf_holds(condition, state.leaves.get(position, {}))
    results = [_holds(sub, state, counter) for sub in condition.conditions]  # visit every leaf
    return all(results) if isinstance(condition, AllOf) else any(results)


def _held_offsets(condition: Condition, state: RuleState) -> tuple[int, ...]:
    """For each leaf that holds, the offset of the newest event that makes it hold; sorted."""
    held: set[int] = set()
    for position, leaf in enumerate(_leaves(condition)):
        if isinstance(leaf, Aggregate):
            samples = state.aggregates.get(position, ())
            if samples and _aggregate_holds(leaf, samples):
                held.add(samples[-1].offset)
            continue
        seen = state.leaves.get(position, {}).values()
        holding = [s.offset for s in seen if _seen_holds(leaf, s)]
        if holding:
            held.add(max(holding))
    return tuple(sorted(held))


def _consume(state: RuleState) -> RuleState:
    """Mark every held event consumed (``repeated`` leaves ignore the mark); reset aggregates."""
    return RuleState(
        {
            position: {origin: replace(s, consumed=True) for origin, s in seen.items()}
            for position, seen in state.leaves.items()
        }
    )


def holds(rule: Rule, state: RuleState) -> bool:
    """Whether ``rule``'s condition holds in ``state`` now (timers never "hold")."""
    if isinstance(rule.condition, Periodic):
        return False
    return _holds(rule.condition, state, [0])


def waiting_on(rule: Rule, state: RuleState) -> list[EventMatch]:
    """The leaves of ``rule`` that do not hold yet: what ``execution show`` says a job waits on.

    An aggregate that does not hold yet is named by its ``match``.
    """
    if isinstance(rule.condition, Periodic):
        return []
    out: list[EventMatch] = []
    for position, leaf in enumerate(_leaves(rule.condition)):
        if isinstance(leaf, Aggregate):
            if not _aggregate_holds(leaf, state.aggregates.get(position, ())):
                out.append(leaf.match)
        elif not _leaf_holds(leaf, state.leaves.get(position, {})):
            out.append(leaf)
    return out
