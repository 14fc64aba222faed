"""The late-label join: out-of-order, missing, duplicate and too-late labels, bounded memory."""

from __future__ import annotations

import random

import pytest

from tideflow.errors import InvalidArgumentError
from tideflow.monitor import LabelJoin


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def prediction(i: int, score: float = 0.3, version: int = 1) -> dict[str, object]:
    return {"request_id": f"r{i}", "model": "m", "version": version, "score": score}


def test_labels_meet_their_predictions_whichever_comes_first() -> None:
    join = LabelJoin()
    assert join.add_prediction(prediction(1, 0.9)) is None
    pair = join.add_label("r1", 1)
    assert pair is not None
    assert (pair.request_id, pair.score, pair.label, pair.version) == ("r1", 0.9, 1, 1)
    assert join.add_label("r2", 0) is None  # label first
    pair = join.add_prediction(prediction(2, 0.2, version=3))
    assert pair is not None
    assert (pair.label, pair.version) == (0, 3)
    assert join.pending == (0, 0)
    assert join.counts.joined == 2


def test_a_shuffled_stream_joins_every_pair_exactly_once() -> None:
    rng = random.Random(5)
    events = [("p", i) for i in range(2000)] + [("l", i) for i in range(2000)]
    rng.shuffle(events)
    join = LabelJoin(max_pending=5000)
    pairs = []
    for kind, i in events:
        got = (
            join.add_prediction(prediction(i, i / 2000))
            if kind == "p"
            else join.add_label(f"r{i}", i % 2)
        )
        if got is not None:
            pairs.append(got)
    assert sorted(p.request_id for p in pairs) == sorted(f"r{i}" for i in range(2000))
    assert all(p.label == int(p.request_id[1:]) % 2 for p in pairs)
    assert all(p.score == int(p.request_id[1:]) / 2000 for p in pairs)
    assert join.pending == (0, 0)


def test_missing_labels_are_dropped_past_the_window_and_memory_stays_bounded() -> None:
    join = LabelJoin(max_pending=100)
    for i in range(1000):
        join.add_prediction(prediction(i))  # no label ever comes
    assert join.pending == (100, 0)
    assert join.counts.dropped == 900
    # a label beyond the window: its prediction was dropped -> counted late, not joined
    assert join.add_label("r850", 1) is None
    assert join.counts.late == 1
    # dropped ids are remembered boundedly too: a very old one waits as an unmatched label
    assert join.add_label("r5", 1) is None
    assert join.counts.late == 1
    assert join.pending == (100, 1)
    # a label within the window still joins
    assert join.add_label("r999", 0) is not None


def test_age_limit_drops_old_predictions_and_orphan_labels() -> None:
    clock = Clock()
    join = LabelJoin(max_age=10.0, clock=clock)
    join.add_prediction(prediction(1))
    join.add_label("ghost", 1)  # its prediction never comes
    clock.now = 5.0
    join.add_prediction(prediction(2))
    clock.now = 11.0
    join.expire()
    assert join.pending == (1, 0)
    assert (join.counts.dropped, join.counts.orphans) == (1, 1)
    assert join.add_label("r1", 1) is None
    assert join.counts.late == 1
    assert join.add_label("r2", 1) is not None


def test_duplicates_are_counted_and_the_first_wins() -> None:
    join = LabelJoin()
    join.add_prediction(prediction(1, 0.4))
    assert join.add_prediction(prediction(1, 0.8)) is None
    pair = join.add_label("r1", 1)
    assert pair is not None
    assert pair.score == 0.4
    assert join.add_label("r1", 0) is None
    assert join.counts.duplicates == 2
    assert join.counts.joined == 1


def test_bad_records_are_refused_naming_the_request() -> None:
    join = LabelJoin()
    with pytest.raises(InvalidArgumentError, match="no request_id"):
        join.add_prediction({"score": 0.1})
    with pytest.raises(InvalidArgumentError, match="'r1' has no numeric score"):
        join.add_prediction({"request_id": "r1", "score": "high"})
    with pytest.raises(InvalidArgumentError, match="label of request 'r2' must be 0 or 1"):
        join.add_label("r2", 7)
    with pytest.raises(InvalidArgumentError, match="max_pending must be >= 1"):
        LabelJoin(max_pending=0)
