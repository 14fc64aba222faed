"""The JSON API over HTTP on a populated temporary store: every endpoint, errors, auth, SSE."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.web.api_support import PROJECT, WORKFLOW, World, start_world

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
    }


def test_every_openapi_path_answers(world: World, api: httpx.Client) -> None:
    document = api.get(f"{API}/openapi.json").json()
    paths = set(document["paths"])
    samples = sample_paths(world)
    assert paths == set(samples), "every API path has a sample here (and nothing else exists)"
    for template, url in samples.items():
        assert set(document["paths"][template]) == {"get"}, template
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
