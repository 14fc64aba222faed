"""The write actions of the HTTP API: effects, role checks, errors, CSRF and the audit list.

One populated store and server for the module (``tests.web.api_support``), with a writer, an
admin, a reader, a token of another project, a revoked one and a job's token. Every route is
called by each of them (the role table below), with junk and with illegal moves; each effect
is read back through the read API.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from tests.web.api_support import OTHER, PROJECT, WORKFLOW, AppServer, World, start_world
from tideflow.metadata.access import AccessService
from tideflow.web.app import create_app
from tideflow.web.auth import CSRF_COOKIE, CSRF_HEADER, TOKEN_COOKIE

API = "/api/v1"
P = f"{API}/projects/{PROJECT}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(tmp_path_factory.mktemp("web-actions"))
    access = AccessService(w.store)
    _, w.tokens["writer"] = access.create_token(PROJECT, "writer", name="alice")
    _, w.tokens["admin"] = access.create_token(PROJECT, "admin", name="root")
    _, w.tokens["job"] = access.create_job_token(
        PROJECT, job_execution_id=w.ids["train_1"], execution_id=w.ids["execution"]
    )
    yield w
    w.close()


def client(world: World, who: str | None) -> httpx.Client:
    headers = {} if who is None else {"Authorization": f"Bearer {world.tokens[who]}"}
    return httpx.Client(base_url=world.url, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def writer(world: World) -> Iterator[httpx.Client]:
    with client(world, "writer") as opened:
        yield opened


def write_routes(world: World) -> list[tuple[str, dict[str, Any] | None]]:
    """Every write route with a valid body (the role checks run before anything is done)."""
    eid = world.ids["execution"]
    return [
        (f"{P}/workflows/{WORKFLOW}/executions", {"params": {"lr": 0.1}}),
        (f"{P}/workflows/{WORKFLOW}/pause", None),
        (f"{P}/workflows/{WORKFLOW}/resume", None),
        (f"{P}/executions/{eid}/stop", None),
        (f"{P}/executions/{eid}/jobs/train/stop", None),
        (f"{P}/executions/{eid}/jobs/train/restart", None),
        (f"{P}/models/ctr/versions/1/status", {"status": "DEPLOYED"}),
        (f"{P}/models/ctr/rollback", None),
        (f"{P}/events", {"key": "k", "value": "v"}),
    ]


def test_the_openapi_document_types_every_write(world: World, writer: httpx.Client) -> None:
    document = writer.get(f"{API}/openapi.json").json()
    posts = {path: ops["post"] for path, ops in document["paths"].items() if "post" in ops}
    assert {
        path.replace("{project}", PROJECT)
        .replace("{name}", "X")
        .replace("{execution_id}", "1")
        .replace("{job}", "J")
        .replace("{version}", "1")
        for path in posts
    } == {
        f"{P}/workflows/X/executions",
        f"{P}/workflows/X/pause",
        f"{P}/workflows/X/resume",
        f"{P}/executions/1/stop",
        f"{P}/executions/1/jobs/J/stop",
        f"{P}/executions/1/jobs/J/restart",
        f"{P}/models/X/versions/1/status",
        f"{P}/models/X/rollback",
        f"{P}/events",
    }
    schemas = document["components"]["schemas"]
    for path, op in posts.items():
        ok = op["responses"].get("200") or op["responses"]["201"]
        ref = ok["content"]["application/json"]["schema"]["$ref"]
        assert schemas[ref.rsplit("/", 1)[-1]]["properties"], path
        for status in ("400", "401", "403", "404", "409"):
            assert status in op["responses"], (path, status)
    bodies = {
        path: op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for path, op in posts.items()
        if "requestBody" in op
    }
    assert len(bodies) == 3
    assert schemas["SetModelStatusRequest"]["properties"]["status"]["$ref"].endswith(
        "SettableStatus"
    )
    assert set(schemas["SettableStatus"]["enum"]) == {
        "VALIDATED",
        "REJECTED",
        "DEPLOYED",
        "DEPRECATED",
    }
    audit = document["paths"]["/api/v1/projects/{project}/audit"]["get"]
    assert audit["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "AuditPage"
    )


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("reader", 403, "permission_denied"),
        ("job", 403, "permission_denied"),
        ("other", 403, "permission_denied"),
        ("revoked", 401, "unauthenticated"),
        (None, 401, "unauthenticated"),
    ],
)
def test_every_write_refuses_who_may_not_write(
    world: World, who: str | None, status: int, code: str
) -> None:
    before = world.services.notifications.latest_offset()
    with client(world, who) as c:
        for url, body in write_routes(world):
            response = c.post(url, json=body)
            assert response.status_code == status, (url, response.text)
            assert response.json()["error"]["code"] == code
    # nothing happened: no event (every action writes one), nothing audited
    assert world.services.notifications.latest_offset() == before
    entries, _ = world.web.audit.list_entries(PROJECT)
    assert all(e.actor != "reader" for e in entries)


def test_a_reader_is_told_the_role_needed(world: World) -> None:
    with client(world, "reader") as c:
        response = c.post(f"{P}/workflows/{WORKFLOW}/pause")
    assert "needs 'writer'" in response.json()["error"]["message"]


def test_start_pause_resume_and_stop_an_execution(world: World, writer: httpx.Client) -> None:
    started = writer.post(
        f"{P}/workflows/{WORKFLOW}/executions", json={"params": {"lr": 0.05}, "context": "c1"}
    )
    assert started.status_code == 201, started.text
    run = started.json()
    assert (run["status"], run["params"], run["context"]) == ("RUNNING", {"lr": 0.05}, "c1")
    shown = writer.get(f"{P}/executions/{run['execution_id']}").json()
    assert shown["status"] == "RUNNING"

    paused = writer.post(f"{P}/workflows/{WORKFLOW}/pause")
    assert paused.json() == {"workflow": WORKFLOW, "paused": True, "max_active_executions": None}
    assert writer.get(f"{P}/workflows/{WORKFLOW}").json()["paused"] is True
    refused = writer.post(f"{P}/workflows/{WORKFLOW}/executions", json={})
    assert refused.status_code == 412, refused.text
    assert "paused" in refused.json()["error"]["message"]
    assert writer.post(f"{P}/workflows/{WORKFLOW}/resume").json()["paused"] is False

    stopped = writer.post(f"{P}/executions/{run['execution_id']}/stop")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "STOPPED"
    assert writer.get(f"{P}/executions/{run['execution_id']}").json()["status"] == "STOPPED"
    again = writer.post(f"{P}/executions/{run['execution_id']}/stop")
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "illegal_transition"
    assert "STOPPED" in error["message"]
    assert error["allowed"] == []


def test_stop_and_restart_a_job(world: World, writer: httpx.Client) -> None:
    run = writer.post(f"{P}/workflows/{WORKFLOW}/executions", json={}).json()
    eid = run["execution_id"]
    restarted = writer.post(f"{P}/executions/{eid}/jobs/train/restart")
    assert restarted.status_code == 200, restarted.text
    attempt = restarted.json()
    assert (attempt["job"], attempt["execution_id"]) == ("train", eid)
    jobs = writer.get(f"{P}/executions/{eid}/jobs", params={"job": "train"}).json()["items"]
    assert jobs[-1]["attempt"] == attempt["attempt"]
    assert jobs[-1]["started_by"]["rule"] != ""

    stopped = writer.post(f"{P}/executions/{eid}/jobs/validate/stop")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json() == {"job": "validate", "attempt": None}  # it never ran
    writer.post(f"{P}/executions/{eid}/stop")
    ended = writer.post(f"{P}/executions/{eid}/jobs/train/restart")
    assert ended.status_code == 409
    assert ended.json()["error"]["code"] == "illegal_transition"


def test_move_deploy_and_roll_back_model_versions(world: World, writer: httpx.Client) -> None:
    # populated: v1 DEPRECATED, v2 DEPLOYED, v3 REJECTED
    back = writer.post(f"{P}/models/ctr/rollback")
    assert back.status_code == 200, back.text
    assert (back.json()["version"], back.json()["status"]) == (1, "DEPLOYED")
    model = writer.get(f"{P}/models/ctr").json()
    assert model["deployed_version"] == 1
    two = writer.get(f"{P}/models/ctr/versions/2").json()
    assert two["status"] == "DEPRECATED"
    assert two["aliases"] == ["champion"]

    deployed = writer.post(f"{P}/models/ctr/versions/2/status", json={"status": "DEPLOYED"})
    assert deployed.json()["status"] == "DEPLOYED"
    assert deployed.json()["aliases"] == ["champion"]
    assert writer.get(f"{P}/models/ctr").json()["deployed_version"] == 2

    illegal = writer.post(f"{P}/models/ctr/versions/3/status", json={"status": "DEPLOYED"})
    assert illegal.status_code == 409
    error = illegal.json()["error"]
    assert error["code"] == "illegal_transition"
    assert "REJECTED -> DEPLOYED" in error["message"]
    assert error["allowed"] == ["DELETED"]
    deprecated = writer.post(f"{P}/models/ctr/versions/2/status", json={"status": "DEPRECATED"})
    assert deprecated.json()["status"] == "DEPRECATED"
    history = writer.get(f"{P}/models/ctr/versions/2/history").json()["items"]
    assert history[-1]["status"] == "DEPRECATED"


def test_rollback_with_nothing_deprecated_is_412(world: World, writer: httpx.Client) -> None:
    world.services.model_center.create_model(PROJECT, "fresh")
    response = writer.post(f"{P}/models/fresh/rollback")
    assert response.status_code == 412, response.text
    assert response.json()["error"]["code"] == "failed_precondition"


def test_send_an_event_once_per_idempotency_key(world: World, writer: httpx.Client) -> None:
    body = {
        "key": "ctr",
        "value": "0.9",
        "event_type": "MANUAL",
        "sender": "ops",
        "context": {"why": "test"},
        "idempotency_key": "once-1",
    }
    first = writer.post(f"{P}/events", json=body)
    assert first.status_code == 201, first.text
    event = first.json()
    assert (event["namespace"], event["key"], event["context"]) == (PROJECT, "ctr", {"why": "test"})
    assert writer.post(f"{P}/events", json=body).json()["offset"] == event["offset"]
    listed = writer.get(f"{P}/events", params={"event_type": "MANUAL"}).json()["items"]
    assert [e["offset"] for e in listed] == [event["offset"]]


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/workflows/nosuch/executions", {}, 404, None),
        ("/workflows/bad%20name/executions", {}, 400, "name"),
        (f"/workflows/{WORKFLOW}/executions", {"params": [1]}, 400, "params"),
        (f"/workflows/{WORKFLOW}/executions", {"parms": {}}, 400, "parms"),
        (f"/workflows/{WORKFLOW}/executions", {"context": "x" * 5000}, 400, "context"),
        ("/workflows/nosuch/pause", None, 404, None),
        ("/executions/999999/stop", None, 404, None),
        ("/executions/0/stop", None, 400, "execution_id"),
        ("/executions/abc/stop", None, 400, "execution_id"),
        ("/executions/{eid}/jobs/nosuch/stop", None, 404, None),
        ("/executions/{eid}/jobs/bad%20job/restart", None, 400, "job"),
        ("/models/ctr/versions/99/status", {"status": "DEPLOYED"}, 404, None),
        ("/models/nosuch/versions/1/status", {"status": "DEPLOYED"}, 404, None),
        ("/models/ctr/versions/1/status", {"status": "LIVE"}, 400, "status"),
        ("/models/ctr/versions/1/status", {"status": "DELETED"}, 400, "status"),
        ("/models/ctr/versions/1/status", {}, 400, "status"),
        ("/models/nosuch/rollback", None, 404, None),
        ("/events", {"value": "no key"}, 400, "key"),
        ("/events", {"key": ""}, 400, "key"),
        ("/events", {"key": "k", "context": "not an object"}, 400, "context"),
        ("/events", {"key": "k", "value": "v" * 2_000_000}, 400, "value"),
    ],
)
def test_bad_writes_are_4xx_naming_the_field(
    world: World,
    writer: httpx.Client,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    field: str | None,
) -> None:
    url = P + path.replace("{eid}", str(world.ids["execution"]))
    response = writer.post(url, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if field is not None:
        assert error["field"] == field, error


def test_junk_bodies_are_never_a_500(world: World, writer: httpx.Client) -> None:
    for url, _ in write_routes(world):
        for junk in (b"{", b"[]", b"null", b'"x"', b"\xff\xfe", b'{"params": {"a": NaN}}'):
            response = writer.post(url, content=junk, headers={"content-type": "application/json"})
            assert response.status_code < 500, (url, junk, response.text)


def test_every_write_is_in_the_audit_list_with_its_actor(world: World) -> None:
    with client(world, "admin") as admin:
        admin.post(f"{P}/workflows/{WORKFLOW}/pause")
        admin.post(f"{P}/workflows/{WORKFLOW}/resume")
        missing = admin.post(f"{P}/models/nosuch/rollback")
        assert missing.status_code == 404
    with client(world, "reader") as reader:  # every reader may read the list
        page = reader.get(f"{P}/audit", params={"limit": 2}).json()
        assert [(e["action"], e["actor"], e["outcome"]) for e in page["items"]] == [
            ("rollback_model", "root", "not_found"),
            ("resume_workflow", "root", "ok"),
        ]
        assert page["items"][0]["target"] == "model nosuch"
        assert page["next_cursor"]
        rest = reader.get(f"{P}/audit", params={"cursor": page["next_cursor"]}).json()
        assert rest["items"][0]["action"] == "pause_workflow"
        everything = page["items"] + rest["items"]
        ids = [e["audit_id"] for e in everything]
        assert ids == sorted(ids, reverse=True)
        assert {e["actor"] for e in everything} >= {"alice", "root"}
    with client(world, "other") as other:  # and only its own project's
        assert other.get(f"{API}/projects/{OTHER}/audit").json()["items"] == []
        assert other.get(f"{P}/audit").status_code == 403


def test_cookie_writes_need_the_csrf_token(world: World) -> None:
    token = world.tokens["writer"]
    url = f"{P}/workflows/{WORKFLOW}/resume"
    with httpx.Client(base_url=world.url, timeout=60) as browser:
        browser.cookies.set(TOKEN_COOKIE, token)
        page = browser.get(f"/ui/{PROJECT}/workflows")
        csrf = browser.cookies[CSRF_COOKIE]
        assert f'<meta name="csrf-token" content="{csrf}">' in page.text
        assert "samesite=strict" in page.headers["set-cookie"].lower()
        refused = browser.post(url)
        assert refused.status_code == 403
        assert CSRF_HEADER in refused.json()["error"]["message"]
        wrong = browser.post(url, headers={CSRF_HEADER: "forged"})
        assert wrong.status_code == 403
        ok = browser.post(url, headers={CSRF_HEADER: csrf})
        assert ok.status_code == 200, ok.text
        elsewhere = browser.post(url, headers={CSRF_HEADER: csrf, "Origin": "https://evil.example"})
        assert elsewhere.status_code == 403
        assert "cross-site" in elsewhere.json()["error"]["message"]
        # the same page's second visit keeps its token
        browser.get(f"/ui/{PROJECT}/workflows")
        assert browser.cookies[CSRF_COOKIE] == csrf


def test_with_auth_off_a_bare_cross_site_post_is_refused(world: World) -> None:
    server = AppServer(
        create_app(
            healthy=lambda: True,
            registry=CollectorRegistry(),
            services=replace(world.web, auth_required=False),
        )
    )
    try:
        with httpx.Client(base_url=server.url, timeout=60) as browser:
            url = f"{P}/workflows/{WORKFLOW}/resume"
            assert browser.post(url).status_code == 403  # what another site's form would do
            browser.get(f"/ui/{PROJECT}/workflows")
            ok = browser.post(url, headers={CSRF_HEADER: browser.cookies[CSRF_COOKIE]})
            assert ok.status_code == 200, ok.text
        (entry,), _ = world.web.audit.list_entries(PROJECT, limit=1)
        assert (entry.action, entry.actor, entry.token_id) == (
            "resume_workflow",
            "(no token)",
            None,
        )
    finally:
        server.stop()


def test_the_openapi_document_never_promises_a_422(writer: httpx.Client) -> None:
    document = writer.get(f"{API}/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (path, method)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_a_retried_write_with_an_idempotency_key_is_applied_once(
    world: World, writer: httpx.Client
) -> None:
    url = f"{P}/workflows/{WORKFLOW}/executions"
    first = writer.post(url, json={"params": {"n": 1}}, headers={"Idempotency-Key": "start-1"})
    assert first.status_code == 201, first.text
    again = writer.post(url, json={"params": {"n": 1}}, headers={"Idempotency-Key": "start-1"})
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    runs = writer.get(f"{P}/executions", params={"workflow": WORKFLOW}).json()["items"]
    assert [r["execution_id"] for r in runs].count(first.json()["execution_id"]) == 1
    assert sum(1 for r in runs if r["params"] == {"n": 1}) == 1  # started once
    # without the header, the same request is a new action
    fresh = writer.post(url, json={"params": {"n": 1}})
    assert fresh.json()["execution_id"] != first.json()["execution_id"]
    # a key belongs to one route
    other = writer.post(f"{P}/workflows/{WORKFLOW}/pause", headers={"Idempotency-Key": "start-1"})
    assert other.status_code == 409
    assert "another request" in other.json()["error"]["message"]
    # another token's same key is its own
    with client(world, "admin") as admin:
        theirs = admin.post(url, json={}, headers={"Idempotency-Key": "start-1"})
        assert theirs.status_code == 201
        assert "Idempotent-Replayed" not in theirs.headers
    for eid in (first.json()["execution_id"], fresh.json()["execution_id"]):
        writer.post(f"{P}/executions/{eid}/stop")


def test_a_refused_write_does_not_use_up_its_key(writer: httpx.Client) -> None:
    key = {"Idempotency-Key": "deploy-3"}
    refused = writer.post(
        f"{P}/models/ctr/versions/3/status", json={"status": "DEPLOYED"}, headers=key
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "illegal_transition"
    again = writer.post(
        f"{P}/models/ctr/versions/3/status", json={"status": "DEPLOYED"}, headers=key
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "illegal_transition"  # judged again, not "applied"


@pytest.mark.parametrize("key", [b"", b"x" * 65, b"has space", "ünï".encode()])
def test_a_bad_idempotency_key_is_400(world: World, key: bytes) -> None:
    token = world.tokens["writer"].encode()
    headers = [(b"Authorization", b"Bearer " + token), (b"Idempotency-Key", key)]
    response = httpx.post(f"{world.url}{P}/workflows/{WORKFLOW}/pause", headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "Idempotency-Key"
