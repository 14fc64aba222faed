"""The predictor: micro-batched scoring on the hot-swapped model, predictions to a sink.

:class:`Predictor` is the engine of ``tideflow serve`` (the HTTP face is
:mod:`tideflow.serving.http`) and can be used directly from Python. Requests (each a list of
JSON records) go into one queue; a single worker takes the first waiting request, gathers more
for at most ``max_wait`` seconds or until ``max_batch`` records, reads the holder's reference
**once** and scores the whole batch with one model call. Every request of a batch is therefore
answered by the same version, and a swap that happens meanwhile only affects later batches
(in-flight requests finish on the old version). One bad request in a batch (a missing
feature) fails alone: the batch is scored again request by request to find it.

When the served version has a signature (``input_example=`` at ``log_model``,
:mod:`tideflow.domain.signature`), every request is checked against it before the model call:
a missing required field or a value of the wrong type fails that request alone with an
:class:`~tideflow.errors.InvalidArgumentError` naming the field (HTTP 400), rather than a
``KeyError`` from inside the model. Without a signature, a model's ``KeyError`` for a name that
a record of the request lacks is also answered as that request's mistake (400 naming the field).

Every answered record gets a request id (the caller's, or a fresh UUID) and is written to the
sink with its features, score, version, the event offset that version was deployed at, and
the time.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tideflow.client.local import Client
from tideflow.domain.signature import Signature
from tideflow.errors import InvalidArgumentError, TideflowError, UnavailableError
from tideflow.serving.holder import ModelHolder, Served
from tideflow.serving.scorer import Scorer, default_scorer, plain
from tideflow.serving.sink import BackgroundSink, PredictionSink

log = logging.getLogger(__name__)

MAX_RECORDS = 10_000
"""Records one request may carry."""


@dataclass(frozen=True)
class Prediction:
    """One record's answer."""

    request_id: str
    score: Any


@dataclass(frozen=True)
class PredictResult:
    """The answer to one request: every record scored by one version.

    Attributes:
        model: The model's name.
        version: The version that scored every record.
        offset: An event offset at which that version was the DEPLOYED one.
        predictions: One per record, in order.
    """

    model: str
    version: int
    offset: int
    predictions: list[Prediction]


