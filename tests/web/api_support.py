"""The web app on a real uvicorn server over a temporary SQLite store, with known data.

Tests of the JSON API call it over HTTP (httpx), as scripts and the pages do. The data is
written through the services, and the scheduler's dispatcher runs the workflow's rules for
real, so the RESTART of ``train`` below is recorded with the event that caused it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry

import tideflow as tide
from tideflow.client.services import Services, local_services
from tideflow.domain.lineage import LineageRef
from tideflow.domain.status import JobStatus
from tideflow.metadata.access import AccessService
from tideflow.net import tcp_listener
from tideflow.scheduler.clock import ManualClock
from tideflow.scheduler.dispatcher import Dispatcher
from tideflow.store import Store
from tideflow.web.app import create_app
from tideflow.web.deps import WebServices

PROJECT = "ctr"
OTHER = "other"
WORKFLOW = "ctr_online"


def noop(ctx: Any, inputs: Any) -> Any:
    return None


def wait_for(condition: Callable[[], Any], *, timeout: float = 60.0, what: str = "") -> Any:
    """Wait until ``condition()`` is truthy (a generous deadline: the machine is shared)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


class AppServer:
    """``create_app`` served by uvicorn in a thread on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self._sock = tcp_listener("127.0.0.1", 0)  # Nagle off, as the server's own
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        )
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._thread.start()
        wait_for(lambda: self._server.started, what="uvicorn to start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(30)
        self._sock.close()


@dataclass
class World:
    """The store, services, server and what the tests look for."""

    home: Path
    store: Store
    services: Services
    web: WebServices
    server: AppServer
    dispatcher: Dispatcher
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def close(self) -> None:
        self.server.stop()
        self.services.close()


def build_workflow() -> Any:
    wf = tide.workflow(WORKFLOW)
    with wf:
        with tide.job("train", streaming=True):
            clicks = tide.read_dataset("clicks", processor=noop)
            tide.train(
                tide.transform(clicks, processor=noop, name="featurize"),
                model="ctr",
                processor=noop,
            )
        with tide.job("validate"):
            tide.validate(tide.read_dataset("holdout", processor=noop), model="ctr", processor=noop)
        with tide.job("push"):
            tide.push_model(model="ctr", processor=noop)
        with tide.job("report"):
            tide.user_node(processor=noop, name="report_node")
    wf.on_model_version("validate", model="ctr", event=tide.ModelVersionEvent.GENERATED)
    wf.on_model_version("push", model="ctr", event=tide.ModelVersionEvent.VALIDATED)
    wf.after("report", "validate", "push")
    wf.on_event("train", event_type="DRIFT_DETECTED", action=tide.JobAction.RESTART)
    return wf


def start_world(tmp: Path, *, auth_required: bool = True) -> World:
    """A populated store and the web app serving it."""
    store = Store.open(f"sqlite:///{tmp / 'tideflow.db'}")
    services = local_services(store, owns_store=True, home=tmp)
    assert services.scheduler is not None
    scheduler = services.scheduler
    access = AccessService(store)
    web = WebServices.of(services, access, auth_required=auth_required)
    clock = ManualClock()
    dispatcher = Dispatcher(
        store, clock, scheduler.plans, scheduler.config, on_effects=scheduler.notify
    )
    world = World(
        tmp,
        store,
        services,
        web,
        AppServer(create_app(healthy=lambda: True, registry=CollectorRegistry(), services=web)),
        dispatcher,
    )
    _populate(world)
    return world


def _populate(world: World) -> None:
    s = world.services
    assert s.scheduler is not None
    for name in (PROJECT, OTHER):
        s.projects.create_project(name)
    _, world.tokens["reader"] = AccessService(world.store).create_token(PROJECT, "reader")
    _, world.tokens["other"] = AccessService(world.store).create_token(OTHER, "reader")
    revoked, world.tokens["revoked"] = AccessService(world.store).create_token(PROJECT, "reader")
    AccessService(world.store).revoke_token(revoked.token_id)

    plan = tide.compile(build_workflow())
    s.workflows.create_snapshot(PROJECT, WORKFLOW, plan=plan.to_json())
    execution = s.scheduler.start_execution(PROJECT, WORKFLOW)
    eid = world.ids["execution"] = execution.execution_id
    world.dispatcher.drain()
    executions = s.scheduler.executions

    def latest(job: str) -> Any:
        return max(
            (a for a in executions.list_job_executions(PROJECT, eid) if a.job == job),
            key=lambda a: a.attempt,
        )

    first = s.notifications.send(PROJECT, "ctr", "0.2", event_type="DRIFT_DETECTED", sender="m")
    world.ids["drift_1"] = first.offset
    world.dispatcher.drain()  # train (started by no rule but this one) starts
    train = latest("train")
    log = world.home / "logs" / "train-1.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(f"line {i}\n" for i in range(1, 6)))
    executions.set_job_status(PROJECT, train.job_execution_id, "STARTING")
    executions.set_job_status(PROJECT, train.job_execution_id, "RUNNING", log_uri=str(log))
    world.ids["train_1"] = train.job_execution_id
    world.ids["train_log"] = log

    # datasets, models, lineage, metrics
    s.datasets.create_dataset(PROJECT, "clicks", uri="file:///clicks", format="jsonl", stream=True)
    s.datasets.create_dataset(PROJECT, "holdout", uri="file:///holdout", format="parquet")
    s.model_center.create_model(PROJECT, "ctr", description="click-through rate")
    for n in (1, 2, 3):
        s.model_center.create_version(
            PROJECT, "ctr", uri=f"file:///m{n}", metrics={"auc": 0.6 + n / 20}
        )
        s.lineage.record_lineage(
            PROJECT,
            train.job_execution_id,
            # each version from its own window of the stream
            inputs=[
                LineageRef.dataset("clicks", start_offset=100 * n - 100, end_offset=100 * n - 1)
            ],
            outputs=[LineageRef.model_version("ctr", n)],
        )
    s.metrics.log_metric(PROJECT, "loss", 0.5, step=1, model="ctr", version=1)
    s.metrics.log_metric(PROJECT, "loss", 0.4, step=2, model="ctr", version=1)
    s.metrics.log_metric(PROJECT, "loss", 0.3, step=1, model="ctr", version=2)
    mc = s.model_center
    mc.set_status(PROJECT, "ctr", 1, "VALIDATED")
    mc.deploy(PROJECT, "ctr", 1)
    mc.set_status(PROJECT, "ctr", 2, "VALIDATED")
    mc.deploy(PROJECT, "ctr", 2)
    mc.set_status(PROJECT, "ctr", 3, "REJECTED")
    mc.set_alias(PROJECT, "ctr", "champion", 2)
    world.dispatcher.drain()  # validate / push start on the model events

    drift = s.notifications.send(
        PROJECT, "ctr", "0.4", event_type="DRIFT_DETECTED", sender="monitor"
    )
    world.ids["drift_2"] = drift.offset
    world.dispatcher.drain()  # train restarts
    assert latest("train").attempt == 2
    world.ids["train_2"] = latest("train").job_execution_id
    # someone else's project has data too
    s.model_center.create_model(OTHER, "secret")
    s.notifications.send(OTHER, "secret", "x", event_type="PRIVATE")
    assert latest("train").status is JobStatus.INIT
