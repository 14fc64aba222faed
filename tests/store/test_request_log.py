"""The request log's flush stores every response, whether or not its call left a marker."""

from __future__ import annotations

from tideflow.store import Store
from tideflow.store.request_log import (
    RequestClaim,
    RequestKey,
    claim_in,
    find_response,
    save_responses,
)


def test_a_flush_answers_marked_and_unmarked_calls_alike(store: Store) -> None:
    marked = [RequestKey("flush", 0, f"marked-{i}") for i in range(3)]
    unmarked = RequestKey("flush", 0, "wrote-nothing")
    with store.transaction() as c:
        for key in marked:
            claim_in(c, RequestClaim(key, "/m"))
        # Before the flush a marker says "applied, answer not stored".
        assert find_response(c, marked[0]) == ("/m", None)
    batch = [(key, "/m", f"answer {key.request_id}".encode()) for key in marked]
    batch.insert(1, (unmarked, "/other", b"answer of a call that wrote nothing"))
    with store.transaction() as c:
        save_responses(c, batch)
    with store.transaction(write=False) as c:
        found = {key: find_response(c, key) for key, _, _ in batch}
    assert found == {key: (method, data) for key, method, data in batch}


def test_a_flush_of_only_marked_calls_stores_each_answer(store: Store) -> None:
    keys = [RequestKey("flush-marked", 3, f"r{i}") for i in range(50)]
    with store.transaction() as c:
        for key in keys:
            claim_in(c, RequestClaim(key, "/m"))
    with store.transaction() as c:
        save_responses(c, [(key, "/m", key.request_id.encode() * 3) for key in keys])
    with store.transaction(write=False) as c:
        assert [find_response(c, key) for key in keys] == [
            ("/m", key.request_id.encode() * 3) for key in keys
        ]
