"""``tideflow quickstart``: the online-learning loop of ``ad_ctr``, end to end, for a bounded time.

1. Start (or attach to) the local server of ``$TIDEFLOW_HOME``.
2. Submit the ``ad_ctr`` workflow that ships in the package (:mod:`tideflow.examples.ad_ctr`)
   and start an execution: the generator streams impressions and delayed click labels with a
   concept drift half-way, the trainer logs a ``ctr`` version every few seconds, each is
   validated on the holdout and the good ones are deployed. The workflow's own ``predict`` job
   serves the impressions into a predictions stream that the Example Monitor and the Model
   Monitor watch; their ``DRIFT_DETECTED`` / ``MODEL_DEGRADED`` events restart the trainer.
3. Start the online predictor (HTTP, in this process, on a free port) and, from the first
   deploy on, send it ad requests drawn from the same market; the market's known click model
   gives each request's label, so the online AUC of what was served is measured.
4. Show live progress -- and a line for the drift, each monitor finding and each retrain
   it triggered; after ``--duration`` seconds stop what it started (the predictor, the
   execution, and the server only if it started it) and print a summary (with ``--json``, the
   last line is one JSON object).

Exit status 0 only if versions were generated, validated, deployed and served with no failed
request. See docs/quickstart.md.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from tideflow.cli.output import JsonOption, OutputOption, fail, print_json, stderr

MODEL = "ctr"
WORKFLOW = "ad_ctr"
REQUEST_RECORDS = 8
WINDOW = 4000
GRACE = 240.0
"""Most seconds past ``--duration`` to wait for the story to play out on a slow machine: a first
deployed version, then the drift (``DRIFT_AFTER_SERVING`` after the first prediction) and
``AFTER_DRIFT``."""
DRIFT_AFTER_SERVING = 15.0
"""The market drifts this long after the first prediction (so it hits a served, watched model);
a quarter of ``--duration`` when that is shorter than 60 s."""
AFTER_DRIFT = 45.0
"""The generator runs at least this long after the drift: detection and retraining; three
quarters of ``--duration`` when that is shorter than 60 s (at 400 impressions/s, 18 s after
the drift of a 24 s run are ~7,000 samples, past both monitors' detection bounds)."""


def phases(duration: float) -> tuple[float, float]:
    """``(drift_after_serving, after_drift)`` for a run of ``duration`` seconds.

    The default 60 s run keeps its 15 + 45 s story; a shorter one tells the same story faster,
    so a quick look (or the suite's test of the whole loop) need not wait a minute past the
    first prediction.
    """
    return min(DRIFT_AFTER_SERVING, duration / 4), min(AFTER_DRIFT, duration * 3 / 4)


@dataclass
class Tally:
    """What the request driver saw."""

    requests: int = 0
    predictions: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    versions: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Driver(threading.Thread):
    """Sends ad requests to the predictor without pause (one keep-alive connection)."""

    def __init__(self, port: int, drift_at: float, stop: threading.Event) -> None:
        super().__init__(name="quickstart-requests", daemon=True)
        self.port = port
        self.drift_at = drift_at
        self.stop_event = stop
        self.tally = Tally()

    def run(self) -> None:
        """Send requests until stopped; tally answers, failures and (label, score) pairs."""
        from tideflow.examples.ad_ctr.market import MARKET

        rng = random.Random(42)
        conn = _connection(self.port)
        sent = 0
        while not self.stop_event.is_set():
            drifted = time.time() >= self.drift_at
            records = [
                MARKET.impression(rng, f"qs-{sent + i}", drifted=drifted)
                for i in range(REQUEST_RECORDS)
            ]
            sent += len(records)
            try:
                conn.request(
                    "POST",
                    "/predict",
                    body=json.dumps(records),
                    headers={"Content-Type": "application/json"},
                )
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {body[:200]!r}")
                answer = json.loads(body)
            except Exception as e:  # every failure counts; the connection is renewed
                with self.tally.lock:
                    self.tally.requests += 1
                    self.tally.failed += 1
                    if len(self.tally.errors) < 5:
                        self.tally.errors.append(str(e))
                conn.close()
                conn = _connection(self.port)
                continue
            labels = [MARKET.clicked(rng, row, drifted=drifted) for row in records]
            with self.tally.lock:
                self.tally.requests += 1
                self.tally.predictions += len(answer["predictions"])
                self.tally.versions.add(int(answer["version"]))
                self.tally.labels.extend(labels)
                self.tally.scores.extend(float(p["score"]) for p in answer["predictions"])
                del self.tally.labels[:-WINDOW], self.tally.scores[:-WINDOW]
            time.sleep(0.002)  # leave the two cores to the jobs, too
        conn.close()


def _connection(port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.connect()
    if conn.sock is not None:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _count_events(client: Any, after: int) -> dict[str, int]:
    counts = {"generated": 0, "validated": 0, "rejected": 0, "deployed": 0}
    names = {
        "MODEL_GENERATED": "generated",
        "MODEL_VALIDATED": "validated",
        "MODEL_REJECTED": "rejected",
        "MODEL_DEPLOYED": "deployed",
    }
    offset = after
    while True:
        events = list(client.events.list(key=MODEL, after_offset=offset, limit=1000).items)
        if not events:
            return counts
        for event in events:
            offset = max(offset, event.offset)
            name = names.get(str(event.event_type))
            if name is not None:
                counts[name] += 1
        if len(events) < 1000:
            return counts


def quickstart_command(
    duration: Annotated[
        float, typer.Option(help="How long to run the online-learning demo, in seconds.")
    ] = 60.0,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run the online click-through-rate demo (ad_ctr) end to end on the local server."""
    if duration < 10:
        fail("--duration must be at least 10 seconds", code=2)
    import importlib.util

    # Whether it is installed, not importing it: a second or two, and no job of the demo's own
    # process needs it (its monitors' NumPy and SciPy come with it).
    if importlib.util.find_spec("sklearn") is None:
        fail(
            "the quickstart needs the ml extra: pip install -e '.[ml]' (or 'tideflow[ml]')",
            code=2,
        )
    code = _run(duration, json_output)
    raise typer.Exit(code)


def _run(duration: float, json_output: bool) -> int:
    import tideflow as tide
    from tideflow.cli.loader import load_workflows
    from tideflow.client.embedded import ensure_local_server, running_server
    from tideflow.examples.ad_ctr import WORKFLOW_FILE
    from tideflow.examples.ad_ctr.market import auc
    from tideflow.examples.ad_ctr.monitoring import Detections, detection_delays
    from tideflow.executors.spec import DATA_DIR
    from tideflow.serving.http import PredictorServer
    from tideflow.serving.predictor import Predictor
    from tideflow.settings import DEFAULT_PROJECT, Settings

    began = time.monotonic()
    home = Settings.from_env().home
    started_server = running_server(home) is None
    say = stderr.print
    say(f"[bold]Tideflow quickstart[/bold]: online CTR learning for {duration:.0f} s (home {home})")
    try:
        info = ensure_local_server(home)
    except tide.TideflowError as e:
        fail(str(e))
    say(f"server {'started' if started_server else 'attached'} at {info['url']}")
    say(f"web UI at {info['http_url']}/ui/{DEFAULT_PROJECT}/workflows (or `tideflow ui`)")
    client = tide.connect(str(info["url"]), project=DEFAULT_PROJECT)
    execution_id: int | None = None
    http_server: PredictorServer | None = None
    stop = threading.Event()
    driver: Driver | None = None
    predictor: Predictor | None = None
    try:
        head = _head(client)
        (workflow,) = [wf for wf in load_workflows(WORKFLOW_FILE) if wf.name == WORKFLOW]
        # Its own directory, not the caller's (the CLI's: typer's package) by default.
        client.workflows.submit(workflow, source=WORKFLOW_FILE)
        drift_after_serving, after_drift = phases(duration)
        params = {
            "duration": duration,
            "drift_after_serving": drift_after_serving,
            "after_drift": after_drift,
            "max_duration": duration + GRACE,
            "version_every_seconds": max(2.0, min(8.0, duration / 12)),
            "idle_timeout": 3.0,
        }
        execution_id = client.workflows.start(WORKFLOW, params=params).execution_id
        say(
            f"execution {execution_id} of workflow {WORKFLOW} started (the market drifts "
            f"{drift_after_serving:.0f} s after the first prediction)"
        )
        predictor = Predictor(client, MODEL, sink=_sink(home, DEFAULT_PROJECT))
        http_server = PredictorServer(predictor, port=0).start()
        say(f"online predictor on {http_server.url}/predict (swaps on MODEL_DEPLOYED)")
        deadline = began + duration
        driver = Driver(_port(http_server.url), float("inf"), stop)
        detections = Detections(client, execution_id, after_offset=head)
        board = _Board(json_output)
        driving = False
        with board:
            while True:
                now = time.monotonic()
                served = predictor.holder.current
                if not driving and served is not None:
                    driving = True
                    driver.start()
                counts = _count_events(client, head)
                for line in detections.poll():
                    board.say(f"{now - began:5.0f} s  {line}")
                if detections.drift_time is not None:
                    driver.drift_at = detections.drift_time  # its labels follow the market
                board.update(
                    elapsed=now - began,
                    duration=duration,
                    counts=counts,
                    tally=driver.tally,
                    swaps=predictor.holder.swaps,
                    served=None if served is None else served.version.version,
                    auc_value=_auc(driver.tally, auc),
                )
                if now >= deadline + GRACE or (
                    now >= deadline
                    and driver.tally.predictions
                    and _story_told(client, execution_id, detections)
                ):
                    break
                time.sleep(0.5)
        stop.set()
        if driver.is_alive():
            driver.join(15)
        counts = _count_events(client, head)
        swaps = predictor.holder.swaps
        detections.poll()
        # The jobs wrote their streams in the project's data directory of this home's server.
        streams = home / DATA_DIR / DEFAULT_PROJECT / "streams" / WORKFLOW
        delays = detection_delays(client, streams / "predictions", after_offset=head)
    finally:
        stop.set()
        if http_server is not None:
            http_server.stop()
        if predictor is not None:
            predictor.stop()
        if execution_id is not None:
            _stop_execution(client, execution_id)
        client.close()
        if started_server:
            _stop_server(home)
    tally = driver.tally
    summary = {
        "versions_generated": counts["generated"],
        "versions_validated": counts["validated"],
        "versions_rejected": counts["rejected"],
        "versions_deployed": counts["deployed"],
        "predictions": tally.predictions,
        "requests": tally.requests,
        "failed_requests": tally.failed,
        "swaps": swaps,
        "versions_served": sorted(tally.versions),
        "online_auc": _auc(tally, auc),
        "drifts_detected": detections.drifts_detected,
        "retrains_triggered": detections.retrains,
        "monitor_events": {
            "DRIFT_DETECTED": detections.counts["DRIFT_DETECTED"],
            "MODEL_DEGRADED": detections.counts["MODEL_DEGRADED"],
        },
        "detection_delay_samples": {
            name: delays[name] for name in ("DRIFT_DETECTED", "MODEL_DEGRADED")
        },
        "execution_id": execution_id,
        "seconds": round(time.monotonic() - began, 1),
    }
    ok = bool(
        counts["generated"]
        and counts["validated"]
        and counts["deployed"]
        and tally.predictions
        and not tally.failed
    )
    _summary(summary, ok, execution_id, tally.errors)
    if json_output:
        print_json(summary)
    return 0 if ok else 1


def _story_told(client: Any, execution_id: int, detections: Any) -> bool:
    """The generator has ended, and each monitor has either spoken since the drift or ended.

    Monitors read behind their streams on a busy machine: stopping the execution as soon as
    the generator ends could cut a detection that is seconds away.
    """
    if not _job_ended(client, execution_id, "generate"):
        return False
    for event_type, job in (
        ("DRIFT_DETECTED", "monitor_examples"),
        ("MODEL_DEGRADED", "monitor_model"),
    ):
        if not detections.counts[event_type] and not _job_ended(client, execution_id, job):
            return False
    return True


def _job_ended(client: Any, execution_id: int, job: str) -> bool:
    attempts = [a for a in client.jobs.list(execution_id) if a.job == job]
    return bool(attempts) and all(
        str(a.status) in ("FINISHED", "FAILED", "STOPPED") for a in attempts
    )


def _head(client: Any) -> int:
    return int(client.events.latest_offset())


def _sink(home: Any, project: str) -> Any:
    from tideflow.io.local_stream import LocalStreamWriter

    return LocalStreamWriter(home / "predictions" / project / MODEL, dataset=f"predictions_{MODEL}")


def _port(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


def _auc(tally: Tally, auc: Any) -> float | None:
    with tally.lock:
        labels, scores = list(tally.labels), list(tally.scores)
    return round(float(auc(labels, scores)), 4) if labels else None


def _stop_execution(client: Any, execution_id: int) -> None:
    from tideflow.errors import TideflowError

    try:
        if str(client.executions.get(execution_id).status) == "RUNNING":
            client.executions.stop(execution_id)
    except TideflowError:
        pass  # it ended meanwhile


def _stop_server(home: Any) -> None:
    import os
    import signal

    from tideflow.client.embedded import pid_alive, running_server

    info = running_server(home)
    if info is None:
        return
    pid = int(info["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


class _Board:
    """Live progress: a Rich table on a terminal, a line every 5 s otherwise."""

    def __init__(self, quiet_lines: bool) -> None:
        from rich.live import Live

        self.live: Live | None = Live(console=stderr, refresh_per_second=4, transient=False)
        if not stderr.is_terminal:
            self.live = None
        self.last_line = 0.0
        self.last_predictions = 0
        self.last_time = time.monotonic()
        self.rate = 0.0

    def __enter__(self) -> _Board:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def say(self, line: str) -> None:
        """Print one line above the live table (or between the progress lines)."""
        from rich.text import Text

        console = self.live.console if self.live is not None else stderr
        console.print(Text(line))

    def update(
        self,
        *,
        elapsed: float,
        duration: float,
        counts: dict[str, int],
        tally: Tally,
        swaps: int,
        served: int | None,
        auc_value: float | None,
    ) -> None:
        now = time.monotonic()
        if now - self.last_time >= 1.0:
            self.rate = (tally.predictions - self.last_predictions) / (now - self.last_time)
            self.last_predictions, self.last_time = tally.predictions, now
        fields = [
            ("elapsed", f"{elapsed:.0f} / {duration:.0f} s"),
            ("versions generated", str(counts["generated"])),
            ("versions validated", str(counts["validated"])),
            ("versions rejected", str(counts["rejected"])),
            ("versions deployed", str(counts["deployed"])),
            ("serving version", "-" if served is None else str(served)),
            ("swaps", str(swaps)),
            ("predictions", f"{tally.predictions} ({self.rate:.0f}/s)"),
            ("failed requests", str(tally.failed)),
            ("online AUC (last 4,000)", "-" if auc_value is None else f"{auc_value:.3f}"),
        ]
        if self.live is not None:
            from rich.table import Table

            table = Table(title="ad_ctr: online learning", show_header=False)
            for name, value in fields:
                table.add_row(name, value)
            self.live.update(table)
        elif now - self.last_line >= 5.0:
            self.last_line = now
            stderr.print(", ".join(f"{name} {value}" for name, value in fields))


def _summary(
    summary: dict[str, Any], ok: bool, execution_id: int | None, errors: list[str]
) -> None:
    say = stderr.print
    verdict = "[green]worked[/green]" if ok else "[red]did not complete the loop[/red]"
    say(
        f"\nThe online loop {verdict}: {summary['versions_generated']} versions generated, "
        f"{summary['versions_validated']} validated, {summary['versions_rejected']} rejected, "
        f"{summary['versions_deployed']} deployed; {summary['predictions']} predictions served "
        f"by versions {summary['versions_served']} with {summary['swaps']} hot swaps and "
        f"{summary['failed_requests']} failed requests; online AUC {summary['online_auc']}."
    )
    say(
        f"Monitors: {summary['drifts_detected']} detections "
        f"({summary['monitor_events']['DRIFT_DETECTED']} DRIFT_DETECTED, "
        f"{summary['monitor_events']['MODEL_DEGRADED']} MODEL_DEGRADED), "
        f"{summary['retrains_triggered']} retrains triggered; detection delay in samples "
        f"after the drift: {summary['detection_delay_samples']}."
    )
    for error in errors:
        say(f"  request error: {error}")
    say("\nTry next:")
    say(f"  tideflow execution show {execution_id}      # jobs, attempts, actions and their rules")
    say(f"  tideflow model versions {MODEL}             # every version and its status")
    say(f"  tideflow job logs {execution_id} validate    # why a version was validated or rejected")
    say(f"  tideflow monitor report {MODEL} --out report   # drift and quality per window, plots")
    say(f"  tideflow serve {MODEL}                      # the online predictor, on port 8000")
    say("  tideflow run examples/ad_ctr/workflow.py --param duration=30   # the workflow alone")
