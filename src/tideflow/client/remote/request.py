"""Request messages from user arguments, refusing what protobuf or JSON cannot carry.

The in-process services validate their arguments themselves; over gRPC some arguments never
reach the server -- protobuf rejects a wrong type while the message is built, ``json.dumps``
an unserialisable value. These helpers raise the
:class:`~tideflow.errors.InvalidArgumentError` the in-process service would raise instead, so
a caller sees the same error either way. Everything protobuf can carry is left for the server
to check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from tideflow.domain.limits import MAX_TYPE_LENGTH, check_number, check_text
from tideflow.errors import InvalidArgumentError
from tideflow.rpc import convert

T = TypeVar("T")


def build(make: Callable[[], T]) -> T:
    """Build a request, turning protobuf's type complaints into ``InvalidArgumentError``."""
    try:
        return make()
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"invalid argument: {exc}") from exc


def json_text(value: Any, what: str) -> str:
    """JSON text for a ``*_json`` field (``{}`` for ``None``).

    Raises:
        InvalidArgumentError: The value is not JSON-serialisable.
    """
    try:
        return convert.to_json(value)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{what} is not JSON-serialisable: {exc}", field=what) from exc


def json_or_none(value: Any, what: str) -> str | None:
    """JSON text for an ``optional`` ``*_json`` field (unset for ``None``)."""
    return None if value is None else json_text(value, what)


def str_map(value: Mapping[str, str] | None, what: str) -> dict[str, str]:
    """A ``map<string, string>`` field's value (empty for ``None``).

    Raises:
        InvalidArgumentError: Not a mapping of strings to strings.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(
            f"{what} must be a mapping, got {type(value).__name__}", field=what
        )
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise InvalidArgumentError(
                f"{what} must map strings to strings, got {key!r}: {item!r}", field=what
            )
    return dict(value)


def metric_map(value: Mapping[str, float] | None) -> dict[str, float]:
    """A ``map<string, double>`` of metrics, checked as the Model Center checks it.

    Raises:
        InvalidArgumentError: A metric name that is not text or a value that is not finite.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(
            f"metrics must be a mapping, got {type(value).__name__}", field="metrics"
        )
    return {
        check_text(key, "metric name", MAX_TYPE_LENGTH, empty=False): check_number(
            item, f"metric {key!r}"
        )
        for key, item in value.items()
    }
