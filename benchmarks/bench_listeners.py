"""Benchmark of issue 21: many idle ``Listen`` streams on one server, and one event to all.

    .venv/bin/python benchmarks/bench_listeners.py                     # 10,000 listeners
    .venv/bin/python benchmarks/bench_listeners.py --listeners 1000 --processes 2
    PYTHONPATH=/path/to/old/src .venv/bin/python benchmarks/bench_listeners.py   # older code
    .venv/bin/python benchmarks/bench_listeners.py --unary old=/path/to/old/src new=src

``--unary NAME=SRC ...`` (``--backend postgres``: on fresh PostgreSQL databases) instead
compares unary calls through servers running different code
(each server started with ``PYTHONPATH=SRC``), all running at once: one client calls each in
turn, in short bursts, round after round, so a machine whose load drifts (shared cores) drifts
for all of them alike; the median burst rate per server and call is reported.

A real server (``tideflow server start`` through :class:`tideflow.testing.TideflowTestServer`,
SQLite, ``--max-listeners`` just above the count) is started; ``--processes`` client processes
each open their share of the streams with ``grpc.aio`` (one channel per ``--per-channel``
streams, so many streams share a connection), every stream filtered to one key and listening
after the log's last offset. Once every stream has had its first (empty) answer -- the listener
is in place on the server -- the server's resident memory and thread count are read from
``/proc``; then one event is sent with ``time.monotonic()`` stamped into its value, and each
stream records the moment that event reaches it. ``CLOCK_MONOTONIC`` is one clock for the
whole machine, so the delays compare across processes. The report: the server's RSS before and
after (KiB per listener), its threads, how long opening took, and the delivery latency of the
one event to all listeners (p50, p99, max). The client processes share the machine's cores
with the server, so the delivery figures include the clients' own reading. Streams are opened
in waves of :data:`WAVE` per process: gRPC's server cancels calls while more than 1,000 wait to
be accepted.

Results: docs/benchmarks.md, RPC section, "The serving core on grpc.aio". To compare with the
thread-pool core that came before it, point ``PYTHONPATH`` (or ``--unary old=...``) at a
checkout of a commit before it.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import grpc

from tideflow.rpc.call import PROJECT_KEY
from tideflow.rpc.v1 import notification_pb2 as n
from tideflow.rpc.v1 import notification_pb2_grpc as g
from tideflow.testing import TideflowTestServer

KEY = "fanout"
OPEN_SECONDS = 600.0
"""The longest opening all streams may take before the run fails."""
WAVE = 250
"""Streams a client process opens at once before waiting for them to be in place."""
DELIVERY_SECONDS = 120.0
"""The longest the one event may take to reach every stream before the run fails."""


def rss_kib(pid: int) -> int:
    """Resident memory of process ``pid`` in KiB (Linux ``/proc``)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0])


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def client(target: str, count: int, per_channel: int, after: int, pipe: Any) -> None:
    """In a subprocess: open ``count`` streams, report ready, then the event's arrival times."""
    asyncio.run(_client(target, count, per_channel, after, pipe))


