"""The JSON API over HTTP on a populated temporary store: every endpoint, errors, auth, SSE."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.api_support import OTHER, PROJECT, WORKFLOW, World, start_world

API = "/api/v1"
P = f"{API}/projects/{PROJECT}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(tmp_path_factory.mktemp("web-api"))
    yield w
    w.close()


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {world.tokens['reader']}"}
    with httpx.Client(base_url=world.url, headers=headers, timeout=60) as client:
        yield client


def sample_paths(world: World) -> dict[str, str]:
    """A concrete URL for every path template of the OpenAPI document."""
    eid = world.ids["execution"]
    return {
        "/api/v1/projects": f"{API}/projects",
        "/api/v1/projects/{project}/workflows": f"{P}/workflows",
        "/api/v1/projects/{project}/workflows/{name}": f"{P}/workflows/{WORKFLOW}",
        "/api/v1/projects/{project}/workflows/{name}/plan": f"{P}/workflows/{WORKFLOW}/plan",
        "/api/v1/projects/{project}/executions": f"{P}/executions",
        "/api/v1/projects/{project}/executions/{execution_id}": f"{P}/executions/{eid}",
        "/api/v1/projects/{project}/executions/{execution_id}/jobs": f"{P}/executions/{eid}/jobs",
        "/api/v1/projects/{project}/job-executions/{job_execution_id}/logs": (
            f"{P}/job-executions/{world.ids['train_1']}/logs"
        ),
        "/api/v1/projects/{project}/job-executions/{job_execution_id}/logs/stream": "",
        "/api/v1/projects/{project}/models": f"{P}/models",
        "/api/v1/projects/{project}/models/{name}": f"{P}/models/ctr",
        "/api/v1/projects/{project}/models/{name}/versions": f"{P}/models/ctr/versions",
        "/api/v1/projects/{project}/models/{name}/versions/{version}": f"{P}/models/ctr/versions/2",
        "/api/v1/projects/{project}/models/{name}/versions/{version}/history": (
            f"{P}/models/ctr/versions/2/history"
        ),
        "/api/v1/projects/{project}/models/{name}/metrics": f"{P}/models/ctr/metrics?name=auc",
        "/api/v1/projects/{project}/datasets": f"{P}/datasets",
        "/api/v1/projects/{project}/datasets/{name}": f"{P}/datasets/clicks",
        "/api/v1/projects/{project}/lineage": f"{P}/lineage?model=ctr&version=2",
        "/api/v1/projects/{project}/events": f"{P}/events",
        "/api/v1/projects/{project}/events/stream": "",
        "/api/v1/projects/{project}/audit": f"{P}/audit",
        "/api/v1/cluster": f"{API}/cluster",
    }


def get_paths(document: dict[str, Any]) -> set[str]:
    """The paths that answer GET (the write actions are tested in test_actions.py)."""
    return {path for path, operations in document["paths"].items() if "get" in operations}


def test_every_openapi_path_answers(world: World, api: httpx.Client) -> None:
    document = api.get(f"{API}/openapi.json").json()
    paths = get_paths(document)
    samples = sample_paths(world)
    assert paths == set(samples), "every API path has a sample here (and nothing else exists)"
    for template, url in samples.items():
        assert "get" in document["paths"][template], template
        if not url:
            continue  # the two streams are tested below
        response = api.get(url)
        assert response.status_code == 200, (url, response.text)
        if template.endswith("/logs"):
            assert response.headers["content-type"].startswith("text/plain")
        else:
            body = response.json()
            assert isinstance(body, dict), url
            if "items" in body:
                assert "next_cursor" in body, url


# -- content -------------------------------------------------------------------------------


def test_plan_has_jobs_nodes_data_edges_and_labelled_rules(api: httpx.Client) -> None:
    plan = api.get(f"{P}/workflows/{WORKFLOW}/plan").json()
    jobs = {j["name"]: j for j in plan["jobs"]}
    assert set(jobs) == {"train", "validate", "push", "report"}
    assert jobs["train"]["streaming"] is True
    assert jobs["validate"]["streaming"] is False
    assert (jobs["train"]["engine"], jobs["train"]["platform"]) == ("python", "local")
    nodes = {n["name"]: n for n in jobs["train"]["nodes"]}
    assert nodes["featurize"]["kind"] == "transform"
    assert nodes["featurize"]["inputs"] == [{"node": "read_dataset_1", "index": 0}]
    labels = {(r["job"], r["label"]) for r in plan["rules"]}
    assert labels == {
        ("validate", "on model ctr MODEL_GENERATED"),
        ("push", "on model ctr MODEL_VALIDATED"),
        ("report", "after validate, push"),
        ("train", "on event type=DRIFT_DETECTED -> RESTART"),
    }
    after = next(r for r in plan["rules"] if r["kind"] == "after")
    assert after["upstreams"] == ["validate", "push"]


def test_workflow_list_shows_last_execution(world: World, api: httpx.Client) -> None:
    (item,) = api.get(f"{P}/workflows").json()["items"]
    assert item["name"] == WORKFLOW
    assert item["last_execution_id"] == world.ids["execution"]
    assert item["last_execution_status"] == "RUNNING"
    one = api.get(f"{P}/workflows/{WORKFLOW}").json()
    assert one["paused"] is False
    assert [s["snapshot_id"] for s in one["snapshots"]] == [item["latest_snapshot_id"]]


def test_job_attempts_name_the_event_behind_each_start_stop_and_restart(
    world: World, api: httpx.Client
) -> None:
    eid = world.ids["execution"]
    items = api.get(f"{P}/executions/{eid}/jobs", params={"job": "train"}).json()["items"]
    first, second = items
    assert (first["attempt"], second["attempt"]) == (1, 2)
    assert first["started_by"]["event"]["offset"] == world.ids["drift_1"]
    assert first["stopped_by"]["action"] == "RESTART"
    assert first["stopped_by"]["event"]["offset"] == world.ids["drift_2"]
    assert first["stopped_by"]["event"]["event_type"] == "DRIFT_DETECTED"
    assert second["started_by"]["action"] == "RESTART"
    assert second["started_by"]["event_offset"] == world.ids["drift_2"]
    assert second["stopped_by"] is None
    validate = api.get(f"{P}/executions/{eid}/jobs", params={"job": "validate"}).json()
    started = validate["items"][0]["started_by"]
    assert started["rule"] == "on MODEL_GENERATED of model ctr"
    assert started["event"]["event_type"] == "MODEL_GENERATED"
    detail = api.get(f"{P}/executions/{eid}").json()
    assert {j["job"]: j["attempts"] for j in detail["jobs"]}["train"] == 2
    assert "report" in detail["waiting_on"]


def test_models_versions_history_and_metrics(api: httpx.Client) -> None:
    (model,) = api.get(f"{P}/models").json()["items"]
    assert (model["name"], model["deployed_version"]) == ("ctr", 2)
    assert model["aliases"] == {"champion": 2}
    versions = api.get(f"{P}/models/ctr/versions").json()["items"]
    assert [(v["version"], v["status"]) for v in versions] == [
        (1, "DEPRECATED"),
        (2, "DEPLOYED"),
        (3, "REJECTED"),
    ]
    assert versions[1]["aliases"] == ["champion"]
    rejected = api.get(f"{P}/models/ctr/versions", params={"status": "REJECTED"}).json()
    assert [v["version"] for v in rejected["items"]] == [3]
    one = api.get(f"{P}/models/ctr/versions/1").json()
    assert [m["value"] for m in one["logged_metrics"]] == [0.5, 0.4]
    history = api.get(f"{P}/models/ctr/versions/1/history").json()["items"]
    assert [h["status"] for h in history] == ["GENERATED", "VALIDATED", "DEPLOYED", "DEPRECATED"]
    auc = api.get(f"{P}/models/ctr/metrics", params={"name": "auc"}).json()["items"]
    assert [(p["version"], p["source"]) for p in auc] == [
        (1, "version"),
        (2, "version"),
        (3, "version"),
    ]
    assert auc[0]["value"] == pytest.approx(0.65)
    loss = api.get(f"{P}/models/ctr/metrics", params={"name": "loss"}).json()["items"]
    assert [(p["version"], p["value"]) for p in loss] == [(1, 0.4), (2, 0.3)]


def test_datasets_and_lineage(api: httpx.Client) -> None:
    names = [d["name"] for d in api.get(f"{P}/datasets").json()["items"]]
    assert names == ["clicks", "holdout"]
    assert api.get(f"{P}/datasets/clicks").json()["stream"] is True
    graph = api.get(f"{P}/lineage", params={"model": "ctr", "version": 2}).json()
    ids = {n["id"] for n in graph["nodes"]}
    assert {"model_version:ctr@2", "dataset:clicks"} <= ids
    job = next(n for n in graph["nodes"] if n["kind"] == "job_execution")
    assert job["name"] == "train"
    edges = {(e["source"], e["target"]) for e in graph["edges"]}
    assert ("dataset:clicks", job["id"]) in edges
    assert (job["id"], "model_version:ctr@2") in edges
    by_dataset = api.get(f"{P}/lineage", params={"dataset": "clicks"}).json()
    assert by_dataset["root"] == "dataset:clicks"
    assert "model_version:ctr@3" in {n["id"] for n in by_dataset["nodes"]}


def test_lists_page_with_cursors(world: World, api: httpx.Client) -> None:
    everything = api.get(f"{P}/events", params={"limit": 1000}).json()
    assert everything["next_cursor"] is None
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = api.get(f"{P}/events", params=params).json()
        seen += [e["offset"] for e in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["offset"] for e in everything["items"]]
    assert all(e["namespace"] == PROJECT for e in everything["items"])
    drift = api.get(f"{P}/events", params={"event_type": "DRIFT_DETECTED", "sender": "monitor"})
    assert [e["offset"] for e in drift.json()["items"]] == [world.ids["drift_2"]]
    eid = world.ids["execution"]
    first = api.get(f"{P}/executions/{eid}/jobs", params={"limit": 2}).json()
    rest = api.get(
        f"{P}/executions/{eid}/jobs", params={"limit": 100, "cursor": first["next_cursor"]}
    ).json()
    ids = [j["job_execution_id"] for j in first["items"] + rest["items"]]
    assert ids == sorted(ids)
    assert len(ids) == 4


def test_executions_page_newest_first(world: World, api: httpx.Client) -> None:
    scheduler = world.services.scheduler
    assert scheduler is not None
    started = [scheduler.start_execution(PROJECT, WORKFLOW).execution_id for _ in range(2)]
    try:
        first = api.get(f"{P}/executions", params={"limit": 2}).json()
        assert [e["execution_id"] for e in first["items"]] == started[::-1]
        rest = api.get(f"{P}/executions", params={"cursor": first["next_cursor"]}).json()
        assert [e["execution_id"] for e in rest["items"]] == [world.ids["execution"]]
        assert rest["next_cursor"] is None
        mine = api.get(f"{P}/executions", params={"workflow": WORKFLOW, "status": "STOPPED"})
        assert mine.json()["items"] == []
    finally:
        for eid in started:
            scheduler.stop_execution(PROJECT, eid)
    stopped = api.get(f"{P}/executions", params={"status": "STOPPED"}).json()["items"]
    assert sorted(e["execution_id"] for e in stopped) == started


def test_log_tail(world: World, api: httpx.Client) -> None:
    log = api.get(f"{P}/job-executions/{world.ids['train_1']}/logs", params={"tail": 2})
    assert log.text == "line 4\nline 5\n"
    assert log.headers["x-tideflow-log-complete"] == "false"
    whole = api.get(f"{P}/job-executions/{world.ids['train_1']}/logs")
    assert whole.text.startswith("line 1\n")
    assert int(whole.headers["x-tideflow-log-after"]) == len(whole.text)


# -- errors: 4xx with the parameter named, never 500 ----------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/events", {"limit": 0}, 400, "limit"),
        ("/events", {"limit": 1001}, 400, "limit"),
        ("/events", {"limit": "many"}, 400, "limit"),
        ("/events", {"after_offset": -1}, 400, "after_offset"),
        ("/events", {"cursor": "not-a-cursor"}, 400, "cursor"),
        ("/models", {"cursor": "bm9wZQ"}, 400, "cursor"),
        ("/executions", {"status": "SLEEPING"}, 400, "status"),
        ("/executions", {"cursor": "zzz"}, 400, "cursor"),
        ("/executions/abc", {}, 400, "execution_id"),
        ("/executions/0", {}, 400, "execution_id"),
        ("/executions/99999", {}, 404, None),
        ("/executions/1/jobs", {"job": "bad name!"}, 400, "job"),
        ("/models/nope", {}, 404, None),
        ("/models/ctr/versions/0", {}, 400, "version"),
        ("/models/ctr/versions/99", {}, 404, None),
        ("/models/ctr/versions", {"status": "SHINY"}, 400, "status"),
        ("/models/ctr/metrics", {}, 400, "name"),
        ("/workflows/nope", {}, 404, None),
        ("/workflows/ctr_online/plan", {"snapshot_id": 0}, 400, "snapshot_id"),
        ("/workflows/ctr_online/plan", {"snapshot_id": 999}, 404, None),
        ("/datasets/nope", {}, 404, None),
        ("/lineage", {}, 400, "dataset"),
        ("/lineage", {"model": "ctr"}, 400, "version"),
        ("/lineage", {"model": "ctr", "version": 9}, 404, None),
        ("/lineage", {"dataset": "clicks", "hops": 0}, 400, "hops"),
        ("/job-executions/1/logs", {"tail": 0}, 400, "tail"),
        ("/job-executions/99999/logs", {}, 404, None),
    ],
)
def test_bad_parameters_are_4xx_naming_the_parameter(
    api: httpx.Client, path: str, params: dict[str, Any], status: int, field: str | None
) -> None:
    response = api.get(P + path, params=params)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if field is not None:
        assert error["field"] == field
        assert field.split("_")[0] in error["message"]


def test_unknown_paths_and_methods_are_json_errors(api: httpx.Client) -> None:
    missing = api.get(f"{API}/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    post = api.post(f"{P}/models")
    assert post.status_code == 405
    assert post.json()["error"]["code"] == "method_not_allowed"
    bad_project = api.get(f"{API}/projects/bad%20name/models")
    assert bad_project.status_code == 400
    assert bad_project.json()["error"]["field"] == "project"


JUNK = ["", "x", "-1", "0", "1.5", "99999999999999999999999", "%00", "*" * 2000, "ctr", "1"]


def test_junk_in_every_parameter_is_never_a_500(world: World, api: httpx.Client) -> None:
    """A home-made fuzz over the OpenAPI document: every parameter, junk values."""
    document = api.get(f"{API}/openapi.json").json()
    samples = sample_paths(world)
    checked = 0
    for template, operations in document["paths"].items():
        if template.endswith("/stream") or "get" not in operations:
            continue
        parameters = operations["get"].get("parameters", [])
        base = samples[template]
        for parameter in parameters:
            for junk in JUNK:
                if parameter["in"] == "path":
                    if parameter["name"] == "project" or junk == "":
                        continue
                    url = template.replace("{project}", PROJECT)
                    for other in parameters:
                        if other["in"] == "path" and other["name"] not in ("project",):
                            value = (
                                junk
                                if other is parameter
                                else base.split("/")[
                                    template.split("/").index("{" + other["name"] + "}")
                                ].split("?")[0]
                            )
                            url = url.replace("{" + other["name"] + "}", value)
                    response = api.get(url)
                else:
                    response = api.get(base, params={parameter["name"]: junk})
                checked += 1
                assert response.status_code < 500, (template, parameter["name"], junk)
                if response.status_code >= 400:
                    assert response.json()["error"]["message"]
    assert checked > 100


# -- auth ------------------------------------------------------------------------------------


def test_no_token_is_401_when_auth_is_required(world: World) -> None:
    response = httpx.get(f"{world.url}{P}/models")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "requires an API token" in response.json()["error"]["message"]
    assert httpx.get(f"{world.url}{API}/projects").status_code == 401


@pytest.mark.parametrize(
    ("header", "status", "message"),
    [
        ("Bearer tf_not-a-token", 401, "invalid API token"),
        ("Basic dXNlcjpwYXNz", 401, "Bearer <token>"),
        ("revoked", 401, "was revoked"),
        ("other", 403, "is for project 'other', not 'ctr'"),
    ],
)
def test_bad_or_foreign_tokens_are_refused(
    world: World, header: str, status: int, message: str
) -> None:
    if header in world.tokens:
        header = f"Bearer {world.tokens[header]}"
    for path in ("/models", "/events", f"/executions/{world.ids['execution']}/jobs"):
        response = httpx.get(f"{world.url}{P}{path}", headers={"Authorization": header})
        assert response.status_code == status, path
        assert message in response.json()["error"]["message"]


def test_a_token_sees_only_its_own_project(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['other']}"}
    projects = httpx.get(f"{world.url}{API}/projects", headers=headers).json()["items"]
    assert [p["name"] for p in projects] == [OTHER]
    models = httpx.get(f"{world.url}{API}/projects/{OTHER}/models", headers=headers).json()
    assert [m["name"] for m in models["items"]] == ["secret"]
    events = httpx.get(f"{world.url}{API}/projects/{OTHER}/events", headers=headers).json()
    assert {e["namespace"] for e in events["items"]} == {OTHER}
    eid = world.ids["execution"]  # an execution of ctr, asked for under other: not there
    assert (
        httpx.get(f"{world.url}{API}/projects/{OTHER}/executions/{eid}", headers=headers)
    ).status_code == 404


def test_cookie_login_and_logout(world: World) -> None:
    with httpx.Client(base_url=world.url, timeout=60) as browser:
        form = browser.get("/ui/login", params={"next": "/ui/ctr/models"})
        assert form.status_code == 200
        assert 'name="token"' in form.text
        wrong = browser.post("/ui/login", data={"token": "tf_wrong"})
        assert wrong.status_code == 401
        assert "invalid API token" in wrong.text
        login = browser.post(
            "/ui/login", data={"token": world.tokens["reader"], "next": "/ui/ctr/models"}
        )
        assert login.status_code == 303
        assert login.headers["location"] == "/ui/ctr/models"
        assert "httponly" in login.headers["set-cookie"].lower()
        assert browser.get(f"{P}/models").status_code == 200
        assert browser.get(f"{API}/projects/{OTHER}/models").status_code == 403
        out = browser.get("/ui/logout")
        assert out.status_code == 303
        assert browser.get(f"{P}/models").status_code == 401
        # never a redirect off the server
        evil = browser.post(
            "/ui/login", data={"token": world.tokens["reader"], "next": "//evil.example/"}
        )
        assert evil.headers["location"] == f"/ui/{PROJECT}/workflows"


def test_with_auth_off_no_token_is_needed(world: World) -> None:
    from dataclasses import replace

    from prometheus_client import CollectorRegistry

    from tests.web.api_support import AppServer
    from tideflow.web.app import create_app

    open_web = replace(world.web, auth_required=False)
    server = AppServer(
        create_app(healthy=lambda: True, registry=CollectorRegistry(), services=open_web)
    )
    try:
        projects = httpx.get(f"{server.url}{API}/projects").json()["items"]
        assert {p["name"] for p in projects} == {PROJECT, OTHER}
        assert httpx.get(f"{server.url}{P}/models").status_code == 200
        # a wrong token is still refused: it never silently works as "no token"
        bad = httpx.get(f"{server.url}{P}/models", headers={"Authorization": "Bearer tf_x"})
        assert bad.status_code == 401
        for malformed in ("", "tf_bogus", "Token tf_bogus", "Bearer"):
            refused = httpx.get(f"{server.url}{P}/models", headers={"Authorization": malformed})
            assert refused.status_code == 401, repr(malformed)
    finally:
        server.stop()


# -- live streams ----------------------------------------------------------------------------


class SseReader:
    """Reads an SSE response message by message (blocking, with the client's timeout)."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.iter_lines()

    def next(self) -> dict[str, str]:
        """The next message with data (or an ``event``), as its fields."""
        fields: dict[str, str] = {}
        for line in self._lines:
            if line == "":
                if "data" in fields or "event" in fields:
                    return fields
                fields = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            fields[name] = fields[name] + "\n" + value if name in fields else value
            if name == "retry":
                fields = {}
        raise AssertionError("the stream ended")


def test_event_stream_pushes_new_events_and_resumes(world: World, api: httpx.Client) -> None:
    events = world.services.notifications
    params = {"key": "live", "event_type": "PING"}
    with api.stream("GET", f"{P}/events/stream", params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(response)
        sent = [events.send(PROJECT, "live", str(i), event_type="PING").offset for i in range(3)]
        events.send(PROJECT, "live", "other type", event_type="PONG")
        got = [reader.next() for _ in range(3)]
    assert [int(m["id"]) for m in got] == sent
    assert [json.loads(m["data"])["value"] for m in got] == ["0", "1", "2"]
    # a reconnecting EventSource sends Last-Event-ID: it gets what came after, nothing twice
    headers = {"Last-Event-ID": str(sent[0])}
    with api.stream("GET", f"{P}/events/stream", params=params, headers=headers) as response:
        reader = SseReader(response)
        assert [int(reader.next()["id"]) for _ in range(2)] == sent[1:]
    # after_offset replays from there
    with api.stream(
        "GET", f"{P}/events/stream", params={**params, "after_offset": sent[1]}
    ) as response:
        assert int(SseReader(response).next()["id"]) == sent[2]


def test_event_stream_refuses_a_bad_last_event_id(api: httpx.Client) -> None:
    response = api.get(f"{P}/events/stream", headers={"Last-Event-ID": "soon"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "Last-Event-ID"


def test_event_stream_of_another_project_is_403(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['other']}"}
    response = httpx.get(f"{world.url}{P}/events/stream", headers=headers)
    assert response.status_code == 403


def test_log_stream_follows_until_the_attempt_ends(world: World, api: httpx.Client) -> None:
    jid = world.ids["train_1"]
    log: Path = world.ids["train_log"]
    with api.stream("GET", f"{P}/job-executions/{jid}/logs/stream") as response:
        reader = SseReader(response)
        first = json.loads(reader.next()["data"])
        assert first["text"].startswith("line 1\n")
        assert first["status"] == "RUNNING"
        with log.open("a") as f:
            f.write("line 6\n")
        text = first["text"]
        while "line 6" not in text:
            text += json.loads(reader.next()["data"])["text"]
        world.services.scheduler.executions.set_job_status(  # type: ignore[union-attr]
            PROJECT, jid, "STOPPED"
        )
        end = reader.next()
        while end.get("event") != "end":
            end = reader.next()
        assert json.loads(end["data"])["status"] == "STOPPED"
    assert text == "".join(f"line {i}\n" for i in range(1, 7))
