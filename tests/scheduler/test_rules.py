"""The pure rules engine, condition by condition."""

from __future__ import annotations

import itertools

import pytest

import tideflow as tide
from tideflow.domain import (
    JOB_STATUS_CHANGED,
    PERIODIC,
    Event,
    EventMatch,
    Periodic,
    Rule,
    RuleKind,
)
from tideflow.domain.rules import all_of, any_of
from tideflow.scheduler.rules import RuleState, evaluate, holds, timer_event_key, waiting_on

WF = "flow"
_offsets = itertools.count(1)


def ev(key: str, value: str = "v", event_type: str = "T", sender: str = "s") -> Event:
    return Event(key=key, value=value, event_type=event_type, sender=sender, offset=next(_offsets))


def status(job: str, value: str) -> Event:
    return ev(f"{WF}.{job}", value, JOB_STATUS_CHANGED, "executor")


class Runner:
    """Feeds events to a rule list and keeps the states, as the dispatcher does."""

    def __init__(self, *rules: Rule) -> None:
        self.rules = list(rules)
        self.states: dict[int, RuleState] = {}

    def feed(self, event: Event) -> list[tuple[int, str | None, str]]:
        changed, decisions = evaluate(WF, self.rules, self.states, event)
        self.states.update(changed)
        for decision in decisions:
            assert decision.event_offset == event.offset
        return [(d.rule_index, d.job, str(d.action)) for d in decisions]


def rule(
    condition, job: str | None = "j", action=tide.JobAction.START, kind=RuleKind.EVENT, upstreams=()
) -> Rule:
    return Rule(job=job, condition=condition, action=action, kind=kind, upstreams=upstreams)


def test_wildcards_match_anything() -> None:
    r = Runner(rule(EventMatch()))
    assert r.feed(ev("any", event_type="X", sender="y")) == [(0, "j", "START")]


@pytest.mark.parametrize(
    ("match", "event", "fires"),
    [
        (EventMatch(key="k"), ev("k"), True),
        (EventMatch(key="k"), ev("other"), False),
        (EventMatch(event_type="T"), ev("k", event_type="U"), False),
        (EventMatch(sender="s"), ev("k", sender="t"), False),
        (EventMatch(key="k", value="1"), ev("k", "1"), True),
        (EventMatch(key="k", value="1"), ev("k", "2"), False),
    ],
)
def test_each_field_filters(match: EventMatch, event: Event, fires: bool) -> None:
    assert bool(Runner(rule(match)).feed(event)) is fires


def test_once_fires_once_per_event_and_again_on_a_new_event() -> None:
    r = Runner(rule(all_of(EventMatch(key="a"), EventMatch(key="b"))))
    assert r.feed(ev("a")) == []
    assert r.feed(ev("b")) == [(0, "j", "START")]
    # Both events were consumed: a new "a" alone does not fire again.
    assert r.feed(ev("a")) == []
    assert r.feed(ev("b")) == [(0, "j", "START")]


def test_repeated_keeps_holding() -> None:
    r = Runner(rule(all_of(EventMatch(key="config", life="repeated"), EventMatch(key="tick"))))
    assert r.feed(ev("config")) == []
    assert r.feed(ev("tick")) == [(0, "j", "START")]
    assert r.feed(ev("tick")) == [(0, "j", "START")]  # config still counts
    assert r.feed(ev("config")) == []  # tick was consumed


def test_any_of() -> None:
    r = Runner(rule(any_of(EventMatch(key="a"), EventMatch(key="b"))))
    assert r.feed(ev("c")) == []
    assert r.feed(ev("b")) == [(0, "j", "START")]
    assert r.feed(ev("a")) == [(0, "j", "START")]


def test_nested_all_of_any_of() -> None:
    r = Runner(rule(all_of(EventMatch(key="x"), any_of(EventMatch(key="a"), EventMatch(key="b")))))
    assert r.feed(ev("a")) == []
    assert r.feed(ev("x")) == [(0, "j", "START")]
    assert r.feed(ev("x")) == []
    assert r.feed(ev("b")) == [(0, "j", "START")]


def test_latest_event_per_origin_decides_the_value() -> None:
    """after(j, a): a restarted upstream (latest RUNNING) no longer counts as FINISHED."""
    cond = all_of(
        EventMatch(key=f"{WF}.a", event_type=JOB_STATUS_CHANGED, value="FINISHED"),
        EventMatch(key=f"{WF}.b", event_type=JOB_STATUS_CHANGED, value="FINISHED"),
    )
    r = Runner(rule(cond, kind=RuleKind.AFTER, upstreams=("a", "b")))
    assert r.feed(status("a", "FINISHED")) == []
    assert r.feed(status("a", "RUNNING")) == []
    assert r.feed(status("b", "FINISHED")) == []  # a is running again
    assert r.feed(status("a", "FINISHED")) == [(0, "j", "START")]


def test_value_wildcard_matches_any_update() -> None:
    r = Runner(rule(EventMatch(key="ctr", value=None)))
    assert r.feed(ev("ctr", "0.1")) == [(0, "j", "START")]
    assert r.feed(ev("ctr", "0.2")) == [(0, "j", "START")]


def test_same_key_from_two_senders_are_kept_apart() -> None:
    cond = all_of(EventMatch(key="k", sender="*", value="go"), EventMatch(key="other"))
    r = Runner(rule(cond))
    assert r.feed(ev("k", "go", sender="one")) == []
    assert r.feed(ev("k", "stop", sender="two")) == []  # a different origin: "one" still says go
    assert r.feed(ev("other")) == [(0, "j", "START")]


