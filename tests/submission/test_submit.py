"""Submission in-process and through a real server: dedup, tampering, graph errors, the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tideflow as tide
from tests.submission.conftest import write_flow
from tideflow.cli.loader import load_workflows
from tideflow.cli.main import app
from tideflow.client import Client, connect
from tideflow.client.default import set_default_client
from tideflow.compiler import WorkflowPlan
from tideflow.errors import FailedPreconditionError, GraphError, InvalidArgumentError, NotFoundError
from tideflow.store.blob import BlobStore
from tideflow.testing import TideflowTestServer

BROKEN = """
import tideflow as tide

with tide.workflow("broken") as wf:
    tide.read_dataset("d", processor=print)
wf.after("ghost", "nobody")
"""


@pytest.fixture(scope="module")
def server() -> Iterator[TideflowTestServer]:
    with TideflowTestServer() as running:
        yield running


@pytest.fixture(params=["in-process", "remote"])
def client(request: pytest.FixtureRequest, tmp_path: Path, project: str) -> Iterator[Client]:
    if request.param == "in-process":
        with connect(f"sqlite:///{tmp_path / 'home' / 'tideflow.db'}", project=project) as opened:
            yield opened
    else:
        server = request.getfixturevalue("server")
        with server.client(project) as opened:
            yield opened


@pytest.fixture
def project(request: pytest.FixtureRequest) -> str:
    return "p" + str(abs(hash(request.node.nodeid)))[:12]


def blob_path(client: Client, sha256: str, server: TideflowTestServer | None) -> Path:
    root = (
        server.home / "blobs"
        if server is not None
        else Path(client.store.url[10:]).parent / "blobs"
    )
    return root / "packages" / sha256[:2] / sha256


def test_resubmitting_unchanged_code_and_rules_reuses_the_snapshot(
    client: Client, flow_dir: Path
) -> None:
    wf = load_workflows(flow_dir / "flow.py")[0]
    first = client.workflows.submit(wf)
    assert not first.reused
    assert first.snapshot.workflow == "clicks"
    assert len(first.snapshot.identity) == 64

    # Caches appear, the file is loaded again (new module, new pickles): same content.
    (flow_dir / "__pycache__").mkdir()
    (flow_dir / "__pycache__" / "steps.pyc").write_bytes(b"\x00")
    again = client.workflows.submit(load_workflows(flow_dir / "flow.py")[0])
    assert again.reused
    assert again.snapshot == first.snapshot
    assert [s.snapshot_id for s in client.workflows.snapshots("clicks")] == [
        first.snapshot.snapshot_id
    ]

    write_flow(flow_dir, threshold=4)  # the code changes
    changed = client.workflows.submit(load_workflows(flow_dir / "flow.py")[0])
    assert not changed.reused
    assert changed.snapshot.snapshot_id != first.snapshot.snapshot_id
    assert client.workflows.get("clicks").latest_snapshot_id == changed.snapshot.snapshot_id

    write_flow(flow_dir, threshold=3)  # back to the first content: its snapshot is latest again
    back = client.workflows.submit(load_workflows(flow_dir / "flow.py")[0])
    assert back.reused
    assert back.snapshot.snapshot_id == first.snapshot.snapshot_id
    assert client.workflows.get("clicks").latest_snapshot_id == first.snapshot.snapshot_id
    assert len(client.workflows.snapshots("clicks")) == 2


def test_a_submitted_snapshot_holds_the_plan_and_the_package(
    client: Client, flow_dir: Path
) -> None:
    wf = load_workflows(flow_dir / "flow.py")[0]
    snapshot = client.workflows.submit(wf).snapshot
    assert WorkflowPlan.from_json(snapshot.plan) == tide.compile(wf)
    assert client.workflows.latest_snapshot("clicks") == snapshot
    assert client.workflows.snapshot(snapshot.snapshot_id) == snapshot
    data = client.workflows.package(snapshot.snapshot_id)
    import hashlib

    assert hashlib.sha256(data).hexdigest() == snapshot.code_sha256
    assert snapshot.code_uri.endswith(f"packages/{snapshot.code_sha256[:2]}/{snapshot.code_sha256}")
    assert [w.name for w in client.workflows.list()] == ["clicks"]

    client.workflows.delete("clicks")
    assert client.workflows.list() == []
    with pytest.raises(NotFoundError, match="workflow 'clicks' not found"):
        client.workflows.get("clicks")


def test_a_tampered_package_is_refused_when_fetched(
    client: Client, flow_dir: Path, request: pytest.FixtureRequest
) -> None:
    snapshot = client.workflows.submit(load_workflows(flow_dir / "flow.py")[0]).snapshot
    remote = "remote" in request.node.callspec.id
    server = request.getfixturevalue("server") if remote else None
    path = blob_path(client, snapshot.code_sha256, server)
    path.write_bytes(path.read_bytes() + b"tampered")

    with pytest.raises(
        FailedPreconditionError,
        match=rf"code package {snapshot.code_sha256} of workflow 'clicks' \(snapshot {snapshot.snapshot_id}\).*refused",
    ) as info:
        client.workflows.package(snapshot.snapshot_id)
    assert "modified after upload" in str(info.value)

    # Submitting the same content again stores a good copy.
    assert client.workflows.submit(load_workflows(flow_dir / "flow.py")[0]).reused
    assert len(client.workflows.package(snapshot.snapshot_id)) > 0


def test_a_workflow_with_graph_errors_fails_with_the_problems_and_stores_nothing(
    client: Client, tmp_path: Path
) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "flow.py").write_text(BROKEN)
    wf = load_workflows(tmp_path / "bad" / "flow.py")[0]
    with pytest.raises(GraphError, match="ghost") as info:
        client.workflows.submit(wf)
    assert len(info.value.problems) >= 2
    assert client.workflows.list() == []


def test_a_workflow_not_declared_in_a_file_needs_a_source(client: Client) -> None:
    with tide.workflow("inline") as wf:
        tide.read_dataset("d", processor=print)
    wf.source_file = None
    with pytest.raises(InvalidArgumentError, match="was not declared in a file: pass source="):
        client.workflows.submit(wf)


def test_tide_submit_uses_the_default_client(flow_dir: Path, tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'tideflow.db'}", project="demo") as client:
        previous = set_default_client(client)
        try:
            result = tide.submit(load_workflows(flow_dir / "flow.py")[0])
        finally:
            set_default_client(previous)
        assert client.workflows.get("clicks").latest_snapshot_id == result.snapshot.snapshot_id


def test_submit_refuses_a_package_that_was_not_uploaded(tmp_path: Path, flow_dir: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'tideflow.db'}") as client:
        plan = tide.compile(load_workflows(flow_dir / "flow.py")[0])
        with pytest.raises(NotFoundError, match="was not uploaded"):
            client.services.workflows.submit(
                "default", "clicks", plan=plan.to_json(), code_sha256="a" * 64, identity="b" * 64
            )


def test_blob_store_is_content_addressed_and_verifies(tmp_path: Path) -> None:
    blobs = BlobStore(f"file://{tmp_path / 'blobs'}")
    uri = blobs.put("packages", b"hello")
    assert blobs.put("packages", b"hello") == uri
    digest = uri.rsplit("/", 1)[1]
    assert blobs.get("packages", digest) == b"hello"
    with pytest.raises(InvalidArgumentError, match=r"not 0+ as declared"):
        blobs.put("packages", b"hello", sha256="0" * 64)
    with pytest.raises(NotFoundError, match="missing from the blob store"):
        blobs.get("packages", "0" * 64)
    (tmp_path / "blobs" / "packages" / digest[:2] / digest).write_bytes(b"jello")
    with pytest.raises(FailedPreconditionError, match=f"packages blob {digest} .* is refused"):
        blobs.get("packages", digest)


def test_blob_store_on_another_fsspec_filesystem() -> None:
    blobs = BlobStore("memory://tideflow-test-blobs")
    uri = blobs.put("packages", b"in memory")
    assert uri.startswith("memory://tideflow-test-blobs/packages/")
    assert blobs.get("packages", uri.rsplit("/", 1)[1]) == b"in memory"


def test_cli_submit_list_show_delete_through_a_real_server(
    server: TideflowTestServer, flow_dir: Path, project: str
) -> None:
    runner = CliRunner()
    target = ["--server", server.url, "--project", project]
    flow = str(flow_dir / "flow.py")

    first = runner.invoke(app, ["workflow", "submit", flow, *target])
    assert first.exit_code == 0, first.output
    assert "workflow clicks: new snapshot" in first.output
    again = runner.invoke(
        app, ["workflow", "submit", flow, "--workflow", "clicks", *target, "--json"]
    )
    assert again.exit_code == 0, again.output
    [submitted] = json.loads(again.stdout)
    assert submitted["reused"] is True

    listed = runner.invoke(app, ["workflow", "list", *target, "--json"])
    assert [w["name"] for w in json.loads(listed.stdout)] == ["clicks"]
    table = runner.invoke(app, ["workflow", "list", *target])
    assert "clicks" in table.output

    shown = runner.invoke(app, ["workflow", "show", "clicks", *target])
    assert shown.exit_code == 0, shown.output
    assert "job ingest" in shown.output
    assert "job report" in shown.output
    assert submitted["code_sha256"] in shown.output
    as_json = json.loads(
        runner.invoke(app, ["workflow", "show", "clicks", *target, "--json"]).stdout
    )
    assert as_json["snapshot_id"] == submitted["snapshot_id"]
    assert [job["name"] for job in as_json["plan"]["jobs"]] == ["ingest", "report"]

    deleted = runner.invoke(app, ["workflow", "delete", "clicks", "--yes", *target])
    assert deleted.exit_code == 0, deleted.output
    missing = runner.invoke(app, ["workflow", "show", "clicks", *target])
    assert missing.exit_code == 1
    assert "workflow 'clicks' not found" in missing.output


def test_cli_submit_of_a_broken_workflow_prints_the_problems(
    server: TideflowTestServer, tmp_path: Path, project: str
) -> None:
    (tmp_path / "flow.py").write_text(BROKEN)
    result = CliRunner().invoke(
        app,
        [
            "workflow",
            "submit",
            str(tmp_path / "flow.py"),
            "--server",
            server.url,
            "--project",
            project,
        ],
    )
    assert result.exit_code == 1
    assert "workflow 'broken' does not compile" in result.output
    assert "ghost" in result.output
    listed = CliRunner().invoke(
        app, ["workflow", "list", "--server", server.url, "--project", project, "--json"]
    )
    assert json.loads(listed.stdout) == []


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("sys.exit(3)", "exit code 3)"),
        ("sys.exit('no GPU here')", "exit code 1 (no GPU here))"),
        ("sys.exit()", "exit code 0)"),
    ],
)
def test_cli_submit_of_a_file_that_exits_says_so_and_stores_nothing(
    server: TideflowTestServer, tmp_path: Path, project: str, body: str, said: str
) -> None:
    import subprocess
    import sys

    flow = tmp_path / "exits.py"
    flow.write_text(f"import sys\n\nimport tideflow as tide\n\n{body}\n")
    target = ["--server", server.url, "--project", project]
    result = subprocess.run(
        [sys.executable, "-m", "tideflow", "workflow", "submit", str(flow), *target],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    message = " ".join(result.stderr.split())  # Rich wraps long lines
    assert f"running '{flow}' called sys.exit ({said}" in message
    assert "must not exit" in message
    listed = subprocess.run(
        [sys.executable, "-m", "tideflow", "workflow", "list", *target, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(listed.stdout) == []
