"""Benchmark of issue 17: how long a cluster goes without a leader, and 1 member against 3.

Targets (issue 17): with the default lease settings, the median failover time is at most 3 s.

    .venv/bin/python benchmarks/bench_failover.py                       # defaults, 20 kills
    .venv/bin/python benchmarks/bench_failover.py --kills 10 --lease 1:0.2 --lease 3:1
    .venv/bin/python benchmarks/bench_failover.py --backend mysql --quick
    .venv/bin/python benchmarks/bench_failover.py --markdown docs/benchmarks.md

What is measured, on real ``tideflow server start`` processes (:class:`tideflow.testing.
TideflowTestServer`) sharing one fresh PostgreSQL (or MariaDB) database:

* **failover time**, for each lease setting (``LEASE:HEARTBEAT`` seconds; the server's defaults
  unless ``--lease`` is given): three members (``--members``), no executors, one execution
  whose streaming job reacts to every event of key ``go``. Each round waits a random part of a heartbeat (so the
  kill lands anywhere in the leader's renewal cycle), kills the leader with SIGKILL, sends a
  ``go`` event through a surviving member at once, and times from the kill to the moment the
  scheduler's action answering that event is committed (read from the database every 5 ms):
  the next decision of the new leader. The killed member is then started again (a follower)
  so every round has all its members. Median, p99 and max over the rounds;
* **throughput of 1 member against 3**: ``send_event`` and ``create_model_version`` from
  :data:`CLIENTS` threads, each with its own client (gRPC channel), all on one member, then
  spread round-robin over three members of one cluster. On a small machine the members share
  its cores with the clients and the database: spreading shows what one member's own limits
  (its gRPC thread pool, the GIL) cost, not a cluster's capacity on separate machines.

The machine's load average is printed before and after; the cores are shared by the clients,
the servers and the database, nothing is pinned. ``--markdown`` replaces (or appends) only the
"## Failover (issue 17)" section of that file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench_rpc import machine, measure, quantiles, write_section  # the issue 5 helpers

import tideflow as tide
from databases import SERVERS, database
from tideflow.client import Client
from tideflow.metadata import ProjectService, WorkflowService
from tideflow.scheduler.clock import ManualClock
from tideflow.scheduler.service import SchedulerService
from tideflow.server.config import DEFAULT_HEARTBEAT_SECONDS, DEFAULT_LEASE_SECONDS
from tideflow.store import Store
from tideflow.testing import TideflowTestCluster, wait_until

SECTION = "## Failover (issue 17)"
PROJECT = "bench"
MEMBERS = 3
CLIENTS = 6
TARGET_P50 = 3.0
POLL = 0.005
NO_EXECUTORS = {"TIDEFLOW_EXECUTORS": ""}
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def noop(ctx: Any, inputs: Any) -> None:
    """The reacting job's processor (never run: the members have no executors)."""


def reacting_execution(store: Store) -> tuple[SchedulerService, int]:
    """An execution whose streaming job ``react`` is started by each event of key ``go``."""
    ProjectService(store).ensure_project(PROJECT)
    with tide.workflow("failover") as wf, tide.job("react", streaming=True):
        tide.user_node(processor=noop, name="react_node")
    wf.on_event("react", key="go")
    WorkflowService(store).create_snapshot(PROJECT, "failover", plan=tide.compile(wf).to_json())
    service = SchedulerService(store, clock=ManualClock(T0))
    return service, service.start_execution(PROJECT, "failover").execution_id


def failover_times(
    backend: str, lease: float, heartbeat: float, kills: int, rng: random.Random, size: int
) -> list[float]:
    """Seconds from each leader's SIGKILL to the new leader's committed answer to an event."""
    times: list[float] = []
    with (
        database(backend) as url,
        TideflowTestCluster(
            url, size=size, lease=lease, heartbeat=heartbeat, env=NO_EXECUTORS
        ) as cluster,
    ):
        service, run = reacting_execution(cluster.store)
        answered: set[int | None] = set()

        def answers(offset: int) -> bool:
            answered.update(a.event_offset for a in service.list_actions(PROJECT, run))
            return offset in answered

        for round_ in range(kills):
            # every member beats (the restarted one too) and one leads before the next kill
            head = cluster.wait_whole(timeout=60)
            time.sleep(rng.uniform(0, heartbeat))  # anywhere in the leader's renewal cycle
            head.kill()
            killed = time.monotonic()
            survivor = next(m for m in cluster.members if m is not head)
            with survivor.client(PROJECT) as client:
                go = client.events.send("go", str(round_))
            wait_until(
                lambda go=go: answers(go.offset), timeout=60, interval=POLL, what="an answer"
            )
            times.append(time.monotonic() - killed)
            print(f"    kill {round_ + 1}/{kills}: {times[-1]:.2f} s", file=sys.stderr)
            head.start()  # back as a follower: all members again
        service.close()
    return times


