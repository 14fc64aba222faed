"""Benchmark of issue 14: what an idle server costs, as users run it.

A real ``tideflow server start`` (every executor registered: local, ray, spark, flink) on a
fresh SQLite home, with nothing happening. After a settling period, the server process's CPU
time is read from ``/proc`` every 5 s; the script prints the share of one core it used per
window (median, p99, mean) and per thread over the whole run. Target: <= 1 %
of a core. Before issue 14 every executor's loop took two store transactions every 0.5 s and
the SQLite commit watchers polled 500 times a second (8.5 % of a core; 17.9 % before that).

    .venv/bin/python benchmarks/bench_idle.py              # 60 s
    .venv/bin/python benchmarks/bench_idle.py --seconds 20
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench_rpc import machine

from tideflow.testing import TideflowTestServer

TARGET_PERCENT = 1.0
SETTLE_SECONDS = 5.0
WINDOW_SECONDS = 5.0
"""CPU time counts in 10 ms ticks: a window this long resolves 0.2 % of a core."""


def cpu_seconds(pid: int, task: str | None = None) -> float:
    path = f"/proc/{pid}/task/{task}/stat" if task else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def threads(pid: int) -> dict[str, float]:
    out = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):  # the thread ended
            out[task] = cpu_seconds(pid, task)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=60, help="how long to measure")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    with TideflowTestServer(home=home) as server:
        pid = server.process.pid  # type: ignore[union-attr]
        time.sleep(SETTLE_SECONDS)  # start-up work (migrations, re-attach) is not idling
        first, begun = threads(pid), time.monotonic()
        windows = []
        last, at = cpu_seconds(pid), time.monotonic()
        for _ in range(max(1, round(args.seconds / WINDOW_SECONDS))):
            time.sleep(WINDOW_SECONDS)
            now_cpu, now = cpu_seconds(pid), time.monotonic()
            windows.append((now_cpu - last) / (now - at) * 100)
            last, at = now_cpu, now
        final, elapsed = threads(pid), time.monotonic() - begun
    per_thread = sorted(
        ((final[t] - first.get(t, 0.0)) / elapsed * 100 for t in final), reverse=True
    )
    windows.sort()
    mean = statistics.fmean(windows)
    p99 = windows[min(len(windows) - 1, int(len(windows) * 0.99))]
    print(f"machine: {machine()}")
    print(
        f"idle server, every executor registered, {len(windows)} windows of {WINDOW_SECONDS:.0f} s"
    )
    print(
        f"CPU % of one core: median {statistics.median(windows):.2f}, p99 {p99:.2f}, "
        f"mean {mean:.2f} (target <= {TARGET_PERCENT:.0f} %: "
        f"{'PASS' if mean <= TARGET_PERCENT else 'MISS'})"
    )
    busiest = ", ".join(f"{share:.2f}" for share in per_thread[:4])
    print(f"busiest threads, % of one core: {busiest} ({len(per_thread)} threads)")


if __name__ == "__main__":
    main()
