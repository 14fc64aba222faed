"""A server restart re-offers the commands an executor took but never carried out."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection

from tests.scheduler.conftest import Env, jobs_workflow
from tideflow.domain.scheduling import CommandStatus
from tideflow.errors import NotLeaderError
from tideflow.scheduler.runtime import Scheduler
from tideflow.store.repositories.outbox import OutboxRepository


def statuses(env: Env, execution_id: int) -> dict[str, str]:
    return {
        c.command_id.split(":", 1)[1]: c.status.value
        for c in env.service.list_commands(execution_id=execution_id)
    }


def test_taken_starts_of_unstarted_attempts_and_taken_stops_are_offered_again(env: Env) -> None:
    env.submit(jobs_workflow("wf", "spawned", "lost", "stopped", streaming=True))
    run = env.start("wf").execution_id
    assert len(env.service.take_commands("local")) == 3
    env.move(run, "spawned", "STARTING", "RUNNING")  # the executor got this one going
    env.service.stop_job(env.project, run, "stopped")  # its START is TAKEN: a STOP is issued
    assert [c.command_id for c in env.service.take_commands("local")] == [f"{run}:stopped:1:STOP"]

    # The server crashed here: "lost" never spawned, the STOP was never carried out.
    reoffered = env.store.run(lambda c: OutboxRepository(c).reoffer_taken())

    assert [r for r in reoffered if r.startswith(f"{run}:")] == [
        f"{run}:lost:1:START",
        f"{run}:stopped:1:START",
        f"{run}:stopped:1:STOP",
    ]
    assert statuses(env, run) == {
        "spawned:1:START": "TAKEN",  # re-attached by running_attempts instead
        "lost:1:START": "PENDING",
        "stopped:1:START": "PENDING",
        "stopped:1:STOP": "PENDING",
    }
    running = env.service.running_attempts("local")
    assert [c.command_id for c in running if c.execution_id == run] == [f"{run}:spawned:1:START"]
    taken = [
        c.command_id
        for c in env.service.take_commands("local", limit=1000)
        if c.execution_id == run
    ]
    assert taken == [f"{run}:lost:1:START", f"{run}:stopped:1:START", f"{run}:stopped:1:STOP"]


def test_done_commands_stay_done_and_the_scheduler_reoffers_on_start(env: Env) -> None:
    env.submit(jobs_workflow("wf", "main"))
    run = env.start("wf").execution_id
    (start,) = env.service.take_commands("local")
    env.service.complete_command(start.command_id)  # done, attempt still INIT: not again
    env.submit(jobs_workflow("other", "job"))
    other = env.start("other").execution_id
    env.service.take_commands("local")

    scheduler = Scheduler(env.store, env.service)
    scheduler.start()
    scheduler.stop()

    assert env.service.get_command(start.command_id).status is CommandStatus.DONE
    assert statuses(env, other) == {"job:1:START": "PENDING"}
    assert statuses(env, run) == {"main:1:START": "DONE"}


def test_a_scheduler_refused_at_start_or_stopped_leaves_no_listener_behind(env: Env) -> None:
    """A cluster member elected and deposed again and again builds a Scheduler each time."""
    before = list(env.service._effect_listeners)

    def deposed(c: Connection) -> None:
        raise NotLeaderError("another member took the lease")

    refused = Scheduler(env.store, env.service, fence=deposed)
    with pytest.raises(NotLeaderError):
        refused.start()
    assert env.service._effect_listeners == before

    for _ in range(3):
        scheduler = Scheduler(env.store, env.service)
        scheduler.start()
        assert len(env.service._effect_listeners) == len(before) + 1
        scheduler.stop()
    assert env.service._effect_listeners == before