def throughput(backend: str, ops: int) -> list[tuple[str, str, float, float, float]]:
    """(call, where, calls/s, p50 ms, p99 ms) through 1 member and spread over 3."""
    rows = []
    with (
        database(backend) as url,
        TideflowTestCluster(
            url, size=MEMBERS, lease=None, heartbeat=None, env=NO_EXECUTORS
        ) as cluster,
    ):
        members = cluster.members
        clients: list[Client] = []
        try:
            for spread in (1, MEMBERS):
                clients = [members[t % spread].client(PROJECT) for t in range(CLIENTS)]
                model = f"m{spread}"
                clients[0].models.create(model)
                calls = {
                    "send_event": [
                        lambda i, c=c: c.events.send(f"k{i % 100}", f"v{i}") for c in clients
                    ],
                    "create_model_version": [
                        lambda i, c=c, model=model: c.models.create_version(model, uri="file:///m")
                        for c in clients
                    ],
                }
                where = "1 member" if spread == 1 else f"{spread} members"
                for name, op in calls.items():
                    rate, latencies = measure(op, ops)
                    p50, p99 = quantiles(latencies)
                    rows.append((name, where, rate, p50, p99))
                    print(f"    {name}, {where}: {rate:,.0f}/s", file=sys.stderr)
                for c in clients:
                    c.close()
                clients = []
        finally:
            for c in clients:
                c.close()
    return rows


def render(
    backend: str,
    size: int,
    results: dict[tuple[float, float], list[float]],
    rates: Sequence[tuple[str, str, float, float, float]],
    loads: Sequence[float],
    seconds: float,
) -> str:
    """The markdown section."""
    database_name = "PostgreSQL" if backend == "postgres" else "MariaDB"
    lines = [
        SECTION,
        "",
        f"Measured {dt.date.today().isoformat()} with `benchmarks/bench_failover.py` on "
        f"{machine()}; {database_name} on the same machine; load average "
        + " -> ".join(f"{x:.2f}" for x in loads)
        + f" (before, after); {seconds:.0f} s in all.",
        "",
        f"Failover time: {size} members, no executors; each round kills the leader "
        "(SIGKILL, at a random point of its heartbeat), sends an event through a survivor and "
        "times until the new leader's answer to it (a scheduler action) is committed; the "
        "killed member is restarted before the next round.",
        "",
        "| lease / heartbeat (s) | kills | p50 (s) | p99 (s) | max (s) | target p50 <= 3 s |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for (lease, heartbeat), times in results.items():
        p50, p99 = (q / 1000 for q in quantiles(times))
        default = lease == DEFAULT_LEASE_SECONDS and heartbeat == DEFAULT_HEARTBEAT_SECONDS
        verdict = ("PASS" if p50 <= TARGET_P50 else "**MISS**") if default else "(not default)"
        label = f"{lease:g} / {heartbeat:g}" + (" (defaults)" if default else "")
        lines.append(
            f"| {label} | {len(times)} | {p50:.2f} | {p99:.2f} | {max(times):.2f} | {verdict} |"
        )
    if rates:
        lines += [
            "",
            f"Throughput: {CLIENTS} client threads, each with its own channel, on one member or "
            f"spread round-robin over {MEMBERS} members of one cluster (defaults, no executors).",
            "",
            "| call | where | calls/s | p50 (ms) | p99 (ms) |",
            "|---|---|---:|---:|---:|",
        ]
        lines += [
            f"| {name} | {where} | {rate:,.0f} | {p50:.1f} | {p99:.1f} |"
            for name, where, rate, p50, p99 in rates
        ]
    return "\n".join(lines) + "\n"


def lease_setting(value: str) -> tuple[float, float]:
    """``LEASE:HEARTBEAT`` seconds."""
    lease, _, heartbeat = value.partition(":")
    try:
        return float(lease), float(heartbeat)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected LEASE:HEARTBEAT seconds, got {value!r}"
        ) from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="postgres", choices=sorted(SERVERS))
    parser.add_argument("--kills", type=int, default=20, help="leader kills per lease setting")
    parser.add_argument(
        "--lease",
        type=lease_setting,
        action="append",
        metavar="LEASE:HEARTBEAT",
        help="a lease setting to measure (repeatable); the server's defaults if not given",
    )
    parser.add_argument(
        "--members", type=int, default=MEMBERS, help="cluster size for the failover rounds"
    )
    parser.add_argument("--ops", type=int, default=3000, help="calls per throughput figure")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--quick", action="store_true", help="5 kills, 600 calls (a smoke run)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    kills, ops = (5, 600) if args.quick else (args.kills, args.ops)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    settings = args.lease or [(DEFAULT_LEASE_SECONDS, DEFAULT_HEARTBEAT_SECONDS)]
    print(f"machine: {machine()}; seed {seed}", file=sys.stderr)
    loads = [os.getloadavg()[0]]
    began = time.monotonic()
    results = {}
    rng = random.Random(seed)
    for lease, heartbeat in settings:
        print(f"failover, lease {lease:g} s, heartbeat {heartbeat:g} s ...", file=sys.stderr)
        results[(lease, heartbeat)] = failover_times(
            args.backend, lease, heartbeat, kills, rng, args.members
        )
    rates = []
    if not args.no_throughput:
        print("throughput, 1 member against 3 ...", file=sys.stderr)
        rates = throughput(args.backend, ops)
    loads.append(os.getloadavg()[0])
    section = render(args.backend, args.members, results, rates, loads, time.monotonic() - began)
    print(section)
    if args.markdown:
        write_section(args.markdown, section, SECTION)


if __name__ == "__main__":
    main()
