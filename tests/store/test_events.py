"""Event log contract: offsets, filters, idempotency, validation."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import Connection, select, text

from tideflow.client import Client
from tideflow.domain import Event
from tideflow.errors import InvalidArgumentError
from tideflow.store import Store, append_events, last_offset, list_events
from tideflow.store.rows.base import table_of
from tideflow.store.rows.event import EventRow

EVENT = table_of(EventRow)


def test_send_assigns_increasing_offsets_and_lists_after_offset(client: Client) -> None:
    first = client.events.send("ctr", "0.31", event_type="DRIFT_DETECTED", sender="monitor")
    second = client.events.send(
        "ctr", "0.40", event_type="DRIFT_DETECTED", sender="monitor", context={"execution_id": 7}
    )
    assert second.offset == first.offset + 1
    assert first.create_time is not None
    assert first.create_time.tzinfo is not None
    assert first.namespace == client.project
    assert list(client.events.list(after_offset=first.offset)) == [second]
    assert client.events.list()[0] == first
    assert second.execution_id == "7"


def test_filters_combine(client: Client) -> None:
    client.events.send("a", "1", event_type="T1", sender="s1")
    client.events.send("b", "2", event_type="T2", sender="s2")
    client.events.send("a", "3", event_type="T2", sender="s1")
    assert [e.value for e in client.events.list(key="a")] == ["1", "3"]
    assert [e.value for e in client.events.list(keys=["a", "b"], event_type="T2")] == ["2", "3"]
    assert [e.value for e in client.events.list(sender="s1", event_types=["T1"])] == ["1"]
    assert [e.value for e in client.events.list(limit=2)] == ["1", "2"]


def test_projects_do_not_see_each_other(client: Client, store: Store) -> None:
    client.events.send("k", "mine")
    with store.transaction() as connection:
        append_events(connection, [Event(key="k", value="theirs", namespace="other_project")])
    assert [e.value for e in client.events.list(key="k")] == ["mine"]


def test_idempotency_key_stores_one_event(client: Client) -> None:
    first = client.events.send("k", "v", idempotency_key="req-1")
    again = client.events.send("k", "different", idempotency_key="req-1")
    assert again == first
    assert len(client.events.list(key="k")) == 1


def test_batch_offsets_are_consecutive_and_duplicates_in_a_batch_collapse(
    store: Store, project: str
) -> None:
    events = [Event(key="k", value=str(i), namespace=project) for i in range(3)]
    events.append(Event(key="k", value="x", namespace=project, idempotency_key="once"))
    events.append(Event(key="k", value="y", namespace=project, idempotency_key="once"))
    with store.transaction() as connection:
        stored = append_events(connection, events)
        assert last_offset(connection) == stored[3].offset
    offsets = [e.offset for e in stored]
    assert offsets[:4] == list(range(offsets[0], offsets[0] + 4))
    assert stored[4] == stored[3]
    with store.transaction(write=False) as connection:
        assert len(list_events(connection, project)) == 4


def test_rolled_back_events_leave_no_gap(store: Store, project: str) -> None:
    with store.transaction() as connection:
        before = last_offset(connection)

    def append_then_fail() -> None:
        with store.transaction() as connection:
            append_events(connection, [Event(key="k", value="lost", namespace=project)])
            raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        append_then_fail()
    with store.transaction() as connection:
        (kept,) = append_events(connection, [Event(key="k", value="kept", namespace=project)])
    assert kept.offset == before + 1  # the rolled-back offset is handed out again
    with store.transaction(write=False) as connection:
        assert [e.value for e in list_events(connection, project)] == ["kept"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": ""}, "event key must not be empty"),
        ({"key": "k" * 257}, "event key is 257 characters long; the limit is 256"),
        (
            {"value": "v" * (1024 * 1024 + 1)},
            "event value is 1048577 bytes; the limit is 1048576 bytes",
        ),
        (
            {"value": "é" * (512 * 1024 + 1)},
            "event value is 1048578 bytes; the limit is 1048576 bytes",
        ),
        ({"event_type": ""}, "event type must not be empty"),
        ({"context": {"x": object()}}, "event context is not JSON-serialisable"),
        ({"idempotency_key": ""}, "idempotency key must not be empty"),
    ],
)
def test_invalid_events_are_refused(
    client: Client, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"key": "k", "value": "v", **kwargs}
    key, value = args.pop("key"), args.pop("value")
    with pytest.raises(InvalidArgumentError, match=message):
        client.events.send(key, value, **args)  # type: ignore[arg-type]
    assert list(client.events.list()) == []


def test_list_rejects_bad_paging(client: Client) -> None:
    with pytest.raises(InvalidArgumentError, match="limit must be between 1 and 10000"):
        client.events.list(limit=0)
    with pytest.raises(InvalidArgumentError, match="after_offset must be a whole number"):
        client.events.list(after_offset=-1)


def test_events_inserted_through_the_driver_read_back_as_sqlalchemy_stores_them(
    store: Store, project: str
) -> None:
    """Appends skip SQLAlchemy's typed insert; the rows match what it would have stored."""
    from tideflow.store.event import append_batch

    sent = [
        Event(key="k'ey", value="v %s ? :x", event_type="T", sender="s", namespace=project),
        Event(key="k", value="é" * 3, context={"b": [1, {"c": None}], "a": "x"}, namespace=project),
    ]
    answer = store.run(lambda c: append_batch(c, sent))
    assert (answer.count, answer.events) == (2, None)
    stored = store.run(
        lambda c: list_events(c, project, after_offset=answer.first_offset - 1), write=False
    )
    assert [e.offset for e in stored] == [answer.first_offset, answer.first_offset + 1]
    assert {e.create_time for e in stored} == {answer.create_time}
    assert stored == [
        dataclasses.replace(e, offset=s.offset, create_time=s.create_time)
        for e, s in zip(sent, stored, strict=True)
    ]

    def raw_time(c: Connection, offset: int) -> object:
        query = select(text("create_time")).select_from(EVENT).where(EVENT.c.offset == offset)
        return c.execute(query).scalar_one()

    # The same event through SQLAlchemy's typed insert, rolled back: the commit time's stored
    # form must be the same (SQLite keeps text, and "+00:00" would break its comparisons).
    with store.engine.connect() as c, c.begin() as transaction:
        offset = answer.first_offset + 1_000_000
        c.execute(
            EVENT.insert(),
            {
                "offset": offset,
                "namespace": project,
                "key": "k",
                "value": "v",
                "event_type": "T",
                "sender": "s",
                "context": "{}",
                "create_time": answer.create_time,
                "idempotency_key": None,
            },
        )
        typed = raw_time(c, offset)
        transaction.rollback()
    ours = store.run(lambda c: raw_time(c, answer.first_offset), write=False)
    assert (type(ours), str(ours)) == (type(typed), str(typed))
