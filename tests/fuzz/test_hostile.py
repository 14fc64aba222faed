"""Hand-made hostile plans and code packages, sent as a hostile client would: raw stubs.

Packages: ``../`` and absolute entries, a symlink out of the package, a modest zip bomb, too
many files, bytes that are no zip. Each is uploaded; one the server keeps is then submitted with
a good plan and run, so its extraction happens too. Plans: path-like names, NUL, deep JSON,
cron that can never fire; and a property that mutates a good plan at random places. A plan the
server accepts is run as well. The fuzz ``guard`` then checks that nothing was written outside
the home and that the server is up.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import stat
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tideflow as tide
from tests.fuzz.conftest import PROJECT, FuzzServer, ensure_project
from tests.fuzz.strategies import HOSTILE_INTS, HOSTILE_TEXT, deep_json, fuzz_settings
from tests.fuzz.test_rpc import CLIENT_STATUSES
from tideflow.domain.status import ExecutionStatus, JobStatus
from tideflow.rpc.v1 import scheduler_pb2 as s
from tideflow.rpc.v1 import scheduler_pb2_grpc as sg

WORKFLOW = "hostile"
CHUNK = 1024 * 1024
SETTLE_SECONDS = 60.0
IDLE_SECONDS = 3.0
QUIET_SECONDS = 1.5
"""How long an execution that started no job is watched before it is taken as waiting."""
LIVE_JOBS = {JobStatus.INIT, JobStatus.STARTING, JobStatus.RUNNING}


def read(ctx: Any, inputs: Any) -> Any:
    return inputs


def base_plan(*, timer: bool = True) -> dict[str, Any]:
    """A good plan of two jobs, an ``after`` rule and (with ``timer``) a yearly one on ``train``.

    Without the timer, ``train`` starts with the execution and ``report`` after it.
    """
    with tide.workflow(WORKFLOW) as wf:
        with tide.job("train", config={"lr": 0.05}):
            tide.read_dataset("clicks", processor=read)
        with tide.job("report"):
            tide.read_dataset("summary", processor=read)
        wf.after("report", "train")
        if timer:
            wf.periodic("train", cron="0 0 1 1 *", timezone="UTC")
    return tide.compile(wf).to_dict()


def zipped(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


def symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix: the mode bits below are read
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def bomb(size: int) -> bytes:
    """One entry of ``size`` zero bytes: about a thousandth of that on the wire."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("flow.py", "w", force_zip64=True) as entry,
    ):
        for _ in range(size // CHUNK):
            entry.write(bytes(CHUNK))
    return buffer.getvalue()


GOOD_PACKAGE = zipped([("flow.py", b"# the fuzz suite's workflow\n")])
PACKAGES: dict[str, Callable[[], bytes]] = {
    "dot-dot entry": lambda: zipped(
        [("flow.py", b""), ("../../../../../../escape.py", b"print('out')\n")]
    ),
    "absolute entry": lambda: zipped([("flow.py", b""), ("/tmp/tideflow-fuzz-abs.py", b"x")]),
    "symlink out": lambda: zipped(
        [("flow.py", b""), symlink("link", "../../../../../.."), ("link/escape.py", b"x")]
    ),
    "symlink then write through it": lambda: zipped(
        [symlink("flow.py", "/etc/passwd"), ("steps.py", b"")]
    ),
    "zip bomb 64 MiB": lambda: bomb(64 * CHUNK),
    "20k empty files": lambda: zipped([(f"f{i}.py", b"") for i in range(20_000)]),
    "not a zip": lambda: b"PK\x03\x04" + zlib.compress(b"garbage" * 100),
    "empty": lambda: b"",
}


def status_of(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    try:
        call()
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def upload(fuzz_server: FuzzServer, data: bytes) -> tuple[grpc.StatusCode, str, str]:
    """Upload ``data`` as a code package in 1 MiB chunks: its status, details and sha256."""
    channel = fuzz_server.channel
    stub = sg.SchedulerServiceStub(channel.channel)
    digest = hashlib.sha256(data).hexdigest()
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
    requests = [s.UploadCodePackageRequest(sha256=digest, chunk=chunks[0])]
    requests += [s.UploadCodePackageRequest(chunk=chunk) for chunk in chunks[1:]]
    code, details = status_of(
        lambda: stub.UploadCodePackage(
            iter(requests), metadata=channel.metadata(mutating=True), timeout=60
        )
    )
    return code, details, digest


def submit(
    fuzz_server: FuzzServer, plan_json: str, sha256: str, workflow: str = WORKFLOW
) -> tuple[grpc.StatusCode, str]:
    channel = fuzz_server.channel
    stub = sg.SchedulerServiceStub(channel.channel)
    request = s.SubmitWorkflowRequest(
        workflow=workflow, plan_json=plan_json, code_sha256=sha256, identity=sha256
    )
    return status_of(
        lambda: stub.SubmitWorkflow(request, metadata=channel.metadata(mutating=True), timeout=60)
    )


def run_and_settle(fuzz_server: FuzzServer, workflow: str) -> None:
    """Start ``workflow`` and wait until none of its jobs is live (stopping it if need be)."""
    with fuzz_server.server.client(PROJECT) as client:
        execution = client.workflows.start(workflow)
        started = busy = time.monotonic()
        deadline = started + SETTLE_SECONDS
        stopped = False
        while True:
            current = client.executions.get(execution.execution_id)
            jobs = client.jobs.list(execution.execution_id)
            now = time.monotonic()
            if any(job.status in LIVE_JOBS for job in jobs):
                busy = now
            # Ended, or idle: no attempt live for a while (the next job of an ``after`` rule
            # starts within it), so the rest waits on rules (a timer, an upstream that failed).
            idle = now - busy > (QUIET_SECONDS if jobs else IDLE_SECONDS)
            if current.status != ExecutionStatus.RUNNING or idle:
                break
            if time.monotonic() > deadline:
                assert not stopped, f"execution {current} did not stop: {jobs}"
                client.executions.stop(execution.execution_id)
                stopped, deadline = True, time.monotonic() + SETTLE_SECONDS
            time.sleep(0.2)
        if current.status == ExecutionStatus.RUNNING:
            client.executions.stop(execution.execution_id)


@pytest.fixture(scope="module")
def good_package(fuzz_server: FuzzServer) -> str:
    code, details, digest = upload(fuzz_server, GOOD_PACKAGE)
    assert code == grpc.StatusCode.OK, details
    return digest


@pytest.mark.parametrize("case", list(PACKAGES))
def test_a_hostile_package_is_refused_or_contained(
    fuzz_server: FuzzServer, good_package: str, case: str
) -> None:
    code, details, digest = upload(fuzz_server, PACKAGES[case]())
    assert code in CLIENT_STATUSES, f"{case}: upload answered {code.name}: {details}"
    if code != grpc.StatusCode.OK:
        return
    # Kept: the package meets the server at the next step, a job's extraction.
    workflow = f"pkg_{hashlib.sha256(case.encode()).hexdigest()[:8]}"
    plan = base_plan(timer=False)
    plan["workflow"] = workflow
    with fuzz_server.server.client(PROJECT) as client:
        ensure_project(client)
    code, details = submit(fuzz_server, json.dumps(plan), digest, workflow)
    assert code == grpc.StatusCode.OK, f"{case}: submit answered {code.name}: {details}"
    run_and_settle(fuzz_server, workflow)


def _rename_job(name: str) -> Callable[[dict[str, Any]], None]:
    def change(plan: dict[str, Any]) -> None:
        plan["jobs"][0]["name"] = name
        plan["rules"][0]["upstreams"] = [name]
        plan["rules"][1]["job"] = name

    return change


def _timer(**periodic: Any) -> Callable[[dict[str, Any]], None]:
    return lambda plan: plan["rules"][1]["condition"]["periodic"].update(periodic)


def _per_context(**fields: Any) -> Callable[[dict[str, Any]], None]:
    """A per_context workflow's plan whose ``per_context`` object has ``fields`` changed."""
    base = {"source": "field", "field": "hour", "once": False}
    return lambda plan: plan.update(per_context={**base, **fields})


def _deep_config(depth: int) -> Callable[[dict[str, Any]], None]:
    def change(plan: dict[str, Any]) -> None:
        config: Any = 1
        for _ in range(depth):
            config = {"c": config}
        plan["jobs"][0]["config"] = config

    return change


HOSTILE_PLANS: dict[str, Callable[[dict[str, Any]], None]] = {
    "job ../": _rename_job("../../../../../escape"),
    "job absolute": _rename_job("/tmp/escape"),
    "job NUL": _rename_job("train\x00x"),
    "job unicode dots": _rename_job("\u2024\u2024"),
    "node ../": lambda p: p["jobs"][0]["nodes"][0].update(name="../n"),
    "dataset ../": lambda p: p["jobs"][0]["nodes"][0].update(dataset="../../etc/passwd"),
    "model slash": lambda p: p["jobs"][0]["nodes"][0].update(model="a/b"),
    "deep config": _deep_config(500),
    "cron step 0": _timer(cron="*/0 * * * *"),
    "cron never": _timer(cron="0 0 31 2 *"),
    "cron garbage": _timer(cron="\x00 * * * *"),
    "timezone": _timer(timezone="../../etc/localtime"),
    "interval negative": _timer(cron=None, interval_seconds=-5),
    "interval huge": _timer(cron=None, interval_seconds=1e308),
    "interval of millennia": _timer(cron=None, interval_seconds=1e12),
    "interval nan": _timer(cron=None, interval_seconds=float("nan")),
    "per_context a bool in schema 3": lambda p: p.update(per_context=True),
    "per_context a list": lambda p: p.update(per_context=[{"source": "key"}]),
    "per_context source ../": _per_context(source="../../etc", field=None),
    "per_context source not text": _per_context(source=["field"]),
    "per_context field NUL": _per_context(field="hour\x00"),
    "per_context field huge": _per_context(field="h" * 100_000),
    "per_context field execution_id": _per_context(field="execution_id"),
    "per_context key with a field": _per_context(source="key", field="hour"),
    "per_context once not bool": _per_context(once="yes"),
}


@pytest.mark.parametrize("case", list(HOSTILE_PLANS))
def test_a_hostile_plan_is_invalid_argument(
    fuzz_server: FuzzServer, good_package: str, case: str
) -> None:
    plan = base_plan()
    HOSTILE_PLANS[case](plan)
    code, details = submit(fuzz_server, json.dumps(plan), good_package)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, f"{case}: {code.name}: {details}"


@pytest.mark.parametrize(
    ("workflow", "plan_json"),
    [
        ("../../escape", None),
        ("wf\x00", None),
        (WORKFLOW, deep_json(200_000, arrays=True)),
        (WORKFLOW, deep_json(200_000, arrays=False)),
        (WORKFLOW, "not json"),
        (WORKFLOW, "[]"),
    ],
    ids=["workflow ../", "workflow NUL", "deep arrays", "deep objects", "not json", "a list"],
)
def test_a_hostile_submission_is_invalid_argument(
    fuzz_server: FuzzServer, good_package: str, workflow: str, plan_json: str | None
) -> None:
    if plan_json is None:
        plan = base_plan()
        plan["workflow"] = workflow
        plan_json = json.dumps(plan)
    code, details = submit(fuzz_server, plan_json, good_package, workflow)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, f"{code.name}: {details}"


def _places(tree: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON tree a value can be put (every key and index)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield (*at, key)
            yield from _places(value, (*at, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield (*at, index)
            yield from _places(value, (*at, index))


BASE = base_plan()
PLACES = sorted(_places(BASE), key=repr)
CRONS = ["*/0 * * * *", "99 99 99 99 99", "0 0 31 2 *", "@reboot", "* * * * * * *", "0 0 30 2 *"]
plan_values = (
    st.sampled_from(HOSTILE_TEXT + CRONS + ["START", "STOP", "python", "local", "train"])
    | st.sampled_from([*HOSTILE_INTS, 0.5, -1e308, None, True, [], {}, [[]], {"": None}])
    | st.builds(lambda depth: json.loads(deep_json(depth, arrays=True)), st.integers(60, 120))
)


@fuzz_settings(examples=25)
@given(mutations=st.lists(st.tuples(st.sampled_from(PLACES), plan_values), min_size=1, max_size=3))
def test_a_mutated_plan_is_never_internal(
    fuzz_server: FuzzServer, good_package: str, mutations: list[tuple[Any, Any]]
) -> None:
    plan = copy.deepcopy(BASE)
    for place, value in mutations:
        parent = plan
        try:
            for step in place[:-1]:
                parent = parent[step]
            parent[place[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced the path
    code, details = submit(fuzz_server, json.dumps(plan), good_package)
    assert code in CLIENT_STATUSES, f"{mutations!r} answered {code.name}: {details}"
    if code == grpc.StatusCode.OK:
        run_and_settle(fuzz_server, WORKFLOW)
