"""Exactly once: a crash at any point of the dispatcher repeats nothing and loses nothing."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

import tideflow as tide
from tests.scheduler.conftest import Env, jobs_workflow
from tideflow.scheduler import crash
from tideflow.scheduler.dispatcher import Dispatcher


class Crash(Exception):
    """Stands for the process dying at a crash point."""


def scenario(
    env: Env, prefix: str, point: str | None, reached: set[str] | None = None
) -> tuple[Counter[Any], list[str]]:
    """Drive two workflows through retries, after, on_event, RESTART, start_on and ends.

    With ``point``, the dispatcher "crashes" the first time it reaches it and is restarted
    (a new dispatcher on the same store) -- the outcome must be the same as without.
    """
    armed = [point]

    def hook(name: str) -> None:
        if reached is not None:
            reached.add(name)
        if name == armed[0]:
            armed[0] = None
            raise Crash(name)

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

    main = jobs_workflow(f"{prefix}_main", "a", "b", "c", "d", retries=1)
    main.after("b", "a")
    main.on_event("c", f"{prefix}_go")
    main.on_event("d", f"{prefix}_bump", action=tide.JobAction.RESTART)
    env.submit(main)
    spawned = jobs_workflow(f"{prefix}_spawned", "x")
    spawned.start_on(tide.EventMatch(key=f"{prefix}_spawn"))
    env.submit(spawned)

    run_main = env.start(f"{prefix}_main").execution_id
    env.move(run_main, "a", "STARTING", "RUNNING", "FAILED")
    run()  # retry: attempt 2 of a
    env.clock.advance(5)
    env.move(run_main, "a", "STARTING", "RUNNING", "FINISHED")
    env.send(f"{prefix}_bump")
    run()  # b after a FINISHED; d started by its RESTART rule
    env.move(run_main, "d", "STARTING", "RUNNING")
    env.send(f"{prefix}_bump")
    run()  # restart: STOP d/1, START d/2
    first = next(j for j in env.jobs(run_main) if j.job == "d" and j.attempt == 1)
    env.executions.set_job_status(env.project, first.job_execution_id, "STOPPED")
    env.move(run_main, "d", "STARTING", "RUNNING", "FINISHED")
    env.send(f"{prefix}_go")
    env.send(f"{prefix}_spawn")
    run()  # c on go; a new execution of spawned
    (spawned_run,) = env.service.list_executions(env.project, workflow=f"{prefix}_spawned")
    env.move(spawned_run.execution_id, "x", "STARTING", "RUNNING", "FINISHED")
    for job in ("b", "c"):
        env.move(run_main, job, "STARTING", "RUNNING", "FINISHED")
    run()
    crash.set_hook(None)

    outcome: Counter[Any] = Counter()
    commands: list[str] = []
    for execution_id in (run_main, spawned_run.execution_id):
        execution = env.service.get_execution(env.project, execution_id)
        name = execution.workflow.removeprefix(prefix)
        outcome[(name, "status", execution.status.value)] += 1
        for job, action, rule, offset in env.actions(execution_id):
            outcome[(name, job, action, rule.replace(prefix, ""), offset is None)] += 1
        for attempt in env.jobs(execution_id):
            outcome[(name, attempt.job, attempt.attempt, attempt.status.value)] += 1
        commands += [f"{name}:{cid.split(':', 1)[1]}" for cid in env.command_ids(execution_id)]
    return outcome, sorted(commands)


DISPATCH_POINTS = [p for p in crash.POINTS if p.startswith("dispatch.")]


@pytest.mark.parametrize("point", DISPATCH_POINTS)
def test_a_crash_anywhere_in_the_dispatcher_changes_nothing(env: Env, point: str) -> None:
    expected, expected_commands = scenario(env, "base", None)
    assert (("_main", "status", "FINISHED")) in expected
    assert (("_spawned", "status", "FINISHED")) in expected
    got, got_commands = scenario(env, "hit", point)
    assert got == expected
    assert got_commands == expected_commands


def test_every_dispatch_point_is_reached(env: Env) -> None:
    reached: set[str] = set()
    scenario(env, "all", None, reached)
    assert set(DISPATCH_POINTS) <= reached


def test_take_commands_hands_each_command_to_one_taker(env: Env) -> None:
    wf = jobs_workflow("wide", *[f"j{i}" for i in range(40)])
    env.submit(wf)
    runs = [env.start("wide").execution_id for _ in range(3)]
    expected = {cid for run in runs for cid in env.command_ids(run)}
    taken: list[list[str]] = [[] for _ in range(6)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(taken))

    def taker(index: int) -> None:
        try:
            barrier.wait()
            while batch := env.service.take_commands("local", limit=7, taker=f"t{index}"):
                taken[index] += [c.command_id for c in batch]
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=taker, args=(i,)) for i in range(len(taken))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    everything = [cid for batch in taken for cid in batch if cid in expected]
    assert len(everything) == len(set(everything)) == len(expected) == 120


def test_wait_for_commands_wakes_when_commands_commit(env: Env) -> None:
    env.submit(jobs_workflow("flow", "a"))
    woke = threading.Event()

    def waiter() -> None:
        if env.service.wait_for_commands(30):
            woke.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    assert not woke.wait(0.2)
    env.start("flow")
    assert woke.wait(5)
    thread.join(5)
    assert env.service.wait_for_commands(0.01)  # one is due now: returns at once


def test_an_executor_is_woken_by_its_own_commands_only(env: Env) -> None:
    """Unrelated events and other executors' commands leave a waiting executor asleep."""
    env.submit(jobs_workflow("quiet", "a"))
    woke: dict[str, threading.Event] = {name: threading.Event() for name in ("ray", "local")}

    def waiter(name: str) -> None:
        if env.service.wait_for_commands(30, executor=name):
            woke[name].set()

    threads = [threading.Thread(target=waiter, args=(name,)) for name in woke]
    for thread in threads:
        thread.start()
    for i in range(20):
        env.send("unrelated", str(i))
    env.run()
    assert not woke["local"].wait(0.3)
    env.start("quiet")  # a START for the local executor, none for ray
    assert woke["local"].wait(5)
    assert not woke["ray"].wait(0.3)
    env.service.wake("ray")
    assert woke["ray"].wait(5)
    for thread in threads:
        thread.join(5)


