"""Benchmark of issue 10: the web UI's page loads and JSON API list calls, server time.

Three data sets on one SQLite store, served by the web app (uvicorn, in this process's
thread, as the server runs it), requests over loopback HTTP keep-alive from this process:

- a workflow of 100 jobs (a chain of ``after`` edges plus event and periodic rules): its plan
  (API) and its graph page;
- an execution with 10,000 job attempts (100 jobs x 100 attempts, each started by a RESTART
  action naming an event): the execution (API), a page of its attempts with their triggers
  (first and last page), and its timeline page;
- 100,000 events: the events list (first page, a page deep in the log by ``after_offset``
  and by cursor, filtered by a rare key, by type), and the events page.

Rows are inserted through the store and services directly (one transaction per batch), not
through the scheduler, so setting up takes seconds. Times are per request as the client sees
them on loopback (server time plus well under a millisecond of transport).

    .venv/bin/python benchmarks/web_api.py                       # print the figures
    .venv/bin/python benchmarks/web_api.py --quick               # smaller, for a smoke run
    .venv/bin/python benchmarks/web_api.py --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from prometheus_client import CollectorRegistry

import tideflow as tide
from tideflow.client.services import local_services
from tideflow.domain.events import Event
from tideflow.metadata.access import AccessService
from tideflow.net import tcp_listener
from tideflow.store import Store
from tideflow.store.repositories.workflow import WorkflowRepository
from tideflow.store.types import utcnow
from tideflow.web.app import create_app
from tideflow.web.deps import WebServices

SECTION = '## Web UI and JSON API (issue 10, "#10 web UI")'
PROJECT = "bench"


def noop(ctx: Any, inputs: Any) -> None:
    return None


def quantiles(values: list[float]) -> tuple[float, float]:
    """(p50, p99) of ``values``."""
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[98]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
    )


def big_workflow(jobs: int) -> Any:
    with tide.workflow("big") as wf:
        for j in range(jobs):
            with tide.job(f"job_{j:03d}", streaming=j % 10 == 0):
                data = tide.read_dataset(f"ds_{j}", processor=noop, name=f"read_{j}")
                tide.write_dataset(
                    tide.transform(data, processor=noop, name=f"map_{j}"),
                    f"out_{j}",
                    processor=noop,
                    name=f"write_{j}",
                )
        for j in range(1, jobs):
            if j % 10 == 5:
                wf.on_event(f"job_{j:03d}", event_type="DRIFT", action=tide.JobAction.RESTART)
            elif j % 10 == 7:
                wf.periodic(f"job_{j:03d}", interval=timedelta(hours=1))
            else:
                wf.after(f"job_{j:03d}", f"job_{j - 1:03d}")
    return wf


class Served:
    """The web app on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self._sock = tcp_listener("127.0.0.1", 0)  # Nagle off, as the server's own
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        )
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(30)