async def _client(target: str, count: int, per_channel: int, after: int, pipe: Any) -> None:
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(max(1, -(-count // per_channel)))
    ]
    request = n.ListenRequest(
        filter=n.EventFilter(keys=[KEY]), after_offset=after, keepalive_seconds=60
    )
    metadata = ((PROJECT_KEY, "default"),)
    stubs = [g.NotificationServiceStub(channel) for channel in channels]
    calls: list[Any] = []
    try:
        async with asyncio.timeout(OPEN_SECONDS):
            # In waves: gRPC's server cancels calls beyond 1,000 waiting to be accepted
            # (grpc.server_max_pending_requests), so a burst of thousands is not a fair test.
            for start in range(0, count, WAVE):
                wave = [
                    stubs[i % len(stubs)].Listen(request, metadata=metadata)
                    for i in range(start, min(count, start + WAVE))
                ]
                calls += wave
                await asyncio.gather(*(call.read() for call in wave))  # listener in place
        pipe.send("ready")

        async def arrival(call: Any) -> float:
            while True:
                response = await call.read()
                if response is grpc.aio.EOF:
                    raise RuntimeError("a stream ended before the event reached it")
                if response.events:
                    return time.monotonic()

        async with asyncio.timeout(OPEN_SECONDS + DELIVERY_SECONDS):
            arrivals = await asyncio.gather(*(arrival(call) for call in calls))
        pipe.send(list(arrivals))
    finally:
        for call in calls:
            call.cancel()
        for channel in channels:
            await channel.close()


def quantile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def run(listeners: int, processes: int, per_channel: int) -> dict[str, Any]:
    """One server, ``listeners`` streams from ``processes`` processes; the figures."""
    ctx = mp.get_context("spawn")
    with (
        TideflowTestServer(args=["--max-listeners", str(listeners + 16)]) as server,
        server.client(project="default") as c,
    ):
        assert server.process is not None
        pid = server.process.pid
        target = server.url.removeprefix("grpc://")
        print(f"server pid {pid} at {server.url}", file=sys.stderr)  # for py-spy and the like
        after = c.events.send("warm-up", "x").offset  # the server has served a call
        base_rss, base_threads = rss_kib(pid), threads_of(pid)
        shares = [listeners // processes + (i < listeners % processes) for i in range(processes)]
        pipes, children = [], []
        began = time.monotonic()
        for share in shares:
            parent, child_end = ctx.Pipe(duplex=False)
            child = ctx.Process(target=client, args=(target, share, per_channel, after, child_end))
            child.start()
            child_end.close()  # the child holds it: a child that dies is an EOF here
            pipes.append(parent)
            children.append(child)
        try:
            for pipe, child in zip(pipes, children, strict=True):
                if not pipe.poll(OPEN_SECONDS) or pipe.recv() != "ready":
                    raise RuntimeError(f"client process {child.pid} did not open its streams")
            opened = time.monotonic() - began
            time.sleep(1.0)  # not synchronisation: let the server's allocator settle to read RSS
            open_rss, open_threads = rss_kib(pid), threads_of(pid)
            stamp = time.monotonic()
            c.events.send(KEY, repr(stamp))
            arrivals: list[float] = []
            for pipe in pipes:
                if not pipe.poll(DELIVERY_SECONDS):
                    raise RuntimeError("a client process did not report the event's arrival")
                arrivals += pipe.recv()
            after_rss = rss_kib(pid)
        except BaseException:
            print(server.log_file.read_text()[-4000:], file=sys.stderr)  # why, if the server knows
            raise
        finally:
            for child in children:
                child.join(60)
                if child.is_alive():
                    child.terminate()
    delays = sorted((a - stamp) * 1000 for a in arrivals)
    grown = open_rss - base_rss
    return {
        "listeners": listeners,
        "processes": processes,
        "channels": sum(max(1, -(-s // per_channel)) for s in shares),
        "base_rss_mib": base_rss / 1024,
        "open_rss_mib": open_rss / 1024,
        "after_rss_mib": after_rss / 1024,
        "kib_per_listener": grown / listeners,
        "base_threads": base_threads,
        "open_threads": open_threads,
        "open_seconds": opened,
        "received": len(delays),
        "p50_ms": quantile(delays, 50),
        "p99_ms": quantile(delays, 99),
        "max_ms": delays[-1],
    }


UNARY_ROUNDS = 15
UNARY_BURST = 100
UNARY_CALLS = ("send_event", "get latest offset", "create_model_version", "get deployed version")


def unary(
    sources: dict[str, str], rounds: int = UNARY_ROUNDS, backend: str = "sqlite"
) -> list[str]:
    """Median calls/s per server (``name -> src`` path of its code) and call, interleaved."""
    import random
    from contextlib import ExitStack

    from databases import database
    from tideflow.client import Client

    def ops(c: Client) -> dict[str, Any]:
        return {
            "send_event": lambda: c.events.send("k", "v", event_type="BENCH", sender="bench"),
            "get latest offset": c.events.latest_offset,
            "create_model_version": lambda: c.models.create_version("created", uri="file:///m"),
            "get deployed version": lambda: c.models.get_version("served", status="DEPLOYED"),
        }

    rates: dict[tuple[str, str], list[float]] = {}
    with ExitStack() as stack:
        clients: dict[str, Client] = {}
        for name, src in sources.items():
            # Its own fresh database, migrated by the server's own code (not this process's).
            server = stack.enter_context(
                TideflowTestServer(
                    db_url=stack.enter_context(database(backend)),
                    env={"PYTHONPATH": str(Path(src).resolve())},
                )
            )
            c = clients[name] = stack.enter_context(server.client(project="bench"))
            c.models.create("created")
            c.models.create("served")
            c.models.create_version("served", uri="file:///m")
            c.models.set_status("served", 1, "VALIDATED")
            c.models.deploy("served", 1)
            for op in ops(c).values():  # warm up
                for _ in range(20):
                    op()
        calls = {name: ops(c) for name, c in clients.items()}
        for _ in range(rounds):
            order = list(calls)
            random.shuffle(order)
            for name in order:
                for op_name, op in calls[name].items():
                    began = time.perf_counter()
                    for _ in range(UNARY_BURST):
                        op()
                    rates.setdefault((name, op_name), []).append(
                        UNARY_BURST / (time.perf_counter() - began)
                    )
    names = list(sources)
    first = names[0]
    lines = [
        f"| {backend}, 1 client, calls/s (median of {rounds} bursts of {UNARY_BURST}) | "
        + " | ".join(names)
        + "".join(f" | {n} / {first}" for n in names[1:])
        + " |",
        "|---" * (2 * len(names)) + "|",
    ]
    for op_name in UNARY_CALLS:
        medians = {n: statistics.median(rates[(n, op_name)]) for n in names}
        lines.append(
            f"| {op_name} | "
            + " | ".join(f"{medians[n]:,.0f}" for n in names)
            + "".join(f" | {medians[n] / medians[first]:.2f}" for n in names[1:])
            + " |"
        )
    return lines


def describe(r: dict[str, Any]) -> str:
    return (
        f"{r['listeners']:,} listeners ({r['processes']} client processes, {r['channels']} "
        f"channels): server RSS {r['base_rss_mib']:,.1f} -> {r['open_rss_mib']:,.1f} MiB "
        f"({r['kib_per_listener']:,.1f} KiB per listener; {r['after_rss_mib']:,.1f} MiB after "
        f"the delivery), threads {r['base_threads']} -> {r['open_threads']}; opened in "
        f"{r['open_seconds']:,.1f} s; one event reached all {r['received']:,}: p50 "
        f"{r['p50_ms']:,.1f} ms, p99 {r['p99_ms']:,.1f} ms, max {r['max_ms']:,.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--per-channel", type=int, default=1000, help="streams per channel")
    parser.add_argument(
        "--unary", nargs="+", metavar="NAME=SRC", help="compare unary calls across code trees"
    )
    parser.add_argument("--rounds", type=int, default=UNARY_ROUNDS)
    parser.add_argument(
        "--backend",
        default="sqlite",
        choices=["sqlite", "postgres", "mysql"],
        help="the store of --unary's servers (each gets a fresh database)",
    )
    args = parser.parse_args()
    if args.unary:
        sources = dict(item.split("=", 1) for item in args.unary)
        print(f"load average (1 min) before: {os.getloadavg()[0]:.2f}", file=sys.stderr)
        print("\n".join(unary(sources, args.rounds, args.backend)))
        print(f"load average (1 min) after: {os.getloadavg()[0]:.2f}", file=sys.stderr)
        return
    import tideflow.server.app as app

    print(f"server code: {Path(app.__file__).parents[2]}", file=sys.stderr)
    print(f"load average (1 min) before: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    result = run(args.listeners, args.processes, args.per_channel)
    print(describe(result))
    print(f"load average (1 min) after: {os.getloadavg()[0]:.2f}", file=sys.stderr)


if __name__ == "__main__":
    main()
