"""What a START rule does when it fires while its job is busy (``on_busy``), in process.

The fake executor of ``conftest`` drives statuses by hand, so a job is "busy" for exactly as
long as a test says; every firing's action record and each attempt's triggers are checked.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

import tideflow as tide
from tests.scheduler.conftest import Env, jobs_workflow
from tideflow.compiler.plan import SCHEMA_VERSION, WorkflowPlan
from tideflow.domain.rules import OnBusy
from tideflow.errors import GraphError
from tideflow.scheduler import crash
from tideflow.scheduler.dispatcher import Dispatcher


def validate_flow(name: str, **busy: Any) -> Any:
    """``validate`` starts on every GENERATED version of model ``m`` (the ad_ctr shape)."""
    wf = jobs_workflow(name, "train", "validate", streaming=True)
    wf.on_model_version("validate", model="m", event=tide.ModelVersionEvent.GENERATED, **busy)
    return wf


def generated(env: Env, version: int) -> int:
    value = json.dumps({"model": "m", "version": version, "status": "GENERATED"})
    return env.send("m", value, event_type="MODEL_GENERATED")


def attempts_of(env: Env, execution_id: int, job: str) -> list[tuple[int, tuple[int, ...]]]:
    return sorted((j.attempt, j.trigger_offsets) for j in env.jobs(execution_id) if j.job == job)


def notes(env: Env, execution_id: int, job: str) -> list[str]:
    return [rule for j, _, rule, _ in env.actions(execution_id) if j == job]


def test_queue_runs_once_per_firing_each_with_its_own_trigger(env: Env) -> None:
    env.submit(validate_flow("flow"))
    run = env.start("flow").execution_id
    offsets = [generated(env, v) for v in (1, 2, 3, 4)]
    env.run()
    assert attempts_of(env, run, "validate") == [(1, (offsets[0],))]
    assert [n.split(" (")[-1] for n in notes(env, run, "validate")[1:]] == [
        "queued: attempt 1 is INIT)"
    ] * 3
    for attempt, offset in enumerate(offsets[1:], start=2):
        env.run_job(run, "validate")
        assert attempts_of(env, run, "validate")[-1] == (attempt, (offset,))
    env.run_job(run, "validate")
    assert len(attempts_of(env, run, "validate")) == 4
    started = [n for n in notes(env, run, "validate") if "(from the queue" in n]
    assert started[0].endswith("(from the queue: attempt 1 FINISHED)")
    assert len(started) == 3
    # Each start from the queue names the event it was queued for.
    starts = [o for j, _, rule, o in env.actions(run) if j == "validate" and "from the" in rule]
    assert starts == offsets[1:]


def test_queued_firings_keep_the_execution_running(env: Env) -> None:
    wf = jobs_workflow("flow", "first", "second")
    wf.on_event("second", "go")
    env.submit(wf)
    run = env.start("flow").execution_id
    env.send("go")
    env.run()
    env.send("go")
    env.run()
    env.run_job(run, "first")
    env.run_job(run, "second")
    assert env.status(run) == "RUNNING"  # the queued firing is still to run
    assert env.attempts(run)[-1] == ("second", 2, "INIT")
    env.run_job(run, "second")
    assert env.status(run) == "FINISHED"


def test_latest_coalesces_to_the_newest_firing(env: Env) -> None:
    env.submit(validate_flow("flow", on_busy="latest"))
    run = env.start("flow").execution_id
    offsets = [generated(env, v) for v in (1, 2, 3, 4)]
    env.run()
    env.run_job(run, "validate")
    env.run_job(run, "validate")
    assert attempts_of(env, run, "validate") == [(1, (offsets[0],)), (2, (offsets[3],))]
    said = notes(env, run, "validate")
    assert said[1].endswith("(queued: attempt 1 is INIT)")
    assert said[2].endswith(
        f"(queued, replacing the firing of event {offsets[1]}: attempt 1 is INIT)"
    )
    assert said[3].endswith(
        f"(queued, replacing the firing of event {offsets[2]}: attempt 1 is INIT)"
    )
    assert said[4].endswith("(from the queue: attempt 1 FINISHED)")


def test_skip_starts_nothing_while_busy(env: Env) -> None:
    env.submit(validate_flow("flow", on_busy="skip"))
    run = env.start("flow").execution_id
    first = generated(env, 1)
    generated(env, 2)
    env.run()
    env.run_job(run, "validate")
    assert attempts_of(env, run, "validate") == [(1, (first,))]
    assert notes(env, run, "validate")[1].endswith("(skipped: attempt 1 is INIT)")


def test_restart_stops_the_live_attempt_and_starts_again(env: Env) -> None:
    env.submit(validate_flow("flow", on_busy=OnBusy.RESTART))
    run = env.start("flow").execution_id
    generated(env, 1)
    env.run()
    env.move(run, "validate", "STARTING", "RUNNING")
    second = generated(env, 2)
    env.run()
    assert [(a, s) for j, a, s in env.attempts(run) if j == "validate"] == [
        (1, "RUNNING"),
        (2, "INIT"),
    ]
    assert attempts_of(env, run, "validate")[-1] == (2, (second,))
    (_, action, rule, _) = [a for a in env.actions(run) if a[0] == "validate"][-1]
    assert action == "RESTART"
    assert rule.endswith("(on_busy restart: attempt 1 was RUNNING)")
    assert f"{run}:validate:1:STOP" in env.command_ids(run)


def test_max_queued_overflow_is_recorded_as_skipped(env: Env) -> None:
    env.submit(validate_flow("flow", max_queued=2))
    run = env.start("flow").execution_id
    offsets = [generated(env, v) for v in (1, 2, 3, 4)]
    env.run()
    said = notes(env, run, "validate")
    assert said[3].endswith("(skipped: 2 firings already queued, its max_queued)")
    for _ in range(3):
        env.run_job(run, "validate")
    assert [t for _, t in attempts_of(env, run, "validate")] == [(o,) for o in offsets[:3]]


def test_a_stop_drops_the_queue(env: Env) -> None:
    env.submit(validate_flow("flow"))
    run = env.start("flow").execution_id
    generated(env, 1)
    generated(env, 2)
    env.run()
    env.service.stop_job(env.project, run, "validate")
    env.run()
    assert notes(env, run, "validate")[-2].endswith("(dropped from the queue: the job was stopped)")
    assert [(a, s) for j, a, s in env.attempts(run) if j == "validate"] == [(1, "STOPPED")]


def test_a_firing_on_an_idle_job_waits_behind_the_queue(env: Env) -> None:
    """The attempt ended but its event is not handled yet: the older firing goes first."""
    env.submit(validate_flow("flow"))
    run = env.start("flow").execution_id
    first, second = generated(env, 1), generated(env, 2)
    env.run()
    env.move(run, "validate", "STARTING", "RUNNING", "FINISHED")
    third = generated(env, 3)  # after the end, before the dispatcher saw it
    env.run()
    assert [t for _, t in attempts_of(env, run, "validate")] == [(first,), (second,)]
    env.run_job(run, "validate")
    assert [t for _, t in attempts_of(env, run, "validate")][-1] == (third,)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            lambda wf: wf.on_event("j", "go", action="STOP", on_busy="queue"),
            r"event rule: on_busy= applies only to a job rule whose action is START "
            r"\(its action is STOP\)",
        ),
        (
            lambda wf: wf.after("j", "main", action=tide.JobAction.RESTART, on_busy="skip"),
            r"after rule: on_busy= applies only .* \(its action is RESTART\)",
        ),
        (lambda wf: wf.on_event("j", "go", on_busy="sometimes"), r"unknown on_busy 'sometimes'"),
        (
            lambda wf: wf.on_event("j", "go", on_busy="latest", max_queued=3),
            r"max_queued= applies only to on_busy='queue'",
        ),
        (lambda wf: wf.on_event("j", "go", max_queued=0), r"max_queued must be a whole number"),
    ],
)
def test_on_busy_problems_are_graph_errors_naming_the_rule(rule: Any, message: str) -> None:
    wf = jobs_workflow("flow", "main", "j")
    rule(wf)
    with pytest.raises(GraphError, match=message):
        tide.compile(wf)


def test_the_plan_says_each_rules_policy_and_reads_old_plans_as_skip() -> None:
    wf = jobs_workflow("flow", "main", "a", "b", "c")
    wf.on_event("a", "go")
    wf.on_event("b", "go", on_busy="latest")
    wf.on_event("c", "go", action="STOP")
    plan = tide.compile(wf)
    data = plan.to_dict(include_payloads=False)
    assert data["schema_version"] == SCHEMA_VERSION
    assert [(r["on_busy"], r["max_queued"]) for r in data["rules"]] == [
        ("queue", 100),
        ("latest", None),
        (None, None),
    ]
    assert WorkflowPlan.from_json(plan.to_json()) == plan
    old = json.loads(plan.to_json())
    old["schema_version"] = 1
    for rule in old["rules"]:
        del rule["on_busy"], rule["max_queued"]
    read = WorkflowPlan.from_dict(old)
    assert [r.busy for r in read.rules] == [OnBusy.SKIP, OnBusy.SKIP, None]
    assert read.schema_version == SCHEMA_VERSION


class Crash(Exception):
    """Stands for the process dying at a crash point."""


def queue_scenario(env: Env, name: str, point: str | None) -> tuple[Counter[Any], list[str]]:
    """Firings queued, then started one by one; with ``point``, a crash there first.

    The crash is armed once the firings are queued, so it hits a transaction that starts one.
    """
    armed: list[str | None] = [None]

    def hook(reached: str) -> None:
        if reached == armed[0]:
            armed[0] = None
            raise Crash(reached)

    crash.set_hook(hook)

    def run() -> None:
        try:
            env.run()
        except Crash:
            service = env.service
            env.dispatcher = Dispatcher(
                env.store, env.clock, service.plans, service.config, on_effects=service.notify
            )
            env.run()

    env.submit(validate_flow(name, on_busy="queue"))
    latest = jobs_workflow(f"{name}_latest", "train", "v", streaming=True)
    latest.on_model_version("v", model="m", on_busy="latest")
    env.submit(latest)
    runs = [env.start(name).execution_id, env.start(f"{name}_latest").execution_id]
    for version in (1, 2, 3):
        generated(env, version)
    run()
    armed[0] = point
    for _ in range(3):
        for execution_id, job in zip(runs, ("validate", "v"), strict=True):
            attempt = max(a for j, a, s in env.attempts(execution_id) if j == job)
            if any(
                j == job and a == attempt and s == "INIT" for j, a, s in env.attempts(execution_id)
            ):
                env.move(execution_id, job, "STARTING", "RUNNING", "FINISHED")
        run()
    crash.set_hook(None)
    outcome: Counter[Any] = Counter()
    commands: list[str] = []
    for execution_id in runs:
        for job, action, rule, offset in env.actions(execution_id):
            rule = re.sub(r"event \d+", "event N", rule.replace(name, ""))
            outcome[(job, action, rule, offset is None)] += 1
        for attempt in env.jobs(execution_id):
            outcome[
                (attempt.job, attempt.attempt, attempt.status.value, len(attempt.trigger_offsets))
            ] += 1
        commands += [c.split(":", 1)[1] for c in env.command_ids(execution_id)]
    return outcome, sorted(commands)


DISPATCH_POINTS = [p for p in crash.POINTS if p.startswith("dispatch.")]


@pytest.mark.parametrize("point", DISPATCH_POINTS)
def test_a_crash_with_queued_firings_starts_each_exactly_once(env: Env, point: str) -> None:
    expected, expected_commands = queue_scenario(env, "base", None)
    assert expected[("validate", 3, "FINISHED", 1)] == 1
    assert expected[("v", 2, "FINISHED", 1)] == 1
    got, got_commands = queue_scenario(env, "hit", point)
    assert got == expected
    assert got_commands == expected_commands
