"""Benchmark of issue 6: the scheduler and the local executor, on SQLite.

Targets (issue 6): (a) event committed -> action committed p50 <= 5 ms; (b) event -> the started
job's processor running p50 <= 50 ms; (d) a 10-job ``after`` chain <= 100 ms per hop and <= 2 s
in all. (c) has no target: the dispatcher's CPU and RSS with 1,000 active executions x 10 rules
at 1,000 events/s. Airflow 3.3 (LocalExecutor, SQLite) on this kind of machine, for scale:
1.14 s per hop and 12.1 s for a 10-task chain with its defaults, 0.37 s per hop and 4.6 s tuned,
0.6-0.9 s from an asset event to the downstream task start.

    .venv/bin/python benchmarks/bench_scheduler.py
    .venv/bin/python benchmarks/bench_scheduler.py --quick
    .venv/bin/python benchmarks/bench_scheduler.py --markdown docs/benchmarks.md

What is measured:

(a) in-process ``SchedulerService`` + dispatcher thread on a temporary SQLite file: a paced sender
    commits an event that fires an ``on_event`` rule (action RESTART, so every event issues a
    START command); the time runs from ``send`` returning (the event is committed) to the
    dispatcher's after-commit hook reporting the command (``on_effects``) -- no polling.
(b) the same plus the local executor's command loop (warm fork server): the time from the event's
    commit to the job's processor running, stamped by the processor with ``time.perf_counter``
    (``CLOCK_MONOTONIC``, one clock for every process on Linux). Includes the dispatch, the
    executor's wake-up and take, preparing the working directory, the fork, and the runtime
    starting up to the processor.
(c) a real server process (``TideflowTestServer`` with every executor registered, as users run
    it) whose dispatcher serves 1,000 RUNNING executions of a workflow with 10 ``on_event``
    rules; this process commits 1,000 events/s into the same SQLite file, each naming one
    execution and matching one rule. The rules STOP their job, which never runs (its START
    waits on an event nobody sends): each event is evaluated and acted on, and no process is
    spawned -- 10,000 job processes would measure the machine, not the dispatcher. The
    server's CPU (``/proc`` utime + stime, idle and under load) and RSS over the window, and
    how far the dispatcher lags at the end.
(d) a 10-job ``after`` chain of no-op jobs run by the local executor: the trigger
    (``start_execution``) to the execution FINISHED, and per hop the time from one job's
    processor returning to the next one's processor starting (the process exit, the exit
    reported, the status event, the dispatch, the take, the fork, the runtime start).

``--markdown`` replaces (or appends) only the "## Scheduler (issue 6)" section of that file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tideflow as tide
from tideflow.client import Client, connect
from tideflow.domain import Event
from tideflow.domain.status import ExecutionStatus
from tideflow.executors.base import ExecutorContext
from tideflow.executors.local import LocalExecutor
from tideflow.executors.loop import CommandLoop
from tideflow.scheduler.actions import Effects
from tideflow.scheduler.runtime import Scheduler
from tideflow.scheduler.service import SchedulerService
from tideflow.store import Store

SECTION = "## Scheduler (issue 6)"
PROJECT = "bench"
TARGET_A_MS, TARGET_B_MS, TARGET_HOP_MS, TARGET_CHAIN_S = 5.0, 50.0, 100.0, 2.0
AIRFLOW_DEFAULT_HOP_S, AIRFLOW_DEFAULT_CHAIN_S = 1.14, 12.1
AIRFLOW_TUNED_HOP_S, AIRFLOW_TUNED_CHAIN_S = 0.37, 4.6
AIRFLOW_ASSET_S = (0.6, 0.9)
CHAIN = 10
BATCH = 10


@dataclass(frozen=True)
class Sizes:
    events_a: int
    events_b: int
    chains: int
    executions_c: int
    seconds_c: float


WARM_A = 20
"""Events of (a) sent before the measured ones (their RESTARTs leave attempts too)."""
AGE_WINDOW = 100
"""(a)'s first and last this many events are compared: a long execution must cost no more."""
FULL = Sizes(events_a=500, events_b=100, chains=5, executions_c=1000, seconds_c=10.0)
QUICK = Sizes(events_a=100, events_b=20, chains=2, executions_c=200, seconds_c=3.0)


