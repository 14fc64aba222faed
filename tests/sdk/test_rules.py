from datetime import timedelta

import tideflow as tide
from tideflow.domain import (
    JOB_STATUS_CHANGED,
    AllOf,
    EventMatch,
    Life,
    Periodic,
    RuleKind,
)


def _wf(echo):
    with tide.workflow("flow") as wf:
        for name in ("a", "b", "c"):
            with tide.job(name):
                tide.read_dataset(name, processor=echo)
    return wf


def test_after_is_one_rule_needing_every_upstream(echo):
    wf = _wf(echo)
    rule = wf.after("c", "a", "b")
    assert rule.kind == RuleKind.AFTER
    assert rule.action == tide.JobAction.START
    assert rule.upstreams == ("a", "b")
    assert rule.condition == AllOf(
        (
            EventMatch(key="flow.a", event_type=JOB_STATUS_CHANGED, value="FINISHED"),
            EventMatch(key="flow.b", event_type=JOB_STATUS_CHANGED, value="FINISHED"),
        )
    )


def test_after_single_upstream_with_status_and_action(echo):
    rule = _wf(echo).after("b", "a", status=tide.JobStatus.FAILED, action="RESTART")
    assert rule.condition == EventMatch(key="flow.a", event_type=JOB_STATUS_CHANGED, value="FAILED")
    assert rule.action is tide.JobAction.RESTART


def test_with_start_waits_for_running(echo):
    rule = _wf(echo).with_start("b", "a")
    assert rule.kind == RuleKind.WITH_START
    assert rule.condition == EventMatch(
        key="flow.a", event_type=JOB_STATUS_CHANGED, value="RUNNING"
    )


def test_periodic_cron_and_interval(echo):
    wf = _wf(echo)
    cron = wf.periodic("a", cron="0 * * * *", timezone="Europe/Paris")
    every = wf.periodic("b", interval=timedelta(minutes=5), action=tide.JobAction.RESTART)
    assert cron.condition == Periodic(cron="0 * * * *", timezone="Europe/Paris")
    assert every.condition == Periodic(interval_seconds=300.0)
    assert every.action == tide.JobAction.RESTART


def test_on_event_defaults_to_wildcards(echo):
    rule = _wf(echo).on_event("a", event_type="DRIFT_DETECTED", action=tide.JobAction.RESTART)
    assert rule.condition == EventMatch(
        key="*", event_type="DRIFT_DETECTED", sender="*", value=None, life=Life.ONCE
    )
    assert rule.kind == RuleKind.EVENT


def test_on_event_value_and_repeated_life(echo):
    rule = _wf(echo).on_event("a", "k", sender="me", value="v", life="repeated")
    assert rule.condition == EventMatch(key="k", sender="me", value="v", life=Life.REPEATED)


def test_on_events_keeps_a_composed_condition(echo):
    condition = tide.any_of(
        tide.EventMatch(key="x"), tide.all_of(tide.EventMatch(key="y"), tide.EventMatch(key="z"))
    )
    rule = _wf(echo).on_events("a", condition, action=tide.JobAction.STOP)
    assert rule.condition is condition
    assert rule.action == tide.JobAction.STOP


def test_on_model_version_accepts_event_status_or_string(echo):
    wf = _wf(echo)
    by_event = wf.on_model_version("a", model="ctr", event=tide.ModelVersionEvent.VALIDATED)
    by_status = wf.on_model_version("b", model="ctr", event=tide.ModelStatus.VALIDATED)
    by_string = wf.on_model_version("c", model="ctr", event="MODEL_VALIDATED")
    expected = EventMatch(key="ctr", event_type="MODEL_VALIDATED")
    assert by_event.condition == by_status.condition == by_string.condition == expected
    assert by_event.kind == RuleKind.MODEL_VERSION


def test_on_dataset_matches_dataset_updated(echo):
    rule = _wf(echo).on_dataset("a", "clicks")
    assert rule.condition == EventMatch(key="clicks", event_type="DATASET_UPDATED")
    assert rule.kind == RuleKind.DATASET


def test_workflow_level_rules_have_no_job(echo):
    wf = _wf(echo)
    start = wf.start_on(tide.EventMatch(event_type="GO"))
    stop = wf.stop_on(tide.EventMatch(event_type="HALT"))
    assert (start.job, start.action, start.kind) == (None, tide.JobAction.START, RuleKind.START_ON)
    assert (stop.job, stop.action, stop.kind) == (None, tide.JobAction.STOP, RuleKind.STOP_ON)


def test_rules_keep_declaration_order(echo):
    wf = _wf(echo)
    wf.on_event("a", "first")
    wf.on_event("a", "second")
    assert [rule.condition.key for rule in wf.graph.rules] == ["first", "second"]


def test_bad_enum_arguments_are_recorded_not_raised(echo):
    wf = _wf(echo)
    wf.on_event("a", action="LAUNCH", life="forever")
    wf.on_model_version("a", model="m", event="MODEL_EXPLODED")
    messages = [p.message for p in wf.problems]
    assert any("unknown action 'LAUNCH'" in m for m in messages)
    assert any("unknown life 'forever'" in m for m in messages)
    assert any("unknown model version event 'MODEL_EXPLODED'" in m for m in messages)
