"""What the monitor processors share: their settings and the streams they read.

**Settings** (:func:`setting`): an execution parameter of the setting's name wins, then the
node's ``config``, then the value given to the processor's constructor, then the default -- so a
workflow fixes a monitor's window in its config and ``tide.start(..., params={"max_samples":
5000})`` bounds one run.

**Streams** (:func:`open_stream`): the predictions (or labels) stream is a local stream
directory, named directly (``predictions="/path"``), by a registered dataset
(``predictions_dataset="ctr_predictions"``, whose ``file://`` URI is the directory), or handed
over by an upstream node (a directory, or ``{"predictions": dir, "labels": dir}``). The
reader's consumer is ``<workflow>-<job>-<stream>``, so a restarted monitor goes on after what it
had handled.

**Ending with the producer** (:class:`JobEnded`): a bounded run (a demo, a test) ends its
streaming jobs by their idle timeouts, which must be long enough for a busy machine's gaps --
so every run waited them out after its data ended (the quickstart: 20 of its ~50 s). With
``ends_with="predict"`` a monitor ends as soon as that job of its execution has ended and its
stream holds nothing more, whatever the idle timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tideflow.errors import InvalidArgumentError
from tideflow.io.local_stream import LocalStreamReader, consumer_name
from tideflow.monitor.baseline import local_path
from tideflow.sdk.context import JobContext


def setting(ctx: JobContext, given: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """``ctx.params[name]``, else ``ctx.config[name]``, else ``given[name]``, else ``default``."""
    if name in ctx.params:
        return ctx.params[name]
    if name in ctx.config:
        return ctx.config[name]
    value = given.get(name)
    return default if value is None else value


def model_of(ctx: JobContext, given: Mapping[str, Any], processor: str) -> str:
    """The monitored model: the ``model`` setting, else the node's ``model=``.

    Raises:
        InvalidArgumentError: Neither names one.
    """
    model = setting(ctx, given, "model") or ctx.model
    if not model:
        raise InvalidArgumentError(
            f"{processor} needs a model: {processor}(model='ctr'), config={{'model': ...}} or a "
            "node with model=",
            field="model",
        )
    return str(model)


def stream_path(ctx: JobContext, given: Mapping[str, Any], stream: str) -> Path:
    """The directory of stream ``stream`` (``predictions`` / ``labels``).

    Raises:
        InvalidArgumentError: Neither ``<stream>`` nor ``<stream>_dataset`` is set.
    """
    path = setting(ctx, given, stream)
    if path:
        return Path(path)
    dataset = setting(ctx, given, f"{stream}_dataset")
    if dataset:
        return local_path(ctx.client.datasets.get(str(dataset)).uri)
    raise InvalidArgumentError(
        f"the monitor needs its {stream} stream: set {stream}=<directory> or "
        f"{stream}_dataset=<registered dataset>",
        field=stream,
    )


def open_stream(ctx: JobContext, given: Mapping[str, Any], stream: str) -> LocalStreamReader:
    """A reader of stream ``stream`` resuming at this job's committed position."""
    path = stream_path(ctx, given, stream)
    dataset = setting(ctx, given, f"{stream}_dataset")
    consumer = consumer_name(str(dataset or stream), ctx.job, workflow=ctx.workflow)
    return LocalStreamReader(path, consumer=consumer, dataset=dataset)


def with_inputs(
    given: Mapping[str, Any], inputs: Sequence[Any], streams: Sequence[str]
) -> dict[str, Any]:
    """``given`` with stream directories taken from the node's inputs, if it has any.

    An upstream node (a ``read_dataset`` that resolves where the streams are) may hand over a
    directory (the first of ``streams``) or a mapping ``{stream: directory}``.
    """
    merged = dict(given)
    for value in inputs:
        if isinstance(value, str | Path):
            merged[streams[0]] = str(value)
        elif isinstance(value, Mapping):
            merged.update({k: str(v) for k, v in value.items() if k in streams and v})
    return merged


def poll(reader: LocalStreamReader, max_records: int = 1000) -> list[dict[str, Any]]:
    """What the stream holds now (up to ``max_records``), without waiting."""
    for batch in reader.batches(max_records=max_records, max_wait=0, idle_timeout=0):
        return batch.records
    return []


class JobEnded:
    """Whether job ``job`` of this execution has ended: its newest attempt is terminal.

    Looked up at most every ``interval`` seconds (one ``ListJobExecutions`` of the job's own
    execution, which a job's token may read), so a reader may ask on every empty poll. A job
    that never ran has not ended. Once ended stays ended: a consumer that drained the stream
    after it is done, even if a rule starts the job again later.
    """

    def __init__(
        self,
        ctx: JobContext,
        job: str,
        *,
        interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job = job
        self._ctx = ctx
        self._interval = interval
        self._clock = clock
        self._checked: float | None = None
        self._ended = False

    def __call__(self) -> bool:
        """Whether the job has ended (at most one look-up per ``interval``)."""
        if self._ended:
            return True
        now = self._clock()
        if self._checked is not None and now - self._checked < self._interval:
            return False
        self._checked = now
        attempts = [
            j for j in self._ctx.client.jobs.list(self._ctx.execution_id) if j.job == self.job
        ]
        self._ended = bool(attempts) and attempts[-1].status.is_terminal
        return self._ended


def job_ended(ctx: JobContext, given: Mapping[str, Any]) -> JobEnded | None:
    """The ``ends_with`` setting as a :class:`JobEnded` (``None`` when unset)."""
    job = setting(ctx, given, "ends_with")
    return JobEnded(ctx, str(job)) if job else None