def stamp(ctx: Any, inputs: Any) -> None:
    """A no-op job that writes when its processor ran (pickled by value: defined in __main__)."""
    began = time.perf_counter()
    path = Path(ctx.params["stamps"]) / f"{ctx.execution_id}.{ctx.job}.{ctx.attempt}"
    path.write_text(f"{began} {time.perf_counter()}")


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


class Rig:
    """A temporary home and SQLite store; a scheduler (dispatcher + timers), optionally an executor."""

    def __init__(self, *, executor: bool) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bench-scheduler-"))
        self.code = self.root / "code"
        self.code.mkdir()
        (self.code / "flow.py").write_text("# built by the benchmark\n")
        self.stamps = self.root / "stamps"
        self.stamps.mkdir()
        self.url = f"sqlite:///{self.root / 'tideflow.db'}"
        self.client: Client = connect(self.url, project=PROJECT)
        self.store: Store = self.client.store
        self.service = SchedulerService(self.store, log_root=self.root)
        self.scheduler = Scheduler(self.store, self.service)
        self.scheduler.start()
        self.loop: CommandLoop | None = None
        if executor:  # its jobs make no API call: they need no server (and get no store URL)
            local = LocalExecutor(
                ExecutorContext(
                    home=self.root,
                    executions=self.service.executions,
                    workflows=self.client.services.workflows,
                )
            )
            self.loop = CommandLoop(self.service, local).start()
            self.warm_up()

    def warm_up(self) -> None:
        """One job end to end, so the fork server has finished its imports."""
        with tide.workflow("warmup") as wf, tide.job("w"):
            tide.user_node(processor=stamp, name="w")
        self.client.workflows.submit(wf, source=self.code)
        run = self.service.start_execution(PROJECT, "warmup", params={"stamps": str(self.stamps)})
        self.wait_end(run.execution_id)

    def wait_end(self, execution_id: int, timeout: float = 60.0) -> None:
        """Block (on the event log, no polling) until the execution has ended."""
        with self.client.events.listen(
            keys=[self.service.get_execution(PROJECT, execution_id).workflow],
            event_types=["EXECUTION_STATUS_CHANGED"],
        ) as events:
            if (
                self.service.get_execution(PROJECT, execution_id).status
                is not ExecutionStatus.RUNNING
            ):
                return
            deadline = time.monotonic() + timeout
            for event in events:
                if event.context.get("execution_id") == execution_id:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"execution {execution_id} did not end")

    def close(self) -> None:
        if self.loop is not None:
            self.loop.stop()
        self.scheduler.stop()
        self.service.close()
        self.client.close()
        shutil.rmtree(self.root, ignore_errors=True)


# -- (a) event -> action --------------------------------------------------------------------------


def bench_a(n: int) -> list[float]:
    rig = Rig(executor=False)
    try:
        with tide.workflow("a") as wf:
            with tide.job("target"):
                tide.user_node(processor=stamp, name="t")
            with tide.job("keeper"):  # never runs: its periodic rule keeps the execution alive
                tide.user_node(processor=stamp, name="k")
            wf.on_event("target", "fire", action=tide.JobAction.RESTART, life="repeated")
            wf.periodic("keeper", interval=dt.timedelta(days=365))
        rig.client.workflows.submit(wf, source=rig.code)
        rig.service.start_execution(PROJECT, "a")
        done = threading.Event()
        at: list[float] = []

        def on_effects(effects: Effects) -> None:
            if effects.commands:
                at.append(time.perf_counter())
                done.set()

        rig.service.add_effects_listener(on_effects)
        latencies = []
        for i in range(n + WARM_A):
            done.clear()
            at.clear()
            rig.client.events.send("fire", str(i))
            sent = time.perf_counter()
            if not done.wait(10):
                raise TimeoutError("no command")
            if i >= WARM_A:  # the first ones warm the caches
                latencies.append((at[0] - sent) * 1000)
            time.sleep(0.01)  # pace: ~100 events/s, the dispatcher idle in between
        return latencies
    finally:
        rig.close()


# -- (b) event -> processor running ---------------------------------------------------------------


