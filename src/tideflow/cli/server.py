"""``tideflow server start|stop|status``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from tideflow.cli.db import DbOption
from tideflow.cli.output import JsonOption, OutputOption, fail, print_json, stderr, stdout
from tideflow.domain.limits import MAX_PACKAGE_FILES, MAX_PACKAGE_RATIO
from tideflow.logs import LOG_FORMAT_VARIABLE, LogFormat
from tideflow.server.config import (
    DEFAULT_HEARTBEAT_SECONDS,
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_LISTENERS,
)

server_app = typer.Typer(help="Run the Tideflow server.", no_args_is_help=True)

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


@server_app.command("start")
def start(
    db: DbOption = None,
    host: Annotated[
        str, typer.Option(help="Address to bind (tokens are required off loopback).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="gRPC port (0: any free port).")] = 50051,
    http_port: Annotated[
        int, typer.Option(help="HTTP port: UI, JSON API, /metrics, /healthz.")
    ] = 8080,
    blob: Annotated[
        str | None, typer.Option(help="Blob store URL (default $TIDEFLOW_HOME/blobs).")
    ] = None,
    auth: Annotated[
        str | None,
        typer.Option(
            help="optional | required: whether calls need an API token (default: optional on "
            "loopback, required elsewhere)."
        ),
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate for gRPC TLS.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key for gRPC TLS.")] = None,
    daemon: Annotated[
        bool,
        typer.Option(
            help="Run in the background (output in $TIDEFLOW_HOME/logs/server.out) and return "
            "once serving."
        ),
    ] = False,
    ready_file: Annotated[
        Path | None, typer.Option(help="Write the bound ports here as JSON once serving.")
    ] = None,
    log_format: Annotated[
        LogFormat,
        typer.Option(
            "--log-format",
            help="text, or json: one object per line with the ids (project, workflow, "
            "execution_id, job, attempt, command_id, request_id) as fields; jobs inherit it.",
            envvar=LOG_FORMAT_VARIABLE,
            case_sensitive=False,
        ),
    ] = LogFormat.TEXT,
    port_search: Annotated[
        int,
        typer.Option(
            min=0, help="If --port / --http-port is taken, try up to this many following ports."
        ),
    ] = 0,
    max_listeners: Annotated[
        int,
        typer.Option(
            min=1,
            help="Most event-listener streams open at once; each is a task of the server's "
            "event loop (~28 KiB, no thread), and one more is refused (RESOURCE_EXHAUSTED).",
        ),
    ] = DEFAULT_MAX_LISTENERS,
    token_recheck: Annotated[
        float,
        typer.Option(
            min=0.01,
            max=60.0,
            help="Seconds between checks of an open event stream's API token: the streams of "
            "a revoked token end within about this long.",
        ),
    ] = 1.0,
    lease_seconds: Annotated[
        float,
        typer.Option(
            min=0.05,
            help="PostgreSQL / MariaDB clusters: seconds the leader's lease lasts after its last "
            "renewal; a dead leader is replaced after about this. See docs/ha.md.",
        ),
    ] = DEFAULT_LEASE_SECONDS,
    heartbeat_seconds: Annotated[
        float,
        typer.Option(
            min=0.01,
            help="Seconds between a member's heartbeats (and the leader's lease renewals); "
            "below --lease-seconds.",
        ),
    ] = DEFAULT_HEARTBEAT_SECONDS,
    max_package_unpacked: Annotated[
        str,
        typer.Option(
            help="Most a code package may unpack to, in all (bytes, or with K / M / G, "
            "binary): a larger one is refused at submit (INVALID_ARGUMENT), before anything "
            "is unpacked, and extraction stops there whatever the zip declares.",
        ),
    ] = "1G",
    max_package_files: Annotated[
        int,
        typer.Option(min=1, help="Most files and folders a code package may hold."),
    ] = MAX_PACKAGE_FILES,
    max_package_ratio: Annotated[
        float,
        typer.Option(
            min=1.0,
            help="Most times its compressed size one entry of a code package (over 1 MiB) "
            "may unpack to: zip bombs are refused at submit.",
        ),
    ] = MAX_PACKAGE_RATIO,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster (its dashboard / Job Submission address, http://HOST:8265) for "
            "jobs with platform='ray' that name none in their config (default: a local head "
            "started on loopback when the first Ray job runs)."
        ),
    ] = None,
    flink_address: Annotated[
        str | None,
        typer.Option(
            help="Flink cluster (its REST address, http://HOST:8081) for Flink jobs that name "
            "none in their config (default: a local cluster started on loopback when the first "
            "Flink job runs). See docs/engines.md."
        ),
    ] = None,
    spark_master: Annotated[
        str | None,
        typer.Option(
            help="Spark master URL (spark://HOST:7077, yarn, k8s://...) for Spark jobs that "
            "name none in their config (default: local[*]). See docs/engines.md."
        ),
    ] = None,
    job_user: Annotated[
        str | None,
        typer.Option(
            help="Run local jobs as this unprivileged OS user, who cannot read the database, "
            "blobs or tokens (the server must run as root; Ray, Spark and Flink jobs are then "
            "refused). Without it local jobs run as the server's user. See docs/server.md."
        ),
    ] = None,
) -> None:
    """Start a server: every service in one process, on one store, until stopped.

    Serves gRPC (tide.connect("grpc://HOST:PORT"), the CLI's --server) and HTTP (/healthz,
    /metrics). An empty database is migrated first; a stale one is refused with the command
    to run. Once serving, the server writes its address and pid to $TIDEFLOW_HOME/server.json
    and logs to $TIDEFLOW_HOME/logs/server.log. It runs in the foreground until Ctrl-C or
    SIGTERM (`tideflow server stop`), then shuts down gracefully: in-flight calls get 5 s to
    finish, listeners end, server.json is removed. With --daemon it runs in the background.

    Binding a non-loopback --host makes API tokens required (`tideflow token create`).
    The server keeps its files private (0600 / 0700, whatever the umask); with --job-user,
    local jobs run as that OS user and reach only their own files. See docs/server.md.
    """
    from tideflow.cli.db import resolve_db
    from tideflow.server.config import ServerConfig
    from tideflow.settings import Settings

    if auth not in (None, "optional", "required"):
        fail(f"--auth must be 'optional' or 'required', got {auth!r}", code=2)
    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together", code=2)
    if job_user is not None:
        from tideflow.errors import TideflowError
        from tideflow.executors.identity import resolve_job_user

        try:
            resolve_job_user(job_user)
        except TideflowError as e:
            fail(str(e), code=2)
    settings = Settings.from_env()
    config = ServerConfig.from_settings(
        settings,
        db_url=resolve_db(db),
        host=host,
        port=port,
        http_port=http_port,
        blob_url=blob,
        auth=auth,
        tls_cert=tls_cert,
        tls_key=tls_key,
        ready_file=ready_file,
        port_search=port_search,
        max_listeners=max_listeners,
        token_recheck=token_recheck,
        lease_seconds=lease_seconds,
        heartbeat_seconds=heartbeat_seconds,
        executor_options=_executor_options(
            ray_address=ray_address, flink_address=flink_address, spark_master=spark_master
        ),
        job_user=job_user,
        max_package_unpacked=_size(max_package_unpacked, "--max-package-unpacked"),
        max_package_files=max_package_files,
        max_package_ratio=max_package_ratio,
    )
    from tideflow.client.embedded import running_server

    running = running_server(config.home)
    if running is not None:  # two servers would fight over server.json and the logs
        fail(
            f"a Tideflow server (pid {running['pid']}) already serves this TIDEFLOW_HOME "
            f"({config.home}) at {running['url']}; stop it with `tideflow server stop` or set "
            "TIDEFLOW_HOME to another directory"
        )
    if daemon:
        _start_daemon(config.home, sys.argv[1:])
        return
    from tideflow.errors import TideflowError
    from tideflow.server.run import configure_logging, serve

    configure_logging(config, to_stderr=True, log_format=log_format)
    try:
        code = serve(config)
    except TideflowError as e:
        fail(str(e))
    except RuntimeError as e:  # grpc's "failed to bind"
        fail(f"cannot start the server on {host}:{port}: {e}")
    # Outside the try: typer.Exit is a RuntimeError, which would read as a failed start.
    raise typer.Exit(code)


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size(text: str, option: str) -> int:
    """Bytes from ``12345``, ``512M``, ``1G``, ``1GiB`` ... (binary units); exits 2 if bad."""
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = value[-1:] if value[-1:] in _UNITS else ""
    number = value[: len(value) - len(unit)].strip()
    if not number.isdigit() or int(number) < 1:
        fail(f"{option} must be a size such as 1073741824, 512M or 1G, got {text!r}", code=2)
    return int(number) * _UNITS[unit]


def _executor_options(
    *,
    ray_address: str | None,
    flink_address: str | None = None,
    spark_master: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Per executor, the options given on the command line (only those given)."""
    options: dict[str, dict[str, Any]] = {}
    if ray_address:
        options.setdefault("ray", {})["address"] = ray_address
    if flink_address:
        options.setdefault("flink", {})["flink_address"] = flink_address
    if spark_master:
        options.setdefault("spark", {})["spark_master"] = spark_master
    return options


