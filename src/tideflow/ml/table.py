"""Tables as the ``tideflow.ml`` stages see them: pandas inside, the caller's kind outside.

A stage accepts a pandas ``DataFrame``, a pyarrow ``Table`` or a sequence of records (mappings
of column to value) and answers in the same kind it was given, so a batch job handing Arrow
tables and a streaming job handing lists of records use one fitted object. Inside, every stage
works on a ``DataFrame``: that keeps each stage's code to one representation, and the
conversions at the edge are cheap next to the model work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, TypeAlias

import pandas as pd

from tideflow.errors import InvalidArgumentError

#: What a stage accepts: a pandas DataFrame, a pyarrow Table or a sequence of records.
TableLike: TypeAlias = Any


class TableKind(StrEnum):
    """Which kind of table a caller handed in (and gets back)."""

    PANDAS = "pandas"
    ARROW = "arrow"
    RECORDS = "records"


def kind_of(table: TableLike) -> TableKind:
    """The kind of ``table``.

    Raises:
        InvalidArgumentError: It is none of a DataFrame, an Arrow table or a sequence of records.
    """
    if isinstance(table, pd.DataFrame):
        return TableKind.PANDAS
    if type(table).__module__.startswith("pyarrow") and hasattr(table, "to_pandas"):
        return TableKind.ARROW
    if (
        isinstance(table, Sequence)
        and not isinstance(table, str | bytes)
        and all(isinstance(record, Mapping) for record in table)
    ):
        return TableKind.RECORDS
    raise InvalidArgumentError(
        "a table must be a pandas DataFrame, a pyarrow Table or a sequence of records "
        f"(mappings), got {type(table).__name__}",
        field="table",
    )


def to_frame(table: TableLike) -> pd.DataFrame:
    """``table`` as a pandas DataFrame (the same object if it already is one)."""
    kind = kind_of(table)
    if kind is TableKind.PANDAS:
        frame: pd.DataFrame = table
        return frame
    if kind is TableKind.ARROW:
        return table.to_pandas()
    return pd.DataFrame.from_records([dict(record) for record in table])


def from_frame(frame: pd.DataFrame, kind: TableKind) -> TableLike:
    """``frame`` converted to ``kind``."""
    if kind is TableKind.PANDAS:
        return frame
    if kind is TableKind.ARROW:
        import pyarrow as pa

        return pa.Table.from_pandas(frame, preserve_index=False)
    records: list[dict[str, Any]] = frame.to_dict(orient="records")
    return records


def require_columns(frame: pd.DataFrame, columns: Sequence[str], stage: str) -> None:
    """Raise if ``frame`` lacks any of ``columns``.

    Raises:
        InvalidArgumentError: Naming the stage and every missing column.
    """
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise InvalidArgumentError(
            f"{stage}: the table has no column(s) {', '.join(map(repr, missing))} "
            f"(it has {', '.join(map(repr, frame.columns))})",
            field="table",
        )
