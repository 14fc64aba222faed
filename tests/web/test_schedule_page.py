"""The workflow page and API of a scheduled workflow show its schedule and next run time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

import tideflow as tide
from tests.web.api_support import AppServer, noop
from tideflow.client.services import local_services
from tideflow.metadata import ProjectService, WorkflowService
from tideflow.metadata.access import AccessService
from tideflow.scheduler.schedule import ScheduleService
from tideflow.store import Store
from tideflow.web.app import create_app
from tideflow.web.deps import WebServices


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[httpx.Client, Any]]:
    store = Store.open(f"sqlite:///{tmp_path / 'tideflow.db'}")
    services = local_services(store, owns_store=True, home=tmp_path)
    web = WebServices.of(services, AccessService(store), auth_required=False)
    server = AppServer(create_app(healthy=lambda: True, registry=CollectorRegistry(), services=web))
    ProjectService(store).create_project("p")
    with tide.workflow("nightly") as wf, tide.job("report"):
        tide.user_node(processor=noop, name="n")
    wf.schedule(interval=timedelta(hours=1))
    WorkflowService(store).create_snapshot("p", "nightly", plan=tide.compile(wf).to_json())
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client, (store, services)
    server.stop()
    services.close()


def test_the_workflow_page_and_api_show_the_next_run(site: tuple[httpx.Client, Any]) -> None:
    ui, (store, services) = site
    before = datetime.now(UTC)
    data = ui.get("/api/v1/projects/p/workflows/nightly").json()
    next_run = datetime.fromisoformat(data["next_run_time"])
    assert before < next_run <= datetime.now(UTC) + timedelta(hours=1)
    html = ui.get("/ui/p/workflows/nightly").text
    assert "Schedule: every 3600s, catchup=False; next run 20" in html
    # Once the timer thread follows the snapshot, its stored tick is what is shown.
    scheduler = services.scheduler
    ScheduleService(store, scheduler.clock, scheduler.plans, scheduler.config).fire_due()
    stored = ui.get("/api/v1/projects/p/workflows/nightly").json()["next_run_time"]
    assert f'data-next-run="{stored}"' in ui.get("/ui/p/workflows/nightly").text
    services.scheduler.pause_workflow("p", "nightly")
    assert "(paused: ticks are skipped)" in ui.get("/ui/p/workflows/nightly").text
