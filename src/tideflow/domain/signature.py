"""Model signatures: the input fields a model version reads, inferred from an example, checked at serving.

A :class:`Signature` is the list of fields a version's records must carry -- each with a name,
a type (:class:`FieldType`) and whether it is required -- plus a few example records. It is
inferred by :func:`infer_signature` from the ``input_example=`` given to ``log_model`` /
``save_model`` and stored with the version as the tag :data:`SIGNATURE_TAG` (canonical JSON),
so every store backend and the wire carry it without a schema change, and an older server keeps
it as an ordinary tag.

Decisions:

- **Types are the four JSON scalars** a request can carry, named as MLflow's column types
  (``double``, ``long``, ``boolean``, ``string``) so an exported MLflow signature needs no
  translation table. A ``long`` field accepts integral numbers only; a ``double`` accepts any
  number (an integer is a valid double) but not a boolean; ``None`` is accepted for optional
  fields alone.
- **Required** means present and non-null in every record of the example; a field missing from
  some example records, or null in one, is optional.
- **Extra fields are allowed**: a request may carry more than the model reads (a request id,
  features of a newer model), so a deploy never breaks callers that send a superset.
- A bad request is an :class:`~tideflow.errors.InvalidArgumentError` whose ``field`` is the
  field's name and whose message names the record, the field and what was expected: the
  predictor answers it with HTTP 400 / INVALID_ARGUMENT before the model sees it.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tideflow.errors import InvalidArgumentError

SIGNATURE_TAG = "tideflow.signature"
"""The version tag holding the signature (JSON)."""
LIBRARIES_TAG = "tideflow.libraries"
"""The version tag holding the library versions the artefact was saved with (JSON)."""
ORIGIN_TAG = "tideflow.origin"
"""The version tag saying where a version came from: ``imported`` for ``tideflow model import``."""
IMPORTED_FROM_TAG = "tideflow.imported_from"
"""The version tag naming what an imported version was read from (a path)."""

EXAMPLE_RECORDS = 5
"""Example records kept with a signature (for exports' input examples and checks)."""


class FieldType(StrEnum):
    """The type of one input field (MLflow's column type names)."""

    DOUBLE = "double"
    LONG = "long"
    BOOLEAN = "boolean"
    STRING = "string"


@dataclass(frozen=True)
class FieldSpec:
    """One input field of a signature.

    Attributes:
        name: The record key.
        type: What its values are.
        required: Whether every record must carry a non-null value.
    """

    name: str
    type: FieldType
    required: bool = True

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` (not ``None``) is of this field's type."""
        if self.type is FieldType.BOOLEAN:
            return isinstance(value, bool) or type(value).__name__ == "bool_"
        if isinstance(value, bool):
            return False
        if self.type is FieldType.STRING:
            return isinstance(value, str)
        if self.type is FieldType.LONG:
            return isinstance(value, numbers.Integral) or (
                isinstance(value, float) and value.is_integer()
            )
        return isinstance(value, numbers.Real)


def _type_of(value: Any, name: str) -> FieldType:
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # numpy scalars
    if isinstance(value, bool):
        return FieldType.BOOLEAN
    if isinstance(value, numbers.Integral):
        return FieldType.LONG
    if isinstance(value, numbers.Real):
        return FieldType.DOUBLE
    if isinstance(value, str):
        return FieldType.STRING
    raise InvalidArgumentError(
        f"input_example field {name!r} holds a {type(value).__name__}; a signature field is a "
        "number, a boolean or a string",
        field=name,
    )


def _json_ready(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()
    if isinstance(value, float) and value != value:  # NaN: JSON has no such number
        return None
    return value


@dataclass(frozen=True)
class Signature:
    """The input fields of a model version (see the module docstring).

    Attributes:
        inputs: The fields, in the example's order.
        example: Up to :data:`EXAMPLE_RECORDS` records of the example, JSON-ready.
    """

    inputs: tuple[FieldSpec, ...]
    example: tuple[Mapping[str, Any], ...] = ()

    @property
    def names(self) -> list[str]:
        """The field names, in order."""
        return [f.name for f in self.inputs]

    def describe(self) -> str:
        """``name:type`` per field, optional ones marked ``?``: for tables and messages."""
        return ", ".join(f"{f.name}:{f.type.value}{'' if f.required else '?'}" for f in self.inputs)

    def check(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Refuse records that miss a required field or carry a value of the wrong type.

        Raises:
            InvalidArgumentError: Naming the record, the field (also in ``field``) and what the
                signature expects.
        """
        for index, record in enumerate(records):
            for spec in self.inputs:
                value = record.get(spec.name)
                if value is None:
                    if not spec.required:
                        continue
                    problem = "is null" if spec.name in record else "is missing"
                    raise InvalidArgumentError(
                        f"record {index}: required field {spec.name!r} {problem} (expected "
                        f"{spec.type.value}); the model reads {self.describe()}",
                        field=spec.name,
                    )
                if not spec.accepts(value):
                    raise InvalidArgumentError(
                        f"record {index}: field {spec.name!r} is {value!r} "
                        f"({type(value).__name__}); expected {spec.type.value}",
                        field=spec.name,
                    )

    def to_json(self) -> str:
        """Canonical JSON (the tag's value)."""
        return json.dumps(
            {
                "inputs": [
                    {"name": f.name, "type": f.type.value, "required": f.required}
                    for f in self.inputs
                ],
                "example": [dict(r) for r in self.example],
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Signature:
        """Parse :meth:`to_json`'s output.

        Raises:
            InvalidArgumentError: Not a signature.
        """
        try:
            data = json.loads(text)
            inputs = tuple(
                FieldSpec(str(f["name"]), FieldType(f["type"]), bool(f.get("required", True)))
                for f in data["inputs"]
            )
            example = tuple(dict(r) for r in data.get("example", ()))
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidArgumentError(f"not a model signature: {e}", field="signature") from e
        return cls(inputs, example)

    @classmethod
    def of(cls, tags: Mapping[str, str]) -> Signature | None:
        """The signature stored in a version's tags, if any."""
        text = tags.get(SIGNATURE_TAG)
        return None if text is None else cls.from_json(text)


def example_records(example: Any) -> list[dict[str, Any]]:
    """``example`` (a record, a list of records, or a DataFrame) as a list of records.

    Raises:
        InvalidArgumentError: Of none of these shapes, or empty.
    """
    if hasattr(example, "to_dict") and hasattr(example, "columns"):  # a pandas DataFrame
        example = example.to_dict(orient="records")
    if isinstance(example, Mapping):
        example = [example]
    if (
        not isinstance(example, Sequence)
        or isinstance(example, str | bytes)
        or not example
        or not all(isinstance(r, Mapping) for r in example)
    ):
        raise InvalidArgumentError(
            "input_example must be a record (a dict), a non-empty list of records or a "
            "pandas DataFrame",
            field="input_example",
        )
    return [{str(k): v for k, v in r.items()} for r in example]


def infer_signature(example: Any) -> Signature:
    """The signature of the records in ``example`` (see the module docstring).

    Raises:
        InvalidArgumentError: A bad example: not records, a field that is never set, a field
            whose values are of two types (other than integers among doubles) or not scalars.
    """
    records = example_records(example)
    order: list[str] = []
    types: dict[str, FieldType] = {}
    seen: dict[str, int] = {}
    for record in records:
        for name, value in record.items():
            if name not in seen:
                order.append(name)
                seen[name] = 0
            if value is None or (isinstance(value, float) and value != value):
                continue
            seen[name] += 1
            found = _type_of(value, name)
            known = types.get(name)
            if known is None or known == found:
                types[name] = found
            elif {known, found} == {FieldType.LONG, FieldType.DOUBLE}:
                types[name] = FieldType.DOUBLE
            else:
                raise InvalidArgumentError(
                    f"input_example field {name!r} holds both {known.value} and {found.value} "
                    "values",
                    field=name,
                )
    for name in order:
        if name not in types:
            raise InvalidArgumentError(
                f"input_example field {name!r} is null in every record: its type is unknown",
                field=name,
            )
    inputs = tuple(FieldSpec(n, types[n], seen[n] == len(records)) for n in order)
    example_kept = tuple(
        {k: _json_ready(v) for k, v in r.items()} for r in records[:EXAMPLE_RECORDS]
    )
    return Signature(inputs, example_kept)
