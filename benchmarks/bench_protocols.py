"""Benchmark of issue 19: predictions/s through each protocol of ``tideflow serve``.

    .venv/bin/python benchmarks/bench_protocols.py
    .venv/bin/python benchmarks/bench_protocols.py --quick

The ad_ctr model (feature tokens, an SGD logistic regression in pure Python), logged with an ``input_example``
so every request is also checked against its signature, is deployed on a real server (SQLite);
``tideflow serve ctr`` runs in its own process (one Python process: its event loop and batch
worker share one core) and is driven over HTTP keep-alive from 1 and 8 client threads in this
process, with requests of 1 and 8 records, through:

* ``/predict`` -- Tideflow's own body, a JSON list of records;
* ``/invocations`` -- MLflow scoring, ``{"dataframe_records": [...]}`` and
  ``{"dataframe_split": {"columns", "data"}}``;
* ``/v2/models/ctr/infer`` -- the Open Inference Protocol v2, one tensor per feature.

It prints predictions/s and request p50/p99 per protocol and load, and the machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from bench_online import connection, machine, p50_p99  # the issue 7 benchmark's helpers

Body = Callable[[list[dict[str, Any]]], bytes]


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> None:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: HTTP {response.status}: {data[:300]!r}")


FIELDS = ("user", "segment", "ad", "category", "device", "site", "position", "hour")


def v2_body(records: list[dict[str, Any]]) -> bytes:
    inputs = []
    for name in FIELDS:
        values = [r[name] for r in records]
        kind = "BYTES" if isinstance(values[0], str) else "INT64"
        inputs.append({"name": name, "shape": [len(values)], "datatype": kind, "data": values})
    return json.dumps({"inputs": inputs}).encode()


PROTOCOLS: dict[str, tuple[str, Body]] = {
    "/predict": ("/predict", lambda rs: json.dumps(rs).encode()),
    "/invocations (dataframe_records)": (
        "/invocations",
        lambda rs: json.dumps({"dataframe_records": rs}).encode(),
    ),
    "/invocations (dataframe_split)": (
        "/invocations",
        lambda rs: json.dumps(
            {
                "dataframe_split": {
                    "columns": list(FIELDS),
                    "data": [[r[f] for f in FIELDS] for r in rs],
                }
            }
        ).encode(),
    ),
    "/v2/models/ctr/infer": ("/v2/models/ctr/infer", v2_body),
}


def drive(
    port: int, path: str, bodies: list[bytes], clients: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run() -> None:
        conn = connection(port)
        mine: list[float] = []
        i = 0
        while time.monotonic() < stop:
            t = time.perf_counter()
            post(conn, path, bodies[i % len(bodies)])
            mine.append(time.perf_counter() - t)
            i += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    p50, p99 = p50_p99(latencies)
    return {
        "requests": len(latencies),
        "elapsed": elapsed,
        "p50_ms": p50 * 1000,
        "p99_ms": p99 * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke run)")
    args = parser.parse_args()

    import tideflow as tide
    from tideflow.examples.ad_ctr.market import MARKET
    from tideflow.examples.ad_ctr.model import CtrModel
    from tideflow.serving.models import save_model
    from tideflow.testing import TideflowTestServer

    rng = random.Random(3)
    model = CtrModel()
    batch = [MARKET.impression(rng, str(i)) for i in range(4000)]
    model.learn(batch, [MARKET.clicked(rng, r, drifted=False) for r in batch])
    example = [{k: v for k, v in r.items() if k != "request_id"} for r in batch[:5]]
    seconds = 2.0 if args.quick else 6.0

    with TideflowTestServer() as server:
        client = tide.connect(server.url, project="default")
        version = save_model(client, model, model="ctr", input_example=example).version
        client.models.set_status("ctr", version, "VALIDATED")
        client.models.deploy("ctr", version)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "TIDEFLOW_HOME": str(server.home)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "tideflow", "serve", "ctr", "--server", server.url,
             "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    conn = connection(port)
                    conn.request("GET", "/ping")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the predictor did not start")
                time.sleep(0.2)
            print(f"machine: {machine()}")
            print(f"{seconds:g} s per run; the ad_ctr model with its signature checked\n")
            print("| protocol | records/request | clients | predictions/s | p50 ms | p99 ms |")
            print("|---|---:|---:|---:|---:|---:|")
            for records in (1, 8):
                rows = [
                    [MARKET.impression(rng, f"r{i}-{k}") for k in range(records)]
                    for i in range(200)
                ]
                rows = [
                    [{k: v for k, v in r.items() if k != "request_id"} for r in b] for b in rows
                ]
                for name, (path, body) in PROTOCOLS.items():
                    bodies = [body(b) for b in rows]
                    drive(port, path, bodies, 1, 0.3)  # warm up
                    for clients in (1, 8):
                        r = drive(port, path, bodies, clients, seconds)
                        rate = r["requests"] * records / r["elapsed"]
                        print(
                            f"| {name} | {records} | {clients} | {rate:,.0f} | "
                            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} |",
                            flush=True,
                        )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            client.close()


if __name__ == "__main__":
    main()
