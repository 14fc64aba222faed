"""Datasets and lineage for sources and sinks: register where data is, record what was read.

A job that read a stream from offset 43 to 95 and wrote a model or another stream records
exactly that (:func:`record_lineage`): each source's :meth:`~tideflow.io.base.Source.read_range`
and each sink's :meth:`~tideflow.io.base.Sink.written_range` becomes a
``LineageRef.dataset(name, start_offset=, end_offset=)`` (files: the dataset version, no
offsets), all recorded in one atomic ``client.lineage.record`` call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tideflow.client import Client
from tideflow.domain.lineage import LineageRecord, LineageRef
from tideflow.domain.metadata import Dataset
from tideflow.errors import AlreadyExistsError, InvalidArgumentError
from tideflow.io.base import OffsetRange, Sink, Source

Reference = Source | Sink | OffsetRange | LineageRef | str


def register_dataset(
    client: Client,
    name: str,
    where: Source | Sink,
    *,
    schema: Mapping[str, Any] | None = None,
    description: str = "",
    exist_ok: bool = True,
) -> Dataset:
    """Register dataset ``name`` at the location of a source or sink; set it as its dataset.

    Args:
        client: The project's client.
        name: The dataset's name.
        where: A source or sink; its URI, format and stream flag are registered.
        schema: Column names to type names, or any JSON description.
        description: Free text.
        exist_ok: If the dataset exists with the same URI, return it unchanged (a restarted
            job registers again); with another URI it is updated (a new version).
    """
    location = where.location()
    where.dataset = name
    try:
        return client.datasets.register(
            name,
            uri=location.uri,
            format=location.format,
            stream=location.stream,
            schema=schema,
            description=description,
        )
    except AlreadyExistsError:
        if not exist_ok:
            raise
    current = client.datasets.get(name)
    if (current.uri, current.format, current.stream) == (
        location.uri,
        location.format,
        location.stream,
    ):
        return current
    return client.datasets.update(
        name, uri=location.uri, format=location.format, stream=location.stream
    )


def lineage_ref(reference: Reference) -> LineageRef | None:
    """The lineage reference of a source, sink, offset range, ref or dataset name.

    Sources and sinks that did nothing this session give None (nothing to record).

    Raises:
        InvalidArgumentError: A source or sink with no dataset name.
    """
    if isinstance(reference, LineageRef):
        return reference
    if isinstance(reference, str):
        return LineageRef.dataset(reference)
    if isinstance(reference, OffsetRange):
        return reference.to_lineage_ref()
    if reference.dataset is None:
        raise InvalidArgumentError(
            f"{type(reference).__name__} has no dataset name: pass dataset= or register it "
            "with register_dataset() before recording lineage",
            field="dataset",
        )
    span = reference.read_range() if isinstance(reference, Source) else reference.written_range()
    return span.to_lineage_ref() if span is not None else None


def record_lineage(
    client: Client,
    job_execution_id: int,
    *,
    inputs: Sequence[Reference] = (),
    outputs: Sequence[Reference] = (),
) -> LineageRecord:
    """Record what a job execution read and wrote, with stream offset ranges, in one call."""
    ins = [ref for ref in map(lineage_ref, inputs) if ref is not None]
    outs = [ref for ref in map(lineage_ref, outputs) if ref is not None]
    return client.lineage.record(job_execution_id, inputs=ins, outputs=outs)
