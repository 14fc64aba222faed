"""The auth matrix through a real server process with ``--auth required``."""

from __future__ import annotations

import uuid

import pytest

from tests.auth.conftest import Issue
from tideflow.errors import NotFoundError, PermissionDeniedError, UnauthenticatedError
from tideflow.metadata import AccessService
from tideflow.store import Store
from tideflow.testing import TideflowTestServer


@pytest.fixture
def project() -> str:
    return f"p_{uuid.uuid4().hex[:10]}"


def test_no_token_is_unauthenticated(auth_server: TideflowTestServer, project: str) -> None:
    # Refused at connect (the client makes sure its project exists) or at the first call.
    with (
        pytest.raises(UnauthenticatedError, match="requires an API token"),
        auth_server.client(project) as client,
    ):
        client.models.list()


def test_unknown_token_is_unauthenticated(auth_server: TideflowTestServer, project: str) -> None:
    with (
        pytest.raises(UnauthenticatedError, match="invalid API token"),
        auth_server.client(project, token="tf_not-a-real-token") as client,
    ):
        client.models.list()


def test_revoked_token_is_unauthenticated_at_once(
    auth_server: TideflowTestServer, issue: Issue, project: str
) -> None:
    token = issue(project, "writer")
    with auth_server.client(project, token=token) as client:
        client.models.create("m")
        with Store.open(auth_server.db_url) as store:
            access = AccessService(store)
            (found,) = [t for t in access.list_tokens(project) if t.role == "writer"]
            access.revoke_token(found.token_id)
        with pytest.raises(UnauthenticatedError, match=f"API token {found.token_id} was revoked"):
            client.models.list()


def test_reader_reads_but_may_not_write(
    auth_server: TideflowTestServer, issue: Issue, project: str
) -> None:
    with auth_server.client(project, token=issue(project, "writer")) as writer:
        writer.models.create("ctr")
    with auth_server.client(project, token=issue(project, "reader")) as reader:
        assert [m.name for m in reader.models.list().items] == ["ctr"]
        assert reader.models.get("ctr").name == "ctr"
        with pytest.raises(
            PermissionDeniedError, match="role 'reader'; CreateModel needs 'writer'"
        ):
            reader.models.create("other")
        with pytest.raises(PermissionDeniedError, match="needs 'writer'"):
            reader.models.create_version("ctr", uri="file:///m")


def test_writer_writes_but_is_no_admin(
    auth_server: TideflowTestServer, issue: Issue, project: str
) -> None:
    with auth_server.client(project, token=issue(project, "writer")) as writer:
        writer.models.create("ctr")
        version = writer.models.create_version("ctr", uri="file:///m")
        assert version.version == 1
        writer.models.set_status("ctr", 1, "VALIDATED")
        assert writer.models.deploy("ctr", 1).status == "DEPLOYED"
        if writer.services.projects is not None:
            with pytest.raises(PermissionDeniedError, match="DeleteProject needs 'admin'"):
                writer.services.projects.delete_project(project)


def test_admin_may_do_everything_in_its_project(
    auth_server: TideflowTestServer, issue: Issue, project: str
) -> None:
    with auth_server.client(project, token=issue(project, "admin")) as admin:
        admin.models.create("ctr")
        assert admin.models.get("ctr").name == "ctr"
        if admin.services.notifications is not None:
            from datetime import timedelta

            admin.events.send("k", "v")
            assert admin.events.compact(older_than=timedelta(days=1)) == 0


def test_token_of_another_project_is_denied(
    auth_server: TideflowTestServer, issue: Issue, project: str
) -> None:
    other = f"{project}_b"
    with auth_server.client(project, token=issue(project, "admin")) as owner:
        owner.models.create("secret")
    foreign = issue(other, "admin")
    denied = f"is for project '{other}', not '{project}'"
    with (
        pytest.raises(PermissionDeniedError, match=denied),
        auth_server.client(project, token=foreign) as intruder,
    ):
        intruder.models.list()
    # Every call is checked, not only the first: a client made without the project check
    # (as an old client would) is refused on reads and writes alike.
    from tideflow.client.local import Client
    from tideflow.client.remote.connection import remote_services

    with Client(remote_services(auth_server.url, project=project, token=foreign), project) as raw:
        for call in (
            raw.models.list,
            lambda: raw.models.get("secret"),
            lambda: raw.models.create("planted"),
        ):
            with pytest.raises(PermissionDeniedError, match=denied):
                call()
        if raw.services.notifications is not None:  # the streaming RPC is checked too
            with pytest.raises(PermissionDeniedError, match=denied):
                next(iter(raw.events.listen(after_offset=0)))
    # With its own project, the same token sees nothing of the first one.
    with auth_server.client(other, token=foreign) as neighbour:
        assert list(neighbour.models.list().items) == []
        with pytest.raises(NotFoundError, match="secret"):
            neighbour.models.get("secret")


def test_optional_auth_allows_no_token_but_refuses_a_bad_one(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = TideflowTestServer(home=tmp_path_factory.mktemp("home"), args=["--auth", "optional"])
    try:
        server.start()
        with server.client("open") as anonymous:
            anonymous.models.create("m")
        with (
            pytest.raises(UnauthenticatedError, match="invalid API token"),
            server.client("open", token="tf_wrong") as wrong,
        ):
            wrong.models.list()
    finally:
        server.close()
