"""Model Center contract: lifecycle, events, history, aliases, paging, bad input."""

from __future__ import annotations

import json

import pytest

from tideflow.client import Client, connect
from tideflow.domain import ModelStatus, ModelVersionEvent
from tideflow.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    IllegalTransitionError,
    InvalidArgumentError,
    NotFoundError,
)
from tideflow.metadata import ExecutionService, WorkflowService


def validated(client: Client, model: str, count: int) -> list[int]:
    versions = []
    for _ in range(count):
        version = client.models.create_version(model).version
        client.models.set_status(model, version, "VALIDATED")
        versions.append(version)
    return versions


def statuses(client: Client, model: str) -> dict[int, ModelStatus]:
    return {v.version: v.status for v in client.models.list_versions(model, limit=1000)}


def test_create_version_numbers_from_one_and_stores_fields(client: Client) -> None:
    client.models.create("ctr", description="click-through", tags={"team": "ads"})
    v = client.models.create_version(
        "ctr", uri="file:///m/1", flavour="sklearn", metrics={"auc": 0.71}, params={"lr": 0.05}
    )
    assert (v.version, v.status, v.flavour) == (1, ModelStatus.GENERATED, "sklearn")
    assert v.create_time is not None
    assert v.create_time.tzinfo is not None
    assert client.models.get_version("ctr", version=1) == v
    assert client.models.create_version("ctr").version == 2
    model = client.models.get("ctr")
    assert (model.description, dict(model.tags), model.last_version) == (
        "click-through",
        {"team": "ads"},
        2,
    )


def test_every_change_appends_its_event_with_model_value(client: Client) -> None:
    client.models.create("ctr")
    (v1,) = validated(client, "ctr", 1)
    client.models.deploy("ctr", v1)
    (v2,) = validated(client, "ctr", 1)
    client.models.deploy("ctr", v2)
    events = client.events.list(key="ctr")
    assert [e.event_type for e in events] == [
        ModelVersionEvent.GENERATED,
        ModelVersionEvent.VALIDATED,
        ModelVersionEvent.DEPLOYED,
        ModelVersionEvent.GENERATED,
        ModelVersionEvent.VALIDATED,
        ModelVersionEvent.DEPRECATED,
        ModelVersionEvent.DEPLOYED,
    ]
    assert all(e.namespace == client.project for e in events)
    assert json.loads(events[5].value) == {
        "model": "ctr",
        "version": 1,
        "status": "DEPRECATED",
        "previous": "DEPLOYED",
    }
    offsets = [e.offset for e in events]
    assert offsets == sorted(set(offsets))


def test_deploy_deprecates_previous_and_rollback_redeploys(client: Client) -> None:
    client.models.create("ctr")
    v1, v2, v3 = validated(client, "ctr", 3)
    client.models.deploy("ctr", v1)
    client.models.deploy("ctr", v2)
    assert statuses(client, "ctr") == {
        v1: ModelStatus.DEPRECATED,
        v2: ModelStatus.DEPLOYED,
        v3: ModelStatus.VALIDATED,
    }
    assert client.models.get_version("ctr", status="DEPLOYED").version == v2
    assert client.models.rollback("ctr").version == v1
    assert statuses(client, "ctr")[v1] is ModelStatus.DEPLOYED
    assert statuses(client, "ctr")[v2] is ModelStatus.DEPRECATED
    # Deploying the deployed version again changes nothing and emits nothing.
    before = len(client.events.list(key="ctr"))
    assert client.models.deploy("ctr", v1).status is ModelStatus.DEPLOYED
    assert len(client.events.list(key="ctr")) == before


def test_set_status_deployed_goes_through_deploy(client: Client) -> None:
    client.models.create("ctr")
    v1, v2 = validated(client, "ctr", 2)
    client.models.set_status("ctr", v1, ModelStatus.DEPLOYED)
    client.models.set_status("ctr", v2, "deployed")
    assert statuses(client, "ctr") == {v1: ModelStatus.DEPRECATED, v2: ModelStatus.DEPLOYED}


def test_set_status_takes_a_string_in_any_case_or_a_model_status(client: Client) -> None:
    client.models.create("ctr")
    v1, v2, v3 = (client.models.create_version("ctr").version for _ in range(3))
    assert client.models.set_status("ctr", v1, "VALIDATED").status is ModelStatus.VALIDATED
    assert (
        client.models.set_status("ctr", v2, ModelStatus.VALIDATED).status is ModelStatus.VALIDATED
    )
    assert client.models.set_status("ctr", v3, "rejected").status is ModelStatus.REJECTED
    assert statuses(client, "ctr") == {
        v1: ModelStatus.VALIDATED,
        v2: ModelStatus.VALIDATED,
        v3: ModelStatus.REJECTED,
    }
    with pytest.raises(IllegalTransitionError, match="REJECTED -> DEPLOYED") as caught:
        client.models.deploy("ctr", v3)
    assert (caught.value.current, caught.value.requested) == ("REJECTED", "DEPLOYED")


