"""The late-label join: predictions meet their labels by request id, within a bounded window.

Labels arrive late (a click is known seconds or hours after the ad was shown) and the two
streams are read independently, so either side may come first. :class:`LabelJoin` holds the
unmatched side of each request id until the other arrives, within a **join window**:

- at most ``max_pending`` unmatched predictions (and as many unmatched labels) are held; the
  oldest goes first when more arrive -- memory is bounded whatever the streams do;
- with ``max_age`` seconds (on an injectable ``clock``), anything unmatched for longer goes too.

Every prediction or label let go is counted (:attr:`LabelJoin.counts`): ``dropped`` predictions
whose label never came in time, ``late`` labels whose prediction was already dropped (the
request ids of recently dropped predictions are remembered, boundedly, to tell these apart),
``orphans`` labels whose prediction never came, ``duplicates`` second predictions or labels of
one request id (the first wins). A joined pair is handed out once, in the order it completed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tideflow.errors import InvalidArgumentError


@dataclass(frozen=True)
class Joined:
    """A prediction with its label.

    Attributes:
        request_id: The request.
        score: The predicted probability.
        label: The observed outcome (0 or 1).
        version: The model version that predicted it (``None`` when unknown).
        prediction: The prediction record as read.
    """

    request_id: str
    score: float
    label: int
    version: int | None
    prediction: Mapping[str, Any] = field(repr=False, default_factory=dict)


@dataclass
class JoinCounts:
    """What happened to the records the join saw."""

    predictions: int = 0
    labels: int = 0
    joined: int = 0
    dropped: int = 0
    late: int = 0
    orphans: int = 0
    duplicates: int = 0


class LabelJoin:
    """Joins predictions with late labels by request id (see the module docstring).

    Args:
        max_pending: Unmatched predictions (and labels) held at most.
        max_age: Seconds an unmatched record is held at most; ``None``: no age limit.
        clock: Seconds, monotonic (tests inject a fake one).
    """

    def __init__(
        self,
        *,
        max_pending: int = 100_000,
        max_age: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_pending < 1:
            raise InvalidArgumentError(
                f"max_pending must be >= 1, got {max_pending}", field="max_pending"
            )
        if max_age is not None and max_age <= 0:
            raise InvalidArgumentError(f"max_age must be > 0, got {max_age}", field="max_age")
        self.max_pending = max_pending
        self.max_age = max_age
        self.clock = clock
        self.counts = JoinCounts()
        self._predictions: OrderedDict[str, tuple[float, Mapping[str, Any]]] = OrderedDict()
        self._labels: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._dropped: OrderedDict[str, None] = OrderedDict()
        self._done: OrderedDict[str, None] = OrderedDict()

    @property
    def pending(self) -> tuple[int, int]:
        """Unmatched (predictions, labels) held now."""
        return len(self._predictions), len(self._labels)

    def add_prediction(self, record: Mapping[str, Any]) -> Joined | None:
        """Take a prediction ``{request_id, score, version, ...}``; its pair if its label waited.

        Raises:
            InvalidArgumentError: The record has no ``request_id`` or no numeric ``score``.
        """
        request_id, score = _request_id(record, "prediction"), _score(record)
        self.counts.predictions += 1
        now = self.clock()
        self.expire(now)
        if request_id in self._predictions or request_id in self._done:
            self.counts.duplicates += 1
            return None
        waiting = self._labels.pop(request_id, None)
        if waiting is not None:
            return self._join(request_id, score, waiting[1], record)
        self._predictions[request_id] = (now, record)
        self._bound(self._predictions, dropped=True)
        return None

    def add_label(self, request_id: Any, label: Any) -> Joined | None:
        """Take a label; its pair if its prediction waited.

        Raises:
            InvalidArgumentError: ``label`` is not 0/1 (or a boolean).
        """
        key = str(request_id)
        value = _label(label, key)
        self.counts.labels += 1
        now = self.clock()
        self.expire(now)
        if key in self._labels or key in self._done:
            self.counts.duplicates += 1
            return None
        if key in self._dropped:
            self.counts.late += 1
            return None
        waiting = self._predictions.pop(key, None)
        if waiting is not None:
            record = waiting[1]
            return self._join(key, _score(record), value, record)
        self._labels[key] = (now, value)
        self._bound(self._labels, dropped=False)
        return None

    def expire(self, now: float | None = None) -> None:
        """Let go of records unmatched for longer than ``max_age``."""
        if self.max_age is None:
            return
        limit = (self.clock() if now is None else now) - self.max_age
        while self._predictions:
            key, (since, _) = next(iter(self._predictions.items()))
            if since > limit:
                break
            self._drop_prediction(key)
        while self._labels:
            key, (since, _) = next(iter(self._labels.items()))
            if since > limit:
                break
            del self._labels[key]
            self.counts.orphans += 1

    def _bound(self, held: OrderedDict[str, Any], *, dropped: bool) -> None:
        while len(held) > self.max_pending:
            key = next(iter(held))
            if dropped:
                self._drop_prediction(key)
            else:
                del held[key]
                self.counts.orphans += 1

    def _drop_prediction(self, key: str) -> None:
        del self._predictions[key]
        self.counts.dropped += 1
        self._remember(self._dropped, key)

    def _remember(self, ids: OrderedDict[str, None], key: str) -> None:
        ids[key] = None
        while len(ids) > self.max_pending:
            ids.popitem(last=False)

    def _join(self, key: str, score: float, label: int, record: Mapping[str, Any]) -> Joined:
        self.counts.joined += 1
        self._remember(self._done, key)
        version = record.get("version")
        return Joined(key, score, label, int(version) if version is not None else None, record)


def _request_id(record: Mapping[str, Any], what: str) -> str:
    value = record.get("request_id")
    if value is None:
        raise InvalidArgumentError(f"a {what} record has no request_id: {dict(record)!r}")
    return str(value)


def _score(record: Mapping[str, Any]) -> float:
    value = record.get("score")
    if isinstance(value, list | tuple) and value:  # a class-probability pair: P(1)
        value = value[-1]
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(
            f"prediction {record.get('request_id')!r} has no numeric score: {value!r}",
            field="score",
        ) from e


def _label(value: Any, request_id: str) -> int:
    if isinstance(value, bool):
        return int(value)
    if value in (0, 1):
        return int(value)
    raise InvalidArgumentError(
        f"label of request {request_id!r} must be 0 or 1, got {value!r}", field="label"
    )