def _start_daemon(home: Path, argv: list[str]) -> None:
    """Re-run this command without --daemon in a new session; wait until it serves."""
    args = [a for a in argv if a != "--daemon"]
    ready = home / "server.ready.json"
    ready.unlink(missing_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(exist_ok=True)
    with open(home / "logs" / "server.out", "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tideflow", *args, "--ready-file", str(ready)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while not ready.exists():
        if process.poll() is not None:
            fail(f"the server exited with status {process.returncode}; see {home / 'logs'}")
        if time.monotonic() > deadline:
            fail(f"the server did not start within {START_TIMEOUT:.0f} s; see {home / 'logs'}")
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    ready.unlink(missing_ok=True)  # server.json is the lasting record
    stdout.print(
        f"Tideflow server started (pid {info['pid']}): {info['url']}, HTTP {info['http_url']}"
    )


def _server_info() -> tuple[Path, dict[str, Any] | None]:
    from tideflow.settings import Settings

    home = Settings.from_env().home
    path = home / "server.json"
    try:
        return path, json.loads(path.read_text())
    except (OSError, ValueError):
        return path, None


def _alive(pid: int) -> bool:
    from tideflow.client.embedded import server_process_alive

    return server_process_alive(pid)


@server_app.command("stop")
def stop() -> None:
    """Stop the local server of $TIDEFLOW_HOME, gracefully, and wait until it has exited.

    Reads the server's pid from $TIDEFLOW_HOME/server.json, checks that this process is a
    Tideflow server (a dead server's pid may have been reused by another program), and sends
    it SIGTERM: it stops accepting calls, lets in-flight ones finish (5 s at most), ends open
    listeners (clients resume after their last event once a server is back) and removes
    server.json. A server.json naming no live Tideflow server is removed. Fails if the server
    has not exited within 30 s. A server started elsewhere with another TIDEFLOW_HOME is not
    affected.
    """
    path, info = _server_info()
    if info is None or not _alive(int(info["pid"])):
        path.unlink(missing_ok=True)
        stdout.print("no Tideflow server is running for this TIDEFLOW_HOME")
        return
    pid = int(info["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    from tideflow.client.embedded import pid_alive

    # The pid itself, not the command line: an exiting server's is gone before the process.
    while pid_alive(pid):
        if time.monotonic() > deadline:
            fail(f"server (pid {pid}) did not stop within {STOP_TIMEOUT:.0f} s")
        time.sleep(0.05)
    stdout.print(f"Tideflow server (pid {pid}) stopped")


@server_app.command("status")
def status(
    output: OutputOption = None,
    json_output: JsonOption = False,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Show the cluster of servers on this PostgreSQL / MariaDB database instead: "
            "its members, their heartbeats and the leader (see docs/ha.md).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Say whether the local server of $TIDEFLOW_HOME runs, where, and whether it is healthy.

    Prints its pid, gRPC URL, HTTP URL and store, and asks its /healthz. Exits with status 0
    when a server runs (healthy or not), 1 when none does. --json prints running, healthy and
    the contents of server.json (url, grpc_port, http_port, http_url, pid, db).

    With --db, lists the members of the cluster on that database instead, and the leader;
    exits 1 when no member holds a live lease.
    """
    if db is not None:
        _cluster_status(db, json_output=json_output)
        return
    import urllib.request

    _, info = _server_info()
    running = info is not None and _alive(int(info["pid"]))
    healthy = False
    if running and info is not None:
        try:
            with urllib.request.urlopen(f"{info['http_url']}/healthz", timeout=2) as response:
                healthy = response.status == 200
        except OSError:
            healthy = False
    if json_output:
        print_json({"running": running, "healthy": healthy, **(info or {})})
    elif running and info is not None:
        state = "healthy" if healthy else "NOT healthy"
        stdout.print(
            f"running (pid {info['pid']}), {state}: {info['url']}, HTTP {info['http_url']}, store {info['db']}"
        )
    else:
        stderr.print("not running")
    if not running:
        raise typer.Exit(1)


def _cluster_status(db: str, *, json_output: bool) -> None:
    """Print the members and the leader of the cluster on ``db``; exit 1 with no leader."""
    from rich.table import Table

    from tideflow.errors import TideflowError
    from tideflow.scheduler.leadership import cluster_view
    from tideflow.store import Store

    try:
        with Store.open(db, migrate=False) as store:
            members, lease = cluster_view(store)
    except TideflowError as e:
        fail(str(e))
    live = lease is not None and lease.holder is not None and lease.expires_in > 0
    leader = lease.holder if live and lease is not None else None
    if json_output:
        print_json(
            {
                "leader": leader,
                "epoch": lease.epoch if lease is not None else 0,
                "lease_expires_in": lease.expires_in if lease is not None else None,
                "members": [
                    {
                        "member_id": m.member_id,
                        "host": m.host,
                        "pid": m.pid,
                        "addresses": m.addresses,
                        "start_time": m.start_time.isoformat(),
                        "heartbeat_age": round(m.heartbeat_age, 3),
                        "leader": m.member_id == leader,
                    }
                    for m in members
                ],
            }
        )
    else:
        table = Table("member", "host", "pid", "address", "heartbeat", "role")
        for m in members:
            table.add_row(
                m.member_id,
                m.host,
                str(m.pid),
                m.addresses.get("grpc", ""),
                f"{m.heartbeat_age:.1f} s ago",
                f"leader (epoch {lease.epoch})" if m.member_id == leader and lease else "follower",
            )
        stdout.print(table)
        if leader is None:
            stderr.print("no member holds a live lease: no leader")
    if leader is None:
        raise typer.Exit(1)