def test_get_version_needs_exactly_one_selector(client: Client) -> None:
    client.models.create("ctr")
    client.models.create_version("ctr")
    with pytest.raises(
        InvalidArgumentError, match=r"which version of model 'ctr'\? .*\(got none\)"
    ):
        client.models.get_version("ctr")
    with pytest.raises(InvalidArgumentError, match="got version=1, alias='champion'"):
        client.models.get_version("ctr", version=1, alias="champion")
    assert client.models.get_version("ctr", version=1).version == 1


def test_rollback_without_deprecated_version_is_refused(client: Client) -> None:
    client.models.create("ctr")
    (v1,) = validated(client, "ctr", 1)
    client.models.deploy("ctr", v1)
    with pytest.raises(FailedPreconditionError, match="no DEPRECATED version"):
        client.models.rollback("ctr")


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ([], "DEPLOYED"),
        ([], "DEPRECATED"),
        (["VALIDATED"], "REJECTED"),
        (["REJECTED"], "VALIDATED"),
        (["DELETED"], "GENERATED"),
        (["VALIDATED"], "GENERATED"),
    ],
)
def test_illegal_transitions_name_both_statuses(
    client: Client, path: list[str], target: str
) -> None:
    client.models.create("ctr")
    version = client.models.create_version("ctr").version
    for status in path:
        client.models.set_status("ctr", version, status)
    current = path[-1] if path else "GENERATED"
    before = client.events.list(key="ctr")
    with pytest.raises(
        IllegalTransitionError, match=f"ctr/1: illegal transition {current} -> {target}"
    ) as caught:
        client.models.set_status("ctr", version, target)
    assert (caught.value.current, caught.value.requested) == (current, target)
    assert client.models.get_version("ctr", version=version).status == current
    assert list(client.events.list(key="ctr")) == list(before)


def test_history_is_kept_per_version(client: Client) -> None:
    client.models.create("ctr")
    (v1,) = validated(client, "ctr", 1)
    client.models.deploy("ctr", v1)
    client.models.delete_version("ctr", v1)
    changes = client.models.history("ctr", v1)
    assert [(c.previous, c.status) for c in changes] == [
        (None, ModelStatus.GENERATED),
        (ModelStatus.GENERATED, ModelStatus.VALIDATED),
        (ModelStatus.VALIDATED, ModelStatus.DEPLOYED),
        (ModelStatus.DEPLOYED, ModelStatus.DELETED),
    ]
    times = [c.time for c in changes]
    assert times == sorted(times)


def test_version_numbers_are_never_reused_after_delete(client: Client) -> None:
    client.models.create("ctr")
    for _ in range(3):
        client.models.create_version("ctr")
    client.models.delete_version("ctr", 3)
    assert client.models.create_version("ctr").version == 4


def test_aliases_point_at_versions_without_changing_status(client: Client) -> None:
    client.models.create("ctr")
    v1, v2 = validated(client, "ctr", 2)
    client.models.set_alias("ctr", "champion", v1)
    assert client.models.get_version("ctr", alias="champion").version == v1
    client.models.set_alias("ctr", "champion", v2)
    client.models.set_alias("ctr", "challenger", v1)
    assert client.models.aliases("ctr") == {"challenger": v1, "champion": v2}
    assert client.models.get_version("ctr", alias="champion").status is ModelStatus.VALIDATED
    client.models.delete_version("ctr", v1)
    assert client.models.aliases("ctr") == {"champion": v2}
    with pytest.raises(FailedPreconditionError, match="DELETED"):
        client.models.set_alias("ctr", "old", v1)
    client.models.delete_alias("ctr", "champion")
    with pytest.raises(NotFoundError, match="has no alias 'champion'"):
        client.models.get_version("ctr", alias="champion")
    with pytest.raises(NotFoundError, match="has no alias 'champion'"):
        client.models.delete_alias("ctr", "champion")


def test_list_versions_pages_with_opaque_cursor(client: Client) -> None:
    client.models.create("ctr")
    for _ in range(7):
        client.models.create_version("ctr")
    client.models.set_status("ctr", 2, "VALIDATED")
    seen, cursor = [], None
    while True:
        page = client.models.list_versions("ctr", limit=3, cursor=cursor)
        seen += [v.version for v in page]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == list(range(1, 8))
    assert len(client.models.list_versions("ctr", limit=7)) == 7
    assert client.models.list_versions("ctr", limit=7).next_cursor is None
    assert [v.version for v in client.models.list_versions("ctr", status="VALIDATED")] == [2]
    with pytest.raises(InvalidArgumentError, match="invalid cursor"):
        client.models.list_versions("ctr", cursor="garbage!")
    with pytest.raises(InvalidArgumentError, match="limit must be between 1 and 1000"):
        client.models.list_versions("ctr", limit=0)


