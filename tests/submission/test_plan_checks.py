"""The server validates every plan it stores: hand-made plans through raw gRPC stubs and in-process.

A plan is input: whatever a client sends, a bad plan gets INVALID_ARGUMENT naming the field at
fault and nothing is stored.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

import tideflow as tide
from tideflow.client import Client, connect
from tideflow.client.remote.channel import RpcChannel
from tideflow.compiler import WorkflowPlan
from tideflow.compiler.check import check_plan
from tideflow.domain.limits import MAX_JSON_DEPTH, MAX_PLAN_DEPTH, json_depth
from tideflow.errors import GraphError, InvalidArgumentError
from tideflow.rpc.v1 import common_pb2 as pb
from tideflow.rpc.v1 import notification_pb2 as n
from tideflow.rpc.v1 import notification_pb2_grpc as ng
from tideflow.rpc.v1 import scheduler_pb2 as s
from tideflow.rpc.v1 import scheduler_pb2_grpc as sg
from tideflow.testing import TideflowTestServer

WORKFLOW = "hostile"
SHA = "a" * 64


def read(ctx: Any, inputs: Any) -> Any:
    return inputs


@pytest.fixture(scope="module")
def server() -> Iterator[TideflowTestServer]:
    with TideflowTestServer() as running:
        yield running


@pytest.fixture
def client(server: TideflowTestServer, project: str) -> Iterator[Client]:
    with server.client(project) as opened:
        yield opened


@pytest.fixture
def channel(server: TideflowTestServer, client: Client) -> Iterator[RpcChannel]:
    opened = RpcChannel(server.url, project=client.project)
    yield opened
    opened.close()


def base_plan() -> dict[str, Any]:
    """A well-formed plan of two jobs, as ``tide.compile`` writes it."""
    with tide.workflow(WORKFLOW) as wf:
        with tide.job("train"):
            tide.read_dataset("clicks", processor=read)
        with tide.job("report"):
            tide.read_dataset("summary", processor=read)
        wf.after("report", "train")
    return tide.compile(wf).to_dict()


def periodic(*, cron: str | None = None, interval: float | None = None, tz: str = "UTC") -> Any:
    rule = {
        "job": "train",
        "condition": {"periodic": {"cron": cron, "interval_seconds": interval, "timezone": tz}},
        "action": "START",
        "kind": "periodic",
        "upstreams": [],
        "location": None,
    }
    return lambda plan: plan["rules"].append(rule)


def rename_job(name: str) -> Callable[[dict[str, Any]], None]:
    def change(plan: dict[str, Any]) -> None:
        plan["jobs"][0]["name"] = name
        plan["rules"][0]["upstreams"] = [name]

    return change


def submit_raw(channel: RpcChannel, plan_json: str) -> grpc.RpcError:
    stub = sg.SchedulerServiceStub(channel.channel)
    request = s.SubmitWorkflowRequest(
        workflow=WORKFLOW, plan_json=plan_json, code_sha256=SHA, identity=SHA
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.SubmitWorkflow(request, metadata=channel.metadata(mutating=True), timeout=30)
    return caught.value


def assert_refused(channel: RpcChannel, client: Client, plan_json: str, expected: str) -> None:
    error = submit_raw(channel, plan_json)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert expected in (error.details() or ""), error.details()
    assert client.workflows.list() == []  # nothing stored, not even the workflow's row


def mutated(change: Callable[[dict[str, Any]], None]) -> str:
    plan = base_plan()
    change(plan)
    return json.dumps(plan)


def test_the_base_plan_is_accepted_as_far_as_its_package(channel: RpcChannel) -> None:
    # The plan passes every check; the only thing missing is the code package.
    error = submit_raw(channel, json.dumps(base_plan()))
    assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
    assert "was not uploaded" in (error.details() or "")


@pytest.mark.parametrize("name", ["../../x", "../../../../../escape", "a/b", "..", "x" * 129])
def test_a_job_name_that_is_a_path_is_refused_naming_the_job(
    channel: RpcChannel, client: Client, name: str
) -> None:
    assert_refused(channel, client, mutated(rename_job(name)), "job name")


def test_node_dataset_and_model_names_are_checked(channel: RpcChannel, client: Client) -> None:
    def change(plan: dict[str, Any]) -> None:
        plan["jobs"][0]["nodes"][0]["name"] = "../n"
        plan["jobs"][1]["nodes"][0]["dataset"] = "../../etc/passwd"
        plan["jobs"][1]["nodes"][0]["model"] = "a.b"

    error = submit_raw(channel, mutated(change))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error.details() or ""
    assert "workflow graph has 3 problems" in details
    assert "job 'train', node '../n': node name '../n' is not valid" in details
    assert "dataset '../../etc/passwd' is not valid" in details
    assert "model 'a.b' is not valid" in details
    assert client.workflows.list() == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (periodic(cron="*/0 * * * *"), "cron '*/0 * * * *' is not a valid expression"),
        (periodic(cron="99 99 99 99 99"), "cron '99 99 99 99 99' is not a valid expression"),
        (periodic(cron="0 0 31 2 *"), "cron '0 0 31 2 *' never fires"),
        (periodic(cron="0 0 * * *", tz="Mars/Phobos"), "unknown timezone 'Mars/Phobos'"),
        (periodic(interval=0), "interval must be a positive duration, got 0 seconds"),
        (periodic(interval=-5), "interval must be a positive duration, got -5 seconds"),
        (periodic(), "give exactly one of cron= or interval="),
    ],
    ids=["step-0", "out-of-range", "feb-31", "timezone", "interval-0", "interval-negative", "none"],
)
def test_timers_that_cannot_fire_are_refused_at_submit(
    channel: RpcChannel, client: Client, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    error = submit_raw(channel, mutated(change))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    details = error.details() or ""
    assert f"workflow '{WORKFLOW}', job 'train': periodic rule" in details
    assert expected in details
    assert client.workflows.list() == []


def test_a_remote_client_gets_the_problems_as_a_graph_error(
    client: Client, channel: RpcChannel
) -> None:
    plan = mutated(periodic(cron="0 0 31 2 *"))
    with pytest.raises(GraphError, match="never fires") as caught:
        client.services.workflows.submit(
            client.project, WORKFLOW, plan=plan, code_sha256=SHA, identity=SHA
        )
    assert [(p.workflow, p.job) for p in caught.value.problems] == [(WORKFLOW, "train")]
    assert client.workflows.list() == []


def test_deep_plan_json_is_invalid_argument_not_internal(
    channel: RpcChannel, client: Client
) -> None:
    deep = "[" * 200_000 + "]" * 200_000
    assert_refused(channel, client, deep, "plan nests arrays and objects 200000 levels deep")
    # Deep but valid inside an otherwise good plan: a node's config.
    config: Any = 1
    for _ in range(MAX_PLAN_DEPTH):
        config = {"c": config}

    def change(plan: dict[str, Any]) -> None:
        plan["jobs"][0]["nodes"][0]["config"] = config

    assert_refused(channel, client, mutated(change), f"the limit is {MAX_PLAN_DEPTH}")


def test_a_config_deeper_than_the_json_limit_is_refused_by_compile_and_server(
    channel: RpcChannel, client: Client
) -> None:
    config: Any = 1
    for _ in range(MAX_JSON_DEPTH + 1):
        config = [config]

    def change(plan: dict[str, Any]) -> None:
        plan["jobs"][0]["config"] = {"deep": config}

    assert_refused(channel, client, mutated(change), "config nests 66 levels deep; the limit is 64")
    with tide.workflow("w") as wf, tide.job("a", config={"deep": config}):
        tide.read_dataset("d", processor=read)
    with pytest.raises(GraphError, match="job 'a': config nests 66 levels deep"):
        tide.compile(wf)


def test_deep_context_json_of_an_event_is_invalid_argument(
    channel: RpcChannel, client: Client
) -> None:
    stub = ng.NotificationServiceStub(channel.channel)
    deep = '{"a":' * 200_000 + "1" + "}" * 200_000
    request = n.SendEventRequest(event=pb.Event(key="k", value="v", context_json=deep))
    with pytest.raises(grpc.RpcError) as caught:
        stub.SendEvent(request, metadata=channel.metadata(mutating=True), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "context nests arrays and objects 200000 levels deep; the limit is 64" in (
        caught.value.details() or ""
    )
    assert client.events.list().items == ()


HOSTILE: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "unknown engine": (
        lambda p: p["jobs"][0].update(engine="hadoop"),
        "job 'train': unknown engine 'hadoop' (known engines:",
    ),
    "unknown platform": (
        lambda p: p["jobs"][0].update(platform="mainframe"),
        "job 'train': unknown platform 'mainframe' (known platforms:",
    ),
    "name not a string": (
        lambda p: p["jobs"][0].update(name=["x"]),
        "malformed workflow plan: jobs[0].name must be str, got list",
    ),
    "missing field": (
        lambda p: p["jobs"][1]["nodes"][0].pop("inputs"),
        "malformed workflow plan: jobs[1].nodes[0].inputs is missing",
    ),
    "bool for a number": (
        lambda p: p["jobs"][0].update(retries=True),
        "jobs[0].retries must be int, got bool",
    ),
    "unknown processor": (
        lambda p: p["jobs"][0]["nodes"][0].update(processor="f" * 64),
        "is not among the plan's payloads",
    ),
    "payload not its digest": (
        lambda p: p["payloads"].update({"0" * 64: "aGVsbG8="}),
        "is not the SHA-256 of its bytes",
    ),
    "upstream not a string": (
        lambda p: p["rules"][0].update(upstreams=[["train"]]),
        "rules[0].upstreams must be a list of job names",
    ),
    "rule for an unknown job": (
        lambda p: p["rules"][0].update(job="ghost"),
        "names unknown job 'ghost'",
    ),
    "periodic kind without a timer": (
        lambda p: p["rules"][0].update(kind="periodic"),
        "a periodic rule needs a cron or interval condition",
    ),
    "start_on naming a job": (
        lambda p: p["rules"][0].update(kind="start_on"),
        "acts on the workflow, so it names no job",
    ),
    "data edge across jobs": (
        lambda p: p["jobs"][1]["nodes"][0].update(inputs=[[p["jobs"][0]["nodes"][0]["name"], 0]]),
        "crosses jobs",
    ),
    "condition not a mapping": (
        lambda p: p["rules"][0].update(condition=[1]),
        "rules[0].condition must be dict, got list",
    ),
    "another workflow's plan": (
        lambda p: p.update(workflow="other"),
        "the plan is of workflow 'other', not 'hostile'",
    ),
    "unknown node kind": (
        lambda p: p["jobs"][0]["nodes"][0].update(kind="rm_rf"),
        "jobs[0].nodes[0].kind 'rm_rf' is not one of",
    ),
    "bad base64": (
        lambda p: p["payloads"].update({"0" * 64: "not base64!"}),
        "malformed workflow plan",
    ),
    "command argv one string": (
        lambda p: as_command(p, {"argv": "rm -rf /"}),
        "argv must be a list of strings such as ['bash', 'prepare.sh'], not the one string",
    ),
    "command argv not strings": (
        lambda p: as_command(p, {"argv": ["echo", 1, {"a": 1}]}),
        "argv[1] must be a string, got 1",
    ),
    "command bad placeholder": (
        lambda p: as_command(p, {"argv": ["echo", "{x.__class__!r}"]}),
        "placeholder {x.__class__!r} takes no conversion or format",
    ),
    "command env not strings": (
        lambda p: as_command(p, {"argv": ["true"], "env": {"A": ["x"], "B=C": "x"}}),
        "env['A'] must be a string",
    ),
    "command with a processor": (
        lambda p: as_command(p, {"argv": ["true"]}, clear=False),
        "a command node has no processor, model or dataset",
    ),
    "command beside another node": (
        lambda p: p["jobs"][0]["nodes"].append(
            {
                **p["jobs"][0]["nodes"][0],
                "name": "cmd",
                "kind": "command",
                "config": {"argv": ["true"]},
                "processor": None,
                "dataset": None,
            }
        ),
        "a command is its job's only node, but job 'train' also holds",
    ),
    "command on spark": (
        lambda p: (
            as_command(p, {"argv": ["true"]}),
            p["jobs"][0].update(engine="spark", platform="spark"),
        ),
        "a command runs in a python job",
    ),
}


def as_command(plan: dict[str, Any], config: dict[str, Any], *, clear: bool = True) -> None:
    """Make the first job's node a command node with ``config``."""
    node = plan["jobs"][0]["nodes"][0]
    node.update(kind="command", config=config)
    if clear:
        node.update(processor=None, dataset=None)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hand_made_plans_are_refused_in_process_and_remotely(
    case: str, channel: RpcChannel, client: Client, tmp_path: Any
) -> None:
    change, expected = HOSTILE[case]
    text = mutated(change)
    assert_refused(channel, client, text, expected)
    with connect(f"sqlite:///{tmp_path / 'tideflow.db'}", project="p") as local:
        with pytest.raises(InvalidArgumentError) as caught:
            local.services.workflows.submit("p", WORKFLOW, plan=text, code_sha256=SHA, identity=SHA)
        assert expected in str(caught.value)
        assert local.workflows.list() == []


def test_every_compiled_plan_passes_the_server_checks() -> None:
    plan = WorkflowPlan.from_dict(copy.deepcopy(base_plan()))
    assert check_plan(plan) is plan


def test_json_depth_ignores_brackets_inside_strings() -> None:
    assert json_depth('"[[["') == 0
    assert json_depth('{"a": ["]]]\\"[[[", {}]}') == 3
    assert json_depth("[" * 10 + "]" * 10) == 10
