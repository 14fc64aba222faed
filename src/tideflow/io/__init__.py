"""Sources and sinks behind one interface: batch files and streams, with offsets for lineage.

- :mod:`tideflow.io.base` -- :class:`Source` / :class:`Sink`, :class:`Batch`, :class:`OffsetRange`;
- :mod:`tideflow.io.file` -- CSV, Parquet and JSON Lines files (pyarrow; the ``ml`` extra);
- :mod:`tideflow.io.local_stream` -- the embedded default stream: a directory of JSON Lines
  part files (the layout of a Flink file sink), with stored consumer offsets;
- :mod:`tideflow.io.redis_stream` -- Redis Streams (the ``redis`` extra);
- :mod:`tideflow.io.lineage` -- register datasets and record offset ranges in lineage.

Layering: beside the engines and executors; it may use ``tideflow.client``, and nothing below
imports it. Processors import what they need from here directly. See docs/io.md.
"""

from tideflow.io.base import Batch, OffsetRange, Sink, Source
from tideflow.io.offsets import FileOffsetStore, OffsetStore, StreamPosition

__all__ = [
    "Batch",
    "FileOffsetStore",
    "OffsetRange",
    "OffsetStore",
    "Sink",
    "Source",
    "StreamPosition",
]