class PredictorMetrics:
    """The predictor's Prometheus metrics, in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tideflow_predictor_requests", "Predict requests by outcome.", ["outcome"], registry=r
        )
        self.predictions = Counter("tideflow_predictor_predictions", "Records scored.", registry=r)
        self.latency = Histogram(
            "tideflow_predictor_request_seconds",
            "Time from a request's arrival to its answer.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.batch_size = Histogram(
            "tideflow_predictor_batch_records",
            "Records per model call.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=r,
        )
        self.served_version = Gauge(
            "tideflow_predictor_served_version",
            "The model version served (0 when none is deployed).",
            registry=r,
        )
        self.swaps = Counter("tideflow_predictor_swaps", "Model version swaps.", registry=r)
        self.load_failures = Counter(
            "tideflow_predictor_load_failures",
            "Deployed versions that failed to load.",
            registry=r,
        )


@dataclass
class _Request:
    records: list[Mapping[str, Any]]
    request_ids: list[str]
    future: Future[PredictResult]


class Predictor:
    """Serves ``model``'s DEPLOYED version with hot swap and micro-batching.

    Args:
        client: A client of the model's project.
        model: The registered model.
        sink: Where every prediction is written (none by default), from a thread of its own
            (:class:`~tideflow.serving.sink.BackgroundSink`): answers never wait for the disk.
        scorer: ``scorer(model_object, records) -> scores``; :func:`default_scorer` by default.
        features: Column order for models fitted on arrays (see :mod:`tideflow.serving.scorer`).
        max_batch: Most records per model call.
        max_wait: Longest a request waits for others to join its batch, in seconds.
        registry: The Prometheus registry of the metrics (a new one by default).
    """

    def __init__(
        self,
        client: Client,
        model: str,
        *,
        sink: PredictionSink | None = None,
        scorer: Scorer | None = None,
        features: Sequence[str] | None = None,
        max_batch: int = 256,
        max_wait: float = 0.001,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.model = model
        self.metrics = PredictorMetrics(registry)
        self.holder = ModelHolder(
            client,
            model,
            on_swap=self._swapped,
            on_error=lambda e: self.metrics.load_failures.inc(),
        )
        self.sink = None if sink is None else BackgroundSink(sink)
        self._features = list(features) if features is not None else None
        self._scorer = scorer
        self.max_batch = max(1, max_batch)
        self.max_wait = max(0.0, max_wait)
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._signature: tuple[int, Signature | None] | None = None  # (version, its signature)

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> Predictor:
        """Load the deployed version, follow deploys, start the batch worker."""
        self.holder.start()
        served = self.holder.current
        self.metrics.served_version.set(0 if served is None else served.version.version)
        self._worker = threading.Thread(target=self._work, name="predictor-batches", daemon=True)
        self._worker.start()
        return self

    def stop(self) -> None:
        """Answer what is queued, then stop; close the sink."""
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(30)
            self._worker = None
        self.holder.stop()
        if self.sink is not None:
            self.sink.close()

    def __enter__(self) -> Predictor:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def ready(self) -> bool:
        """Whether a deployed version is loaded."""
        return self.holder.current is not None

    # -- predicting -------------------------------------------------------------------------------

    def submit(
        self, records: Sequence[Mapping[str, Any]], request_ids: Sequence[str] | None = None
    ) -> Future[PredictResult]:
        """Queue ``records`` for scoring; the future holds the :class:`PredictResult`.

        Raises:
            InvalidArgumentError: Not a list of JSON objects, too many, or ids that do not match.
        """
        records = _check_records(records)
        if request_ids is None:
            ids = [uuid.uuid4().hex for _ in records]
        else:
            ids = [str(i) for i in request_ids]
            if len(ids) != len(records):
                raise InvalidArgumentError(
                    f"{len(ids)} request ids for {len(records)} records", field="request_ids"
                )
        future: Future[PredictResult] = Future()
        self._queue.put(_Request(records, ids, future))
        return future

    def predict(
        self,
        records: Sequence[Mapping[str, Any]],
        request_ids: Sequence[str] | None = None,
        *,
        timeout: float | None = 30.0,
    ) -> PredictResult:
        """Score ``records`` and wait for the answer.

        Raises:
            UnavailableError: No version is deployed.
            InvalidArgumentError: Bad records.
        """
        return self.submit(records, request_ids).result(timeout)

    # -- the batch worker -------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stopping = self._gather(first)
            try:
                self._serve(batch)
            except Exception:  # the worker must survive anything a batch does
                log.exception("predictor batch failed")
            if stopping:
                return

    def _gather(self, first: _Request) -> tuple[list[_Request], bool]:
        batch = [first]
        size = len(first.records)
        deadline = time.monotonic() + self.max_wait
        while size < self.max_batch:
            left = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
            size += len(item.records)
        return batch, False

    def _serve(self, batch: list[_Request]) -> None:
        served = self.holder.current  # one reference for the whole batch
        if served is None:
            error = UnavailableError(f"no version of model {self.model!r} is deployed")
            for request in batch:
                self._fail(request, error)
            return
        signature = self.signature(served)
        if signature is not None:
            batch = [request for request in batch if self._conforms(request, signature)]
            if not batch:
                return
        records = [r for request in batch for r in request.records]
        try:
            scores = self._score(served, records)
        except Exception as error:
            if len(batch) == 1:
                self._fail(batch[0], _missing_field(error, batch[0].records) or error)
            else:  # find the culprit: score each request alone
                for request in batch:
                    self._serve([request])
            return
        self.metrics.batch_size.observe(len(records))
        now = datetime.now(UTC).isoformat()
        version = served.version.version
        start = 0
        written: list[dict[str, Any]] = []
        for request in batch:
            part = scores[start : start + len(request.records)]
            start += len(request.records)
            predictions = [Prediction(i, s) for i, s in zip(request.request_ids, part, strict=True)]
            request.future.set_result(
                PredictResult(self.model, version, served.offset, predictions)
            )
            self.metrics.requests.labels("ok").inc()
            written.extend(
                {
                    "request_id": p.request_id,
                    "model": self.model,
                    "version": version,
                    "offset": served.offset,
                    "features": features,
                    "score": p.score,
                    "time": now,
                }
                for p, features in zip(predictions, request.records, strict=True)
            )
        self.metrics.predictions.inc(len(records))
        if self.sink is not None:
            self.sink.write(written)

    def signature(self, served: Served | None = None) -> Signature | None:
        """The signature of ``served`` (the served version by default), if it has one."""
        served = served or self.holder.current
        if served is None:
            return None
        cached = self._signature
        number = served.version.version
        if cached is not None and cached[0] == number:
            return cached[1]
        try:
            found = Signature.of(served.version.tags)
        except InvalidArgumentError:  # a tag someone wrote by hand: serve unchecked
            log.warning("model %r version %s: unreadable signature tag", self.model, number)
            found = None
        self._signature = (number, found)
        return found

    def _conforms(self, request: _Request, signature: Signature) -> bool:
        try:
            signature.check(request.records)
        except InvalidArgumentError as error:  # counted as "invalid" by the HTTP face
            request.future.set_exception(error)
            return False
        return True

    def _score(self, served: Served, records: list[Mapping[str, Any]]) -> list[Any]:
        if self._scorer is not None:
            scores = [plain(s) for s in self._scorer(served.model, records)]
        else:
            scores = default_scorer(served.model, records, features=self._features)
        if len(scores) != len(records):
            raise InvalidArgumentError(
                f"the scorer returned {len(scores)} scores for {len(records)} records",
                field="scorer",
            )
        return scores

    def _fail(self, request: _Request, error: BaseException) -> None:
        outcome = "unavailable" if isinstance(error, UnavailableError) else "error"
        if not isinstance(error, TideflowError):
            log.warning("predict failed: %s", error)
        self.metrics.requests.labels(outcome).inc()
        request.future.set_exception(error)

    def _swapped(self, served: Served | None) -> None:
        self.metrics.swaps.inc()
        self.metrics.served_version.set(0 if served is None else served.version.version)


def _missing_field(
    error: Exception, records: Sequence[Mapping[str, Any]]
) -> InvalidArgumentError | None:
    """A model's ``KeyError`` for a field some record lacks, as the caller's mistake (400).

    Without a signature the predictor cannot know what a model reads; when the model itself
    fails looking up a name that a record of the request does not have, the request is what
    is wrong, and the caller should learn which field -- not get a 500.
    """
    if not isinstance(error, KeyError) or len(error.args) != 1:
        return None
    name = error.args[0]
    if not isinstance(name, str):
        return None
    for index, record in enumerate(records):
        if name not in record:
            return InvalidArgumentError(
                f"record {index} lacks field {name!r}, which the model reads (log the model "
                "with input_example= to have requests checked against its signature)",
                field=name,
            )
    return None


def _check_records(records: Any) -> list[Mapping[str, Any]]:
    if not isinstance(records, list | tuple) or not all(isinstance(r, Mapping) for r in records):
        raise InvalidArgumentError("records must be a list of JSON objects", field="records")
    if len(records) > MAX_RECORDS:
        raise InvalidArgumentError(
            f"{len(records)} records in one request; the limit is {MAX_RECORDS}", field="records"
        )
    return list(records)
