"""Rules: when a job (or a whole workflow execution) starts, stops or restarts.

A rule is data, not code: ``(condition, action)`` attached to a job, or to the workflow when
``job`` is ``None``. Conditions are :class:`EventMatch` leaves combined with :class:`AllOf` /
:class:`AnyOf`, or a :class:`Periodic` timer. Everything here is JSON-serialisable through
:func:`condition_to_dict` / :func:`condition_from_dict`, so the scheduler evaluates rules without
importing user code.

Every control edge of the SDK lowers to these shapes: ``after(job, a, b)`` is one rule whose
condition is ``AllOf`` of the ``JOB_STATUS_CHANGED`` events of ``a`` and ``b`` reaching the
status; ``with_start`` is the same with ``RUNNING``; ``on_model_version`` matches the model's
``MODEL_*`` event type. :class:`RuleKind` keeps which control edge a rule came from, for display.

An :class:`Aggregate` leaf is a condition over several events, still declared as data: the
count / sum / min / max / mean of the values of its matching events, over the last N of them
(:func:`last`) or a time window (:func:`window`, by the events' create times, so a replay
decides alike), compared with a threshold. Its samples live in the rule state (bounded: N, or
at most :data:`MAX_AGGREGATE_SAMPLES` inside a window) and are cleared when the rule fires.

A job rule whose action is START also says what it does when it fires while the job is busy
(an attempt is live): :class:`OnBusy`, ``queue`` by default (one more attempt per firing, at
most ``max_queued`` waiting), so no firing -- no new model version -- is dropped unseen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from tideflow.domain.events import WILDCARD, Event
from tideflow.domain.status import JobAction


class Life(StrEnum):
    """How often one event may fire a rule."""

    ONCE = "once"
    REPEATED = "repeated"


class OnBusy(StrEnum):
    """What a START rule does when it fires while its job has a live attempt."""

    SKIP = "skip"
    """Start nothing; the firing is recorded as skipped."""
    QUEUE = "queue"
    """Run once more per firing after the live attempt ends, each with its own trigger."""
    LATEST = "latest"
    """Like ``queue``, but keep only the newest waiting firing of the rule."""
    RESTART = "restart"
    """Stop the live attempt and start a new one for this firing."""


DEFAULT_MAX_QUEUED = 100
"""How many firings of one ``queue`` rule may wait for a busy job (more are skipped)."""
MAX_MAX_QUEUED = 10_000
"""The largest ``max_queued`` a rule may ask for."""


class RuleKind(StrEnum):
    """Which control edge a rule was declared as."""

    AFTER = "after"
    WITH_START = "with_start"
    PERIODIC = "periodic"
    EVENT = "event"
    MODEL_VERSION = "model_version"
    DATASET = "dataset"
    START_ON = "start_on"
    STOP_ON = "stop_on"


@dataclass(frozen=True)
class EventMatch:
    """Matches events by key, type and sender (``"*"`` matches anything) and optionally value.

    Attributes:
        key: The event key, or ``"*"``.
        event_type: The event type, or ``"*"``.
        sender: The sender, or ``"*"``.
        value: ``None`` matches any value (the event was updated); a string must be equal.
        life: ``once`` -- each event fires the rule at most once; ``repeated`` -- the latest
            matching event keeps the condition true for later evaluations.
    """

    key: str = WILDCARD
    event_type: str = WILDCARD
    sender: str = WILDCARD
    value: str | None = None
    life: Life = Life.ONCE

    def __post_init__(self) -> None:
        # Users write life="repeated"; keep the enum so equality and JSON stay canonical.
        # An unknown string is left as is for the compile-time checks to report.
        if not isinstance(self.life, Life) and self.life in Life._value2member_map_:
            object.__setattr__(self, "life", Life(self.life))

    def matches(self, event: Event) -> bool:
        """Whether ``event`` satisfies this leaf (the namespace is checked by the caller)."""
        return (
            _field_matches(self.key, event.key)
            and _field_matches(self.event_type, event.event_type)
            and _field_matches(self.sender, event.sender)
            and (self.value is None or self.value == event.value)
        )


def _field_matches(pattern: str, actual: str) -> bool:
    return pattern in (WILDCARD, actual)


class AggregateOp(StrEnum):
    """What an :class:`Aggregate` computes over its samples."""

    COUNT = "count"
    """How many matching events (their values are not read)."""
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    MEAN = "mean"


class Comparison(StrEnum):
    """How an :class:`Aggregate` compares its result with the threshold."""

    GE = ">="
    GT = ">"
    LE = "<="
    LT = "<"
    EQ = "=="

    def test(self, left: float, right: float) -> bool:
        """Whether ``left <op> right``."""
        if self is Comparison.GE:
            return left >= right
        if self is Comparison.GT:
            return left > right
        if self is Comparison.LE:
            return left <= right
        if self is Comparison.LT:
            return left < right
        return left == right


MAX_AGGREGATE_SAMPLES = 10_000
"""The most samples one aggregate keeps: the largest N of :func:`last`, and the cap of a
:func:`window` (past it, the oldest samples are dropped first)."""


@dataclass(frozen=True)
class Last:
    """Aggregate over the last ``count`` matching events."""

    count: int


@dataclass(frozen=True)
class Window:
    """Aggregate over the matching events created in the last ``seconds``."""

    seconds: float


def last(count: int) -> Last:
    """The last ``count`` matching events (1 to :data:`MAX_AGGREGATE_SAMPLES`)."""
    return Last(count)


def window(duration: timedelta | float) -> Window:
    """The matching events created within ``duration`` (a ``timedelta`` or seconds)."""
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else duration
    return Window(seconds)


@dataclass(frozen=True)
class Aggregate:
    """Holds when ``op`` of the matching events' values, ``over`` a span, ``compare`` threshold.

    Values are parsed as numbers; a matching event whose value is not a finite number is
    ignored (``count`` reads no value and counts every matching event). The samples are cleared
    when the rule fires, so the next firing needs a fresh span of events.

    Attributes:
        match: Which events count (``key`` / ``event_type`` / ``sender``; ``value`` filters
            them by exact value; ``life`` is not used).
        op: ``count``, ``sum``, ``min``, ``max`` or ``mean``.
        over: :func:`last` ``(N)`` or :func:`window` ``(duration)``.
        threshold: The number compared with.
        compare: ``>=`` (default), ``>``, ``<=``, ``<`` or ``==``.
    """

    match: EventMatch
    op: AggregateOp
    over: Last | Window
    threshold: float
    compare: Comparison = Comparison.GE

    def __post_init__(self) -> None:
        # Users write op="sum", compare=">"; keep enums (unknown strings stay for the checks).
        if not isinstance(self.op, AggregateOp) and self.op in AggregateOp._value2member_map_:
            object.__setattr__(self, "op", AggregateOp(self.op))
        if (
            not isinstance(self.compare, Comparison)
            and self.compare in Comparison._value2member_map_
        ):
            object.__setattr__(self, "compare", Comparison(self.compare))

    def result(self, values: list[float]) -> float | None:
        """The aggregate of ``values`` (``None``: min / max / mean of nothing)."""
        if self.op is AggregateOp.COUNT:
            return float(len(values))
        if self.op is AggregateOp.SUM:
            return math.fsum(values)
        if not values:
            return None
        if self.op is AggregateOp.MIN:
            return min(values)
        if self.op is AggregateOp.MAX:
            return max(values)
        return math.fsum(values) / len(values)

    def holds(self, values: list[float]) -> bool:
        """Whether the aggregate of ``values`` passes the comparison."""
        result = self.result(values)
        return result is not None and Comparison(self.compare).test(result, self.threshold)


@dataclass(frozen=True)
class AllOf:
    """True when every sub-condition is true."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """True when at least one sub-condition is true."""

    conditions: tuple[Condition, ...]


Condition = EventMatch | Aggregate | AllOf | AnyOf


@dataclass(frozen=True)
class Periodic:
    """A timer: a 5-field cron expression in a time zone, or a fixed interval in seconds."""

    cron: str | None = None
    interval_seconds: float | None = None
    timezone: str = "UTC"


Trigger = Condition | Periodic


@dataclass(frozen=True)
class Rule:
    """One ``(condition, action)`` pair.

    Attributes:
        job: The job acted on, or ``None`` for a workflow-level rule (start/stop executions).
        condition: What must hold (events) or when (a timer).
        action: What happens to the job (or the execution) when it fires.
        kind: The control edge it was declared as.
        upstreams: For ``after`` / ``with_start``, the jobs it waits on.
        location: ``file:line`` where the user declared it.
        on_busy: For a job rule whose action is START, what a firing does while the job is
            busy; ``None`` means the default (:attr:`busy`). Only START job rules may set it.
        max_queued: For ``on_busy="queue"``, how many firings may wait (``None``: the
            default, :data:`DEFAULT_MAX_QUEUED`); more are recorded as skipped.
    """

    job: str | None
    condition: Trigger
    action: JobAction = JobAction.START
    kind: RuleKind = RuleKind.EVENT
    upstreams: tuple[str, ...] = ()
    location: str | None = None
    on_busy: OnBusy | None = None
    max_queued: int | None = None

    def __post_init__(self) -> None:
        # Users write on_busy="latest"; keep the enum (unknown strings stay for the checks).
        value = self.on_busy
        if isinstance(value, str) and value in OnBusy._value2member_map_:
            object.__setattr__(self, "on_busy", OnBusy(value))

    @property
    def busy(self) -> OnBusy | None:
        """What a firing does while the job is busy: ``None`` for rules that start nothing."""
        if self.job is None or self.action != JobAction.START:
            return None
        return self.on_busy if isinstance(self.on_busy, OnBusy) else OnBusy.QUEUE

    @property
    def queue_limit(self) -> int:
        """How many firings of this rule may wait for the busy job (1 for ``latest``)."""
        if self.busy is OnBusy.LATEST:
            return 1
        return self.max_queued if isinstance(self.max_queued, int) else DEFAULT_MAX_QUEUED

    def leaves(self) -> tuple[EventMatch, ...]:
        """Every :class:`EventMatch` of the condition, depth first (empty for timers)."""
        return event_matches(self.condition)


def all_of(*conditions: Condition) -> AllOf:
    """A condition that needs every one of ``conditions``."""
    return AllOf(tuple(conditions))


def any_of(*conditions: Condition) -> AnyOf:
    """A condition that needs at least one of ``conditions``."""
    return AnyOf(tuple(conditions))


def event_matches(condition: Trigger) -> tuple[EventMatch, ...]:
    """Every :class:`EventMatch` inside ``condition``, depth first (an aggregate's ``match``)."""
    if isinstance(condition, EventMatch):
        return (condition,)
    if isinstance(condition, Aggregate):
        return (condition.match,)
    if isinstance(condition, AllOf | AnyOf):
        return tuple(leaf for sub in condition.conditions for leaf in event_matches(sub))
    return ()


def condition_to_dict(condition: Trigger) -> dict[str, Any]:
    """A JSON-ready form of ``condition``, tagged by its kind."""
    if isinstance(condition, EventMatch):
        return {
            "match": {
                "key": condition.key,
                "event_type": condition.event_type,
                "sender": condition.sender,
                "value": condition.value,
                "life": str(condition.life),
            }
        }
    if isinstance(condition, Aggregate):
        over: dict[str, Any] = (
            {"last": condition.over.count}
            if isinstance(condition.over, Last)
            else {"window_seconds": condition.over.seconds}
        )
        return {
            "aggregate": {
                **condition_to_dict(condition.match),
                "op": str(condition.op),
                "over": over,
                "compare": str(condition.compare),
                "threshold": condition.threshold,
            }
        }
    if isinstance(condition, AllOf):
        return {"all_of": [condition_to_dict(c) for c in condition.conditions]}
    if isinstance(condition, AnyOf):
        return {"any_of": [condition_to_dict(c) for c in condition.conditions]}
    return {
        "periodic": {
            "cron": condition.cron,
            "interval_seconds": condition.interval_seconds,
            "timezone": condition.timezone,
        }
    }


def condition_from_dict(data: Mapping[str, Any]) -> Trigger:
    """The inverse of :func:`condition_to_dict`.

    Raises:
        ValueError: ``data`` is not a condition this version understands.
    """
    if len(data) != 1:
        raise ValueError(f"a condition has exactly one tag, got {sorted(data)}")
    ((tag, body),) = data.items()
    if tag == "match":
        return EventMatch(
            key=body["key"],
            event_type=body["event_type"],
            sender=body["sender"],
            value=body["value"],
            life=Life(body["life"]),
        )
    if tag == "aggregate":
        match = condition_from_dict({"match": body["match"]})
        over_body = body["over"]
        over: Last | Window = (
            Last(over_body["last"]) if "last" in over_body else Window(over_body["window_seconds"])
        )
        if not isinstance(match, EventMatch):  # pragma: no cover - "match" always gives one
            raise ValueError("an aggregate needs an event match")
        # Unknown op / compare strings stay as they are, for the checks to name the rule.
        return Aggregate(
            match=match,
            op=body["op"],
            over=over,
            threshold=body["threshold"],
            compare=body["compare"],
        )
    if tag in ("all_of", "any_of"):
        subs = tuple(_event_condition_from_dict(item) for item in body)
        return AllOf(subs) if tag == "all_of" else AnyOf(subs)
    if tag == "periodic":
        return Periodic(
            cron=body["cron"], interval_seconds=body["interval_seconds"], timezone=body["timezone"]
        )
    raise ValueError(f"unknown condition tag {tag!r}")


def _event_condition_from_dict(data: Mapping[str, Any]) -> Condition:
    condition = condition_from_dict(data)
    if isinstance(condition, Periodic):
        raise ValueError("a timer cannot be combined inside all_of / any_of")
    return condition


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    """A JSON-ready form of ``rule``."""
    return {
        "job": rule.job,
        "condition": condition_to_dict(rule.condition),
        "action": str(rule.action),
        "kind": str(rule.kind),
        "upstreams": list(rule.upstreams),
        "location": rule.location,
        "on_busy": None if rule.on_busy is None else str(rule.on_busy),
        "max_queued": rule.max_queued,
    }


def rule_from_dict(data: Mapping[str, Any]) -> Rule:
    """The inverse of :func:`rule_to_dict`."""
    return Rule(
        job=data["job"],
        condition=condition_from_dict(data["condition"]),
        action=JobAction(data["action"]),
        kind=RuleKind(data["kind"]),
        upstreams=tuple(data["upstreams"]),
        location=data["location"],
        on_busy=None if data.get("on_busy") is None else OnBusy(data["on_busy"]),
        max_queued=data.get("max_queued"),
    )


def describe_condition(condition: Trigger) -> str:
    """A one-line, human-readable form of a condition (for the CLI and the UI)."""
    if isinstance(condition, EventMatch):
        parts = [
            f"{label}={value}"
            for label, value in (
                ("key", condition.key),
                ("type", condition.event_type),
                ("sender", condition.sender),
            )
            if value != WILDCARD
        ]
        if condition.value is not None:
            parts.append(f"value={condition.value!r}")
        if condition.life == Life.REPEATED:
            parts.append("repeated")
        return f"event({', '.join(parts) or 'any'})"
    if isinstance(condition, Aggregate):
        return describe_aggregate(condition, describe_condition(condition.match))
    if isinstance(condition, AllOf | AnyOf):
        label = "all_of" if isinstance(condition, AllOf) else "any_of"
        return f"{label}({', '.join(describe_condition(c) for c in condition.conditions)})"
    if condition.cron is not None:
        return f"cron '{condition.cron}' ({condition.timezone})"
    return f"every {condition.interval_seconds:g}s"


def describe_aggregate(aggregate: Aggregate, events: str) -> str:
    """``sum of event(key=x) over last 100 >= 1000``: an aggregate in words."""
    over = aggregate.over
    span = f"last {over.count}" if isinstance(over, Last) else f"{over.seconds:g}s"
    return f"{aggregate.op} of {events} over {span} {aggregate.compare} {aggregate.threshold:g}"


def describe_rule(rule: Rule) -> str:
    """What a rule waits for, in the words of the control edge it was declared as."""
    if rule.kind == RuleKind.AFTER:
        statuses = {leaf.value for leaf in rule.leaves()}
        status = statuses.pop() if len(statuses) == 1 else "their status"
        return f"after {', '.join(rule.upstreams)} {status}"
    if rule.kind == RuleKind.WITH_START:
        return f"with start of {', '.join(rule.upstreams)}"
    if rule.kind == RuleKind.PERIODIC:
        return f"periodic: {describe_condition(rule.condition)}"
    if rule.kind == RuleKind.MODEL_VERSION and isinstance(rule.condition, EventMatch):
        return f"on {rule.condition.event_type} of model {rule.condition.key}"
    if rule.kind == RuleKind.DATASET and isinstance(rule.condition, EventMatch):
        return f"on update of dataset {rule.condition.key}"
    return f"{rule.kind}: {describe_condition(rule.condition)}"
