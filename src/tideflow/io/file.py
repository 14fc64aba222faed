"""Batch files: CSV, Parquet and JSON Lines, read into tables and written from them.

Reading goes through pyarrow (multi-threaded CSV parsing, Parquet row groups) and hands out
pandas DataFrames, or Arrow tables with :meth:`FileSource.read_arrow`. A :class:`FileSink`
keeps its file open between ``write`` calls, so a job can write a result in several pieces:
Parquet gets one row group per piece (later pieces are cast to the first piece's schema), CSV
gets the header once. The file is complete once the sink is closed.

Files have no offsets: their batches carry ``None``, and lineage records the dataset version.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tideflow.errors import InvalidArgumentError
from tideflow.io.base import Location, OffsetRange, Sink, Source, records_of

FORMATS = ("csv", "parquet", "jsonl")
_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}


def format_of(path: str | os.PathLike[str], format: str | None = None) -> str:
    """``format`` if given, else guessed from the file suffix.

    Raises:
        InvalidArgumentError: An unknown format, or a suffix that names none.
    """
    if format is None:
        format = _SUFFIXES.get(Path(path).suffix.lower())
        if format is None:
            raise InvalidArgumentError(
                f"cannot tell the format of {str(path)!r} from its suffix; pass format= one of "
                f"{', '.join(FORMATS)}",
                field="format",
            )
    if format not in FORMATS:
        raise InvalidArgumentError(
            f"unknown file format {format!r}; expected one of {', '.join(FORMATS)}", field="format"
        )
    return format


def read_arrow(path: str | os.PathLike[str], *, format: str | None = None) -> Any:
    """The whole file as a pyarrow Table."""
    import pyarrow as pa

    kind = format_of(path, format)
    if kind == "csv":
        import pyarrow.csv as pacsv

        return pacsv.read_csv(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path)
    with Path(path).open(encoding="utf-8") as file:
        return pa.Table.from_pylist([json.loads(line) for line in file if line.strip()])


def read_table(path: str | os.PathLike[str], *, format: str | None = None) -> Any:
    """The whole file as a pandas DataFrame."""
    return read_arrow(path, format=format).to_pandas()


def write_table(table: Any, path: str | os.PathLike[str], *, format: str | None = None) -> None:
    """Write ``table`` (DataFrame, Arrow table or records) to ``path``, replacing it."""
    with FileSink(path, format=format) as sink:
        sink.write(table)


class FileSource(Source):
    """A CSV, Parquet or JSON Lines file, read whole or in batches of rows."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,
        dataset: str | None = None,
    ) -> None:
        super().__init__(dataset)
        self.path = Path(path)
        self.format = format_of(path, format)
        self._rows: list[dict[str, Any]] | None = None
        self._next = 0

    def location(self) -> Location:
        """The file's URI and format; not a stream."""
        return Location(self.path.resolve().as_uri(), self.format, False)

    def read_arrow(self) -> Any:
        """The whole file as a pyarrow Table."""
        self._track(None, None)
        return read_arrow(self.path, format=self.format)

    def read_table(self) -> Any:
        """The whole file as a pandas DataFrame."""
        return self.read_arrow().to_pandas()

    def exhausted(self) -> bool:
        """True once every row was handed out."""
        return self._rows is not None and self._next >= len(self._rows)

    def _poll(self, max_records: int) -> tuple[list[dict[str, Any]], int | None, int | None]:
        if self._rows is None:
            self._rows = read_arrow(self.path, format=self.format).to_pylist()
        rows = self._rows[self._next : self._next + max_records]
        self._next += len(rows)
        return rows, None, None


class FileSink(Sink):
    """Writes a CSV, Parquet or JSON Lines file, in one or several pieces (closed = complete)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,
        dataset: str | None = None,
    ) -> None:
        super().__init__(dataset)
        self.path = Path(path)
        self.format = format_of(path, format)
        self._writer: Any = None
        self._schema: Any = None

    def location(self) -> Location:
        """The file's URI and format; not a stream."""
        return Location(self.path.resolve().as_uri(), self.format, False)

    def write(self, table: Any) -> OffsetRange | None:
        """Append ``table``'s rows to the file (the first call creates or replaces it)."""
        arrow = _to_arrow(table)
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._schema = arrow.schema
            self._writer = self._open(arrow.schema)
        elif arrow.schema != self._schema:
            arrow = arrow.select(self._schema.names).cast(self._schema)
        if self.format == "jsonl":
            for row in arrow.to_pylist():
                self._writer.write(json.dumps(row, default=str) + "\n")
        else:
            # ParquetWriter and CSVWriter both take whole tables.
            self._writer.write_table(arrow)
        self._track(None, None)
        return None

    def close(self) -> None:
        """Finish the file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _open(self, schema: Any) -> Any:
        if self.format == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetWriter(self.path, schema)
        if self.format == "csv":
            import pyarrow.csv as pacsv

            return pacsv.CSVWriter(self.path, schema)
        return self.path.open("w", encoding="utf-8")


def _to_arrow(table: Any) -> Any:
    import pyarrow as pa

    if isinstance(table, pa.Table):
        return table
    if hasattr(table, "to_dict") and hasattr(table, "columns"):
        return pa.Table.from_pandas(table, preserve_index=False)
    return pa.Table.from_pylist(records_of(table))
