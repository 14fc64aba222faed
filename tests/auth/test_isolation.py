"""Nothing of one project is visible to another, over gRPC with tokens of each project.

Services scope every call by the call's project, and the authenticator pins that project to the
token's; these tests check the outcome for each kind of entity the server exposes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import tideflow as tide
from tests.auth.conftest import Issue
from tideflow.client import Client
from tideflow.errors import NotFoundError
from tideflow.testing import TideflowTestServer


@pytest.fixture
def pair(auth_server: TideflowTestServer, issue: Issue) -> Iterator[tuple[Client, Client]]:
    """Writer clients of two new projects, A and B."""
    a, b = f"a_{uuid.uuid4().hex[:8]}", f"b_{uuid.uuid4().hex[:8]}"
    with (
        auth_server.client(a, token=issue(a, "writer")) as client_a,
        auth_server.client(b, token=issue(b, "writer")) as client_b,
    ):
        yield client_a, client_b


def _needs(client: Client, service: str) -> None:
    if getattr(client.services, service, None) is None:
        pytest.skip(f"the remote client has no {service} service yet")


def test_models_are_per_project(pair: tuple[Client, Client]) -> None:
    a, b = pair
    a.models.create("ctr", description="A's")
    a.models.create_version("ctr", uri="file:///a")
    assert list(b.models.list().items) == []
    with pytest.raises(NotFoundError, match="ctr"):
        b.models.get("ctr")
    with pytest.raises(NotFoundError):
        b.models.get_version("ctr", version=1)
    # The same name in B is B's own model, numbered independently.
    b.models.create("ctr", description="B's")
    assert b.models.create_version("ctr", uri="file:///b").version == 1
    assert a.models.create_version("ctr", uri="file:///a2").version == 2
    assert a.models.get("ctr").description == "A's"


def test_events_are_per_project(pair: tuple[Client, Client]) -> None:
    a, b = pair
    _needs(a, "notifications")
    start = a.events.latest_offset()
    a.events.send("ctr", "a-secret", event_type="DRIFT_DETECTED")
    assert [e.value for e in b.events.list(after_offset=start)] == []
    assert [e.value for e in b.events.list(key="ctr", after_offset=0)] == []
    mine = b.events.send("ctr", "b-own")
    assert [e.value for e in b.events.list(after_offset=start)] == ["b-own"]
    assert [e.value for e in a.events.list(after_offset=start)] == ["a-secret"]
    assert mine.namespace == b.project


def test_listeners_only_get_their_projects_events(pair: tuple[Client, Client]) -> None:
    a, b = pair
    _needs(a, "notifications")
    start = a.events.latest_offset()
    a.events.send("ctr", "a-1")
    b.events.send("ctr", "b-1")  # after A's in the shared log
    with b.events.listen(keys=["ctr"], after_offset=start) as listener:
        first = next(iter(listener))
    assert (first.value, first.namespace) == ("b-1", b.project)
    with a.events.listen(after_offset=start) as listener:
        first = next(iter(listener))
    assert (first.value, first.namespace) == ("a-1", a.project)


def test_datasets_are_per_project(pair: tuple[Client, Client]) -> None:
    a, b = pair
    _needs(a, "datasets")
    a.datasets.register("clicks", uri="file:///a/clicks", format="jsonl", stream=True)
    assert list(b.datasets.list().items) == []
    with pytest.raises(NotFoundError, match="clicks"):
        b.datasets.get("clicks")
    b.datasets.register("clicks", uri="file:///b/clicks", format="parquet")
    assert a.datasets.get("clicks").uri == "file:///a/clicks"
    assert b.datasets.get("clicks").uri == "file:///b/clicks"


def test_workflows_are_per_project(pair: tuple[Client, Client], tmp_path: Path) -> None:
    a, b = pair
    _needs(a, "workflows")

    def noop(ctx: object, inputs: object) -> None:
        return None

    with tide.workflow("private") as wf, tide.job("only"):
        tide.user_node(processor=noop)
    (tmp_path / "flow.py").write_text("# the workflow's code\n")
    a.workflows.submit(wf, source=tmp_path)
    assert [w.name for w in a.workflows.list()] == ["private"]
    assert list(b.workflows.list()) == []
    with pytest.raises(NotFoundError, match="private"):
        b.workflows.get("private")
    with pytest.raises(NotFoundError):
        b.workflows.delete("private")
    assert a.workflows.get("private").name == "private"