def test_list_models_pages(client: Client) -> None:
    for name in ("a", "b", "c"):
        client.models.create(name)
    first = client.models.list(limit=2)
    assert [m.name for m in first] == ["a", "b"]
    assert [m.name for m in client.models.list(limit=2, cursor=first.next_cursor)] == ["c"]


def test_unknown_model_and_version_are_named(client: Client) -> None:
    with pytest.raises(NotFoundError, match="model 'nope' not found") as caught:
        client.models.create_version("nope")
    assert (caught.value.entity, caught.value.key) == ("model", "nope")
    client.models.create("ctr")
    with pytest.raises(NotFoundError, match="model version 9 of model 'ctr' not found"):
        client.models.get_version("ctr", version=9)
    with pytest.raises(NotFoundError, match="model version 9 of model 'ctr' not found"):
        client.models.set_status("ctr", 9, "VALIDATED")
    with pytest.raises(NotFoundError, match="in status DEPLOYED"):
        client.models.get_version("ctr", status="DEPLOYED")
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        client.models.list_versions("nope")
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        client.models.history("nope", 1)
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        client.models.deploy("nope", 1)


def test_longest_texts_fit_on_every_backend(client: Client) -> None:
    # 16,383 four-byte characters: the most a MariaDB TEXT column (65,535 bytes) can hold.
    widest = "\N{GRINNING FACE}" * 16_383
    client.models.create("ctr", description=widest)
    v = client.models.create_version(
        "ctr", uri="u" * 2048, flavour="f" * 128, description=widest, tags={"k": widest}
    )
    assert client.models.get_version("ctr", version=v.version) == v
    assert v.description == widest
    assert client.models.get("ctr").description == widest


def test_version_source_must_be_a_job_execution_of_the_project(
    client: Client, store_url: str
) -> None:
    with connect(store_url, project=f"{client.project}_other") as other:
        workflows, executions = WorkflowService(other.store), ExecutionService(other.store)
        workflows.create_snapshot(other.project, "wf", plan="{}")
        run = executions.create_execution(other.project, "wf")
        foreign = executions.create_job_execution(other.project, run.execution_id, "train")
    client.models.create("ctr")
    with pytest.raises(NotFoundError, match="job execution"):
        client.models.create_version("ctr", job_execution_id=foreign.job_execution_id)
    assert client.models.get("ctr").last_version == 0
    assert list(client.events.list()) == []


def test_duplicate_model_is_refused(client: Client) -> None:
    client.models.create("ctr")
    with pytest.raises(AlreadyExistsError, match="model 'ctr' already exists"):
        client.models.create("ctr")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must not be empty"),
        ("has space", "is not valid"),
        ("dot.ted", "is not valid"),
        ("9lives", "is not valid"),
        ("x" * 129, "the limit is 128"),
    ],
)
def test_invalid_model_names_are_refused(client: Client, name: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        client.models.create(name)
    assert len(client.models.list()) == 0


def test_bad_arguments_write_nothing(client: Client) -> None:
    client.models.create("ctr")
    before = client.events.list()
    with pytest.raises(
        InvalidArgumentError, match="uri is 3000 characters long; the limit is 2048"
    ):
        client.models.create_version("ctr", uri="u" * 3000)
    with pytest.raises(InvalidArgumentError, match="metric 'auc' must be a finite number"):
        client.models.create_version("ctr", metrics={"auc": float("nan")})
    with pytest.raises(InvalidArgumentError, match="params is not JSON-serialisable"):
        client.models.create_version("ctr", params={"f": object()})
    with pytest.raises(InvalidArgumentError, match="unknown model status 'LIVE'"):
        client.models.set_status("ctr", 1, "LIVE")
    with pytest.raises(InvalidArgumentError, match="exactly one of"):
        client.models.get_version("ctr", version=1, status="DEPLOYED")
    with pytest.raises(NotFoundError, match="job execution"):
        client.models.create_version("ctr", job_execution_id=987654)
    with pytest.raises(InvalidArgumentError, match="description is 16384 characters long"):
        client.models.create_version("ctr", description="\N{GRINNING FACE}" * 16_384)
    with pytest.raises(InvalidArgumentError, match="uri must not contain NUL"):
        client.models.create_version("ctr", uri="file:///m\x00")
    with pytest.raises(InvalidArgumentError, match="flavour is 129 characters long"):
        client.models.create_version("ctr", flavour="f" * 129)
    with pytest.raises(InvalidArgumentError, match="tags must map strings to strings"):
        client.models.create_version("ctr", tags={"team": 1})  # type: ignore[dict-item]
    assert list(client.events.list()) == list(before)
    assert client.models.get("ctr").last_version == 0
    assert client.models.create_version("ctr").version == 1