def bench_b(n: int) -> list[float]:
    rig = Rig(executor=True)
    try:
        with tide.workflow("b") as wf:
            with tide.job("target"):
                tide.user_node(processor=stamp, name="t")
            with tide.job("keeper"):
                tide.user_node(processor=stamp, name="k")
            wf.on_event("target", "fire", life="repeated")
            wf.periodic("keeper", interval=dt.timedelta(days=365))
        rig.client.workflows.submit(wf, source=rig.code)
        run = rig.service.start_execution(PROJECT, "b", params={"stamps": str(rig.stamps)})
        latencies = []
        with rig.client.events.listen(
            keys=["b.target"], event_types=["JOB_STATUS_CHANGED"]
        ) as events:
            for attempt in range(1, n + 1):
                rig.client.events.send("fire", str(attempt))
                sent = time.perf_counter()
                for event in events:  # pushed by the commit hook
                    if event.value in ("FINISHED", "FAILED"):
                        break
                began = float(
                    (rig.stamps / f"{run.execution_id}.target.{attempt}").read_text().split()[0]
                )
                latencies.append((began - sent) * 1000)
        return latencies
    finally:
        rig.close()


# -- (d) a 10-job after chain ----------------------------------------------------------------------


def bench_d(chains: int) -> tuple[list[float], list[float]]:
    rig = Rig(executor=True)
    try:
        with tide.workflow("chain") as wf:
            for i in range(CHAIN):
                with tide.job(f"j{i}"):
                    tide.user_node(processor=stamp, name=f"n{i}")
            for i in range(1, CHAIN):
                wf.after(f"j{i}", f"j{i - 1}")
        rig.client.workflows.submit(wf, source=rig.code)
        totals, hops = [], []
        for _ in range(chains):
            began = time.perf_counter()
            run = rig.service.start_execution(PROJECT, "chain", params={"stamps": str(rig.stamps)})
            rig.wait_end(run.execution_id)
            totals.append(time.perf_counter() - began)
            status = rig.service.get_execution(PROJECT, run.execution_id).status.value
            if status != "FINISHED":
                raise RuntimeError(f"the chain ended {status}")
            times = [
                [float(x) for x in (rig.stamps / f"{run.execution_id}.j{i}.1").read_text().split()]
                for i in range(CHAIN)
            ]
            hops += [(times[i][0] - times[i - 1][1]) * 1000 for i in range(1, CHAIN)]
        return totals, hops
    finally:
        rig.close()


# -- (c) 1,000 executions x 10 rules at 1,000 events/s ---------------------------------------------


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass(frozen=True)
class LoadResult:
    executions: int
    rate: float
    cpu_idle: float
    cpu: float
    rss_before: float
    rss_after: float
    lag_events: int
    drain_s: float


