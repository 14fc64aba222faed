import pytest

from tideflow.domain import (
    AllOf,
    AnyOf,
    Event,
    EventMatch,
    Life,
    ModelStatus,
    ModelVersionEvent,
    Periodic,
    Rule,
    RuleKind,
    describe_rule,
)
from tideflow.domain.rules import (
    condition_from_dict,
    condition_to_dict,
    rule_from_dict,
    rule_to_dict,
)


def test_event_match_wildcards_and_value():
    event = Event(key="ctr", value="0.3", event_type="DRIFT_DETECTED", sender="monitor")
    assert EventMatch().matches(event)
    assert EventMatch(event_type="DRIFT_DETECTED").matches(event)
    assert EventMatch(key="ctr", sender="monitor", value="0.3").matches(event)
    assert not EventMatch(key="other").matches(event)
    assert not EventMatch(sender="trainer").matches(event)
    assert not EventMatch(value="0.4").matches(event)


def test_life_strings_become_the_enum():
    assert EventMatch(life="repeated").life is Life.REPEATED
    assert EventMatch(life="sometimes").life == "sometimes"  # left for the checks to report


@pytest.mark.parametrize(
    "condition",
    [
        EventMatch(key="a", value="v", life=Life.REPEATED),
        AllOf((EventMatch(key="a"), AnyOf((EventMatch(key="b"), EventMatch(sender="s"))))),
        Periodic(cron="*/5 * * * *", timezone="Europe/Paris"),
        Periodic(interval_seconds=2.5),
    ],
)
def test_conditions_round_trip(condition):
    assert condition_from_dict(condition_to_dict(condition)) == condition


def test_rule_round_trip_and_bad_tags():
    rule = Rule(
        job="j",
        condition=EventMatch(key="k"),
        kind=RuleKind.DATASET,
        upstreams=("u",),
        location="f.py:3",
    )
    assert rule_from_dict(rule_to_dict(rule)) == rule
    with pytest.raises(ValueError, match="unknown condition tag 'xor'"):
        condition_from_dict({"xor": []})
    with pytest.raises(ValueError, match="timer cannot be combined"):
        condition_from_dict({"all_of": [condition_to_dict(Periodic(interval_seconds=1))]})


def test_describe_rule_speaks_the_control_edge():
    after = Rule(
        "c",
        AllOf((EventMatch(key="w.a", value="FINISHED"), EventMatch(key="w.b", value="FINISHED"))),
        kind=RuleKind.AFTER,
        upstreams=("a", "b"),
    )
    assert describe_rule(after) == "after a, b FINISHED"
    every = Rule("c", Periodic(interval_seconds=60), kind=RuleKind.PERIODIC)
    assert describe_rule(every) == "periodic: every 60s"
    event = Rule("c", EventMatch(event_type="X", value="1", life=Life.REPEATED))
    assert describe_rule(event) == "event: event(type=X, value='1', repeated)"


def test_model_version_event_for_every_status():
    assert {ModelVersionEvent.for_status(s) for s in ModelStatus} == set(ModelVersionEvent)


def test_event_execution_id_comes_from_context():
    assert Event("k", "v", context={"execution_id": 7}).execution_id == "7"
    assert Event("k", "v").execution_id is None