def test_an_attempts_end_wakes_the_executors(env: Env) -> None:
    """A RESTART's START waits for the old attempt to end; that end is the executor's cue."""
    env.submit(jobs_workflow("ends", "a"))
    run = env.start("ends")
    env.service.take_commands("local", limit=1000)
    woke = threading.Event()

    def waiter() -> None:
        if env.service.wait_for_commands(30):
            woke.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    attempt = env.latest(run.execution_id, "a")
    env.service.executions.set_job_status(env.project, attempt.job_execution_id, "STARTING")
    assert not woke.wait(0.3)
    env.service.executions.set_job_status(env.project, attempt.job_execution_id, "FAILED")
    assert woke.wait(5)
    thread.join(5)


def test_running_attempts_and_completion(env: Env) -> None:
    env.submit(jobs_workflow("flow", "a", "b"))
    run = env.start("flow")
    taken = [c for c in env.service.take_commands("local") if c.execution_id == run.execution_id]
    assert {c.job for c in env.service.running_attempts("local")} >= {"a", "b"}
    env.service.complete_command(taken[0].command_id)
    env.service.complete_command(taken[0].command_id)  # idempotent
    assert env.service.get_command(taken[0].command_id).status.value == "DONE"
    env.run_job(run.execution_id, "a")
    assert "a" not in {
        c.job for c in env.service.running_attempts("local") if c.execution_id == run.execution_id
    }
    with pytest.raises(tide.TideflowError, match="not found"):
        env.service.complete_command("nope")