def bench_c(executions: int, seconds: float) -> LoadResult:
    from tideflow.scheduler.actions import CONSUMER
    from tideflow.store import ALL_NAMESPACES, committed_offset
    from tideflow.store.event import last_offset
    from tideflow.testing import TideflowTestServer

    root = Path(tempfile.mkdtemp(prefix="bench-scheduler-load-"))
    server = TideflowTestServer(home=root)
    try:
        code = root / "code"
        code.mkdir()
        (code / "flow.py").write_text("")
        client = connect(server.db_url, project=PROJECT)  # creates the store before the server
        with tide.workflow("load") as wf:
            for j in range(10):
                with tide.job(f"j{j}"):
                    tide.user_node(processor=stamp, name=f"n{j}")
                wf.on_event(f"j{j}", "never-sent")  # its START: the job never runs
                wf.on_event(f"j{j}", f"k{j}", life="repeated", action=tide.JobAction.STOP)
        client.workflows.submit(wf, source=code)
        service = SchedulerService(client.store, log_root=root)
        runs = [service.start_execution(PROJECT, "load").execution_id for _ in range(executions)]
        service.close()
        server.start()
        pid = server.process.pid  # type: ignore[union-attr]

        def lag() -> int:
            def look(c: Any) -> int:
                return int(last_offset(c)) - int(committed_offset(c, ALL_NAMESPACES, CONSUMER))

            return client.store.run(look, write=False)

        deadline = time.monotonic() + 60
        while lag() > 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # the server catches up with the setup (not measured)
        cpu0, t0 = _proc_cpu(pid), time.monotonic()
        time.sleep(2.0)
        cpu_idle = (_proc_cpu(pid) - cpu0) / (time.monotonic() - t0)
        rss_before = _proc_rss_mb(pid)
        cpu0, t0 = _proc_cpu(pid), time.monotonic()
        sent = 0
        # Batches of BATCH events every BATCH ms: one sender committing single events beside
        # the server's dispatcher on a small machine tops out below 1,000/s.
        interval = BATCH / 1000
        next_at = time.perf_counter()
        end_at = next_at + seconds
        while time.perf_counter() < end_at:
            batch = []
            for _ in range(BATCH):
                run = runs[sent % len(runs)]
                job = (sent // len(runs)) % 10
                batch.append(
                    Event(
                        key=f"k{job}",
                        value=str(sent),
                        event_type="LOAD",
                        context={"execution_id": run},
                    )
                )
                sent += 1
            client.events.send_many(batch)
            next_at += interval
            pause = next_at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        window = time.monotonic() - t0
        cpu = (_proc_cpu(pid) - cpu0) / window
        rss_after = _proc_rss_mb(pid)
        behind = lag()
        drain_began = time.monotonic()
        while lag() > 0 and time.monotonic() < drain_began + 120:
            time.sleep(0.01)
        drain = time.monotonic() - drain_began
        client.close()
        return LoadResult(
            executions=executions,
            rate=sent / seconds,
            cpu_idle=cpu_idle,
            cpu=cpu,
            rss_before=rss_before,
            rss_after=rss_after,
            lag_events=behind,
            drain_s=drain,
        )
    finally:
        server.close()
        shutil.rmtree(root, ignore_errors=True)


# -- report ----------------------------------------------------------------------------------------


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else "MISSED"


def render(
    sizes: Sizes,
    a: list[float],
    b: list[float],
    d: tuple[list[float], list[float]],
    c: LoadResult | None,
    loads: list[float],
) -> str:
    a50, a99 = quantiles(a)
    window = min(AGE_WINDOW, len(a) // 2)  # a --quick run has fewer events
    early, late = statistics.median(a[:window]), statistics.median(a[-window:])
    b50, b99 = quantiles(b)
    totals, hops = d
    chain = statistics.median(totals)
    hop50, hop99 = quantiles(hops)
    per_hop = chain / CHAIN * 1000
    lines = [
        SECTION,
        "",
        f"Measured {dt.date.today().isoformat()} with `benchmarks/bench_scheduler.py` "
        f"({sizes.events_a} events for (a), {sizes.events_b} for (b), {sizes.chains} chains of "
        f"{CHAIN} jobs, {sizes.executions_c:,} executions for {sizes.seconds_c:g} s in (c)); "
        "SQLite in a temporary directory, the local executor with its warm fork server.",
        f"Machine: {machine()}. Load average (1 min) seen during the run: "
        f"{min(loads):.2f} to {max(loads):.2f}.",
        "",
        "| measurement | Tideflow | target | Airflow 3.3 (LocalExecutor, SQLite) | ratio |",
        "|---|---|---|---|---|",
        f"| (a) event committed -> action (command) committed | p50 {a50:.2f} ms, p99 "
        f"{a99:.2f} ms | p50 <= {TARGET_A_MS:g} ms ({verdict(a50, TARGET_A_MS)}) | — | — |",
        f"| (a) p50 of the first / the last {window} events (each RESTART leaves one more "
        f"ended attempt: ~{WARM_A + window // 2:,} / ~{WARM_A + len(a) - window // 2:,} "
        f"then) | {early:.2f} / {late:.2f} ms ({late / early:.2f}x) | flat | — | — |",
        f"| (b) event committed -> the started job's processor running | p50 {b50:.1f} ms, p99 "
        f"{b99:.1f} ms | p50 <= {TARGET_B_MS:g} ms ({verdict(b50, TARGET_B_MS)}) | "
        f"0.6-0.9 s (asset event -> downstream task start) | "
        f"{AIRFLOW_ASSET_S[0] * 1000 / b50:.0f}-{AIRFLOW_ASSET_S[1] * 1000 / b50:.0f}x sooner |",
        f"| (d) 10-job after chain, trigger -> done | {chain:.2f} s (median; best "
        f"{min(totals):.2f} s) | <= {TARGET_CHAIN_S:g} s ({verdict(chain, TARGET_CHAIN_S)}) | "
        f"{AIRFLOW_DEFAULT_CHAIN_S} s default, {AIRFLOW_TUNED_CHAIN_S} s tuned | "
        f"{AIRFLOW_DEFAULT_CHAIN_S / chain:.0f}x / {AIRFLOW_TUNED_CHAIN_S / chain:.0f}x faster |",
        f"| (d) per hop: chain / {CHAIN} | {per_hop:.0f} ms | <= {TARGET_HOP_MS:g} ms "
        f"({verdict(per_hop, TARGET_HOP_MS)}) | {AIRFLOW_DEFAULT_HOP_S * 1000:.0f} ms default, "
        f"{AIRFLOW_TUNED_HOP_S * 1000:.0f} ms tuned | "
        f"{AIRFLOW_DEFAULT_HOP_S * 1000 / per_hop:.0f}x / "
        f"{AIRFLOW_TUNED_HOP_S * 1000 / per_hop:.0f}x faster |",
        f"| (d) per hop: upstream processor returned -> downstream processor running | p50 "
        f"{hop50:.0f} ms, p99 {hop99:.0f} ms | — | — | — |",
    ]
    lines += [
        "",
        "(a) is one dispatcher transaction on SQLite: the wake-up by the commit hook, reading "
        "the batch, routing through the index, loading and saving the rule state, the RESTART "
        "(the INIT attempt withdrawn and its JOB_STATUS_CHANGED appended, a new attempt, its "
        "START command, two action records), the consumer offset, the commit; then a second "
        "transaction handles the withdrawn attempt's status event. It is CPU-bound Python "
        "(~1.9 ms of CPU a transaction): the execution's view reads only its live and newest "
        "attempts, so a long execution costs no more (the first / last row), and the "
        "statements are built once with bound parameters. When other work shares the 2 cores "
        "p50 moves up and the tail grows with scheduling delays. "
        "(b) and (d) add the executor: its wake-up, the take, preparing the working directory, "
        "the fork from the warm fork server, the runtime starting, and for (d) the exit of the "
        "upstream process being noticed and its status committed.",
    ]
    if c is not None:
        lines += [
            "",
            f"(c) a server process as users run it (every executor registered) with "
            f"{c.executions:,} RUNNING executions x 10 `on_event` rules; this process "
            f"committed {c.rate:,.0f} events/s for {sizes.seconds_c:g} s (`send_many` of "
            f"{BATCH} every {BATCH} ms), each naming one execution and firing one rule, a STOP "
            "of a job that never runs (evaluated, recorded as skipped; no process spawned):",
            "",
            "| server CPU idle | server CPU under load | RSS before -> after | "
            "dispatcher behind at the end | caught up after |",
            "|---|---|---|---|---|",
            f"| {c.cpu_idle * 100:.0f}% of a core | {c.cpu * 100:.0f}% of a core | "
            f"{c.rss_before:.0f} MB -> {c.rss_after:.0f} MB | {c.lag_events:,} events | "
            f"{c.drain_s:.2f} s |",
        ]
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke run)")
    parser.add_argument("--skip-load", action="store_true", help="skip (c)")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    print(f"machine: {machine()}", file=sys.stderr)
    loads = [os.getloadavg()[0]]
    print("(a) event -> action ...", file=sys.stderr)
    a = bench_a(sizes.events_a)
    loads.append(os.getloadavg()[0])
    print("(b) event -> processor running ...", file=sys.stderr)
    b = bench_b(sizes.events_b)
    loads.append(os.getloadavg()[0])
    print("(d) 10-job chain ...", file=sys.stderr)
    d = bench_d(sizes.chains)
    loads.append(os.getloadavg()[0])
    c = None
    if not args.skip_load:
        print("(c) load ...", file=sys.stderr)
        c = bench_c(sizes.executions_c, sizes.seconds_c)
        loads.append(os.getloadavg()[0])
    section = render(sizes, a, b, d, c, loads)
    print(section)
    if args.markdown:
        write_section(args.markdown, section)


if __name__ == "__main__":
    main()
