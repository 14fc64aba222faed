"""The standard inference protocols' bodies, translated to and from the predictor's records.

``tideflow serve`` speaks three protocols over one :class:`~tideflow.serving.predictor.Predictor`
(so all three hot-swap together and share batching, metrics and the sink); this module holds
the pure translation, :mod:`tideflow.serving.http` the routes.

**MLflow scoring** (``POST /invocations``, JSON) -- one of these keys:

- ``dataframe_split``: ``{"columns": [...], "data": [[...], ...]}`` (``index`` ignored);
- ``dataframe_records``: ``[{...}, ...]``;
- ``instances``: a list of records, or of rows (named by the signature), or a dict of columns;
- ``inputs``: the same shapes as ``instances``.

The answer is ``{"predictions": [...]}``, one score per record, in order.

**Open Inference Protocol v2** (``POST /v2/models/{name}/infer``): every input tensor is one
feature column, named by the field (``shape`` ``[N]`` or ``[N, 1]``), or a single ``[N, k]``
tensor whose columns are the signature's fields in order. ``data`` may be flat (row-major) or
nested. The answer has one output tensor, ``score``.

Rows without names (lists) are mapped to fields through the version's signature
(:mod:`tideflow.domain.signature`); without one they are refused with the reason. Every shape
problem is an :class:`~tideflow.errors.InvalidArgumentError` naming the key at fault (HTTP 400).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from tideflow.domain.signature import Signature
from tideflow.errors import InvalidArgumentError

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
"""The input keys of an MLflow scoring request."""

_V2_CASTS: dict[str, type] = {
    "BOOL": bool,
    "BYTES": str,
    **{f"INT{n}": int for n in (8, 16, 32, 64)},
    **{f"UINT{n}": int for n in (8, 16, 32, 64)},
    **{f"FP{n}": float for n in (16, 32, 64)},
}


def _rows_to_records(
    rows: Sequence[Any], columns: Sequence[str] | None, where: str
) -> list[dict[str, Any]]:
    if not rows:
        return []
    if all(isinstance(r, Mapping) for r in rows):
        return [dict(r) for r in rows]
    if columns is None:
        raise InvalidArgumentError(
            f"{where} holds rows without names, and the served version has no signature to "
            "name their columns: send records ({name: value}) instead",
            field=where,
        )
    records = []
    for index, row in enumerate(rows):
        if not isinstance(row, list | tuple):
            row = [row]
        if len(row) != len(columns):
            raise InvalidArgumentError(
                f"{where}[{index}] has {len(row)} values; expected {len(columns)} ({columns})",
                field=where,
            )
        records.append(dict(zip(columns, row, strict=True)))
    return records


def _columns_to_records(columns: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    lengths = {
        name: len(values) if isinstance(values, list) else None for name, values in columns.items()
    }
    if any(n is None for n in lengths.values()):  # one record given as {name: value}
        return [dict(columns)]
    if len(set(lengths.values())) > 1:
        raise InvalidArgumentError(
            f"{where}: the columns have different lengths ({lengths})", field=where
        )
    count = next(iter(lengths.values()), 0) or 0
    return [{name: columns[name][i] for name in columns} for i in range(count)]


def mlflow_records(payload: Any, signature: Signature | None) -> list[dict[str, Any]]:
    """The records of an MLflow scoring request (see the module docstring).

    Raises:
        InvalidArgumentError: No or several input keys, or a shape this format does not allow.
    """
    if not isinstance(payload, Mapping):
        raise InvalidArgumentError(
            f"an MLflow scoring request is a JSON object with one of {', '.join(MLFLOW_KEYS)}",
            field="body",
        )
    keys = [k for k in MLFLOW_KEYS if k in payload]
    if len(keys) != 1:
        raise InvalidArgumentError(
            f"an MLflow scoring request has exactly one of {', '.join(MLFLOW_KEYS)}; got "
            f"{keys or sorted(payload)}",
            field="body",
        )
    key = keys[0]
    value = payload[key]
    names = signature.names if signature is not None else None
    if key == "dataframe_split":
        if not isinstance(value, Mapping) or not isinstance(value.get("data"), list):
            raise InvalidArgumentError(
                'dataframe_split is {"columns": [...], "data": [[...], ...]}', field=key
            )
        columns = value.get("columns", names)
        if columns is not None and not (
            isinstance(columns, list) and all(isinstance(c, str) for c in columns)
        ):
            raise InvalidArgumentError("dataframe_split.columns is a list of names", field=key)
        return _rows_to_records(value["data"], columns, key)
    if key == "dataframe_records":
        if not isinstance(value, list) or not all(isinstance(r, Mapping) for r in value):
            raise InvalidArgumentError("dataframe_records is a list of JSON objects", field=key)
        return [dict(r) for r in value]
    if isinstance(value, Mapping):  # instances / inputs as columns
        return _columns_to_records(value, key)
    if isinstance(value, list):
        return _rows_to_records(value, names, key)
    raise InvalidArgumentError(
        f"{key} is a list of records or rows, or a dict of columns", field=key
    )


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


def _cast(value: Any, datatype: str, where: str) -> Any:
    kind = _V2_CASTS.get(datatype)
    if kind is None:
        raise InvalidArgumentError(
            f"{where}: datatype {datatype!r} is not one of {', '.join(_V2_CASTS)}", field=where
        )
    if kind is str:
        if not isinstance(value, str):
            raise InvalidArgumentError(f"{where}: a BYTES value must be a string", field=where)
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise InvalidArgumentError(f"{where}: a BOOL value must be true or false", field=where)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):  # JSON numbers
        raise InvalidArgumentError(f"{where}: {value!r} is not a {datatype} number", field=where)
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise InvalidArgumentError(f"{where}: {value!r} is not an integer", field=where)
        return int(value)
    return float(value)


def v2_records(payload: Any, signature: Signature | None) -> list[dict[str, Any]]:
    """The records of an Open Inference Protocol v2 infer request (see the module docstring).

    Raises:
        InvalidArgumentError: A malformed tensor, a shape that does not match its data, or
            columns of different lengths.
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("inputs"), list):
        raise InvalidArgumentError('an infer request is {"inputs": [tensor, ...]}', field="inputs")
    inputs = payload["inputs"]
    if not inputs:
        raise InvalidArgumentError("an infer request needs at least one input", field="inputs")
    columns: dict[str, list[Any]] = {}
    for index, tensor in enumerate(inputs):
        where = f"inputs[{index}]"
        if not isinstance(tensor, Mapping):
            raise InvalidArgumentError(f"{where} is not a JSON object", field=where)
        name, shape, datatype = tensor.get("name"), tensor.get("shape"), tensor.get("datatype")
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"{where} has no name", field=where)
        where = f"inputs[{index}] ({name})"
        if not (
            isinstance(shape, list)
            and shape
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise InvalidArgumentError(f"{where}: shape is a list of sizes", field=name)
        if not isinstance(datatype, str):
            raise InvalidArgumentError(f"{where}: datatype is missing", field=name)
        data = [_cast(v, datatype, where) for v in _flatten(tensor.get("data"))]
        size = 1
        for d in shape:
            size *= d
        if size != len(data):
            raise InvalidArgumentError(
                f"{where}: shape {shape} holds {size} values but data has {len(data)}", field=name
            )
        width = size // shape[0] if shape[0] else 1
        if len(inputs) == 1 and len(shape) == 2 and shape[1] > 1:  # one [N, k] tensor of rows
            rows = [data[i * width : (i + 1) * width] for i in range(shape[0])]
            return _rows_to_records(rows, signature.names if signature else None, where)
        if width != 1:
            raise InvalidArgumentError(
                f"{where}: a feature column has shape [N] or [N, 1], not {shape}", field=name
            )
        columns[name] = data
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise InvalidArgumentError(
            f"the inputs have different lengths: { {k: len(v) for k, v in columns.items()} }",
            field="inputs",
        )
    count = lengths.pop()
    return [{name: values[i] for name, values in columns.items()} for i in range(count)]


def v2_output(scores: Sequence[Any]) -> dict[str, Any]:
    """The ``score`` output tensor of ``scores`` (numbers, labels or rows of probabilities)."""
    rows = [s for s in scores if isinstance(s, list)]
    if rows and len(rows) == len(scores):
        width = len(rows[0])
        if all(len(r) == width for r in rows):
            flat = [v for r in rows for v in r]
            return {
                "name": "score",
                "shape": [len(scores), width],
                "datatype": _datatype(flat),
                "data": flat,
            }
    return {"name": "score", "shape": [len(scores)], "datatype": _datatype(scores), "data": scores}


def _datatype(values: Sequence[Any]) -> str:
    if values and all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"


V2_DATATYPES = {"double": "FP64", "long": "INT64", "boolean": "BOOL", "string": "BYTES"}
"""Signature field types as v2 tensor datatypes (model metadata)."""
