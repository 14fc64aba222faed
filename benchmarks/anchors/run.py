"""The anchors of issue 21: MLflow's registry server, Tideflow's server and a gRPC echo floor.

One run measures the same two registry operations on MLflow's tracking server and on a
Tideflow server, each over its own wire protocol from 1 client and from 8 clients, and a
minimal Python gRPC echo server beside them, so that the ratios printed at the end compare
figures taken on the same machine, under the same load, minutes apart:

* MLflow: ``mlflow server`` (SQLite backend store in a temporary directory, a free loopback
  port, its default workers) from ``mlflow`` installed off PyPI into this folder's own virtual
  environment (``.venv-mlflow``, made on the first run, reused once complete). Called over its
  REST API with ``httpx`` (one keep-alive connection per client): ``POST
  /api/2.0/mlflow/model-versions/create`` on a registered model, and two reads of "the version
  in production": ``GET /api/2.0/mlflow/registered-models/alias`` (what MLflow 3 recommends)
  and the deprecated ``POST /api/2.0/mlflow/registered-models/get-latest-versions`` (stage
  ``Production``).
* Tideflow: a real ``tideflow server start`` (:class:`tideflow.testing.TideflowTestServer`,
  SQLite, every executor registered), called with ``tideflow.connect(url)`` per client:
  ``models.create_version`` and ``models.get_version(model, status="DEPLOYED")``.
* The floor: ``bench_rpc``'s echo server (a generic gRPC handler returning the request bytes).

    .venv/bin/python benchmarks/anchors/run.py                      # about 5 minutes
    .venv/bin/python benchmarks/anchors/run.py --quick              # about 2.5 minutes
    .venv/bin/python benchmarks/anchors/run.py --markdown docs/benchmarks.md

``--markdown`` replaces (or appends) only the "## Anchors (issue 21)" section of that file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # bench_rpc, beside this folder

from bench_rpc import (  # noqa: E402
    FULL,
    THREADS,
    WARMUP,
    Op,
    Row,
    bench_echo,
    machine,
    measure,
    ms,
    prepare,
    row,
    unary_ops,
    write_section,
)

from tideflow.testing import TideflowTestServer, wait_until  # noqa: E402

SECTION = "## Anchors (issue 21)"
VENV = HERE / ".venv-mlflow"
COMPLETE = "anchors-complete"
"""Written into the virtual environment (with MLflow's version) once ``pip install`` succeeded."""
START_TIMEOUT = 180.0
SOURCE = "s3://anchors/model"
"""A model version's source: not a local path, which MLflow's server refuses without a run."""

MLFLOW_CREATE = "MLflow model-versions/create"
MLFLOW_ALIAS = "MLflow registered-models/alias GET"
MLFLOW_LATEST = "MLflow get-latest-versions (Production)"
TIDEFLOW_CREATE = "Tideflow models.create_version"
TIDEFLOW_GET = 'Tideflow models.get_version(status="DEPLOYED")'
ECHO = "gRPC echo (floor)"


@dataclass(frozen=True)
class Counts:
    """Calls per measurement (split over the threads; each first makes WARMUP untimed calls)."""

    mlflow_writes: int
    mlflow_reads: int
    tideflow_writes: int
    tideflow_reads: int
    echo: int


FULL_COUNTS = Counts(
    mlflow_writes=400, mlflow_reads=2000, tideflow_writes=2000, tideflow_reads=4000, echo=5000
)
QUICK_COUNTS = Counts(
    mlflow_writes=80, mlflow_reads=400, tideflow_writes=400, tideflow_reads=800, echo=1500
)


# -- MLflow's own virtual environment ---------------------------------------------------------


def mlflow_environment(directory: Path, requirement: str) -> tuple[Path, str]:
    """The virtual environment holding MLflow (made and filled on first use); (bin, version).

    A marker written after a successful install tells a complete environment from one an
    interrupted run left half-filled, which is made again from scratch.
    """
    bin_dir = directory / "bin"
    marker = directory / COMPLETE
    if not marker.exists():
        print(f"installing {requirement} into {directory} (once) ...", file=sys.stderr)
        began = time.monotonic()
        venv.EnvBuilder(with_pip=True, clear=True).create(directory)
        pip = [str(bin_dir / "python"), "-m", "pip", "--disable-pip-version-check"]
        subprocess.run([*pip, "install", "--quiet", requirement], check=True)
        version = subprocess.run(
            [str(bin_dir / "python"), "-c", "import mlflow; print(mlflow.__version__)"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        marker.write_text(f"{version}\n")
        print(f"  installed MLflow {version} in {time.monotonic() - began:.0f} s", file=sys.stderr)
    return bin_dir, marker.read_text().strip()


def free_port() -> int:
    """A loopback port nobody listens on now (MLflow's server cannot be told to pick one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def mlflow_server(bin_dir: Path) -> Iterator[str]:
    """``mlflow server`` on SQLite in a temporary directory; its base URL once it is healthy.

    It runs in a session of its own, so that stopping it stops its workers too.
    """
    with tempfile.TemporaryDirectory(prefix="anchors-mlflow-") as tmp:
        port = free_port()
        command = [
            str(bin_dir / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp}/mlflow.db",
            "--artifacts-destination",
            f"{tmp}/artifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        log = Path(tmp) / "server.log"
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        env.pop("VIRTUAL_ENV", None)
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                cwd=tmp,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        base = f"http://127.0.0.1:{port}"
        try:

            def up() -> bool:
                if process.poll() is not None:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"mlflow server exited ({process.returncode}):\n{tail}")
                return healthy(base)

            began = time.monotonic()
            wait_until(up, timeout=START_TIMEOUT, what="mlflow server's /health", interval=0.1)
            print(
                f"  mlflow server pid {process.pid} at {base}, healthy after "
                f"{time.monotonic() - began:.1f} s",
                file=sys.stderr,
            )
            yield base
        except BaseException:
            tail = log.read_text(errors="replace")[-3000:]
            print(f"mlflow server's log (tail):\n{tail}", file=sys.stderr)
            raise
        finally:
            stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (it and its workers); SIGKILL it after 30 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


DROPPED = itertools.count()
"""Calls the MLflow server dropped without an answer (and that were made again)."""


def call(http: httpx.Client, method: str, path: str, **kwargs: Any) -> dict[str, object]:
    """One REST call; raises on any answer but 200.

    A call whose connection the server closes without answering is counted in :data:`DROPPED`
    and made once more on a new connection (its time includes both). It happened once in a
    trial run on a heavily loaded machine (load average 14 on 2 cores), a worker presumably
    restarted by uvicorn's supervisor; one such drop should not void a run of minutes.
    """
    try:
        response = http.request(method, path, **kwargs)
    except httpx.RemoteProtocolError:
        next(DROPPED)
        response = http.request(method, path, **kwargs)
    if response.status_code != 200:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
    body: dict[str, object] = response.json()
    return body


def mlflow_prepare(http: httpx.Client) -> None:
    """``created`` (grows) and ``served``: version 1 aliased ``deployed`` and in Production."""
    call(http, "POST", "/api/2.0/mlflow/registered-models/create", json={"name": "created"})
    call(http, "POST", "/api/2.0/mlflow/registered-models/create", json={"name": "served"})
    call(
        http,
        "POST",
        "/api/2.0/mlflow/model-versions/create",
        json={"name": "served", "source": SOURCE},
    )
    call(
        http,
        "POST",
        "/api/2.0/mlflow/registered-models/alias",
        json={"name": "served", "alias": "deployed", "version": "1"},
    )
    call(
        http,
        "POST",
        "/api/2.0/mlflow/model-versions/transition-stage",
        json={
            "name": "served",
            "version": "1",
            "stage": "Production",
            "archive_existing_versions": False,
        },
    )


def mlflow_ops(http: httpx.Client) -> dict[str, Op]:
    def create(i: int) -> object:
        return call(
            http,
            "POST",
            "/api/2.0/mlflow/model-versions/create",
            json={"name": "created", "source": SOURCE},
        )

    def by_alias(i: int) -> object:
        body = call(
            http,
            "GET",
            "/api/2.0/mlflow/registered-models/alias",
            params={"name": "served", "alias": "deployed"},
        )
        assert body["model_version"]
        return body

    def latest(i: int) -> object:
        body = call(
            http,
            "POST",
            "/api/2.0/mlflow/registered-models/get-latest-versions",
            json={"name": "served", "stages": ["Production"]},
        )
        assert body["model_versions"]
        return body

    return {MLFLOW_CREATE: create, MLFLOW_ALIAS: by_alias, MLFLOW_LATEST: latest}


def bench_mlflow(bin_dir: Path, counts: Counts) -> list[Row]:
    with mlflow_server(bin_dir) as base, ExitStack() as stack:
        clients = [
            stack.enter_context(httpx.Client(base_url=base, timeout=60)) for _ in range(THREADS)
        ]
        mlflow_prepare(clients[0])
        ops = [mlflow_ops(c) for c in clients]
        rows = []
        for name in (MLFLOW_CREATE, MLFLOW_ALIAS, MLFLOW_LATEST):
            count = counts.mlflow_writes if name == MLFLOW_CREATE else counts.mlflow_reads
            print(f"  {name} ...", file=sys.stderr)
            rows.append(row(name, "1 client", measure([ops[0][name]], count)))
            rows.append(row(name, "8 clients", measure([o[name] for o in ops], count)))
        return rows


# -- Tideflow and the floor -------------------------------------------------------------------


def bench_tideflow(counts: Counts) -> list[Row]:
    with TideflowTestServer() as server, ExitStack() as stack:
        assert server.process is not None
        print(f"  tideflow server pid {server.process.pid} at {server.url}", file=sys.stderr)
        clients = [stack.enter_context(server.client(project="bench")) for _ in range(THREADS)]
        prepare(clients[0])
        ops = [unary_ops(c) for c in clients]
        rows = []
        for ours, theirs in (
            (TIDEFLOW_CREATE, "create_model_version"),
            (TIDEFLOW_GET, "get deployed version"),
        ):
            count = counts.tideflow_writes if ours == TIDEFLOW_CREATE else counts.tideflow_reads
            print(f"  {ours} ...", file=sys.stderr)
            rows.append(row(ours, "1 client", measure([ops[0][theirs]], count)))
            rows.append(row(ours, "8 clients", measure([o[theirs] for o in ops], count)))
        return rows


def bench_floor(counts: Counts) -> list[Row]:
    rows = bench_echo(replace(FULL, echo_ops=counts.echo))
    return [replace(r, name=ECHO) for r in rows if r.how in ("1 client", "8 clients")]


# -- report -----------------------------------------------------------------------------------


def pick(rows: Sequence[Row], name: str, how: str) -> Row:
    return next(r for r in rows if r.name == name and r.how == how)


def ratios(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| Tideflow | vs | clients | Tideflow ops/s | other ops/s | Tideflow / other (ops/s) "
        "| p50 ms, Tideflow / other | p99 ms, Tideflow / other |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for ours, theirs in (
        (TIDEFLOW_CREATE, MLFLOW_CREATE),
        (TIDEFLOW_GET, MLFLOW_ALIAS),
        (TIDEFLOW_GET, MLFLOW_LATEST),
        (TIDEFLOW_CREATE, ECHO),
        (TIDEFLOW_GET, ECHO),
    ):
        for how in ("1 client", "8 clients"):
            a, b = pick(rows, ours, how), pick(rows, theirs, how)
            lines.append(
                f"| {ours.removeprefix('Tideflow ')} | {theirs} | {how} | {a.rate:,.0f} "
                f"| {b.rate:,.0f} | **{a.rate / b.rate:.2f}x** | {ms(a.p50)} / {ms(b.p50)} "
                f"| {ms(a.p99)} / {ms(b.p99)} |"
            )
    return lines


def render(
    rows: Sequence[Row],
    counts: Counts,
    version: str,
    loads: list[float],
    seconds: float,
    dropped: int,
) -> str:
    lines = [
        SECTION,
        "",
        f"Measured {dt.date.today().isoformat()} with `benchmarks/anchors/run.py` in one run of "
        f"{seconds / 60:.1f} minutes (see benchmarks/anchors/README.md). Machine: {machine()}. "
        f"Load average (1 min) seen during the run: {min(loads):.2f} to {max(loads):.2f}; the "
        f"machine's {os.cpu_count()} cores are shared with other work, so absolute figures are "
        "noisy; the ratios, taken minutes apart in one run, are the point.",
        "",
        f"* MLflow {version} (`pip install mlflow` into its own virtual environment): `mlflow "
        "server` with a SQLite backend store in a temporary directory, a loopback port and its "
        "default workers, called over its REST API with `httpx` (one keep-alive connection per "
        f"client): {counts.mlflow_writes:,} `POST /api/2.0/mlflow/model-versions/create` calls "
        f"per figure, and {counts.mlflow_reads:,} reads of the version in production made two "
        "ways: as MLflow 3 recommends, `GET /api/2.0/mlflow/registered-models/alias` (an alias "
        "set on version 1), and the deprecated `POST /api/2.0/mlflow/registered-models/"
        "get-latest-versions` (stage `Production`).",
        "* Tideflow: a real `tideflow server start` (`tideflow.testing.TideflowTestServer`, "
        "SQLite, every executor registered) called over gRPC with `tideflow.connect(url)`, one "
        f"client each: {counts.tideflow_writes:,} `models.create_version(...)` calls and "
        f'{counts.tideflow_reads:,} `models.get_version(model, status="DEPLOYED")`.',
        f"* Floor: `bench_rpc`'s minimal Python gRPC echo server in its own process, "
        f"{counts.echo:,} calls.",
        f'* "8 clients" is 8 threads, each with its own connection (HTTP) or channel (gRPC); '
        f"each thread first makes {WARMUP} untimed calls, then all start together. Only one "
        "server runs at a time. p99 is interpolated.",
        f"* The MLflow server dropped {dropped} connection(s) without answering (each such "
        "call was made again on a new connection, its time included).",
        "",
        *ratios(rows),
        "",
        "| server and operation | clients | ops/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|",
        *(f"| {r.name} | {r.how} | {r.rate:,.0f} | {ms(r.p50)} | {ms(r.p99)} |" for r in rows),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke run)")
    parser.add_argument("--markdown", type=Path, help="write the section into this file")
    parser.add_argument(
        "--mlflow", default="mlflow", help="the pip requirement for MLflow (default: the latest)"
    )
    parser.add_argument("--venv", type=Path, default=VENV, help="MLflow's virtual environment")
    args = parser.parse_args()
    counts = QUICK_COUNTS if args.quick else FULL_COUNTS
    bin_dir, version = mlflow_environment(args.venv, args.mlflow)
    print(f"machine: {machine()}; MLflow {version}", file=sys.stderr)
    loads = [os.getloadavg()[0]]
    if loads[0] > 0.75 * (os.cpu_count() or 1):
        print(f"warning: the machine is busy (load {loads[0]:.2f}); expect noise", file=sys.stderr)
    began = time.monotonic()
    rows: list[Row] = []
    for title, bench in (
        ("echo floor", bench_floor),
        ("Tideflow", bench_tideflow),
        ("MLflow", lambda c: bench_mlflow(bin_dir, c)),
    ):
        print(f"{title} ...", file=sys.stderr)
        rows += bench(counts)
        loads.append(os.getloadavg()[0])
    seconds = time.monotonic() - began
    print(f"done in {seconds:.0f} s", file=sys.stderr)
    section = render(rows, counts, version, loads, seconds, next(DROPPED))
    print(section)
    if args.markdown:
        write_section(args.markdown, section, heading=SECTION)


if __name__ == "__main__":
    main()
