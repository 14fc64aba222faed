"""Aggregate conditions: count / sum / min / max / mean over the last N events or a window."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

import tideflow as tide
from tests.scheduler.conftest import Env, jobs_workflow
from tideflow.domain import Event, EventMatch, Rule, RuleKind
from tideflow.domain.rules import (
    MAX_AGGREGATE_SAMPLES,
    Aggregate,
    all_of,
    any_of,
    condition_from_dict,
    condition_to_dict,
    describe_condition,
    last,
    window,
)
from tideflow.scheduler import crash
from tideflow.scheduler.dispatcher import Dispatcher
from tideflow.scheduler.rules import RuleState, Sample, evaluate, waiting_on

WF = "flow"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
_offsets = itertools.count(1)


def ev(key: str, value: str = "1", at: float = 0.0) -> Event:
    return Event(
        key=key,
        value=value,
        event_type="T",
        sender="s",
        offset=next(_offsets),
        create_time=T0 + timedelta(seconds=at),
    )


class Runner:
    """Feeds events to one rule and keeps its state as the dispatcher does (through JSON)."""

    def __init__(self, condition: tide.Aggregate | object) -> None:
        self.rule = Rule(job="j", condition=condition, kind=RuleKind.EVENT)  # type: ignore[arg-type]
        self.state = RuleState()
        self.fired: list[tuple[int, ...]] = []

    def feed(self, key: str, value: str = "1", at: float = 0.0) -> bool:
        event = ev(key, value, at)
        changed, decisions = evaluate(WF, [self.rule], {0: self.state}, event)
        if 0 in changed:
            # Every state goes through the store's JSON form, as across a restart.
            self.state = RuleState.from_dict(changed[0].to_dict())
        self.fired += [d.trigger_offsets for d in decisions]
        return bool(decisions)


def agg(
    op: str, threshold: float, over: object = None, compare: str = ">=", **match: str
) -> Aggregate:
    return tide.Aggregate(
        match=EventMatch(key=match.pop("key", "x"), **match),
        op=op,  # type: ignore[arg-type]
        over=last(100) if over is None else over,  # type: ignore[arg-type]
        threshold=threshold,
        compare=compare,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("op", "compare", "threshold", "values", "fires_at"),
    [
        ("sum", ">=", 100, ["40", "50", "10"], 3),
        ("sum", ">", 100, ["40", "50", "10", "1"], 4),
        ("count", ">=", 3, ["a", "b", "c"], 3),  # count reads no value
        ("min", "<", 0, ["5", "3", "-1"], 3),
        ("max", ">=", 9, ["1", "9.5"], 2),
        ("mean", "<=", 2, ["4", "1", "1"], 3),  # 6 / 3 = 2
        ("mean", "==", 2.5, ["2", "3"], 2),
    ],
)
def test_each_op_fires_when_its_threshold_is_passed(
    op: str, compare: str, threshold: float, values: list[str], fires_at: int
) -> None:
    r = Runner(agg(op, threshold, compare=compare))
    results = [r.feed("x", value) for value in values]
    assert results == [i + 1 == fires_at for i in range(len(values))]


def test_other_events_are_not_samples() -> None:
    r = Runner(agg("count", 2, value="bad"))
    assert not r.feed("y", "bad")
    assert not r.feed("x", "good")
    assert not r.feed("x", "bad")
    assert r.feed("x", "bad")


def test_a_value_that_is_not_a_finite_number_is_ignored() -> None:
    r = Runner(agg("sum", 10))
    for value in ("abc", "", "nan", "inf", "-inf", "1e999"):
        assert not r.feed("x", value)
    assert r.state.to_dict() == {}  # nothing was kept
    assert not r.feed("x", "4")
    assert r.feed("x", "6")


def test_last_n_keeps_only_the_newest_samples() -> None:
    r = Runner(agg("sum", 10, over=last(2)))
    assert not r.feed("x", "9")
    assert not r.feed("x", "0")
    assert not r.feed("x", "0")  # the 9 left the span
    assert not r.feed("x", "5")
    assert r.feed("x", "5")


def test_three_of_the_last_five_windows_degraded() -> None:
    r = Runner(agg("sum", 3, over=last(5)))
    results = [r.feed("x", v) for v in ("1", "0", "0", "1", "0", "0", "1", "1", "0", "1")]
    # After the 8th: 0 1 0 0 1 1 -> last five 1 0 0 1 1 = 3.
    assert results.index(True) == 7
    assert results.count(True) == 1


def test_a_window_holds_the_events_created_within_it() -> None:
    r = Runner(agg("sum", 10, over=window(timedelta(seconds=60))))
    assert not r.feed("x", "6", at=0)
    assert not r.feed("x", "3", at=30)
    assert not r.feed("x", "3", at=61)  # the 6 fell out: 3 + 3
    assert r.feed("x", "4", at=62)  # 3 + 3 + 4


def test_any_event_the_rule_sees_prunes_its_window() -> None:
    r = Runner(all_of(agg("count", 2, over=window(10)), EventMatch(key="go")))
    assert not r.feed("x", at=0)
    assert not r.feed("x", at=1)
    assert not r.feed("go", at=50)  # both samples are too old by now
    assert not r.feed("x", at=51)
    assert r.feed("x", at=52)  # count 2 and go (held since t=50)


def test_a_window_keeps_at_most_the_cap() -> None:
    r = Runner(agg("count", MAX_AGGREGATE_SAMPLES + 1, over=window(1e6)))
    full = tuple(Sample(-i, T0.timestamp(), 1.0) for i in range(MAX_AGGREGATE_SAMPLES, 0, -1))
    r.state = RuleState(aggregates={0: full})
    assert not r.feed("x")
    (samples,) = r.state.aggregates.values()
    assert len(samples) == MAX_AGGREGATE_SAMPLES
    assert samples[0] == full[1]  # the oldest went first


def test_firing_resets_the_aggregate() -> None:
    r = Runner(agg("sum", 10))
    assert r.feed("x", "10")
    assert not r.feed("x", "5")  # starts again from 0, not 15
    assert r.feed("x", "5")
    assert len(r.fired) == 2
    # The decision names the newest sample: the event that made it hold.
    assert r.fired[1] == (r.fired[1][-1],)


def test_inside_all_of_it_waits_for_the_other_part_and_keeps_its_samples() -> None:
    r = Runner(all_of(agg("sum", 5), EventMatch(key="go")))
    assert not r.feed("x", "5")
    assert not r.feed("x", "1")  # still holds (6 >= 5)
    assert r.feed("go")
    assert len(r.fired[0]) == 2  # the newest sample and the go event
    assert not r.feed("go")  # reset: the sum starts again from nothing
    assert r.feed("x", "5")  # with the new, unconsumed go


def test_inside_any_of_either_part_fires() -> None:
    r = Runner(any_of(agg("count", 3), EventMatch(key="now")))
    assert not r.feed("x")
    assert r.feed("now")
    assert not r.feed("x")  # the count was reset by the firing
    assert not r.feed("x")
    assert r.feed("x")


def test_waiting_on_names_the_aggregates_match() -> None:
    aggregate = agg("sum", 5)
    rule = Rule(job="j", condition=aggregate)
    assert waiting_on(rule, RuleState()) == [aggregate.match]


def test_it_round_trips_through_json_and_reads_in_words() -> None:
    for condition in (
        agg("mean", 0.5, over=window(timedelta(minutes=5)), compare="<"),
        all_of(agg("count", 1000, over=last(1000)), EventMatch(key="k")),
    ):
        assert condition_from_dict(condition_to_dict(condition)) == condition
    assert (
        describe_condition(agg("sum", 100, over=last(10)))
        == "sum of event(key=x) over last 10 >= 100"
    )
    assert describe_condition(agg("max", 2, over=window(300), compare=">")) == (
        "max of event(key=x) over 300s > 2"
    )


def test_old_states_without_aggregates_still_load() -> None:
    data = {"0": [["T", "s", "k", 3, "v", False]]}
    assert RuleState.from_dict(data).to_dict() == data


# --- through the dispatcher and the store -----------------------------------------------------


def summing(name: str) -> object:
    wf = jobs_workflow(name, "boot", "summed")
    wf.on_events(
        "summed",
        tide.Aggregate(
            match=tide.EventMatch(key="samples"), op="sum", over=tide.last(100), threshold=100
        ),
    )
    return wf


def test_a_job_starts_when_the_sum_reaches_the_threshold(env: Env) -> None:
    env.submit(summing("sums"))
    run = env.start("sums").execution_id
    env.run()
    for value in ("40", "abc", "50"):
        env.send("samples", value)
    env.run()
    assert [a for a in env.attempts(run) if a[0] == "summed"] == []
    last_offset = env.send("samples", "10")
    env.run()
    assert [a[:2] for a in env.attempts(run) if a[0] == "summed"] == [("summed", 1)]
    assert env.latest(run, "summed").trigger_offsets == (last_offset,)
    env.send("samples", "99")  # reset on firing: 99 < 100
    env.run()
    assert [a[:2] for a in env.attempts(run) if a[0] == "summed"] == [("summed", 1)]


DISPATCH_POINTS = [p for p in crash.POINTS if p.startswith("dispatch.")]


class Crash(Exception):
    """Stands for the process dying at a crash point."""


def crashing_scenario(env: Env, prefix: str, point: str | None) -> list[tuple[str, int]]:
    armed = [point]

    def hook(name: str) -> None:
        if name == armed[0]:
            armed[0] = None
            raise Crash(name)

    def run() -> None:
        try:
            env.run()
        except Crash:
            service = env.service
            env.dispatcher = Dispatcher(
                env.store, env.clock, service.plans, service.config, on_effects=service.notify
            )
            env.run()

    wf = jobs_workflow(f"{prefix}_agg", "boot", "summed")  # boot never ends: it stays RUNNING
    wf.on_events(
        "summed",
        tide.Aggregate(
            match=tide.EventMatch(key=f"{prefix}_s"), op="sum", over=tide.last(3), threshold=10
        ),
    )
    env.submit(wf)
    execution = env.start(f"{prefix}_agg").execution_id
    crash.set_hook(hook)
    try:
        for value in ("4", "3", "3", "9", "1", "0", "5", "5"):
            env.send(f"{prefix}_s", value)
            run()
            attempt = [a for a in env.attempts(execution) if a[0] == "summed"]
            if attempt and attempt[-1][2] not in ("FINISHED",):
                env.move(execution, "summed", "STARTING", "RUNNING", "FINISHED")
                run()
    finally:
        crash.set_hook(None)
    return [(job, attempt) for job, attempt, _ in env.attempts(execution) if job == "summed"]


@pytest.mark.parametrize("point", DISPATCH_POINTS)
def test_a_crash_between_samples_loses_or_doubles_nothing(env: Env, point: str) -> None:
    expected = crashing_scenario(env, "base", None)
    # 4+3+3 = 10 fires; then 9, 1 = 10 fires; then 0, 5, 5 = 10 fires.
    assert expected == [("summed", 1), ("summed", 2), ("summed", 3)]
    assert crashing_scenario(env, f"hit{DISPATCH_POINTS.index(point)}", point) == expected
