"""Sending, listing, idempotency, consumers, limits and compaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tideflow.client import Client, connect
from tideflow.domain import Event
from tideflow.errors import InvalidArgumentError


def test_idempotent_send_stores_one_event(client: Client) -> None:
    first = client.events.send("k", "v", idempotency_key="req-1")
    again = client.events.send("k", "other", idempotency_key="req-1")
    assert again == first
    assert [e.value for e in client.events.list()] == ["v"]


def test_send_many_is_ordered_and_all_or_nothing(client: Client) -> None:
    events = client.events.send_many(
        [Event("a", "1"), Event("b", "2", idempotency_key="x"), Event("c", "3")]
    )
    assert [e.offset for e in events] == sorted(e.offset for e in events)
    assert events[0].namespace == client.project
    with pytest.raises(InvalidArgumentError, match="event key must not be empty"):
        client.events.send_many([Event("d", "4"), Event("", "5")])
    assert [e.key for e in client.events.list()] == ["a", "b", "c"]


def test_list_pages_with_an_opaque_cursor(client: Client) -> None:
    sent = [client.events.send("k", str(i)) for i in range(7)]
    pages, cursor = [], None
    while True:
        page = client.events.list(limit=3, cursor=cursor)
        pages.append([e.offset for e in page])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == [[e.offset for e in sent[i : i + 3]] for i in (0, 3, 6)]
    with pytest.raises(InvalidArgumentError, match="invalid cursor 'nonsense'"):
        client.events.list(cursor="nonsense")


def test_list_by_time_range(client: Client) -> None:
    event = client.events.send("k", "v")
    assert event.create_time is not None
    assert list(client.events.list(since=event.create_time)) == [event]
    assert list(client.events.list(until=event.create_time)) == []
    later = event.create_time + timedelta(seconds=1)
    assert list(
        client.events.list(since=event.create_time - timedelta(seconds=1), until=later)
    ) == [event]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keys": []}, "keys is an empty list, which matches nothing"),
        ({"keys": "ab"}, "keys must be a list of strings"),
        ({"event_types": [""]}, "event type must not be empty"),
        ({"since": datetime(2026, 1, 1)}, "since must be timezone-aware"),
        (
            {"since": datetime(2026, 1, 2, tzinfo=UTC), "until": datetime(2026, 1, 1, tzinfo=UTC)},
            "must be after since",
        ),
        ({"limit": 0}, "limit must be between 1 and 10000"),
        ({"after_offset": -1}, "after_offset must be a whole number >= 0"),
    ],
)
def test_invalid_filters_are_rejected(
    client: Client, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        client.events.list(**kwargs)


def test_invalid_listen_arguments(client: Client) -> None:
    with pytest.raises(InvalidArgumentError, match="after_offset must be a whole number"):
        client.events.listen(after_offset=-5)
    with pytest.raises(InvalidArgumentError, match="keys is an empty list"):
        client.events.listen(keys=[])


def test_value_size_limit_names_the_limit_and_stores_nothing(client: Client) -> None:
    biggest = client.events.send("k", "x" * 1_048_576)
    assert len(client.events.list(after_offset=biggest.offset - 1)[0].value) == 1_048_576
    with pytest.raises(InvalidArgumentError, match="the limit is 1048576 bytes"):
        client.events.send("k", "x" * 1_048_577)
    assert [e.offset for e in client.events.list()] == [biggest.offset]


def test_consumer_offsets(client: Client) -> None:
    offsets = [client.events.send("k", str(i)).offset for i in range(3)]
    first, middle, last = offsets
    assert client.events.committed("scheduler") == 0
    client.events.commit("scheduler", middle)
    client.events.commit("scheduler", last)
    assert client.events.committed("scheduler") == last
    with pytest.raises(
        InvalidArgumentError,
        match=f"already committed offset {last}; it cannot go back to {first}",
    ):
        client.events.commit("scheduler", first)
    with pytest.raises(InvalidArgumentError, match="consumer name"):
        client.events.commit("bad name", 1)
    latest = client.events.latest_offset()
    with pytest.raises(
        InvalidArgumentError, match=f"beyond the end of the event log \\(latest offset {latest}\\)"
    ):
        client.events.commit("scheduler", latest + 1000)
    assert client.events.committed("scheduler") == last


def test_compaction_keeps_the_latest_per_key_and_what_consumers_need(empty_url: str) -> None:
    # A database of its own: a consumer of every project (a stopped scheduler's dispatcher,
    # left by an earlier test in the session's shared store) rightly bounds compaction too.
    with connect(empty_url, project="p") as client:
        _compaction_keeps_the_latest_per_key(client)


def _compaction_keeps_the_latest_per_key(client: Client) -> None:
    old = [client.events.send(key, str(i)) for i, key in enumerate(["a", "a", "a", "b", "b"])]
    client.events.commit("slow", old[1].offset)
    deleted = client.events.compact(older_than=timedelta(0))
    # Only a's first two are both superseded and handled by "slow"; b's first is not handled yet.
    assert deleted == 2
    assert [e.value for e in client.events.list()] == ["2", "3", "4"]
    client.events.commit("slow", old[-1].offset)
    assert client.events.compact(older_than=timedelta(0)) == 1
    assert [(e.key, e.value) for e in client.events.list()] == [("a", "2"), ("b", "4")]
    assert client.events.compact(older_than=timedelta(days=1)) == 0


def test_latest_offset_moves_with_sends(client: Client) -> None:
    before = client.events.latest_offset()
    event = client.events.send("k", "v")
    assert client.events.latest_offset() == event.offset > before


def test_nul_in_a_value_is_refused_on_every_backend(client: Client) -> None:
    with pytest.raises(InvalidArgumentError, match="must not contain NUL"):
        client.events.send("k", "a\x00b")
    assert list(client.events.list()) == []
