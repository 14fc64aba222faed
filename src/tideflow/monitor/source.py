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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