def populate(
    store: Store, services: Any, *, jobs: int, attempts: int, events: int
) -> dict[str, Any]:
    """The workflow, the execution with ``jobs x attempts`` attempts, ``events`` events."""
    ids: dict[str, Any] = {}
    began = time.perf_counter()
    plan = tide.compile(big_workflow(jobs))
    services.workflows.create_snapshot(PROJECT, "big", plan=plan.to_json())
    execution = services.scheduler.executions.create_execution(PROJECT, "big")
    ids["execution"] = execution.execution_id
    # the events: every 1,000th has the rare key; a tenth are DRIFT
    batch = 1000
    for start in range(0, events, batch):
        services.notifications.send_many(
            PROJECT,
            [
                Event(
                    key="rare" if i % 1000 == 999 else f"key_{i % 97}",
                    value=str(i),
                    event_type="DRIFT" if i % 10 == 0 else "TICK",
                    sender="bench",
                    namespace=PROJECT,
                )
                for i in range(start, min(start + batch, events))
            ],
        )
    per_job = attempts // jobs
    now = utcnow()

    def insert(c: Any) -> None:
        repo = WorkflowRepository(c)
        for a in range(1, per_job + 1):
            for j in range(jobs):
                job = f"job_{j:03d}"
                repo.create_job(
                    execution,
                    {
                        "job": job,
                        "attempt": a,
                        "status": "STOPPED" if a < per_job else "RUNNING",
                        "create_time": now,
                        "start_time": now,
                        "end_time": now if a < per_job else None,
                    },
                )
                repo.insert_action(
                    {
                        "execution_id": execution.execution_id,
                        "job": job,
                        "action": "RESTART" if a > 1 else "START",
                        "rule": "event: event(type=DRIFT)",
                        "event_offset": 1 + 10 * ((a * jobs + j) % (events // 10)),
                        "time": now,
                    }
                )

    store.run(insert)
    ids["setup_seconds"] = time.perf_counter() - began
    return ids


def measure(
    client: httpx.Client, url: str, repeats: int, **params: Any
) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, response bytes) of GET ``url``."""
    client.get(url, params=params).raise_for_status()  # warm
    times = []
    size = 0
    for _ in range(repeats):
        began = time.perf_counter()
        response = client.get(url, params=params)
        times.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
        size = len(response.content)
    p50, p99 = quantiles(times)
    return p50, p99, size


def run(quick: bool) -> tuple[list[tuple[str, float, float, int]], dict[str, Any]]:
    jobs, attempts, events = (100, 10_000, 100_000) if not quick else (100, 2_000, 10_000)
    repeats = 20 if not quick else 5
    home = Path(tempfile.mkdtemp(prefix="tideflow-bench-web-"))
    store = Store.open(f"sqlite:///{home / 'tideflow.db'}")
    services = local_services(store, owns_store=True, home=home)
    services.projects.create_project(PROJECT)
    ids = populate(store, services, jobs=jobs, attempts=attempts, events=events)
    web = WebServices.of(services, AccessService(store), auth_required=False)
    served = Served(create_app(healthy=lambda: True, registry=CollectorRegistry(), services=web))
    eid = ids["execution"]
    api = f"/api/v1/projects/{PROJECT}"
    ui = f"/ui/{PROJECT}"
    rows: list[tuple[str, float, float, int]] = []
    with httpx.Client(base_url=served.url, timeout=120) as client:
        last_page = client.get(f"{api}/executions/{eid}/jobs", params={"limit": 1000})
        cursor = None
        while True:  # the cursor of the last page of 100
            body = client.get(
                f"{api}/executions/{eid}/jobs",
                params={"limit": 100, **({"cursor": cursor} if cursor else {})},
            ).json()
            if body["next_cursor"] is None:
                break
            cursor = body["next_cursor"]
        del last_page
        deep = client.get(f"{api}/events", params={"limit": 1000, "after_offset": events - 2000})
        events_cursor = deep.json()["next_cursor"]
        cases: list[tuple[str, str, dict[str, Any]]] = [
            ("baseline: /healthz (no store read)", "/healthz", {}),
            (f"API plan of a {jobs}-job workflow", f"{api}/workflows/big/plan", {}),
            ("API workflows list", f"{api}/workflows", {}),
            (f"page: workflow graph ({jobs} jobs)", f"{ui}/workflows/big", {}),
            (f"API execution ({attempts:,} attempts)", f"{api}/executions/{eid}", {}),
            ("API attempts, first page of 100 (+ triggers)", f"{api}/executions/{eid}/jobs", {}),
            ("API attempts, last page of 100", f"{api}/executions/{eid}/jobs", {"cursor": cursor}),
            (f"page: execution timeline ({attempts:,} attempts)", f"{ui}/executions/{eid}", {}),
            (f"API events, first page of 100 ({events:,} events)", f"{api}/events", {}),
            (
                "API events, 100 after offset N-2,000",
                f"{api}/events",
                {"after_offset": events - 2000},
            ),
            ("API events, 100 by cursor (deep)", f"{api}/events", {"cursor": events_cursor}),
            ("API events, rare key (1 in 1,000)", f"{api}/events", {"key": "rare"}),
            ("API events, by type (1 in 10)", f"{api}/events", {"event_type": "DRIFT"}),
            ("API events, limit 1,000", f"{api}/events", {"limit": 1000}),
            ("page: events", f"{ui}/events", {}),
        ]
        for label, url, params in cases:
            status = client.get(url, params=params).status_code
            if status == 404 and url.startswith(ui):
                print(f"skipped (no such page yet): {label}", file=sys.stderr)
                continue
            n = repeats if not url.startswith(ui) else max(repeats // 2, 3)  # pages: fewer
            p50, p99, size = measure(client, url, n, **params)
            rows.append((label, p50, p99, size))
            print(f"{label:55s} p50 {p50:8.1f} ms  p99 {p99:8.1f} ms  {size / 1024:8.1f} KiB")
    served.stop()
    services.close()
    ids.update(jobs=jobs, attempts=attempts, events=events, repeats=repeats)
    return rows, ids


def markdown(rows: list[tuple[str, float, float, int]], ids: dict[str, Any]) -> str:
    load = os.getloadavg()[0]
    lines = [
        SECTION,
        "",
        f"Measured {dt.date.today().isoformat()} with `benchmarks/web_api.py`: one SQLite store "
        f"with a {ids['jobs']}-job workflow, an execution of {ids['attempts']:,} job attempts "
        f"and {ids['events']:,} events; the web app served by uvicorn as the server serves it; "
        f"{ids['repeats']} requests per API row, half as many per page, over loopback "
        "keep-alive (after one warm-up).",
        f"Machine: {machine()}. Load average (1 min) at the end: {load:.2f}.",
        "",
        "| request | p50 | p99 | body |",
        "|---|---|---|---|",
    ]
    for label, p50, p99, size in rows:
        lines.append(f"| {label} | {p50:.1f} ms | {p99:.1f} ms | {size / 1024:.0f} KiB |")
    lines += ["", NOTES]
    return "\n".join(lines) + "\n"


NOTES = """\
The `/healthz` row is the cost of a request that reads nothing: what rows cost above it is
the store and the rendering. On this shared 2-core machine (load average well above 2 while
other test suites run) it is tens of milliseconds instead of about one. What holds at any load:
listing events does not slow with depth (offset and cursor pages deep in the log cost what the
first page costs) nor with a rare key (the `(namespace, key, offset)` index), so the API needed
no new index or migration; an execution of 10,000 attempts reads the latest attempt per job
(one grouped query) and only live attempts for `waiting_on` (it converted all 10,000 before:
p50 4.8 s under the same load, now a few hundred ms); a page of attempts reads its 100
attempts, the n-th START/RESTART of their jobs (one window-function query) and their events in
one query; the timeline page shows the newest 200 attempts."""


def replace_section(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else ""
    start = old.find(SECTION)
    if start < 0:
        path.write_text(old.rstrip("\n") + "\n\n" + text)
        return
    end = old.find("\n## ", start + len(SECTION))
    path.write_text(old[:start] + text + ("" if end < 0 else old[end:]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="Smaller data, fewer repeats.")
    parser.add_argument("--markdown", type=Path, help="Write the section into this file.")
    args = parser.parse_args(argv)
    rows, ids = run(args.quick)
    print(f"setup {ids['setup_seconds']:.1f} s; machine: {machine()}")
    if args.markdown is not None:
        replace_section(args.markdown, markdown(rows, ids))


if __name__ == "__main__":
    main()
