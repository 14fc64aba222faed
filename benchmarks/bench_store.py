"""Benchmark of issue 3: the store, Model Center and lineage on SQLite and PostgreSQL.

Targets (issue 3), SQLite in-process, one thread: >= 1,000 version creates/s (each with its
status-history row and its MODEL_GENERATED event) and >= 5,000 point reads/s.

    .venv/bin/python benchmarks/bench_store.py                        # SQLite + PostgreSQL
    .venv/bin/python benchmarks/bench_store.py --backends sqlite mysql
    .venv/bin/python benchmarks/bench_store.py --markdown docs/benchmarks.md

Each backend gets a fresh database (a temporary SQLite file; a uniquely named database on the
server, dropped afterwards). Every operation goes through the public client, so the figures
include validation, the transaction and event appends. With 8 threads, all threads hit the same
model (the worst case: its row lock serialises version creation). ``--markdown`` replaces (or
appends) only the "## Store (issue 3)" section of that file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from databases import database
from tideflow.client import Client, connect
from tideflow.domain import LineageRef
from tideflow.metadata import ExecutionService, WorkflowService

SECTION = "## Store (issue 3)"


def measure(threads: int, ops: int, op: Callable[[int], object]) -> tuple[float, float, float]:
    """Run ``op(i)`` for i in range(ops) split over ``threads``; (ops/s, p50 ms, p99 ms)."""
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)

    def worker(indices: range) -> None:
        mine = []
        barrier.wait()
        for i in indices:
            start = time.perf_counter()
            op(i)
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    per = ops // threads
    workers = [
        threading.Thread(target=worker, args=(range(t * per, (t + 1) * per),))
        for t in range(threads)
    ]
    for w in workers:
        w.start()
    barrier.wait()
    began = time.perf_counter()
    for w in workers:
        w.join()
    wall = time.perf_counter() - began
    quantiles = statistics.quantiles(latencies, n=100)
    return len(latencies) / wall, quantiles[49] * 1000, quantiles[98] * 1000


def run_backend(backend: str, ops: int) -> list[tuple[str, int, float, float, float]]:
    rows: list[tuple[str, int, float, float, float]] = []
    with database(backend) as url, connect(url, project="bench") as c:
        c.models.create("listed")
        for _ in range(1000):
            c.models.create_version("listed", uri="file:///m", metrics={"auc": 0.7})
        for threads in (1, 8):
            rows += run_threads(c, threads, ops)
    return rows


def run_threads(c: Client, threads: int, ops: int) -> list[tuple[str, int, float, float, float]]:
    model, dataset = f"m{threads}", f"clicks{threads}"
    c.models.create(model)
    c.datasets.register(dataset, stream=True)
    job_ids = jobs(c, f"wf{threads}", ops)

    def create(i: int) -> object:
        return c.models.create_version(model, uri="file:///m", metrics={"auc": 0.7})

    def validate(i: int) -> object:
        return c.models.set_status(model, i + 1, "VALIDATED")

    def get_deployed(i: int) -> object:
        return c.models.get_version(model, status="DEPLOYED")

    def get_by_number(i: int) -> object:
        return c.models.get_version(model, version=i % ops + 1)

    def list_versions(i: int) -> object:
        return c.models.list_versions("listed", limit=1000)

    def record(i: int) -> object:
        return c.lineage.record(
            job_ids[i],
            inputs=[LineageRef.dataset(dataset, start_offset=i, end_offset=i + 99)],
            outputs=[LineageRef.model_version(model, i + 1)],
        )

    rows = [("create version (+ history + event)", threads, *measure(threads, ops, create))]
    rows.append(("set status (+ history + event)", threads, *measure(threads, ops, validate)))
    c.models.deploy(model, 1)
    rows.append(("get deployed", threads, *measure(threads, ops * 2, get_deployed)))
    rows.append(("get version by number", threads, *measure(threads, ops * 2, get_by_number)))
    rows.append(("list 1,000 versions", threads, *measure(threads, 80, list_versions)))
    rows.append(("record lineage (1 in, 1 out)", threads, *measure(threads, ops, record)))
    return rows


def jobs(c: Client, workflow: str, count: int) -> list[int]:
    WorkflowService(c.store).create_snapshot(c.project, workflow, plan="{}")
    executions = ExecutionService(c.store)
    run = executions.create_execution(c.project, workflow)
    return [
        executions.create_job_execution(c.project, run.execution_id, f"j{i}").job_execution_id
        for i in range(count)
    ]


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


def render(results: dict[str, list[tuple[str, int, float, float, float]]], ops: int) -> str:
    lines = [
        SECTION,
        "",
        f"Measured {dt.date.today().isoformat()} with `benchmarks/bench_store.py` ({ops} operations per "
        "measurement; 80 for the 1,000-version list). Every operation goes through the in-process "
        "client: validation, one transaction, and the event append where the operation changes "
        "anything. With 8 threads all threads work on the same model.",
        f"Machine: {machine()}.",
        "",
        "Targets (SQLite, one thread): >= 1,000 version creates/s with their events, "
        ">= 5,000 reads/s.",
        "",
    ]
    for backend, rows in results.items():
        lines += [
            f"**{backend}**",
            "",
            "| operation | threads | ops/s | p50 ms | p99 ms |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {name} | {t} | {rate:,.0f} | {p50:.2f} | {p99:.2f} |"
            for name, t, rate, p50, p99 in rows
        ]
        lines.append("")
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    existing = path.read_text() if path.exists() else "# Benchmarks\n"
    start = existing.find(SECTION)
    if start == -1:
        updated = existing.rstrip("\n") + "\n\n" + section
    else:
        end = existing.find("\n## ", start + len(SECTION))
        updated = existing[:start] + section + ("" if end == -1 else "\n" + existing[end + 1 :])
    path.write_text(updated.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["sqlite", "postgres"],
        choices=["sqlite", "postgres", "mysql"],
    )
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    print(f"machine: {machine()}", file=sys.stderr)
    results = {}
    for backend in args.backends:
        print(f"running {backend} ...", file=sys.stderr)
        results[backend] = run_backend(backend, args.ops)
    section = render(results, args.ops)
    print(section)
    if args.markdown:
        write_section(args.markdown, section)


if __name__ == "__main__":
    main()