def test_alternatives_first_declared_wins_and_others_keep_state() -> None:
    r = Runner(
        rule(EventMatch(key="k"), action=tide.JobAction.RESTART),
        rule(all_of(EventMatch(key="k"), EventMatch(key="z")), action=tide.JobAction.STOP),
    )
    assert r.feed(ev("k")) == [(0, "j", "RESTART")]
    # The second rule saw "k" but did not fire; "z" completes it now.
    assert r.feed(ev("z")) == [(1, "j", "STOP")]


def test_rules_of_different_jobs_fire_on_the_same_event() -> None:
    r = Runner(rule(EventMatch(key="k"), job="a"), rule(EventMatch(key="k"), job="b"))
    assert r.feed(ev("k")) == [(0, "a", "START"), (1, "b", "START")]


def test_workflow_level_start_and_stop_rules_are_separate_targets() -> None:
    r = Runner(
        rule(EventMatch(key="k"), job=None, action=tide.JobAction.START, kind=RuleKind.START_ON),
        rule(EventMatch(key="k"), job=None, action=tide.JobAction.STOP, kind=RuleKind.STOP_ON),
    )
    assert r.feed(ev("k")) == [(0, None, "START"), (1, None, "STOP")]


def test_periodic_rules_fire_on_their_own_timer_events_only() -> None:
    r = Runner(
        rule(Periodic(interval_seconds=60), kind=RuleKind.PERIODIC),
        rule(Periodic(cron="0 * * * *"), job="other", kind=RuleKind.PERIODIC),
    )
    mine = Event(
        key=timer_event_key(WF, "j"),
        value="0",
        event_type=PERIODIC,
        sender="scheduler",
        offset=next(_offsets),
    )
    theirs = Event(
        key=timer_event_key(WF, "other"),
        value="1",
        event_type=PERIODIC,
        sender="scheduler",
        offset=next(_offsets),
    )
    forged = Event(
        key=timer_event_key(WF, "j"),
        value="0",
        event_type=PERIODIC,
        sender="user",
        offset=next(_offsets),
    )
    assert r.feed(mine) == [(0, "j", "START")]
    assert r.feed(theirs) == [(1, "other", "START")]
    assert r.feed(forged) == []


def test_unrelated_events_change_no_state() -> None:
    r = Runner(rule(EventMatch(key="k")))
    changed, decisions = evaluate(WF, r.rules, {}, ev("nothing"))
    assert (changed, decisions) == ({}, [])


def test_state_round_trips_through_json() -> None:
    import json

    r = Runner(rule(all_of(EventMatch(key="a"), EventMatch(key="b", life="repeated"))))
    r.feed(ev("a"))
    r.feed(ev("b"))
    r.feed(ev("b"))
    state = r.states[0]
    assert RuleState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_holds_and_waiting_on_explain_what_a_job_waits_for() -> None:
    a, b = EventMatch(key="a"), EventMatch(key="b")
    the_rule = rule(all_of(a, b))
    r = Runner(the_rule)
    assert waiting_on(the_rule, RuleState()) == [a, b]
    r.feed(ev("a"))
    assert waiting_on(the_rule, r.states[0]) == [b]
    assert not holds(the_rule, r.states[0])


# -- the events a decision names (what the attempt receives as ctx.triggers) -------------------


def triggers(runner: Runner, event: Event) -> list[tuple[str | None, tuple[int, ...]]]:
    changed, decisions = evaluate(WF, runner.rules, runner.states, event)
    runner.states.update(changed)
    return [(d.job, d.trigger_offsets) for d in decisions]


def test_a_single_event_rule_names_its_event() -> None:
    r = Runner(rule(EventMatch(key="k")))
    e = ev("k")
    assert triggers(r, e) == [("j", (e.offset,))]


def test_all_of_names_one_event_per_part_oldest_first() -> None:
    r = Runner(rule(all_of(EventMatch(key="a"), EventMatch(key="b"))))
    a = ev("a")
    assert triggers(r, a) == []
    first_b = ev("b")
    assert triggers(r, first_b) == [("j", (a.offset, first_b.offset))]
    b = ev("b")
    assert triggers(r, b) == []  # a was consumed by the firing
    a2 = ev("a")
    assert triggers(r, a2) == [("j", (b.offset, a2.offset))]  # b replaced first_b


def test_after_two_upstreams_names_both_finished_events() -> None:
    finished = [
        EventMatch(key=f"{WF}.{job}", event_type=JOB_STATUS_CHANGED, value="FINISHED")
        for job in ("a", "b")
    ]
    r = Runner(rule(all_of(*finished), kind=RuleKind.AFTER, upstreams=("a", "b")))
    a = status("a", "FINISHED")
    triggers(r, status("b", "RUNNING"))
    assert triggers(r, a) == []
    b = status("b", "FINISHED")
    assert triggers(r, b) == [("j", (a.offset, b.offset))]


def test_any_of_names_the_parts_that_hold_only() -> None:
    r = Runner(rule(any_of(EventMatch(key="a", value="yes"), EventMatch(key="b"))))
    triggers(r, ev("a", "no"))
    b = ev("b")
    assert triggers(r, b) == [("j", (b.offset,))]


def test_a_repeated_wildcard_leaf_names_its_newest_event_not_its_history() -> None:
    r = Runner(rule(EventMatch(event_type="X", life="repeated")))
    for key in ("k1", "k2", "k3"):
        triggers(r, ev(key, event_type="X"))
    last = ev("k4", event_type="X")
    assert triggers(r, last) == [("j", (last.offset,))]


def test_a_timer_names_its_periodic_event() -> None:
    r = Runner(rule(Periodic(interval_seconds=60), kind=RuleKind.PERIODIC))
    tick = Event(
        key=timer_event_key(WF, "j"),
        value="0",
        event_type=PERIODIC,
        sender="scheduler",
        offset=next(_offsets),
    )
    assert triggers(r, tick) == [("j", (tick.offset,))]
