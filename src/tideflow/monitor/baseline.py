"""The training samples of a model version, found through lineage: :func:`load_baseline`.

``client.lineage.upstream(model=, version=)`` names the job executions that produced the
version and the dataset versions recorded with it -- for streams, the offset range that version
was trained on (a streaming trainer's version: its own window, not the whole attempt's). Each dataset's
registered location is read with :mod:`tideflow.io`: a local stream (a ``file://`` directory)
from ``start_offset`` to ``end_offset``, a CSV / Parquet / JSON Lines file whole. Records that
carry none of the watched features (a labels stream beside the features stream) are skipped.

Only the newest ``limit`` samples are kept: the baseline of a long-trained streaming model is
what it saw last, and memory stays bounded. When several offset ranges of one dataset were
recorded with the version, each range is read.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from tideflow.domain.lineage import LineageKind, LineageRef
from tideflow.errors import InvalidArgumentError
from tideflow.monitor.drift import features_of

log = logging.getLogger(__name__)


def training_inputs(client: Any, model: str, version: int) -> list[LineageRef]:
    """The dataset references upstream of ``model`` ``version`` (distinct, in recorded order)."""
    found: dict[tuple[str, int | None, int | None, int | None], LineageRef] = {}
    for record in client.lineage.upstream(model=model, version=version):
        for ref in record.inputs:
            if ref.kind is LineageKind.DATASET:
                found.setdefault((ref.name, ref.version, ref.start_offset, ref.end_offset), ref)
    return list(found.values())


def local_path(uri: str) -> Path:
    """The local path of a ``file://`` URI or plain path.

    Raises:
        InvalidArgumentError: Another scheme (the monitor reads local data only).
    """
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path) if parsed.scheme else uri)
    raise InvalidArgumentError(
        f"the monitor reads local streams and files; cannot read {uri!r}", field="uri"
    )


def read_ref(client: Any, ref: LineageRef) -> Iterator[Mapping[str, Any]]:
    """The records of one dataset reference (its offset range, for streams)."""
    dataset = client.datasets.get(ref.name)
    path = local_path(dataset.uri)
    if dataset.stream or path.is_dir():
        from tideflow.io.local_stream import LocalStreamReader

        start = ref.start_offset or 1
        end = ref.end_offset
        reader = LocalStreamReader(path)
        for batch in reader.batches(max_records=5000, max_wait=0, idle_timeout=0):
            first = batch.start_offset or 1
            for i, record in enumerate(batch.records):
                offset = first + i
                if offset >= start and (end is None or offset <= end):
                    yield record
            if end is not None and (batch.end_offset or 0) >= end:
                return
        return
    from tideflow.io.file import read_table

    yield from read_table(path, format=dataset.format or None).to_dict(orient="records")


def load_baseline(
    client: Any,
    model: str,
    version: int,
    *,
    features: Collection[str] | None = None,
    datasets: Collection[str] | None = None,
    limit: int = 5000,
) -> list[Mapping[str, Any]]:
    """The newest ``limit`` training samples of ``model`` ``version`` (feature records).

    Args:
        client: The project's client.
        model: The model.
        version: Its version.
        features: Keep records holding at least one of these; any non-empty record when ``None``.
        datasets: Read only these upstream datasets; all of them when ``None``.
        limit: Samples kept at most (the newest).
    """
    kept: deque[Mapping[str, Any]] = deque(maxlen=limit)
    for ref in training_inputs(client, model, version):
        if datasets is not None and ref.name not in datasets:
            continue
        taken = 0
        for record in read_ref(client, ref):
            row = features_of(record)
            if features is None or any(name in row for name in features):
                kept.append(record)
                taken += 1
        log.info("baseline of %s v%s: %d samples from %s", model, version, taken, ref)
    return list(kept)
